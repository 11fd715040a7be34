// Keeps a server's gRPC health status in step with a condition, e.g. "a Kafka broker answers":
// SERVING while it holds, NOT_SERVING while it does not (a load balancer or Kubernetes then sends
// calls elsewhere), checked every second; each change is logged.
#pragma once

#include <grpcpp/server.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace schakel::service {

class HealthFollower {
 public:
  // `what` names the condition in the log ("Kafka").
  HealthFollower(grpc::Server& server, std::string what, std::function<bool()> condition,
                 std::chrono::milliseconds every = std::chrono::seconds(1));
  ~HealthFollower();  // stops following; the status stays as it was
  HealthFollower(const HealthFollower&) = delete;
  HealthFollower& operator=(const HealthFollower&) = delete;

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  grpc::Server& server_;
  std::string what_;
  std::function<bool()> condition_;
  std::chrono::milliseconds every_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace schakel::service
