// A Kafka consumer in a group that marks a record done only after the caller's work is durable
// (enable.auto.offset.store=false; stored offsets are committed in the background and on Close).
// Redelivery after a crash happens, so handlers must be idempotent.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/producer.h"

namespace RdKafka {
class KafkaConsumer;
class Message;
}  // namespace RdKafka

namespace schakel::kafka {

struct TopicPartition {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;  // where it applies: the next offset to read
  friend bool operator==(const TopicPartition&, const TopicPartition&) = default;
};

// Told, on the polling thread inside Poll(), which partitions this member gets (assigned = true) or
// gives up (false). With the eager protocol every rebalance revokes everything first.
using RebalanceListener =
    std::function<void(bool assigned, const std::vector<TopicPartition>& partitions)>;

struct Record {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string key;
  std::string value;
};

// The record a consumed message carries (a tombstone's value empty).
Record RecordOf(const RdKafka::Message& message);

// How far a consumer group is behind on one partition: the partition's end (its last stable
// offset, as consumers read committed) minus the group's committed offset.
struct PartitionLag {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t lag = 0;
};

// The lag of every partition in a librdkafka statistics document (statistics.interval.ms) for which
// it is known.
std::vector<PartitionLag> ConsumerLagFromStatistics(const std::string& statistics_json);

// The offsets consumer group `group_id` has committed on `partitions` of `topic`: partition → the
// next offset the group will read; a partition the group never committed is absent. Asks the
// group's coordinator only: does not join the group or disturb its members. UNAVAILABLE when the
// broker does not answer within `timeout`.
absl::StatusOr<std::map<std::int32_t, std::int64_t>> CommittedOffsets(
    const std::string& bootstrap_servers, const std::string& group_id, const std::string& topic,
    const std::vector<std::int32_t>& partitions, std::chrono::milliseconds timeout);

struct ConsumerOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string group_id;
  std::vector<std::string> topics;
  std::string client_id = "schakel";
  Properties extra;
  RebalanceListener on_rebalance = nullptr;
  // Called with each record Poll returns (e.g. to count what was consumed per topic).
  std::function<void(const Record&)> on_record = nullptr;
  // Called every five seconds, inside Poll, with the lag of each partition this member owns.
  std::function<void(const std::vector<PartitionLag>&)> on_lag = nullptr;
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
  // The next offset to read of every assigned partition (what a transaction commits as consumed).
  absl::StatusOr<std::vector<TopicPartition>> Positions();
  // Moves every assigned partition back to its committed offset (the beginning when none is
  // committed): after an aborted transaction the work since the last commit is read again.
  absl::Status RewindToCommitted(std::chrono::milliseconds timeout);
  // Commits what is marked done and leaves the group. Safe to call twice.
  void Close();

 private:
  friend class TransactionalProducer;  // sends this consumer's positions within its transactions
  class Callbacks;
  absl::StatusOr<std::map<std::int32_t, std::int64_t>> EndOffsetsOnce(
      const std::string& topic, std::chrono::milliseconds timeout);
  Consumer() = default;

  std::unique_ptr<Callbacks> callbacks_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  std::function<void(const Record&)> on_record_;
  bool closed_ = false;
};

}  // namespace schakel::kafka
