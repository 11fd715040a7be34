// Tells the router how loaded this organisation is: the number of open assignments (see
// store::InboxStore::CountOpen), published as an InboxLoad on the organisation's own compacted
// topic schakel.load.<org> (key: organisation id; only this organisation may write it, so its
// readers know whose load it is) whenever it changes, and at least every `refresh` so that a
// report lost with a broker outage is repaired. The router uses it for the network's `capacity`
// rule.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/publisher.h"

namespace schakel::inbox {

class LoadReporter {
 public:
  using CountOpen = std::function<absl::StatusOr<std::int64_t>()>;

  // `consumer_group`: the inbox's group on its topic, named in each report so that operators can
  // see how far behind the inbox is (schakelctl queues, the ops service).
  LoadReporter(std::string organisation, CountOpen count, kafka::Publisher& publisher,
               std::chrono::milliseconds interval = std::chrono::milliseconds(500),
               std::chrono::milliseconds refresh = std::chrono::seconds(60),
               std::string consumer_group = "");
  ~LoadReporter();

  void Start();
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Counts, and publishes when the count changed (or the refresh is due); for Start's loop and for
  // tests. Returns whether a report was sent.
  bool ReportOnce();

  std::uint64_t reports() const { return reports_.load(); }

 private:
  // Waits at most `wait` for the stop; whether it came.
  bool StopWithin(absl::Duration wait) ABSL_LOCKS_EXCLUDED(mu_);

  std::string organisation_;
  std::string consumer_group_;
  CountOpen count_;
  kafka::Publisher& publisher_;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds refresh_;
  // The last count Kafka acknowledged, and when; -1: none yet.
  std::atomic<std::int64_t> reported_{-1};
  std::atomic<std::int64_t> reported_at_ms_{0};
  std::atomic<bool> in_flight_{false};
  std::atomic<std::uint64_t> reports_{0};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace schakel::inbox
