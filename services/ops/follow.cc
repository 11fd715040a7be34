#include "services/ops/follow.h"

#include <spdlog/spdlog.h>

#include <map>
#include <vector>

#include "libs/kafka/consumer.h"
#include "libs/topology/topics.h"

namespace schakel::ops {

void PollCommitted(const std::string& kafka, const routing::Network& network, OpsView& view) {
  std::vector<std::int32_t> partitions;
  for (int p = 0; p < network.topics.partitions; ++p) partitions.push_back(p);
  for (const auto& [org, group] : view.ConsumerGroups()) {
    absl::StatusOr<std::map<std::int32_t, std::int64_t>> committed = kafka::CommittedOffsets(
        kafka, group, topology::InboxTopic(org), partitions, std::chrono::seconds(5));
    if (committed.ok()) {
      view.SetCommitted(org, *std::move(committed));
    } else {
      spdlog::warn("ops: lag of {}: {}", org, std::string(committed.status().message()));
    }
  }
}

void OpsFollower::Start() {
  follow_ = std::thread([this] {
    while (!stopping_.load()) {
      std::optional<kafka::Record> record = follower_.Poll(std::chrono::milliseconds(200));
      if (record) view_.Apply(*record);
    }
  });
  lag_ = std::thread([this] {
    std::unique_lock lock(lag_mu_);
    while (!lag_cv_.wait_for(lock, lag_every_, [&] { return stopping_.load(); })) {
      lock.unlock();
      PollCommitted(kafka_, network_, view_);
      lock.lock();
    }
  });
}

void OpsFollower::Stop() {
  {
    std::lock_guard lock(lag_mu_);
    stopping_.store(true);
  }
  lag_cv_.notify_all();
  if (lag_.joinable()) lag_.join();
  if (follow_.joinable()) follow_.join();
}

}  // namespace schakel::ops
