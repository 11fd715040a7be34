// The lifecycle of an assignment (after HL7 FHIR Task as used for closed-loop referrals): which
// status change each party may make, and what it must say when it does. A pure function of the
// current status and the requested change; no I/O, so every service and the router share one rule
// book. See "The lifecycle of an assignment" in docs/architecture.md.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "schakel/v1/referral.pb.h"

namespace schakel::referral {

// Who asks for the change. The caller establishes this from the authenticated peer; this file
// only decides what each party may do.
enum class Actor {
  kOwner,     // the organisation the assignment is addressed to
  kReferrer,  // the organisation that made the referral
  kNetwork,   // the router itself: escalation ("not accepted in time") and forwarding bookkeeping
};

// What the router's own status events carry in `by` (AssignmentStatusChanged.by): every offer's
// REQUESTED (on which the key service grants the key), escalations and withdrawals. An
// organisation's change says it only for the steps CheckStep allows Actor::kNetwork, and never to
// REQUESTED.
inline constexpr std::string_view kNetworkName = "network";

struct Transition {
  v1::AssignmentStatus to = v1::ASSIGNMENT_STATUS_UNSPECIFIED;
  Actor actor = Actor::kOwner;
  std::string reason;   // required to go to rejected, cancelled, on-hold or failed
  std::string outcome;  // required to go to completed
};

// Unicode code points, for reason and outcome alike.
inline constexpr std::size_t kMaxReasonChars = 500;

// OK when `t.actor` may move an assignment from `from` to `t.to` with what `t` carries.
//
// Errors, checked in this order, so that a caller is told first about what no edit of the request
// can fix:
//  - INVALID_ARGUMENT "to: unknown status" for UNSPECIFIED or an out-of-range value;
//  - FAILED_PRECONDITION "already <status>" when `to` is the current status;
//  - FAILED_PRECONDITION "cannot go from <from> to <to>" when nobody may make that step (this
//    includes every step out of a final status);
//  - FAILED_PRECONDITION "work has started: ask the owner organisation to cancel" when the
//    referrer tries to cancel once work has started;
//  - FAILED_PRECONDITION "only <who> can go from <from> to <to>" when someone else may;
//  - INVALID_ARGUMENT "reason: is required to go to <to>", "outcome: is required to complete",
//    "reason: at most 500 characters" or "outcome: at most 500 characters". A text of only
//    whitespace counts as missing.
// Status names are the readable ones of StatusName(). No message repeats the reason or outcome.
absl::Status CheckTransition(v1::AssignmentStatus from, const Transition& t);

// The same check without the texts: may `actor` move an assignment from `from` to `to`? (The router
// checks an organisation's change this way: what people typed travels sealed, so it cannot see it.)
// The errors are CheckTransition's first four.
absl::Status CheckStep(v1::AssignmentStatus from, v1::AssignmentStatus to, Actor actor);

// rejected, cancelled, completed, failed: nothing can follow.
bool IsFinal(v1::AssignmentStatus s);

// in-progress, on-hold: from here only the owner organisation can cancel.
bool WorkStarted(v1::AssignmentStatus s);

// "requested", "in-progress", ...; "unspecified" for UNSPECIFIED and "unknown" for a value outside
// the enum.
std::string StatusName(v1::AssignmentStatus s);

}  // namespace schakel::referral
