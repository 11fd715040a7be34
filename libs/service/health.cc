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
    stop_ = true;  // wakes StopWithin as the lock is released
  }
  thread_.join();
}

void HealthFollower::Loop() {
  std::optional<bool> serving;
  if (StopWithin(absl::ZeroDuration())) return;
  do {
    const bool now = condition_();
    if (serving != now) {
      SetServing(server_, now);
      if (serving.has_value() || !now) {
        spdlog::log(now ? spdlog::level::info : spdlog::level::warn, "health: {} ({} {})",
                    now ? "SERVING" : "NOT_SERVING", what_, now ? "is back" : "is unreachable");
      }
      serving = now;
    }
  } while (!StopWithin(absl::FromChrono(every_)));
}

bool HealthFollower::StopWithin(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
}

}  // namespace schakel::service
