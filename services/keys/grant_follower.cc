#include "services/keys/grant_follower.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>

#include "libs/kafka/poll_batch.h"
#include "schakel/v1/events.pb.h"

namespace schakel::keys {

std::optional<Grant> GrantOf(const std::string& value) {
  v1::AssignmentStatusChanged change;
  if (!change.ParseFromString(value)) return std::nullopt;
  if (change.to_status() != v1::ASSIGNMENT_STATUS_REQUESTED || change.organisation().empty() ||
      change.meta().assignment_id().empty() || change.meta().referral_id().empty()) {
    return std::nullopt;
  }
  return Grant{change.meta().assignment_id(), change.meta().referral_id(), change.organisation()};
}

void GrantFollower::Start() {
  thread_ = std::thread([this] { Run(); });
}

void GrantFollower::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void GrantFollower::Run() {
  // What has arrived by the time the first record is in hand is stored in one transaction.
  constexpr std::size_t kMaxBatch = 500;
  while (!stop_.load()) {
    absl::StatusOr<std::vector<kafka::Record>> polled =
        kafka::PollBatch(consumer_, kMaxBatch, std::chrono::milliseconds(200));
    if (!polled.ok()) {
      spdlog::critical("grants: {}", std::string(polled.status().message()));
      std::abort();  // a fatal consumer error: restart rather than stop granting
    }
    const std::vector<kafka::Record>& batch = *polled;
    if (batch.empty()) continue;
    std::vector<Grant> grants;
    for (const kafka::Record& r : batch) {
      if (std::optional<Grant> g = GrantOf(r.value)) grants.push_back(*std::move(g));
    }
    absl::Status stored = store_.AddGrants(grants);
    while (!stored.ok() && !stop_.load()) {
      spdlog::warn("grants: {}; retrying", std::string(stored.message()));
      std::this_thread::sleep_for(std::chrono::seconds(1));
      stored = store_.AddGrants(grants);
    }
    if (!stored.ok()) return;  // stopping: delivered again later
    if (stored_ && !grants.empty()) stored_();
    for (const kafka::Record& r : batch) {
      if (absl::Status done = consumer_.MarkDone(r); !done.ok()) {
        spdlog::warn("grants: {}", std::string(done.message()));
      }
    }
  }
}

}  // namespace schakel::keys
