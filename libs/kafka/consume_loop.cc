#include "libs/kafka/consume_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "libs/kafka/follower.h"

namespace schakel::kafka {

Outcome Outcome::Rejected(absl::Status reason) {
  // A rejection always has a reason: the dead letter must say why.
  if (reason.ok()) reason = absl::InvalidArgumentError("rejected");
  return Outcome(Kind::kRejected, std::move(reason));
}

absl::StatusOr<std::optional<Record>> FollowerSource::Poll(std::chrono::milliseconds timeout) {
  return follower_.Poll(timeout);
}

// The plain consumer's way: record by record in order, a rejected one's dead letter first (or, with
// no dead letters, a log line), then its offset stored for the background commit.
class ConsumeLoop::MarkDoneCommit final : public BatchCommit {
 public:
  MarkDoneCommit(RecordSource& source, DeadLetterSink* dead_letters, const std::string& name)
      : source_(source), dead_letters_(dead_letters), name_(name) {}

  absl::StatusOr<Committed> Commit(std::span<const Record> batch, std::span<const Outcome> outcomes,
                                   const std::function<bool()>& stopping) override {
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const Record& record = batch[i];
      if (outcomes[i].rejected() && dead_letters_ != nullptr &&
          !dead_letters_->Send(record, std::string(outcomes[i].reason().message()), stopping)) {
        return Committed::kStopping;
      }
      if (absl::Status done = source_.MarkDone(record); !done.ok()) {
        // The outcome is durable; at worst the record comes again and is found to be a duplicate.
        spdlog::warn("{}: record {}[{}]@{}: {}", name_, record.topic, record.partition,
                     record.offset, std::string(done.message()));
      }
    }
    return Committed::kDone;
  }

 private:
  RecordSource& source_;
  DeadLetterSink* dead_letters_;
  const std::string& name_;
};

ConsumeLoop::ConsumeLoop(RecordSource& source, BatchHandler handler, ConsumeLoopOptions options)
    : source_(source),
      handler_(std::move(handler)),
      options_(std::move(options)),
      backoff_(options_.backoff),
      own_commit_(std::make_unique<MarkDoneCommit>(source, options_.dead_letters, options_.name)),
      commit_(*own_commit_) {}

ConsumeLoop::ConsumeLoop(RecordSource& source, BatchHandler handler, BatchCommit& commit,
                         ConsumeLoopOptions options)
    : source_(source),
      handler_(std::move(handler)),
      options_(std::move(options)),
      backoff_(options_.backoff),
      commit_(commit) {}

ConsumeLoop::~ConsumeLoop() { Stop(); }

void ConsumeLoop::Start() {
  thread_ = std::thread([this] { Run().IgnoreError(); });  // reported by Run and on_fatal
}

void ConsumeLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool ConsumeLoop::stopping() const {
  absl::MutexLock lock(&mu_);
  return stop_;
}

bool ConsumeLoop::Pause() {
  const std::chrono::milliseconds pause = backoff_;
  backoff_ = std::min(backoff_ * 2, std::max(options_.max_backoff, options_.backoff));
  absl::MutexLock lock(&mu_);
  return !mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::FromChrono(pause));
}

absl::Status ConsumeLoop::Fatal(absl::Status status) {
  spdlog::critical("{}: consumer failed: {}", options_.name, std::string(status.message()));
  if (options_.on_fatal) options_.on_fatal(status);
  return status;
}

absl::Status ConsumeLoop::Collect(std::vector<Record>& batch) {
  using std::chrono::steady_clock;
  std::chrono::milliseconds timeout = options_.poll_timeout;
  auto give_up = steady_clock::time_point::max();
  auto linger_until = steady_clock::time_point::min();
  const std::size_t max_batch = std::max<std::size_t>(options_.max_batch, 1);
  while (batch.size() < max_batch && steady_clock::now() < give_up) {
    absl::StatusOr<std::optional<Record>> polled = source_.Poll(timeout);
    if (!polled.ok()) return polled.status();
    if (!polled->has_value() && steady_clock::now() >= linger_until) break;
    if (polled->has_value()) batch.push_back(**std::move(polled));
    if (batch.size() == 1 && give_up == steady_clock::time_point::max()) {
      give_up = steady_clock::now() + options_.max_batch_time;
      linger_until = steady_clock::now() + std::min(options_.linger, options_.max_batch_time);
    }
    // The rest of the batch is what is there already, or arrives before the linger ends.
    timeout = std::chrono::ceil<std::chrono::milliseconds>(
        std::max(linger_until - steady_clock::now(), steady_clock::duration::zero()));
    if (stopping()) break;
  }
  return absl::OkStatus();
}

absl::Status ConsumeLoop::Run() {
  const std::function<bool()> is_stopping = [this] { return stopping(); };
  std::vector<Record> held;    // not judged yet: handed again before anything is polled
  absl::Status source_failed;  // what arrived before it is still handled and marked done
  while (!stopping()) {
    if (absl::Status ready = commit_.Ready(); !ready.ok()) {
      spdlog::warn("{}: {}; trying again", options_.name, std::string(ready.message()));
      held.clear();
      if (!source_failed.ok()) return Fatal(source_failed);
      if (!Pause()) break;
      // Serves the group's events (a rebalance) meanwhile; a record it returns is read again
      // anyway.
      if (absl::StatusOr<std::optional<Record>> served = source_.Poll(std::chrono::milliseconds(0));
          !served.ok()) {
        return Fatal(served.status());
      }
      continue;
    }
    std::vector<Record> batch = std::move(held);
    held.clear();
    if (batch.empty() && source_failed.ok()) source_failed = Collect(batch);
    if (commit_.Void() || (batch.empty() && !(options_.handle_idle && source_failed.ok()))) {
      // Nothing to handle (a void batch is read again after Ready()).
      if (!source_failed.ok()) return Fatal(source_failed);
      continue;
    }
    BatchOutcome judged = handler_(batch);
    const std::size_t n = std::min(judged.outcomes.size(), batch.size());
    for (std::size_t i = 0; i < n; ++i) {
      if (!judged.outcomes[i].rejected()) continue;
      // Never the payload: it may hold personal data.
      spdlog::error("{}: dead letter {}[{}]@{}: {}", options_.name, batch[i].topic,
                    batch[i].partition, batch[i].offset,
                    std::string(judged.outcomes[i].reason().message()));
    }
    absl::StatusOr<BatchCommit::Committed> committed =
        commit_.Commit(std::span<const Record>(batch).first(n),
                       std::span<const Outcome>(judged.outcomes).first(n), is_stopping);
    if (!committed.ok()) return Fatal(committed.status());
    if (*committed == BatchCommit::Committed::kStopping) break;
    if (*committed == BatchCommit::Committed::kAgain) {
      if (!source_failed.ok()) return Fatal(source_failed);
      if (!Pause()) break;
      continue;
    }
    if (n < batch.size()) {
      spdlog::error("{}: cannot handle {} record(s) from {}[{}]@{} yet, retrying: {}",
                    options_.name, batch.size() - n, batch[n].topic, batch[n].partition,
                    batch[n].offset, std::string(judged.retry.message()));
      held.assign(std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(n)),
                  std::make_move_iterator(batch.end()));
      if (!Pause()) break;
      continue;
    }
    if (!source_failed.ok()) return Fatal(source_failed);
    backoff_ = options_.backoff;
  }
  return absl::OkStatus();
}

}  // namespace schakel::kafka
