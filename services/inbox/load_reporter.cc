#include "services/inbox/load_reporter.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "absl/time/time.h"
#include "libs/referral/clock.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"

namespace schakel::inbox {
namespace {
std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

LoadReporter::LoadReporter(std::string organisation, CountOpen count, kafka::Publisher& publisher,
                           std::chrono::milliseconds interval, std::chrono::milliseconds refresh,
                           std::string consumer_group)
    : organisation_(std::move(organisation)),
      consumer_group_(std::move(consumer_group)),
      count_(std::move(count)),
      publisher_(publisher),
      interval_(interval),
      refresh_(refresh) {}

LoadReporter::~LoadReporter() { Stop(); }

void LoadReporter::Start() {
  thread_ = std::thread([this] {
    if (StopWithin(absl::ZeroDuration())) return;
    do {
      ReportOnce();
    } while (!StopWithin(absl::FromChrono(interval_)));
  });
}

void LoadReporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;  // wakes StopWithin as the lock is released
  }
  if (thread_.joinable()) thread_.join();
}

bool LoadReporter::StopWithin(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
}

bool LoadReporter::ReportOnce() {
  if (in_flight_.load()) return false;  // one report at a time: they arrive in order
  absl::StatusOr<std::int64_t> open = count_();
  if (!open.ok()) {
    spdlog::warn("inbox {}: cannot count open assignments: {}", organisation_,
                 std::string(open.status().message()));
    return false;
  }
  const bool due = NowMs() - reported_at_ms_.load() >= refresh_.count();
  if (*open == reported_.load() && !due) return false;
  if (!publisher_.Reachable()) return false;

  v1::InboxLoad load;
  load.set_organisation(organisation_);
  load.set_open(*open);
  load.set_consumer_group(consumer_group_);
  *load.mutable_reported_at() = referral::Now();
  in_flight_.store(true);
  const std::int64_t count = *open;
  publisher_.Publish(topology::LoadTopic(organisation_), organisation_, load.SerializeAsString(),
                     [this, count](absl::Status delivered) {
                       if (delivered.ok()) {
                         reported_.store(count);
                         reported_at_ms_.store(NowMs());
                         reports_.fetch_add(1);
                       }
                       in_flight_.store(false);
                     });
  return true;
}

}  // namespace schakel::inbox
