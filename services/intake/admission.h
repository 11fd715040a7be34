// How many SubmitReferral calls intake lets wait at once: as many as it answers in `target_wait`
// at the rate it answers them now (at least `floor`, at most `ceiling`). A call beyond that is
// refused at once with RESOURCE_EXHAUSTED and the time the calls in hand need to be answered
// (trailing metadata retry-after-ms), instead of waiting until the caller's deadline passes.
//
// Why a rate and not a fixed number: a fixed bound large enough for a fast machine lets calls wait
// for seconds on a slow or busy one (at 2,000 referrals/s on two cores, thousands of calls ran into
// their 10 s deadline, issue 20); one small enough for a slow machine refuses work a fast one could
// do. Little's law: calls waiting = rate × wait, so bounding the calls by rate × target bounds the
// wait. The rate is what was answered over the last second (answered with OK or an error: both
// free a place).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace schakel::intake {

struct AdmissionOptions {
  // How long an admitted call should wait at most for its answer (at the present rate).
  std::chrono::milliseconds target_wait{500};
  // Admitted whatever the rate (a quiet intake, or one just started, has no rate yet).
  std::size_t floor = 256;
  // Never more than this many waiting (memory: each holds its request); 0 for no ceiling.
  std::size_t ceiling = 384;
};

class Admission {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  explicit Admission(
      AdmissionOptions options, Clock clock = [] { return std::chrono::steady_clock::now(); });

  struct Refusal {
    std::size_t bound = 0;  // the calls admitted at most just now
    bool at_ceiling = false;
    // How long the calls in hand take to be answered at the present rate (at least 100 ms, at
    // most 10 s).
    std::chrono::milliseconds retry_after{0};
  };
  // Whether one more call may wait, with `in_flight` calls (this one not counted) waiting now.
  // Thread-safe.
  std::optional<Refusal> Admit(std::size_t in_flight) ABSL_LOCKS_EXCLUDED(mu_);
  // An admitted call was answered. Thread-safe.
  void Answered() ABSL_LOCKS_EXCLUDED(mu_);

  // Calls answered per second, over the last second.
  double rate() ABSL_LOCKS_EXCLUDED(mu_);
  // The calls admitted at most now.
  std::size_t bound() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Answers are counted in tenths of a second; the rate is the sum of the last ten.
  static constexpr int kSlots = 10;
  static constexpr std::chrono::milliseconds kSlot{100};

  void Advance(std::chrono::steady_clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  double RateLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::size_t BoundLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const AdmissionOptions options_;
  const Clock clock_;
  absl::Mutex mu_;
  std::array<std::uint64_t, kSlots> answered_ ABSL_GUARDED_BY(mu_){};
  std::int64_t slot_ ABSL_GUARDED_BY(mu_) = 0;  // the number of the tenth being counted now
};

}  // namespace schakel::intake
