#include "libs/service/health.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "absl/time/time.h"
#include "libs/service/server.h"

namespace schakel::service {

HealthFollower::HealthFollower(grpc::Server& server, std::string what,
                               std::function<bool()> condition, std::chrono::milliseconds every)
    : server_(server), what_(std::move(what)), condition_(std::move(condition)), every_(every) {
  thread_ = std::thread([this] { Loop(); });
}

HealthFollower::~HealthFollower() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;  // wakes Loop as the lock is released
  }
  thread_.join();
}

void HealthFollower::Loop() {
  std::optional<bool> serving;
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    const bool now = condition_();
    if (serving != now) {
      SetServing(server_, now);
      if (serving.has_value() || !now) {
        spdlog::log(now ? spdlog::level::info : spdlog::level::warn, "health: {} ({} {})",
                    now ? "SERVING" : "NOT_SERVING", what_, now ? "is back" : "is unreachable");
      }
      serving = now;
    }
    mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::FromChrono(every_));
  }
}

}  // namespace schakel::service
