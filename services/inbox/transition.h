// One step in an assignment's lifecycle as the inbox stores it: checked against the lifecycle
// (libs/referral/lifecycle.h), recorded in the assignment's history, and announced with one
// AssignmentStatusChanged event for the router, on the organisation's own topic schakel.from.<org>
// (the router publishes it on schakel.assignments.status once it checked it). Ingest (requested ->
// received) and every InboxService action go through here, so that each change leaves the same
// trail.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "libs/referral/lifecycle.h"
#include "libs/routing/network.h"
#include "schakel/v1/inbox.pb.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox {

// The version of the AssignmentStatusChanged schema this inbox writes (EventMeta.schema_version).
inline constexpr std::uint32_t kStatusChangedSchemaVersion = 1;
// StatusChange.by for what the router and automatic rules do.
inline constexpr char kByNetwork[] = "network";

// Where the inbox gets the time from; tests pass a fixed one.
using Clock = std::function<google::protobuf::Timestamp()>;
google::protobuf::Timestamp SystemNow();

struct Step {
  referral::Transition transition;
  // Who makes the change: an organisation id, or kByNetwork.
  std::string by;
  google::protobuf::Timestamp at;
  // With a step to REJECTED that forwards the assignment: the organisation it goes to.
  std::string forward_to;
  // The client's data key of the assignment (store::InboxStore::GetKey), to seal what a person
  // typed (reason, outcome) in the events. Without it that text is kept in this inbox only.
  std::optional<store::DataKey> key;
};

// What `step` makes of `current`, or the lifecycle's refusal (FAILED_PRECONDITION naming both
// statuses, or INVALID_ARGUMENT for a missing reason or outcome). The new assignment has the step
// appended to its history, status_reason and outcome set (status_reason only for the statuses
// that carry one, outcome only on completion), its version raised by one and updated_at = at. The
// status event is keyed by referral id (the router keeps its state per referral).
// Besides the status event for the router (in an OrganisationEvent on schakel.from.<org>), the
// change carries the same event wrapped in an InboxEvent for the organisation's own topic (its
// history, replayed on rebuild) and, when the step forwards, a ForwardRequested for the router
// (on schakel.from.<org> too, after the status event: same key, so in that order).
// What a person typed (the reason and outcome of a step not by kByNetwork) travels only sealed with
// step.key (AssignmentStatusChanged.sealed_reason / sealed_outcome; reason and outcome empty); with
// no key it is not sent at all. The network's own reasons ("not accepted in time") travel in clear.
// The assignment and its history keep the text: this database is the organisation's own.
absl::StatusOr<store::Change> MakeChange(const schakel::v1::Assignment& current, const Step& step);

// Whether `from_organisation` may hand `assignment` to `target`: the forward-target rule
// (routing::CheckHandover; the router applies it again). FAILED_PRECONDITION "cannot forward to
// '<target>': <why>" otherwise.
absl::Status CheckForwardTarget(const routing::Network& network,
                                const std::string& from_organisation,
                                const schakel::v1::Assignment& assignment,
                                const std::string& target);

// The need's position in its referral, from an assignment id a-<referral>-<index>[.<step>].
std::uint32_t NeedIndex(std::string_view assignment_id);

}  // namespace schakel::inbox
