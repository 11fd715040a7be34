// Opening, for the referring organisation, what the owners' people typed about its assignments: the
// reasons and outcomes that travel sealed with the client's key (AssignmentStatusChanged
// sealed_reason/sealed_outcome) and that the referral view keeps sealed. Intake opens them only to
// answer GetReferral, ListReferrals and WatchReferrals, with the key of the referral's client from
// the key service (KeyService.ReferralKey), and keeps each key a short while per referral so that a
// page of referrals or a busy watch does not ask for the same key again and again.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/privacy/key_client.h"
#include "schakel/v1/intake.pb.h"

namespace schakel::intake {

// What an answer shows instead of a text that could not be opened (see intake.proto SealedText).
inline constexpr char kErasedText[] = "(erased)";
inline constexpr char kUnavailableText[] = "(not available now)";

struct SealedTextOptions {
  // How long a key is kept per referral. An erasure reaches intake through the key service's
  // answers only: for at most this long after one, a kept key still opens the client's texts.
  std::chrono::milliseconds keep_keys_for{std::chrono::seconds(30)};
  // How long the key service may take to answer before the texts read "(not available now)".
  std::chrono::milliseconds key_timeout{std::chrono::seconds(3)};
};

class SealedTextOpener {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  // `keys` outlives the opener and every Open in flight.
  explicit SealedTextOpener(
      privacy::ClientKeySource& keys, SealedTextOptions options = {},
      Clock clock = [] { return std::chrono::steady_clock::now(); });

  struct Opened {
    // The referrals as given, each sealed text opened into reason/outcome (or marked erased or
    // unavailable), no sealed field left.
    std::vector<v1::ReferralStatus> referrals{};
    // Per referral: the assignments whose text was opened (what the audit entry names). Empty
    // when nothing sealed was opened.
    std::map<std::string, std::vector<std::string>> opened{};
  };
  using Done = std::function<void(Opened)>;
  // Calls `done` exactly once: at once when every key needed is kept (or none is), otherwise when
  // the key service has answered for each, on its thread.
  void Open(std::vector<v1::ReferralStatus> referrals, Done done);

  // Keys kept now (for tests).
  std::size_t kept() const;

 private:
  using KeyRef = std::pair<std::string, std::string>;  // referral id, key id
  struct Kept {
    absl::StatusOr<v1::DataKey> key;  // OK, or FAILED_PRECONDITION (erased)
    std::chrono::steady_clock::time_point until;
  };
  // Stores what the key service answered: keys and erasures are kept; an erasure drops every key
  // kept for the referral.
  void Keep(const KeyRef& ref, const absl::StatusOr<v1::DataKey>& answer) ABSL_LOCKS_EXCLUDED(mu_);

  privacy::ClientKeySource& keys_;
  SealedTextOptions options_;
  Clock clock_;
  mutable absl::Mutex mu_;
  std::map<KeyRef, Kept> kept_ ABSL_GUARDED_BY(mu_);
};

// Opens the sealed texts of `referrals` with `keys` (per referral id and key id; a missing entry
// counts as unavailable). Pure: for the opener and for tests.
SealedTextOpener::Opened OpenSealedTexts(
    std::vector<v1::ReferralStatus> referrals,
    const std::map<std::pair<std::string, std::string>, absl::StatusOr<v1::DataKey>>& keys);

}  // namespace schakel::intake
