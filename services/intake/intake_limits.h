// Per-organisation rate limits on SubmitReferral, from the network file's `intake_limit`: a token
// bucket per organisation that holds at most `burst` referrals and refills at `per_second`. A call
// takes one token before intake does any work for it; without a token it is refused
// (RESOURCE_EXHAUSTED, with the time until the next token) and changes nothing. An organisation
// without a configured limit is never refused. The refusals per organisation are counted for
// Prometheus (schakel_intake_refused_total{organisation}).
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/routing/network.h"

namespace schakel::intake {

// Logs the intake_limit of each of `network`'s organisations that has one (at start).
void LogIntakeLimits(const routing::Network& network);

class IntakeLimits {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // The limits of `network`'s organisations, as they are now (intake reads the file at start).
  // Each bucket starts full.
  explicit IntakeLimits(
      const routing::Network& network,
      Clock clock = [] { return std::chrono::steady_clock::now(); });

  struct Refusal {
    routing::IntakeLimit limit;
    // When the next token is there (rounded up to a whole millisecond, at least 1).
    std::chrono::milliseconds retry_after{0};
  };
  // Takes one token for a call of `organisation`: nullopt when the call may go on, else the
  // refusal. Thread-safe.
  std::optional<Refusal> Take(std::string_view organisation);

  // How many calls of `organisation` were refused so far (0 for one without a limit).
  std::uint64_t refused(std::string_view organisation) const;
  // Every limited organisation with its refusals, in id order.
  std::vector<std::pair<std::string, std::uint64_t>> AllRefused() const;

 private:
  struct Bucket {
    explicit Bucket(routing::IntakeLimit l, std::chrono::steady_clock::time_point now)
        : limit(l), tokens(l.burst), last(now) {}
    const routing::IntakeLimit limit;
    absl::Mutex mu;
    double tokens ABSL_GUARDED_BY(mu);
    std::chrono::steady_clock::time_point last ABSL_GUARDED_BY(mu);
    std::atomic<std::uint64_t> refused{0};
  };
  Clock clock_;
  // Made once, never changed after: lookups need no lock.
  std::map<std::string, std::unique_ptr<Bucket>, std::less<>> buckets_;
};

// schakel_intake_refused_total{organisation}: the refusals of each limited organisation, read from
// `limits` when scraped (organisation ids only).
class IntakeLimitCounters final : public prometheus::Collectable {
 public:
  explicit IntakeLimitCounters(std::shared_ptr<const IntakeLimits> limits)
      : limits_(std::move(limits)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::shared_ptr<const IntakeLimits> limits_;
};

}  // namespace schakel::intake
