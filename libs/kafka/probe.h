// Whether a Kafka broker answers, asked every `every` with a metadata request on a small client of
// its own: for health checks and metrics of a service that has no producer whose deliveries would
// tell (the router writes only in transactions, and only when there is work).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

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

  std::unique_ptr<RdKafka::Producer> client_;
  std::chrono::milliseconds every_{2000};
  std::atomic<bool> reachable_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace schakel::kafka
