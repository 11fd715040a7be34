#include "services/intake/admission.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace schakel::intake {

Admission::Admission(AdmissionOptions options, Clock clock)
    : options_(options), clock_(std::move(clock)) {
  absl::MutexLock lock(&mu_);
  slot_ = clock_().time_since_epoch() / kSlot;
}

void Admission::Advance(std::chrono::steady_clock::time_point now) {
  const std::int64_t current = now.time_since_epoch() / kSlot;
  // Tenths that passed since the last call held no answers (all of them after a quiet second).
  const std::int64_t passed = std::min<std::int64_t>(current - slot_, kSlots);
  for (std::int64_t i = 1; i <= passed; ++i) answered_[(slot_ + i) % kSlots] = 0;
  slot_ = std::max(slot_, current);
}

double Admission::RateLocked() const {
  std::uint64_t sum = 0;
  for (std::uint64_t n : answered_) sum += n;
  return static_cast<double>(sum);  // over the ten tenths of the last second
}

std::size_t Admission::BoundLocked() const {
  const double by_rate = RateLocked() * std::chrono::duration<double>(options_.target_wait).count();
  std::size_t bound = std::max(options_.floor, static_cast<std::size_t>(by_rate));
  if (options_.ceiling > 0) bound = std::min(bound, options_.ceiling);
  return bound;
}

std::optional<Admission::Refusal> Admission::Admit(std::size_t in_flight) {
  absl::MutexLock lock(&mu_);
  Advance(clock_());
  const std::size_t bound = BoundLocked();
  if (in_flight < bound) return std::nullopt;
  Refusal refusal;
  refusal.bound = bound;
  refusal.at_ceiling = options_.ceiling > 0 && bound == options_.ceiling;
  const double rate = RateLocked();
  const double seconds = rate > 0 ? static_cast<double>(in_flight) / rate : 10.0;
  refusal.retry_after = std::chrono::milliseconds(
      std::clamp<std::int64_t>(static_cast<std::int64_t>(std::ceil(seconds * 1000)), 100, 10000));
  return refusal;
}

void Admission::Answered() {
  absl::MutexLock lock(&mu_);
  Advance(clock_());
  ++answered_[slot_ % kSlots];
}

double Admission::rate() {
  absl::MutexLock lock(&mu_);
  Advance(clock_());
  return RateLocked();
}

std::size_t Admission::bound() {
  absl::MutexLock lock(&mu_);
  Advance(clock_());
  return BoundLocked();
}

}  // namespace schakel::intake
