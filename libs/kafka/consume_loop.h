// The one consume loop of the codebase: every consumer (inbox, erasures, intake's view, the key
// service's grants, the router, ops) reads through it, so batching, backoff, dead letters and fatal
// errors follow one policy. A handler only judges a batch, saying per record stored / duplicate /
// rejected(reason); the loop sends each rejected record to the consumer's dead letters before it
// marks anything after it done, retries what could not be handled after a pause, and hands a fatal
// consumer error to the process's one policy (on_fatal).
//
// Marking done is pluggable (BatchCommit): a plain consumer stores its offsets after the batch is
// durable (MarkDone, committed in the background); the router commits the consumed positions
// inside the Kafka transaction that carries its output and its dead letters.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/consumer.h"

namespace schakel::kafka {

class Follower;

// What a handler says of one record.
class Outcome {
 public:
  enum class Kind { kStored, kDuplicate, kRejected };
  // Its work is durable.
  static Outcome Stored() { return Outcome(Kind::kStored, absl::OkStatus()); }
  // Already done before (redelivery): nothing to do.
  static Outcome Duplicate() { return Outcome(Kind::kDuplicate, absl::OkStatus()); }
  // Unusable: it goes to the dead letters with `reason` (precise, and never the payload), and the
  // consumer goes on as if it had not been there.
  static Outcome Rejected(absl::Status reason);

  Kind kind() const { return kind_; }
  bool rejected() const { return kind_ == Kind::kRejected; }
  // Why it was rejected (OK otherwise).
  const absl::Status& reason() const { return reason_; }

 private:
  Outcome(Kind kind, absl::Status reason) : kind_(kind), reason_(std::move(reason)) {}
  Kind kind_;
  absl::Status reason_;
};

// A handler's answer for a batch: the outcome of each record, in order. When the rest of the batch
// cannot be handled now (the database is busy, the disk full), the outcomes of the first records
// only, and `retry` says why: the loop makes those done, pauses, and hands the rest again (the same
// records, in the same order). Nothing after a record that is not done is marked done.
struct BatchOutcome {
  std::vector<Outcome> outcomes;
  absl::Status retry = absl::OkStatus();

  // Nothing of the batch handled now: all of it again after a pause.
  static BatchOutcome Retry(absl::Status why) { return {{}, std::move(why)}; }
};

using BatchHandler = std::function<BatchOutcome(std::span<const Record> batch)>;

// Where the loop reads: a Consumer in a group (ConsumerSource), a Follower (FollowerSource), or a
// fake in tests.
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  // The next record, or nullopt when none arrived within `timeout`. An error is fatal.
  virtual absl::StatusOr<std::optional<Record>> Poll(std::chrono::milliseconds timeout) = 0;
  // The record's work is durable: its offset may be committed.
  virtual absl::Status MarkDone(const Record& record) = 0;
  // Commits what is marked done and lets go (leaves the group). Safe to call twice.
  virtual void Close() = 0;
};

// A consumer in a group, owned or not.
class ConsumerSource final : public RecordSource {
 public:
  explicit ConsumerSource(Consumer& consumer) : consumer_(consumer) {}
  explicit ConsumerSource(std::unique_ptr<Consumer> consumer)
      : owned_(std::move(consumer)), consumer_(*owned_) {}
  absl::StatusOr<std::optional<Record>> Poll(std::chrono::milliseconds timeout) override {
    return consumer_.Poll(timeout);
  }
  absl::Status MarkDone(const Record& record) override { return consumer_.MarkDone(record); }
  void Close() override { consumer_.Close(); }

 private:
  std::unique_ptr<Consumer> owned_;
  Consumer& consumer_;
};

// A follower (no group, from the beginning at every start): nothing is committed, so marking done
// does nothing. Not owned.
class FollowerSource final : public RecordSource {
 public:
  explicit FollowerSource(Follower& follower) : follower_(follower) {}
  absl::StatusOr<std::optional<Record>> Poll(std::chrono::milliseconds timeout) override;
  absl::Status MarkDone(const Record&) override { return absl::OkStatus(); }
  void Close() override {}

 private:
  Follower& follower_;
};

// Where rejected records go: the consumer's own dead-letter topic (deadletter::DeadLetters).
class DeadLetterSink {
 public:
  virtual ~DeadLetterSink() = default;
  // Sends the dead letter of `record` and waits until Kafka acknowledged it, retrying while it
  // cannot; false only when `stopping` said to give up first (the record is then not marked done).
  virtual bool Send(const Record& record, std::string_view reason,
                    const std::function<bool()>& stopping) = 0;
};

// How a judged batch becomes done. The loop's own (when none is given) sends each rejected record
// to the dead letters, then marks it done, record by record in order. The router gives its Kafka
// transaction.
class BatchCommit {
 public:
  enum class Committed {
    kDone,      // every record given is done
    kStopping,  // the loop is stopping: what is not done comes again after a restart
    kAgain,     // nothing is done: after a pause, Ready() and read again from what is committed
  };
  virtual ~BatchCommit() = default;
  // Before each poll: whatever must be in place to read (the router reads its state again after a
  // rebalance or an aborted transaction). An error is transient: the loop pauses, serves the
  // source and asks again.
  virtual absl::Status Ready() { return absl::OkStatus(); }
  // Whether the batch in hand must be dropped unhandled (its partitions were taken away while it
  // was read): it is read again, from the committed positions, after Ready().
  virtual bool Void() { return false; }
  // Makes `batch` (judged as `outcomes`, one each) done: every rejected record reaches the dead
  // letters before a later record is done. An error is fatal.
  virtual absl::StatusOr<Committed> Commit(std::span<const Record> batch,
                                           std::span<const Outcome> outcomes,
                                           const std::function<bool()>& stopping) = 0;
};

struct ConsumeLoopOptions {
  // Names the consumer in log lines ("inbox alpha", "router").
  std::string name = "consumer";
  // How long a poll waits for the first record of a batch; also bounds how long a stop waits for
  // the loop to notice.
  std::chrono::milliseconds poll_timeout{200};
  // A batch is what has already arrived when its first record is in hand (polls that do not
  // wait), up to this many records, taken within this long of the first.
  std::size_t max_batch = 500;
  std::chrono::milliseconds max_batch_time{50};
  // With a linger, what arrives within this long of the first record joins its batch too (fewer,
  // fuller batches when records come one at a time; each waits at most this long). At most
  // max_batch_time.
  std::chrono::milliseconds linger{0};
  // The pause after a transient failure; it doubles while failures follow each other, up to
  // max_backoff. By default a store that is busy or full is tried again each second.
  std::chrono::milliseconds backoff{1000};
  std::chrono::milliseconds max_backoff{1000};
  // Hand the handler an empty batch when nothing arrived (for work driven by the clock: the
  // router's escalations).
  bool handle_idle = false;
  // Where the loop's own commit sends rejected records (nullptr: they are only logged).
  DeadLetterSink* dead_letters = nullptr;
  // The process's fatal-error policy, called once on the loop's thread when the source fails for
  // good (or a commit cannot go on); the loop then ends. Without it the error is only logged, and
  // Run returns it for main to decide.
  std::function<void(absl::Status)> on_fatal = nullptr;
};

class ConsumeLoop {
 public:
  // Marks records done on `source` itself (rejected ones after their dead letter). `source` and
  // the handler's objects must outlive the loop.
  ConsumeLoop(RecordSource& source, BatchHandler handler, ConsumeLoopOptions options);
  // Made done by `commit` (which must outlive the loop).
  ConsumeLoop(RecordSource& source, BatchHandler handler, BatchCommit& commit,
              ConsumeLoopOptions options);
  // Stops (see Stop).
  ~ConsumeLoop();

  ConsumeLoop(const ConsumeLoop&) = delete;
  ConsumeLoop& operator=(const ConsumeLoop&) = delete;

  // Runs on the calling thread until Stop() (OK) or a fatal error (returned, after on_fatal).
  absl::Status Run();
  // Runs on a thread of its own. Call once.
  void Start();
  // Asks the loop to stop after the batch in hand and waits for Start's thread. Safe from any
  // thread, twice, and without Start. Does not close the source.
  void Stop();
  bool stopping() const;

 private:
  class MarkDoneCommit;
  // Polls the next batch into `batch`; a status when the source failed for good (what was polled
  // before is still in `batch`).
  absl::Status Collect(std::vector<Record>& batch);
  // Pauses for the current backoff and doubles it; false when a stop came first.
  bool Pause();
  absl::Status Fatal(absl::Status status);

  RecordSource& source_;
  BatchHandler handler_;
  ConsumeLoopOptions options_;
  std::chrono::milliseconds backoff_;
  std::unique_ptr<BatchCommit> own_commit_;  // when none was given
  BatchCommit& commit_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace schakel::kafka
