#include "services/ops/follow.h"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/topology/topics.h"

namespace schakel::ops {
namespace {

std::vector<std::int32_t> Partitions(const routing::Network& network) {
  std::vector<std::int32_t> partitions;
  for (int p = 0; p < network.topics.partitions; ++p) partitions.push_back(p);
  return partitions;
}

}  // namespace

void PollCommitted(const std::string& kafka, const routing::Network& network, OpsView& view) {
  const std::vector<std::int32_t> partitions = Partitions(network);
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

absl::StatusOr<std::set<std::string>> SetAside(const std::string& bootstrap_servers,
                                               const routing::Network& network,
                                               std::chrono::milliseconds timeout) {
  std::set<std::string> places;
  absl::Status read =
      kafka::ReadToEnd(bootstrap_servers, topology::DeadLetterTopic("ops"), Partitions(network),
                       timeout, [&places](const kafka::Record& record, bool tombstone) {
                         // Each key is the original's place (deadletter::Key).
                         if (!tombstone) places.insert(record.key);
                       });
  if (!read.ok()) return read;
  return places;
}

ViewFollower::ViewFollower(kafka::RecordSource& source, OpsView& view,
                           kafka::DeadLetterSink& dead_letters, std::set<std::string> set_aside)
    : view_(view),
      set_aside_(std::move(set_aside)),
      loop_(source, [this](std::span<const kafka::Record> batch) { return Handle(batch); },
            {.name = "ops", .dead_letters = &dead_letters}) {}

kafka::BatchOutcome ViewFollower::Handle(std::span<const kafka::Record> batch) {
  kafka::BatchOutcome out;
  for (const kafka::Record& record : batch) {
    absl::Status used = view_.Apply(record);
    if (used.ok()) {
      out.outcomes.push_back(kafka::Outcome::Stored());
    } else if (set_aside_.contains(deadletter::Key(record))) {
      out.outcomes.push_back(kafka::Outcome::Duplicate());  // set aside at an earlier start
    } else {
      out.outcomes.push_back(kafka::Outcome::Rejected(std::move(used)));
    }
  }
  return out;
}

void OpsFollower::Start() {
  records_.Start();
  lag_ = std::thread([this] {
    absl::MutexLock lock(&lag_mu_);
    while (!lag_mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(lag_every_))) {
      lag_mu_.Unlock();  // the poll asks Kafka: it must not hold up Stop
      PollCommitted(kafka_, network_, view_);
      lag_mu_.Lock();
    }
  });
}

void OpsFollower::Stop() {
  {
    absl::MutexLock lock(&lag_mu_);
    stopping_ = true;
  }
  if (lag_.joinable()) lag_.join();
  records_.Stop();
}

}  // namespace schakel::ops
