// The inbox's consume loop: one thread that polls the organisation's topic, takes what has arrived
// as a batch (bounded in records and time), ingests the batch in one SQLite transaction, and marks
// its records done only after that transaction is durable (duplicates and rejected records are
// done too; a rejected one after its dead letter was acknowledged). When the store fails, the batch
// is tried again one record at a time (each in its own transaction, as before batches), so that a
// record the store keeps failing on holds up only itself and what follows it: nothing is committed
// past a record that is not stored.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consumer.h"
#include "services/inbox/ingest.h"

namespace schakel::inbox {

// What the loop needs from a Kafka consumer: kafka::Consumer through KafkaRecordSource, a fake in
// tests.
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  virtual absl::StatusOr<std::optional<kafka::Record>> Poll(std::chrono::milliseconds timeout) = 0;
  virtual absl::Status MarkDone(const kafka::Record& record) = 0;
  virtual void Close() = 0;
};

class KafkaRecordSource final : public RecordSource {
 public:
  explicit KafkaRecordSource(std::unique_ptr<kafka::Consumer> consumer);
  absl::StatusOr<std::optional<kafka::Record>> Poll(std::chrono::milliseconds timeout) override;
  absl::Status MarkDone(const kafka::Record& record) override;
  void Close() override;

 private:
  std::unique_ptr<kafka::Consumer> consumer_;
};

struct InboxConsumerOptions {
  // How long one poll waits for the first record of a batch; also bounds how long Stop() waits for
  // the loop to notice.
  std::chrono::milliseconds poll_timeout{200};
  // A batch is what has already arrived when its first record is in hand (polls that do not wait),
  // up to this many records, taken within this long of the first.
  std::size_t max_batch = 500;
  std::chrono::milliseconds max_batch_time{50};
  // Pause before ingesting a record again after the store failed.
  std::chrono::milliseconds retry_backoff{1000};
  // Called once, on the loop's thread, when the source fails for good; the loop then ends. The
  // process should shut down: it no longer receives its assignments.
  std::function<void(const absl::Status&)> on_fatal;
  // Where rejected records go, with the reason (nullptr: they are only logged and counted).
  deadletter::DeadLetters* dead_letters = nullptr;
};

class InboxConsumer {
 public:
  // `ingest` must outlive this object.
  InboxConsumer(std::unique_ptr<RecordSource> source, AssignmentIngest& ingest,
                InboxConsumerOptions options = {});
  // Stops (see Stop).
  ~InboxConsumer();

  InboxConsumer(const InboxConsumer&) = delete;
  InboxConsumer& operator=(const InboxConsumer&) = delete;

  // Starts the loop's thread. Call once.
  void Start();
  // Asks the loop to stop after the batch in hand, waits for its thread, then closes the source
  // (which commits what was marked done). Safe to call twice, and without Start.
  void Stop();

 private:
  void Run();
  // Polls for the next batch into `batch`; a status when the source failed for good (what was
  // polled before the failure is still in `batch`).
  absl::Status Collect(std::vector<kafka::Record>& batch);
  // Ingests `batch` and finishes each record; false when the loop should end (stopping).
  bool Process(const std::vector<kafka::Record>& batch);
  // The record's outcome is durable: its dead letter when rejected, then marked done. False when
  // stopping before the dead letter was acknowledged (the record is not marked: it comes again).
  bool Finish(const kafka::Record& record, const IngestResult& result);
  // Waits up to `timeout`; true when a stop was asked for.
  bool WaitForStop(std::chrono::milliseconds timeout);
  bool StopRequested();

  std::unique_ptr<RecordSource> source_;
  AssignmentIngest& ingest_;
  InboxConsumerOptions options_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace schakel::inbox
