#include "libs/service/health.h"

#include <spdlog/spdlog.h>

#include <optional>

#include "libs/service/server.h"

namespace schakel::service {

HealthFollower::HealthFollower(grpc::Server& server, std::string what,
                               std::function<bool()> condition, std::chrono::milliseconds every)
    : server_(server), what_(std::move(what)), condition_(std::move(condition)), every_(every) {
  thread_ = std::thread([this] { Loop(); });
}

HealthFollower::~HealthFollower() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void HealthFollower::Loop() {
  std::optional<bool> serving;
  std::unique_lock lock(mu_);
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
    wake_.wait_for(lock, every_, [this] { return stop_; });
  }
}

}  // namespace schakel::service
