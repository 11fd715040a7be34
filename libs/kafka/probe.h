// Whether a Kafka broker answers, asked every `every` with a metadata request on a small client of
// its own: for health checks and metrics of a service that has no producer whose deliveries would
// tell (the router writes only in transactions, and only when there is work).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace RdKafka {
class Producer;
}

namespace schakel::kafka {

class ReachabilityProbe {
 public:
  static absl::StatusOr<std::unique_ptr<ReachabilityProbe>> Start(
      const std::string& bootstrap_servers,
      std::chrono::milliseconds every = std::chrono::seconds(2));
  ~ReachabilityProbe();  // stops the probing thread

  // The answer of the last probe (false before the first one answered).
  bool Reachable() const { return reachable_.load(); }

 private:
  ReachabilityProbe() = default;
  void Loop();
  // Waits at most `wait` for the stop; whether it came.
  bool StopWithin(absl::Duration wait) ABSL_LOCKS_EXCLUDED(mu_);

  std::unique_ptr<RdKafka::Producer> client_;
  std::chrono::milliseconds every_{2000};
  std::atomic<bool> reachable_{false};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace schakel::kafka
