// The outbox relay: moves the events the store queued with each change (the outbox table) to
// Kafka. One thread publishes the pending rows in order, waits until Kafka has acknowledged the
// whole batch, and only then deletes the acknowledged rows. Because a change and its events are
// committed in one SQLite transaction, a crash at any point loses nothing: rows not yet
// acknowledged are still there after a restart and are published then. An event whose
// acknowledgement was lost may be published twice, and one retried after a failure may arrive
// after a later event: consumers apply each (assignment id, version) once, in version order.
//
// Fault injection, for tests only: with the environment variable SCHAKEL_FAULT_HOLD_OUTBOX=1 the
// relay publishes nothing (and says so loudly when it starts), so that an end-to-end test can kill
// the inbox between storing a change and publishing it and check that a restart publishes the
// event exactly once. Never set it in production.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/publisher.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox {

inline constexpr char kHoldOutboxVariable[] = "SCHAKEL_FAULT_HOLD_OUTBOX";

struct OutboxRelayOptions {
  // At most this many events in flight at a time.
  int batch_size = 100;
  // When there is nothing to publish, look again after this long even without a commit notice.
  std::chrono::milliseconds idle_wait{500};
  // After a failure, wait this long before trying again, doubling up to max_backoff.
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{10000};
  // An event not acknowledged within this long counts as failed (it stays in the outbox).
  std::chrono::milliseconds ack_timeout{30000};
  // How long Stop() may spend publishing what is still pending.
  std::chrono::milliseconds stop_timeout{5000};
};

struct RelayCounts {
  std::uint64_t published = 0;  // acknowledged and deleted
  std::uint64_t failed = 0;     // not acknowledged; kept for another attempt
};

class OutboxRelay {
 public:
  // `store` and `publisher` must outlive this object. Reads SCHAKEL_FAULT_HOLD_OUTBOX.
  OutboxRelay(store::InboxStore& store, kafka::Publisher& publisher,
              OutboxRelayOptions options = {});
  // Stops (see Stop).
  ~OutboxRelay();

  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Starts the relay's thread. Call once.
  void Start();
  // Ends the loop, then publishes what is still pending for at most options.stop_timeout; what is
  // left stays in the outbox for the next start. Safe to call twice, and without Start.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Publishes one batch of pending events and deletes the acknowledged ones, on the calling thread;
  // returns how many were published. An error when any event in the batch was not acknowledged
  // (those stay pending) or the store failed. For Start's loop, and for tests.
  absl::StatusOr<int> RelayOnce();

  RelayCounts counts() const;
  bool held() const { return hold_; }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  void Drain() ABSL_LOCKS_EXCLUDED(mu_);
  // The latest time a batch may wait for its acknowledgements.
  std::chrono::steady_clock::time_point AckDeadline() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits up to `timeout` or until notified or stopped; true when a stop was asked for.
  bool Wait(std::chrono::milliseconds timeout) ABSL_LOCKS_EXCLUDED(mu_);

  store::InboxStore& store_;
  kafka::Publisher& publisher_;
  OutboxRelayOptions options_;
  const bool hold_;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point drain_deadline_ ABSL_GUARDED_BY(mu_) =
      std::chrono::steady_clock::time_point::max();
  std::thread thread_;
  store::InboxStore::Subscription subscription_;

  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> failed_{0};
};

}  // namespace schakel::inbox
