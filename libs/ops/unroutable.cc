#include "libs/ops/unroutable.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>

#include "absl/strings/str_cat.h"
#include "libs/referral/clock.h"
#include "libs/referral/ids.h"
#include "libs/referral/validation.h"

namespace schakel::ops {

void UnroutableQueue::AddUnroutable(const v1::ReferralUnroutable& event) {
  const Key key{event.meta().referral_id(), event.need_index()};
  auto it = needs_.find(key);
  if (it != needs_.end() && it->second.unroutable_id == event.meta().assignment_id()) {
    // The same need again: the router refused an operator's reassignment and says why.
    UnroutableNeed& need = it->second;
    for (const v1::PassedOver& p : event.passed_over()) {
      const bool known = std::any_of(
          need.passed_over.begin(), need.passed_over.end(), [&](const v1::PassedOver& q) {
            return q.organisation() == p.organisation() && q.reason() == p.reason();
          });
      if (!known) need.passed_over.insert(need.passed_over.begin(), p);
    }
    need.requested_to.clear();
    return;
  }
  if (it != needs_.end() && referral::ChainStepOf(event.meta().assignment_id()) <
                                referral::ChainStepOf(it->second.unroutable_id)) {
    return;  // an older word about this need, read late
  }
  UnroutableNeed need;
  need.referral_id = event.meta().referral_id();
  need.need_index = event.need_index();
  need.unroutable_id = event.meta().assignment_id();
  need.need_code = event.need_code();
  need.urgency = event.urgency();
  need.region = event.region();
  need.referring_organisation = event.referring_organisation();
  need.at = event.meta().occurred_at();
  need.passed_over.assign(event.passed_over().begin(), event.passed_over().end());
  need.sharing.assign(event.sharing().organisations().begin(),
                      event.sharing().organisations().end());
  need.sharing_known = event.has_sharing();
  if (const auto c = continued_.find(need.unroutable_id); c != continued_.end()) {
    need.reassigned_to = c->second;
  }
  needs_[key] = std::move(need);
}

void UnroutableQueue::AddReassign(const v1::ReassignRequested& event) {
  auto it = needs_.find({event.meta().referral_id(), event.need_index()});
  if (it == needs_.end() || it->second.unroutable_id != event.meta().assignment_id()) return;
  if (it->second.reassigned_to.empty()) it->second.requested_to = event.to_organisation();
}

void UnroutableQueue::AddOffer(const v1::AssignmentRequested& offer) {
  if (offer.previous_assignment_id().empty()) return;
  continued_[offer.previous_assignment_id()] = offer.organisation();
  auto it = needs_.find({offer.meta().referral_id(), offer.need_index()});
  if (it != needs_.end() && it->second.unroutable_id == offer.previous_assignment_id()) {
    it->second.reassigned_to = offer.organisation();
    it->second.requested_to.clear();
  }
}

std::vector<UnroutableNeed> UnroutableQueue::Needs() const {
  std::vector<UnroutableNeed> out;
  out.reserve(needs_.size());
  for (const auto& [key, need] : needs_) out.push_back(need);
  std::stable_sort(out.begin(), out.end(),
                   [](const UnroutableNeed& a, const UnroutableNeed& b) { return a.at < b.at; });
  return out;
}

const UnroutableNeed* UnroutableQueue::Find(const std::string& referral_id,
                                            std::uint32_t need_index) const {
  const auto it = needs_.find({referral_id, need_index});
  return it == needs_.end() ? nullptr : &it->second;
}

namespace {

// What in an operator's reason would identify a client: a BSN (nine digits, also written with dots,
// spaces or dashes between them, that pass the 11-proef) or an e-mail address. Empty when nothing.
// Not every name can be found this way; these can, and are typed by habit.
std::string PersonalDataIn(const std::string& text) {
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  for (std::size_t i = 0; i < text.size();) {
    if (!digit(text[i]) || (i > 0 && digit(text[i - 1]))) {
      ++i;
      continue;
    }
    // A run of digits with single separators between them.
    std::string digits;
    std::size_t j = i;
    while (j < text.size()) {
      if (digit(text[j])) {
        digits += text[j++];
      } else if ((text[j] == '.' || text[j] == ' ' || text[j] == '-') && j + 1 < text.size() &&
                 digit(text[j + 1])) {
        ++j;
      } else {
        break;
      }
    }
    if (digits.size() == 9 && referral::IsValidBsn(digits)) return "a BSN";
    i = j;
  }
  const auto local = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
           c == '+';
  };
  for (std::size_t at = text.find('@'); at != std::string::npos; at = text.find('@', at + 1)) {
    const std::size_t space = text.find_first_of(" \t\r\n,;<>()", at);
    const std::string domain =
        text.substr(at + 1, space == std::string::npos ? space : space - at - 1);
    const std::size_t dot = domain.find('.');
    if (at > 0 && local(text[at - 1]) && dot != std::string::npos && dot > 0 &&
        dot + 1 < domain.size()) {
      return "an e-mail address";
    }
  }
  return "";
}

}  // namespace

absl::Status UnroutableQueue::CheckReassign(const routing::Network& network,
                                            const std::string& referral_id,
                                            std::uint32_t need_index,
                                            const std::string& organisation,
                                            const std::string& reason) const {
  if (referral_id.empty()) return absl::InvalidArgumentError("referral_id: required");
  if (organisation.empty()) return absl::InvalidArgumentError("organisation: required");
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError(
        "reason: required (why this organisation, e.g. \"agreed by phone with MJD\")");
  }
  if (reason.size() > kMaxReasonBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason: at most ", kMaxReasonBytes, " bytes, got ", reason.size()));
  }
  if (const std::string found = PersonalDataIn(reason); !found.empty()) {
    // It stays on schakel.operator.reassignments for every operator to read, and no erasure
    // reaches it.
    return absl::InvalidArgumentError(
        absl::StrCat("reason: holds what looks like ", found,
                     "; the reason is kept for every operator to read and cannot be erased, so say "
                     "why without naming the client"));
  }
  const UnroutableNeed* need = Find(referral_id, need_index);
  if (need == nullptr) {
    return absl::NotFoundError(absl::StrCat("no need ", need_index, " of referral ", referral_id,
                                            " in the unroutable queue"));
  }
  if (!need->reassigned_to.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("need ", need_index, " of referral ",
                                                      referral_id, " was reassigned to '",
                                                      need->reassigned_to, "' already"));
  }
  if (!need->requested_to.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("need ", need_index, " of referral ",
                                                      referral_id, ": a reassignment to '",
                                                      need->requested_to, "' is on its way"));
  }
  if (network.FindOrganisation(organisation) == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("organisation: '", organisation, "' is not in the network"));
  }
  if (need->sharing_known &&
      std::find(need->sharing.begin(), need->sharing.end(), organisation) == need->sharing.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "organisation: '", organisation, "' is not covered by the client's sharing permission"));
  }
  return absl::OkStatus();
}

v1::ReassignRequested UnroutableQueue::MakeReassign(const UnroutableNeed& need,
                                                    const std::string& organisation,
                                                    const std::string& reason,
                                                    const std::string& by) const {
  v1::ReassignRequested event;
  event.mutable_meta()->set_schema_version(1);
  event.mutable_meta()->set_event_id(referral::NewEventId());
  *event.mutable_meta()->mutable_occurred_at() = referral::Now();
  event.mutable_meta()->set_referral_id(need.referral_id);
  event.mutable_meta()->set_assignment_id(need.unroutable_id);
  event.set_need_index(need.need_index);
  event.set_to_organisation(organisation);
  event.set_reason(reason);
  event.set_by(by);
  return event;
}

DeadLetterRow DeadLetterRowOf(const v1::DeadLetter& letter) {
  return {.key = absl::StrCat(letter.topic(), "/", letter.partition(), "/", letter.offset()),
          .topic = letter.topic(),
          .partition = letter.partition(),
          .offset = letter.offset(),
          .consumer = letter.consumer(),
          .reason = letter.reason(),
          .at = letter.at()};
}

}  // namespace schakel::ops
