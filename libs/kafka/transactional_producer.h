// A transactional producer for consume-transform-produce (exactly once): the records produced in a
// transaction and the consumer's positions become visible together, or not at all. Readers use
// isolation.level=read_committed (every kafka::Consumer does).
//
// Fencing: the consumer's group metadata goes with the offsets (KIP-447), so a member that lost its
// partitions in a rebalance cannot commit work on them any more; a second process with the same
// transactional id fences the first at InitTransactions.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"

namespace RdKafka {
class Producer;
}

namespace schakel::kafka {

struct TransactionalOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string client_id = "schakel";
  // Stable per process instance (e.g. "schakel-router-1"): a restarted instance fences its
  // predecessor's unfinished transaction at once instead of waiting for it to time out.
  std::string transactional_id;
  // How long a transaction may stay open before the broker aborts it (a crashed process's
  // transaction blocks read_committed readers of its partitions this long at most).
  std::chrono::milliseconds transaction_timeout{10000};
  // How long Begin waits after the previous commit. The broker writes a commit's markers after it
  // answered; a transaction whose first record comes before they are written is told
  // CONCURRENT_TRANSACTIONS, and librdkafka 2.0.2 then waits a fixed 20 ms before it tries again.
  // Two milliseconds here spare most commits those 20 (bench/txn_latency, 300 in a row: mean
  // 14.7 ms with no wait, 7.2 with 2 ms; issue 20). Zero: no wait.
  std::chrono::milliseconds settle_after_commit{2};
  Properties extra;
};

class TransactionalProducer {
 public:
  // Creates the producer and initialises transactions (fencing an earlier instance with the same
  // transactional id). UNAVAILABLE when the broker does not answer within `timeout`.
  static absl::StatusOr<std::unique_ptr<TransactionalProducer>> Create(
      const TransactionalOptions& options, std::chrono::milliseconds timeout);
  ~TransactionalProducer();

  absl::Status Begin();
  // Queues a record in the open transaction; no value (nullopt) writes a tombstone (a compacted
  // topic then forgets the key). Failures surface at Commit.
  absl::Status Produce(std::string_view topic, std::string_view key,
                       const std::optional<std::string>& value);
  // Sends `consumer`'s positions (all its assigned partitions) with its group metadata and commits.
  // ABORTED: the transaction was aborted (or must be); call Abort() and redo the work from the
  // committed positions. FAILED_PRECONDITION: this producer is fenced or broken for good, or the
  // commit timed out with its outcome unknown: Renew() it (or stop), then redo from the committed
  // positions.
  absl::Status CommitWithPositions(Consumer& consumer, std::chrono::milliseconds timeout);
  // Commits what was produced, with no consumer positions (a producer that only writes, e.g. the
  // audit chain: the transactional id fences a second process with the same id). The same errors.
  absl::Status Commit(std::chrono::milliseconds timeout);
  absl::Status Abort(std::chrono::milliseconds timeout);

  // Replaces a fenced or broken producer with a new one under the same transactional id (a new
  // producer epoch; what the old one had not committed is dropped); the caller then redoes its work
  // from the committed positions. Fencing is not always another process: when a broker outage
  // outlasts the transaction timeout, the coordinator aborts the open transaction and bumps the
  // epoch, and the producer finds itself fenced once the broker is back. UNAVAILABLE when the
  // broker does not answer within `timeout` (call again).
  absl::Status Renew(std::chrono::milliseconds timeout);

  std::uint64_t committed() const { return committed_; }
  std::uint64_t aborted() const { return aborted_; }
  std::uint64_t renewed() const { return renewed_; }

 private:
  class Callbacks;
  TransactionalProducer() = default;
  absl::Status Connect(std::chrono::milliseconds timeout);

  TransactionalOptions options_;
  std::unique_ptr<Callbacks> callbacks_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::uint64_t committed_ = 0;
  std::uint64_t aborted_ = 0;
  std::uint64_t renewed_ = 0;
  std::chrono::steady_clock::time_point last_commit_{};
};

// Reads `partitions` of `topic` from the beginning to their current end (read committed) and hands
// every record to `fn` (tombstones with an empty value). For restoring state from a compacted
// topic. UNAVAILABLE when `timeout` passes without a record read (before the first, or between
// two): a long topic may take longer than `timeout` as a whole, a transaction left open there may
// not (a router restarted with a million open referrals timed out while reading, issue 20).
absl::Status ReadToEnd(const std::string& bootstrap_servers, const std::string& topic,
                       const std::vector<std::int32_t>& partitions,
                       std::chrono::milliseconds timeout,
                       const std::function<void(const Record&, bool tombstone)>& fn,
                       const Properties& extra = {});

// The record at `offset` of `partition` of `topic` (read committed). NOT_FOUND when there is none
// there: past the partition's end, deleted by retention or compaction, a transaction marker, or
// aborted; UNAVAILABLE when it cannot be read within `timeout` (also when the topic is not there or
// not readable: the broker's error is in the message).
absl::StatusOr<Record> ReadAt(const std::string& bootstrap_servers, const std::string& topic,
                              std::int32_t partition, std::int64_t offset,
                              std::chrono::milliseconds timeout, const Properties& extra = {});

}  // namespace schakel::kafka
