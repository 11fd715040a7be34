// The inbox's consume loop: one thread that polls the organisation's topic, ingests each record,
// and marks it done only after its outcome is durable in SQLite (duplicates and rejected records
// are done too). When the store fails, the same record is retried until it succeeds or the loop is
// stopped, so nothing after it is committed past it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

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
  // How long one poll waits; also bounds how long Stop() waits for the loop to notice.
  std::chrono::milliseconds poll_timeout{200};
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
  // Asks the loop to stop after the record in hand, waits for its thread, then closes the source
  // (which commits what was marked done). Safe to call twice, and without Start.
  void Stop();

 private:
  void Run();
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
