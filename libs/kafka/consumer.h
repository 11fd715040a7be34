// A Kafka consumer in a group that marks a record done only after the caller's work is durable
// (enable.auto.offset.store=false; stored offsets are committed in the background and on Close).
// Redelivery after a crash happens, so handlers must be idempotent.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/producer.h"

namespace RdKafka {
class KafkaConsumer;
}

namespace schakel::kafka {

struct ConsumerOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string group_id;
  std::vector<std::string> topics;
  std::string client_id = "schakel";
  Properties extra;
};

struct Record {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
};

class Consumer {
 public:
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(const ConsumerOptions& options);
  ~Consumer();

  // The next record, or nullopt when none arrived within `timeout`. Transient errors are logged and
  // reported as nullopt; a fatal error returns a status.
  absl::StatusOr<std::optional<Record>> Poll(std::chrono::milliseconds timeout);
  // The record's work is durable: its offset may be committed.
  absl::Status MarkDone(const Record& record);
  // The end (high watermark: the offset the next record will get) of each partition of `topic` now.
  absl::StatusOr<std::map<std::int32_t, std::int64_t>> EndOffsets(
      const std::string& topic, std::chrono::milliseconds timeout);
  // Commits what is marked done and leaves the group. Safe to call twice.
  void Close();

 private:
  class Callbacks;
  absl::StatusOr<std::map<std::int32_t, std::int64_t>> EndOffsetsOnce(
      const std::string& topic, std::chrono::milliseconds timeout);
  Consumer() = default;

  std::unique_ptr<Callbacks> callbacks_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  bool closed_ = false;
};

}  // namespace schakel::kafka
