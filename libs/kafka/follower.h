// Follows every partition of one or more topics from their beginning, outside any consumer group:
// for small compacted topics that each process reads whole (e.g. the inboxes' load reports), and
// for the ops service, which folds the whole history of the network's events into its figures.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace schakel::kafka {

class Follower {
 public:
  // UNAVAILABLE when the topic's partitions cannot be learnt within `timeout`.
  static absl::StatusOr<std::unique_ptr<Follower>> Create(const std::string& bootstrap_servers,
                                                          const std::string& topic,
                                                          std::chrono::milliseconds timeout,
                                                          const Properties& extra = {});
  static absl::StatusOr<std::unique_ptr<Follower>> Create(const std::string& bootstrap_servers,
                                                          const std::vector<std::string>& topics,
                                                          std::chrono::milliseconds timeout,
                                                          const Properties& extra = {});
  ~Follower();
  // Follows `topics` too, from their beginning (those already followed are left as they are);
  // UNAVAILABLE, and nothing added, when a topic's partitions cannot be learnt within `timeout`
  // (e.g. it does not exist, or this identity may not read it).
  absl::Status Add(const std::vector<std::string>& topics, std::chrono::milliseconds timeout);
  // The next record, or nullopt when none arrived within `timeout`.
  std::optional<Record> Poll(std::chrono::milliseconds timeout);

 private:
  Follower() = default;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::vector<std::string> topics_;  // followed
};

}  // namespace schakel::kafka
