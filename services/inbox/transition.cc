#include "services/inbox/transition.h"

#include <google/protobuf/util/time_util.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/audit/entry.h"
#include "libs/privacy/sealed.h"
#include "libs/referral/clock.h"
#include "libs/referral/ids.h"
#include "libs/referral/lifecycle.h"
#include "libs/routing/network.h"
#include "libs/routing/policy.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"

namespace schakel::inbox {
namespace {

bool CarriesReason(schakel::v1::AssignmentStatus status) {
  return status == schakel::v1::ASSIGNMENT_STATUS_REJECTED ||
         status == schakel::v1::ASSIGNMENT_STATUS_CANCELLED ||
         status == schakel::v1::ASSIGNMENT_STATUS_ON_HOLD ||
         status == schakel::v1::ASSIGNMENT_STATUS_FAILED;
}

}  // namespace

google::protobuf::Timestamp SystemNow() { return referral::Now(); }

absl::Status CheckForwardTarget(const routing::Network& network,
                                const std::string& from_organisation,
                                const schakel::v1::Assignment& assignment,
                                const std::string& target) {
  const routing::HandoverCheck check = routing::CheckHandover(
      network, {.target = target,
                .from = from_organisation,
                .need_code = assignment.need_code(),
                .region = assignment.region(),
                .sharing_organisations = {assignment.sharing().organisations().begin(),
                                          assignment.sharing().organisations().end()}});
  if (check.ok()) return absl::OkStatus();
  // The policy's words, except where the inbox speaks of itself to its own organisation.
  std::string why = check.reason;
  if (check.refusal == routing::Refusal::kNotInNetwork) why = "not an organisation in the network";
  if (check.refusal == routing::Refusal::kSameOrganisation) why = "that is this organisation";
  return absl::FailedPreconditionError(absl::StrCat("cannot forward to '", target, "': ", why));
}

std::uint32_t NeedIndex(std::string_view assignment_id) {
  return referral::NeedIndexOf(assignment_id);
}

absl::StatusOr<store::Change> MakeChange(const schakel::v1::Assignment& current, const Step& step) {
  if (absl::Status allowed = referral::CheckTransition(current.status(), step.transition);
      !allowed.ok()) {
    return allowed;
  }
  const schakel::v1::AssignmentStatus to = step.transition.to;
  // A reason or outcome given with a step that does not carry one is not kept: it would be an
  // internal note, and the referrer sees the history.
  const std::string reason = CarriesReason(to) ? step.transition.reason : std::string();
  const std::string outcome =
      to == schakel::v1::ASSIGNMENT_STATUS_COMPLETED ? step.transition.outcome : std::string();

  store::Change change;
  schakel::v1::Assignment& next = change.assignment;
  next = current;
  next.set_status(to);
  next.set_status_reason(reason);
  next.set_outcome(outcome);
  next.set_version(current.version() + 1);
  *next.mutable_updated_at() = step.at;
  schakel::v1::StatusChange* history = next.add_history();
  history->set_from_status(current.status());
  history->set_to_status(to);
  *history->mutable_at() = step.at;
  history->set_reason(reason);
  history->set_outcome(outcome);
  history->set_by(step.by);
  history->set_version(next.version());

  schakel::v1::AssignmentStatusChanged event;
  schakel::v1::EventMeta* meta = event.mutable_meta();
  meta->set_schema_version(kStatusChangedSchemaVersion);
  meta->set_event_id(referral::NewEventId());
  *meta->mutable_occurred_at() = step.at;
  meta->set_referral_id(next.referral_id());
  meta->set_assignment_id(next.assignment_id());
  event.set_organisation(next.organisation());
  event.set_from_status(current.status());
  event.set_to_status(to);
  event.set_version(next.version());
  event.set_by(step.by);
  if (step.by == kByNetwork) {
    event.set_reason(reason);
    event.set_outcome(outcome);
  } else if (step.key.has_value()) {
    // A person typed it: it may name the client, so only the client's key opens it.
    const std::string& referral_id = next.referral_id();
    const std::string& assignment_id = next.assignment_id();
    if (!reason.empty()) {
      absl::StatusOr<v1::Sealed> sealed = privacy::Seal(
          step.key->key_id, step.key->key,
          privacy::StatusReasonContext(referral_id, assignment_id, next.version()), reason);
      if (!sealed.ok()) return sealed.status();
      *event.mutable_sealed_reason() = *std::move(sealed);
    }
    if (!outcome.empty()) {
      absl::StatusOr<v1::Sealed> sealed = privacy::Seal(
          step.key->key_id, step.key->key,
          privacy::StatusOutcomeContext(referral_id, assignment_id, next.version()), outcome);
      if (!sealed.ok()) return sealed.status();
      *event.mutable_sealed_outcome() = *std::move(sealed);
    }
  }
  event.set_need_code(next.need_code());
  event.set_referring_organisation(next.referring_organisation());
  event.set_forward_to(step.forward_to);

  // To the router, on the organisation's own topic (only it may write there, so the router knows
  // who sent it); the router publishes the change as a fact once it checked it.
  store::OutboxEvent outbox;
  outbox.topic = topology::FromTopic(next.organisation());
  outbox.key = next.referral_id();  // the router keeps its state per referral
  schakel::v1::OrganisationEvent sent;
  *sent.mutable_status_changed() = event;
  if (!sent.SerializeToString(&outbox.value)) {
    return absl::InternalError("inbox: cannot serialize an AssignmentStatusChanged event");
  }
  change.events.push_back(std::move(outbox));

  // The same change on the organisation's own topic, so that replaying it rebuilds this inbox.
  schakel::v1::InboxEvent echo;
  *echo.mutable_status_changed() = event;
  change.events.push_back(
      {topology::InboxTopic(next.organisation()), next.assignment_id(), echo.SerializeAsString()});

  // Forwarding: the router offers the assignment to the target (it checks the target again).
  if (!step.forward_to.empty()) {
    schakel::v1::ForwardRequested forward;
    *forward.mutable_meta() = event.meta();
    forward.mutable_meta()->set_event_id(referral::NewEventId());
    forward.set_from_organisation(next.organisation());
    forward.set_to_organisation(step.forward_to);
    schakel::v1::AssignmentRequested* proposed = forward.mutable_proposed();
    proposed->set_organisation(step.forward_to);
    proposed->set_need_code(next.need_code());
    // No personal data: the router sends the need's sealed data with it, as it offered it here.
    proposed->set_client_pseudonym(next.client_pseudonym());
    proposed->set_urgency(next.urgency());
    proposed->set_region(next.region());
    *proposed->mutable_languages() = next.languages();
    proposed->set_referring_organisation(next.referring_organisation());
    proposed->set_need_index(NeedIndex(next.assignment_id()));
    proposed->set_previous_assignment_id(next.assignment_id());
    *proposed->mutable_sharing() = next.sharing();
    schakel::v1::OrganisationEvent sent_forward;
    *sent_forward.mutable_forward_requested() = forward;
    change.events.push_back({topology::FromTopic(next.organisation()), next.referral_id(),
                             sent_forward.SerializeAsString()});
  }

  // The audit entry, stored with the change: who (the owner, or the network's rules), which
  // assignment, and the step. Not the reason's text: people type it, so it may name the client.
  v1::AuditSubject subject;
  subject.set_referral_id(next.referral_id());
  subject.add_assignment_ids(next.assignment_id());
  subject.set_organisation(step.forward_to);
  const v1::AuditActor actor =
      step.by == kByNetwork ? audit::NetworkActor() : audit::OrganisationActor(step.by);
  change.audit.push_back(
      audit::NewEntry(
          actor, audit::kStatusChanged, std::move(subject),
          absl::StrCat(referral::StatusName(current.status()), " -> ", referral::StatusName(to),
                       step.forward_to.empty() ? "" : " (forwarded)"),
          step.at)
          .SerializeAsString());
  return change;
}

}  // namespace schakel::inbox
