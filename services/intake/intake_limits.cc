#include "services/intake/intake_limits.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <utility>

namespace schakel::intake {

void LogIntakeLimits(const routing::Network& network) {
  for (const routing::Organisation& org : network.organisations) {
    if (org.intake_limit.has_value()) {
      spdlog::info("intake limit of {}: {} referrals per second, bursts of {}", org.id,
                   org.intake_limit->per_second, org.intake_limit->burst);
    }
  }
}

IntakeLimits::IntakeLimits(const routing::Network& network, Clock clock)
    : clock_(std::move(clock)) {
  const auto now = clock_();
  for (const routing::Organisation& org : network.organisations) {
    if (org.intake_limit.has_value()) {
      buckets_.emplace(org.id, std::make_unique<Bucket>(*org.intake_limit, now));
    }
  }
}

std::optional<IntakeLimits::Refusal> IntakeLimits::Take(std::string_view organisation) {
  const auto it = buckets_.find(organisation);
  if (it == buckets_.end()) return std::nullopt;
  Bucket& bucket = *it->second;
  const auto now = clock_();
  absl::MutexLock lock(&bucket.mu);
  if (now > bucket.last) {
    const double elapsed = std::chrono::duration<double>(now - bucket.last).count();
    bucket.tokens =
        std::min<double>(bucket.limit.burst, bucket.tokens + elapsed * bucket.limit.per_second);
    bucket.last = now;
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return std::nullopt;
  }
  bucket.refused.fetch_add(1, std::memory_order_relaxed);
  const double wait_ms = (1 - bucket.tokens) / bucket.limit.per_second * 1000;
  Refusal refusal;
  refusal.limit = bucket.limit;
  refusal.retry_after = std::chrono::milliseconds(
      std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_ms - 1e-9))));
  return refusal;
}

std::uint64_t IntakeLimits::refused(std::string_view organisation) const {
  const auto it = buckets_.find(organisation);
  return it == buckets_.end() ? 0 : it->second->refused.load(std::memory_order_relaxed);
}

std::vector<std::pair<std::string, std::uint64_t>> IntakeLimits::AllRefused() const {
  std::vector<std::pair<std::string, std::uint64_t>> all;
  for (const auto& [id, bucket] : buckets_) {
    all.emplace_back(id, bucket->refused.load(std::memory_order_relaxed));
  }
  return all;
}

std::vector<prometheus::MetricFamily> IntakeLimitCounters::Collect() const {
  prometheus::MetricFamily family;
  family.name = "schakel_intake_refused_total";
  family.help = "SubmitReferral calls refused by the organisation's intake_limit";
  family.type = prometheus::MetricType::Counter;
  for (const auto& [organisation, refused] : limits_->AllRefused()) {
    prometheus::ClientMetric metric;
    metric.label = {{"organisation", organisation}};
    metric.counter.value = static_cast<double>(refused);
    family.metric.push_back(std::move(metric));
  }
  return {family};
}

}  // namespace schakel::intake
