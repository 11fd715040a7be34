#include "libs/referral/lifecycle.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace schakel::referral {
namespace {

using v1::AssignmentStatus;

// Bit flags, so one edge can list every party that may take it.
constexpr unsigned kOwner = 1u << static_cast<unsigned>(Actor::kOwner);
constexpr unsigned kReferrer = 1u << static_cast<unsigned>(Actor::kReferrer);
constexpr unsigned kNetwork = 1u << static_cast<unsigned>(Actor::kNetwork);

struct Edge {
  AssignmentStatus from;
  AssignmentStatus to;
  unsigned actors;
};

// Every step anyone may take; anything not listed is refused for everybody. Steps out of a final
// status are absent by construction.
constexpr Edge kEdges[] = {
    {v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_RECEIVED, kOwner},
    {v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_ACCEPTED, kOwner},
    {v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_ACCEPTED, kOwner},
    // The router rejects on behalf of the owner when it forwards the assignment elsewhere.
    {v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_REJECTED, kOwner | kNetwork},
    {v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_REJECTED, kOwner | kNetwork},
    {v1::ASSIGNMENT_STATUS_ACCEPTED, v1::ASSIGNMENT_STATUS_IN_PROGRESS, kOwner},
    {v1::ASSIGNMENT_STATUS_IN_PROGRESS, v1::ASSIGNMENT_STATUS_ON_HOLD, kOwner},
    {v1::ASSIGNMENT_STATUS_ON_HOLD, v1::ASSIGNMENT_STATUS_IN_PROGRESS, kOwner},
    {v1::ASSIGNMENT_STATUS_IN_PROGRESS, v1::ASSIGNMENT_STATUS_COMPLETED, kOwner},
    {v1::ASSIGNMENT_STATUS_ON_HOLD, v1::ASSIGNMENT_STATUS_COMPLETED, kOwner},
    {v1::ASSIGNMENT_STATUS_IN_PROGRESS, v1::ASSIGNMENT_STATUS_FAILED, kOwner},
    {v1::ASSIGNMENT_STATUS_ON_HOLD, v1::ASSIGNMENT_STATUS_FAILED, kOwner},
    // Before acceptance the owner rejects rather than cancels; the router withdraws an assignment
    // that was not accepted in time.
    {v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_CANCELLED, kReferrer | kNetwork},
    {v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_CANCELLED, kReferrer | kNetwork},
    {v1::ASSIGNMENT_STATUS_ACCEPTED, v1::ASSIGNMENT_STATUS_CANCELLED, kOwner | kReferrer},
    // Once work has started, cancelling is the owner's answer to the referrer's request.
    {v1::ASSIGNMENT_STATUS_IN_PROGRESS, v1::ASSIGNMENT_STATUS_CANCELLED, kOwner},
    {v1::ASSIGNMENT_STATUS_ON_HOLD, v1::ASSIGNMENT_STATUS_CANCELLED, kOwner},
};

unsigned AllowedActors(AssignmentStatus from, AssignmentStatus to) {
  for (const Edge& e : kEdges) {
    if (e.from == from && e.to == to) return e.actors;
  }
  return 0;
}

unsigned Bit(Actor a) {
  const auto i = static_cast<unsigned>(a);
  return i < 3 ? 1u << i : 0;  // an actor outside the enum may do nothing
}

std::string WhoMay(unsigned actors) {
  std::vector<std::string> who;
  if (actors & kOwner) who.push_back("the owner organisation");
  if (actors & kReferrer) who.push_back("the referring organisation");
  if (actors & kNetwork) who.push_back("the router");
  return absl::StrJoin(who, " or ");
}

bool IsBlank(const std::string& text) { return absl::StripAsciiWhitespace(text).empty(); }

// Code points, counted by their lead bytes; the text is not otherwise inspected or echoed.
std::size_t CodePoints(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

bool NeedsReason(AssignmentStatus to) {
  return to == v1::ASSIGNMENT_STATUS_REJECTED || to == v1::ASSIGNMENT_STATUS_CANCELLED ||
         to == v1::ASSIGNMENT_STATUS_ON_HOLD || to == v1::ASSIGNMENT_STATUS_FAILED;
}

}  // namespace

std::string StatusName(AssignmentStatus s) {
  switch (s) {
    case v1::ASSIGNMENT_STATUS_UNSPECIFIED:
      return "unspecified";
    case v1::ASSIGNMENT_STATUS_REQUESTED:
      return "requested";
    case v1::ASSIGNMENT_STATUS_RECEIVED:
      return "received";
    case v1::ASSIGNMENT_STATUS_ACCEPTED:
      return "accepted";
    case v1::ASSIGNMENT_STATUS_REJECTED:
      return "rejected";
    case v1::ASSIGNMENT_STATUS_IN_PROGRESS:
      return "in-progress";
    case v1::ASSIGNMENT_STATUS_ON_HOLD:
      return "on-hold";
    case v1::ASSIGNMENT_STATUS_COMPLETED:
      return "completed";
    case v1::ASSIGNMENT_STATUS_FAILED:
      return "failed";
    case v1::ASSIGNMENT_STATUS_CANCELLED:
      return "cancelled";
    default:
      return "unknown";
  }
}

bool IsFinal(AssignmentStatus s) {
  return s == v1::ASSIGNMENT_STATUS_REJECTED || s == v1::ASSIGNMENT_STATUS_CANCELLED ||
         s == v1::ASSIGNMENT_STATUS_COMPLETED || s == v1::ASSIGNMENT_STATUS_FAILED;
}

bool WorkStarted(AssignmentStatus s) {
  return s == v1::ASSIGNMENT_STATUS_IN_PROGRESS || s == v1::ASSIGNMENT_STATUS_ON_HOLD;
}

absl::Status CheckStep(AssignmentStatus from, AssignmentStatus to, Actor actor) {
  if (to == v1::ASSIGNMENT_STATUS_UNSPECIFIED || !v1::AssignmentStatus_IsValid(to)) {
    return absl::InvalidArgumentError("to: unknown status");
  }
  if (from == to) return absl::FailedPreconditionError(absl::StrCat("already ", StatusName(from)));

  const unsigned allowed = AllowedActors(from, to);
  if (allowed == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot go from ", StatusName(from), " to ", StatusName(to)));
  }
  if ((allowed & Bit(actor)) == 0) {
    if (actor == Actor::kReferrer && to == v1::ASSIGNMENT_STATUS_CANCELLED && WorkStarted(from)) {
      return absl::FailedPreconditionError(
          "work has started: ask the owner organisation to cancel");
    }
    return absl::FailedPreconditionError(absl::StrCat("only ", WhoMay(allowed), " can go from ",
                                                      StatusName(from), " to ", StatusName(to)));
  }

  return absl::OkStatus();
}

absl::Status CheckTransition(AssignmentStatus from, const Transition& t) {
  if (absl::Status step = CheckStep(from, t.to, t.actor); !step.ok()) return step;
  if (NeedsReason(t.to) && IsBlank(t.reason)) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason: is required to go to ", StatusName(t.to)));
  }
  if (t.to == v1::ASSIGNMENT_STATUS_COMPLETED && IsBlank(t.outcome)) {
    return absl::InvalidArgumentError("outcome: is required to complete");
  }
  if (CodePoints(t.reason) > kMaxReasonChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("reason: at most ", kMaxReasonChars, " characters"));
  }
  if (CodePoints(t.outcome) > kMaxReasonChars) {
    return absl::InvalidArgumentError(
        absl::StrCat("outcome: at most ", kMaxReasonChars, " characters"));
  }
  return absl::OkStatus();
}

}  // namespace schakel::referral
