#include "services/inbox/outbox_relay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace schakel::inbox {
namespace {

bool HoldFromEnvironment() {
  const char* value = std::getenv(kHoldOutboxVariable);
  return value != nullptr && std::string_view(value) == "1";
}

// The acknowledgements of one batch. Shared with the Done callbacks, which may run after the
// relay stopped waiting for them.
struct Batch {
  explicit Batch(std::size_t size) : results(size), remaining(size) {}
  bool Answered() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return remaining == 0; }
  absl::Mutex mu;
  std::vector<std::optional<absl::Status>> results ABSL_GUARDED_BY(mu);  // empty until answered
  std::size_t remaining ABSL_GUARDED_BY(mu);
};

}  // namespace

OutboxRelay::OutboxRelay(store::InboxStore& store, kafka::Publisher& publisher,
                         OutboxRelayOptions options)
    : store_(store),
      publisher_(publisher),
      options_(std::move(options)),
      hold_(HoldFromEnvironment()) {
  options_.batch_size = std::max(options_.batch_size, 1);
}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  if (hold_) {
    spdlog::warn(
        "!!! {}=1: the outbox relay publishes NOTHING. This is a fault-injection hook for tests; "
        "status changes are stored but not sent to Kafka until the inbox runs without it !!!",
        kHoldOutboxVariable);
    return;
  }
  subscription_ = store_.OnCommit([this] {
    absl::MutexLock lock(&mu_);
    notified_ = true;  // wakes Wait as the lock is released
  });
  thread_ = std::thread([this] { Run(); });
}

void OutboxRelay::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
    drain_deadline_ = std::chrono::steady_clock::now() + options_.stop_timeout;
  }
  subscription_.Reset();
  if (thread_.joinable()) thread_.join();
}

bool OutboxRelay::Wait(std::chrono::milliseconds timeout) {
  absl::MutexLock lock(&mu_);
  auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || notified_; };
  mu_.AwaitWithTimeout(absl::Condition(&woken), absl::FromChrono(timeout));
  notified_ = false;
  return stop_;
}

std::chrono::steady_clock::time_point OutboxRelay::AckDeadline() {
  const auto ack = std::chrono::steady_clock::now() + options_.ack_timeout;
  absl::MutexLock lock(&mu_);
  return std::min(ack, drain_deadline_);
}

void OutboxRelay::Run() {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  bool stopping = false;
  while (!stopping) {
    absl::StatusOr<int> relayed = RelayOnce();
    if (!relayed.ok()) {
      spdlog::warn("inbox outbox: {}; retrying in {} ms", std::string(relayed.status().message()),
                   backoff.count());
      stopping = Wait(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = options_.initial_backoff;
    if (*relayed == options_.batch_size) {
      // Probably more waiting: go on at once unless asked to stop.
      absl::MutexLock lock(&mu_);
      stopping = stop_;
      continue;
    }
    stopping = Wait(options_.idle_wait);
  }
  Drain();
}

void OutboxRelay::Drain() {
  const auto deadline = [this] {
    absl::MutexLock lock(&mu_);
    return drain_deadline_;
  }();
  int published = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    absl::StatusOr<int> relayed = RelayOnce();
    if (!relayed.ok()) {
      spdlog::warn("inbox outbox: at shutdown: {}", std::string(relayed.status().message()));
      break;
    }
    published += *relayed;
    if (*relayed < options_.batch_size) break;
  }
  absl::StatusOr<std::vector<store::OutboxEntry>> left = store_.PendingOutbox(1);
  if (left.ok() && !left->empty()) {
    spdlog::warn(
        "inbox outbox: stopped with events still pending; they are published at the next "
        "start");
  } else if (published > 0) {
    spdlog::info("inbox outbox: published {} pending events at shutdown", published);
  }
}

absl::StatusOr<int> OutboxRelay::RelayOnce() {
  if (hold_) return 0;
  absl::StatusOr<std::vector<store::OutboxEntry>> pending =
      store_.PendingOutbox(options_.batch_size);
  if (!pending.ok()) return pending.status();
  if (pending->empty()) return 0;
  if (!publisher_.Reachable()) {
    return absl::UnavailableError(
        absl::StrCat("Kafka is not reachable; ", pending->size(), "+ events wait"));
  }

  auto batch = std::make_shared<Batch>(pending->size());
  for (std::size_t i = 0; i < pending->size(); ++i) {
    const store::OutboxEvent& event = (*pending)[i].event;
    // Done may run at once on this thread (when the producer cannot queue the event) or later on
    // the producer's delivery thread.
    publisher_.Publish(event.topic, event.key, event.value, [batch, i](absl::Status status) {
      absl::MutexLock lock(&batch->mu);
      batch->results[i] = std::move(status);
      --batch->remaining;  // the last wakes RelayOnce as the lock is released
    });
  }

  // Wait for every acknowledgement, in slices so that a Stop shortens the wait to its deadline.
  std::vector<std::optional<absl::Status>> results;
  {
    absl::MutexLock lock(&batch->mu);
    while (!batch->Answered()) {
      const auto now = std::chrono::steady_clock::now();
      const auto deadline = AckDeadline();
      if (now >= deadline) break;
      batch->mu.AwaitWithTimeout(absl::Condition(batch.get(), &Batch::Answered),
                                 absl::FromChrono(std::min<std::chrono::steady_clock::duration>(
                                     deadline - now, std::chrono::milliseconds(100))));
    }
    results = batch->results;
  }

  std::vector<std::int64_t> delivered;
  absl::Status first_error;
  for (std::size_t i = 0; i < pending->size(); ++i) {
    if (results[i].has_value() && results[i]->ok()) {
      delivered.push_back((*pending)[i].id);
    } else if (first_error.ok()) {
      first_error = results[i].has_value()
                        ? *results[i]
                        : absl::DeadlineExceededError("no acknowledgement in time");
    }
  }
  if (absl::Status deleted = store_.DeleteOutbox(delivered); !deleted.ok()) return deleted;
  published_.fetch_add(delivered.size(), std::memory_order_relaxed);
  const std::size_t failed = pending->size() - delivered.size();
  if (failed > 0) {
    failed_.fetch_add(failed, std::memory_order_relaxed);
    return absl::Status(first_error.code(),
                        absl::StrCat(failed, " of ", pending->size(),
                                     " events were not acknowledged: ", first_error.message()));
  }
  return static_cast<int>(delivered.size());
}

RelayCounts OutboxRelay::counts() const {
  RelayCounts counts;
  counts.published = published_.load(std::memory_order_relaxed);
  counts.failed = failed_.load(std::memory_order_relaxed);
  return counts;
}

}  // namespace schakel::inbox
