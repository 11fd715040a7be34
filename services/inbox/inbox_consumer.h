// The inbox's consumer: the organisation's topic read through the one consume loop
// (kafka::ConsumeLoop), which takes what has arrived as a batch (bounded in records and time); the
// batch is ingested in one SQLite transaction, and its records are marked done only after that
// transaction is durable (duplicates and rejected records are done too; a rejected one after its
// dead letter was acknowledged). When the store fails, the batch is tried again one record at a
// time (each in its own transaction, as before batches), so that a record the store keeps failing
// on holds up only itself and what follows it: nothing is committed past a record that is not
// stored.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <span>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consume_loop.h"
#include "services/inbox/ingest.h"

namespace schakel::inbox {

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
  InboxConsumer(std::unique_ptr<kafka::RecordSource> source, AssignmentIngest& ingest,
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
  kafka::BatchOutcome Handle(std::span<const kafka::Record> batch);

  std::unique_ptr<kafka::RecordSource> source_;
  AssignmentIngest& ingest_;
  kafka::ConsumeLoop loop_;
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace schakel::inbox
