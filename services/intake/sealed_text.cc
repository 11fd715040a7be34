#include "services/intake/sealed_text.h"

#include <algorithm>
#include <memory>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/privacy/sealed.h"

namespace schakel::intake {
namespace {

using KeyMap = std::map<std::pair<std::string, std::string>, absl::StatusOr<v1::DataKey>>;

bool IsSealed(const v1::Sealed& sealed) { return !sealed.key_id().empty(); }

// Opens one text into `out`; says how it went.
v1::SealedText OpenOne(const KeyMap& keys, const std::string& referral_id, const v1::Sealed& sealed,
                       const std::string& context, std::string* out) {
  const auto it = keys.find({referral_id, sealed.key_id()});
  if (it != keys.end() && it->second.ok()) {
    absl::StatusOr<std::string> text = privacy::Open(sealed, it->second->key(), context);
    if (text.ok()) {
      *out = *std::move(text);
      return v1::SEALED_TEXT_OPENED;
    }
  } else if (it != keys.end() &&
             it->second.status().code() == absl::StatusCode::kFailedPrecondition) {
    *out = kErasedText;
    return v1::SEALED_TEXT_ERASED;
  }
  // No answer, a refusal, or a text that does not open with the client's key.
  *out = kUnavailableText;
  return v1::SEALED_TEXT_UNAVAILABLE;
}

}  // namespace

SealedTextOpener::Opened OpenSealedTexts(std::vector<v1::ReferralStatus> referrals,
                                         const KeyMap& keys) {
  SealedTextOpener::Opened result;
  for (v1::ReferralStatus& referral : referrals) {
    const std::string& referral_id = referral.referral_id();
    for (v1::NeedStatus& need : *referral.mutable_needs()) {
      const v1::ReferralEvent* current = nullptr;  // the need's current assignment, newest version
      bool current_outcome_sealed = false;
      for (v1::ReferralEvent& event : *need.mutable_history()) {
        v1::SealedText how = v1::SEALED_TEXT_UNSPECIFIED;
        const bool outcome_sealed = IsSealed(event.sealed_outcome());
        if (IsSealed(event.sealed_reason())) {
          how = std::max(how, OpenOne(keys, referral_id, event.sealed_reason(),
                                      privacy::StatusReasonContext(
                                          referral_id, event.assignment_id(), event.version()),
                                      event.mutable_reason()));
        }
        if (outcome_sealed) {
          how = std::max(how, OpenOne(keys, referral_id, event.sealed_outcome(),
                                      privacy::StatusOutcomeContext(
                                          referral_id, event.assignment_id(), event.version()),
                                      event.mutable_outcome()));
        }
        event.clear_sealed_reason();
        event.clear_sealed_outcome();
        event.set_text(how);
        if (how == v1::SEALED_TEXT_OPENED) {
          std::vector<std::string>& opened = result.opened[referral_id];
          if (std::find(opened.begin(), opened.end(), event.assignment_id()) == opened.end()) {
            opened.push_back(event.assignment_id());
          }
        }
        if (event.assignment_id() == need.assignment_id() &&
            (current == nullptr || event.version() > current->version())) {
          current = &event;
          current_outcome_sealed = outcome_sealed;
        }
      }
      // The need's outcome is its current change's (the view keeps it empty when it came sealed).
      if (current != nullptr && current_outcome_sealed) {
        need.set_outcome(current->outcome());
        need.set_outcome_text(current->text());
      }
    }
  }
  result.referrals = std::move(referrals);
  return result;
}

SealedTextOpener::SealedTextOpener(privacy::ClientKeySource& keys, SealedTextOptions options,
                                   Clock clock)
    : keys_(keys), options_(options), clock_(std::move(clock)) {}

std::size_t SealedTextOpener::kept() const {
  absl::MutexLock lock(&mu_);
  return kept_.size();
}

void SealedTextOpener::Keep(const KeyRef& ref, const absl::StatusOr<v1::DataKey>& answer) {
  const bool erased =
      !answer.ok() && answer.status().code() == absl::StatusCode::kFailedPrecondition;
  if (!answer.ok() && !erased) return;  // unreachable or refused: ask again next time
  absl::MutexLock lock(&mu_);
  if (erased) {
    // The client is gone: no key of this referral is kept a moment longer.
    auto it = kept_.lower_bound({ref.first, ""});
    while (it != kept_.end() && it->first.first == ref.first) it = kept_.erase(it);
  }
  kept_.insert_or_assign(ref, Kept{answer, clock_() + options_.keep_keys_for});
}

void SealedTextOpener::Open(std::vector<v1::ReferralStatus> referrals, Done done) {
  std::set<KeyRef> needed;
  for (const v1::ReferralStatus& referral : referrals) {
    for (const v1::NeedStatus& need : referral.needs()) {
      for (const v1::ReferralEvent& event : need.history()) {
        for (const v1::Sealed* sealed : {&event.sealed_reason(), &event.sealed_outcome()}) {
          if (IsSealed(*sealed)) needed.emplace(referral.referral_id(), sealed->key_id());
        }
      }
    }
  }
  // What the key service must be asked for; the rest is kept.
  KeyMap known;
  std::vector<KeyRef> missing;
  {
    const auto now = clock_();
    absl::MutexLock lock(&mu_);
    for (auto it = kept_.begin(); it != kept_.end();) {
      it = it->second.until <= now ? kept_.erase(it) : std::next(it);
    }
    for (const KeyRef& ref : needed) {
      const auto it = kept_.find(ref);
      if (it != kept_.end()) {
        known.emplace(ref, it->second.key);
      } else {
        missing.push_back(ref);
      }
    }
  }
  if (missing.empty()) {
    done(OpenSealedTexts(std::move(referrals), known));
    return;
  }
  struct Pending {
    Pending(KeyMap kept, std::size_t asked, std::vector<v1::ReferralStatus> shown, Done then)
        : known(std::move(kept)), left(asked), referrals(std::move(shown)), done(std::move(then)) {}
    absl::Mutex mu;
    KeyMap known ABSL_GUARDED_BY(mu);
    std::size_t left ABSL_GUARDED_BY(mu);
    std::vector<v1::ReferralStatus> referrals ABSL_GUARDED_BY(mu);
    const Done done;
  };
  auto pending = std::make_shared<Pending>(std::move(known), missing.size(), std::move(referrals),
                                           std::move(done));
  const auto deadline = std::chrono::system_clock::now() + options_.key_timeout;
  for (const KeyRef& ref : missing) {
    keys_.ReferralKey(ref.first, ref.second, deadline,
                      [this, pending, ref](absl::StatusOr<v1::DataKey> key) {
                        Keep(ref, key);
                        KeyMap keys;
                        std::vector<v1::ReferralStatus> shown;
                        {
                          absl::MutexLock lock(&pending->mu);
                          pending->known.insert_or_assign(ref, std::move(key));
                          if (--pending->left > 0) return;
                          // The last answer: the others are done with `pending`.
                          keys = std::move(pending->known);
                          shown = std::move(pending->referrals);
                        }
                        pending->done(OpenSealedTexts(std::move(shown), keys));
                      });
  }
}

}  // namespace schakel::intake
