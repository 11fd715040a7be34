// What the router publishes, and nothing else: one output type (Output) and the pure functions that
// build each kind of record from what was decided. The decisions come from the policy
// (libs/routing: which organisation, and whether a chosen target may take a need) and from
// Escalation (escalation.h), the router's only state machine; Router (router.h) publishes what
// Escalation returns.
//
// RouteReferral, RouteForward and RouteCancel are the stateless part of handling one input: each
// turns one event into the records to publish and says what it offered, so that Escalation can
// follow those offers.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/routing/policy.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"

namespace schakel::router {

// One record to publish in the router's transaction; no value: a tombstone.
struct Output {
  std::string topic;
  std::string key;
  std::optional<std::string> value;
};

// The meta of an event the router writes: schema version 1, a new event id, written `at`.
v1::EventMeta NewMeta(const std::string& referral_id, const std::string& assignment_id,
                      const google::protobuf::Timestamp& at);

// An assignment offered: the AssignmentRequested on schakel.inbox.<org> (keyed by assignment id)
// and its first status event, REQUESTED by "network", on the status topic (keyed by referral id):
// the key service, which reads that topic (only the router writes it), grants the organisation the
// client's key on it.
// `why`, for an offer that continues another, says what became of that one ("not accepted in
// time").
void AddOffer(const v1::AssignmentRequested& offer, std::vector<Output>* out,
              std::string_view why = {});

// Tells the owner's inbox that the router withdrew `offer` (an InboxEvent on schakel.inbox.<org>,
// keyed by assignment id). `next_assignment_id`: the offer that continues the need, if any.
Output Withdrawal(const v1::AssignmentRequested& offer, const std::string& reason,
                  const std::string& next_assignment_id, const google::protobuf::Timestamp& at);

// A need nobody takes, for the operators: a ReferralUnroutable on schakel.referrals.unroutable,
// keyed by referral id, with `meta` (its assignment id is the one a reassignment continues). `need`
// is the need as it would be offered (its code, index, region, urgency, referrer and sharing
// permission). `chain`: the offers made and the choices refused, first and each named;
// `others`: every other organisation's reason, grouped as AddPassedOver does.
Output Unroutable(const v1::EventMeta& meta, const v1::AssignmentRequested& need,
                  const std::vector<routing::PassedOver>& chain,
                  const std::vector<routing::PassedOver>& others);

// The reasons for an unroutable need, as the operators get them: one entry per organisation, except
// that a reason shared by more than kGroupReasonsAbove organisations (in a large network most "do
// not serve need X") becomes one entry with an empty organisation and the count, e.g. "does not
// serve need 'debt' (4,980 organisations)", so that the event stays small. ExplainRoute still names
// everyone.
inline constexpr std::size_t kGroupReasonsAbove = 10;
void AddPassedOver(const std::vector<routing::PassedOver>& passed, v1::ReferralUnroutable* out);

// An organisation's status change as the router accepted it: the fact on the status topic, keyed by
// referral id.
Output Fact(const v1::AssignmentStatusChanged& fact);

// The router's state of a referral on its compacted topic; nullptr: a tombstone (settled).
Output StateRecord(const std::string& referral_id, const v1::RouterReferralState* state);

// The records for one submitted referral: an offer (AddOffer) per routable need, a
// ReferralUnroutable per need nobody can take. INVALID_ARGUMENT when the event is not one we can
// route (unknown schema version, missing ids). `offers`, when given, receives each assignment
// offered (needs without one went to unroutable); `open` gives each organisation's open
// assignments (capacity and load; none when empty). `unroutable_needs`, when given, receives each
// need that went to unroutable as it would be offered (organisation empty), so that an operator can
// reassign it later.
absl::StatusOr<std::vector<Output>> RouteReferral(
    const routing::Policy& policy, const v1::ReferralSubmitted& submitted,
    std::vector<v1::AssignmentRequested>* offers = nullptr,
    const routing::OpenAssignments& open = nullptr,
    std::vector<v1::AssignmentRequested>* unroutable_needs = nullptr);

// The records for an owner's request to hand an assignment to another organisation: the new
// assignment on the target's topic (id NextAssignmentId(forwarded), pointing back to it) with its
// REQUESTED status; or, when the forward-target rule (routing::CheckHandover) refuses the target, a
// ReferralUnroutable with that reason, so nothing is lost. `forward.proposed()` must be the
// router's own offer of the need (Escalation puts it there): its sharing permission is what the
// target is checked against. `offers`, when given, receives the assignment offered.
absl::StatusOr<std::vector<Output>> RouteForward(
    const routing::Policy& policy, const v1::ForwardRequested& forward,
    std::vector<v1::AssignmentRequested>* offers = nullptr);

// A referrer's request to cancel an assignment, handed to the owner's inbox: the CancelRequested in
// an InboxEvent on schakel.inbox.<organisation>, keyed by assignment id (the inbox decides).
// INVALID_ARGUMENT for an unknown schema version, missing ids or an organisation outside the
// network.
absl::StatusOr<std::vector<Output>> RouteCancel(const routing::Network& network,
                                                const v1::CancelRequested& cancel);

}  // namespace schakel::router
