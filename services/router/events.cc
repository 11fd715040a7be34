#include "services/router/events.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "libs/referral/clock.h"
#include "libs/referral/ids.h"
#include "libs/referral/lifecycle.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"

namespace schakel::router {
namespace {

using google::protobuf::util::TimeUtil;

// The first status event of a new assignment: it was offered to `offer.organisation()`.
Output RequestedStatus(const v1::AssignmentRequested& offer, std::string_view why) {
  v1::AssignmentStatusChanged status;
  *status.mutable_meta() = offer.meta();
  status.mutable_meta()->set_event_id(referral::NewEventId());
  status.set_organisation(offer.organisation());
  status.set_from_status(v1::ASSIGNMENT_STATUS_UNSPECIFIED);
  status.set_to_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  status.set_version(1);
  status.set_by(std::string(referral::kNetworkName));
  status.set_need_code(offer.need_code());
  status.set_referring_organisation(offer.referring_organisation());
  if (!offer.previous_assignment_id().empty()) {
    std::string reason = absl::StrCat("continues ", offer.previous_assignment_id());
    if (!why.empty()) absl::StrAppend(&reason, " (", std::string(why), ")");
    status.set_reason(reason);
  }
  return {std::string(topology::kStatusTopic), offer.meta().referral_id(),
          status.SerializeAsString()};
}

}  // namespace

v1::EventMeta NewMeta(const std::string& referral_id, const std::string& assignment_id,
                      const google::protobuf::Timestamp& at) {
  v1::EventMeta meta;
  meta.set_schema_version(1);
  meta.set_event_id(referral::NewEventId());
  *meta.mutable_occurred_at() = at;
  meta.set_referral_id(referral_id);
  meta.set_assignment_id(assignment_id);
  return meta;
}

void AddOffer(const v1::AssignmentRequested& offer, std::vector<Output>* out,
              std::string_view why) {
  v1::InboxEvent wrapped;
  *wrapped.mutable_requested() = offer;
  out->push_back({topology::InboxTopic(offer.organisation()), offer.meta().assignment_id(),
                  wrapped.SerializeAsString()});
  out->push_back(RequestedStatus(offer, why));
}

Output Withdrawal(const v1::AssignmentRequested& offer, const std::string& reason,
                  const std::string& next_assignment_id, const google::protobuf::Timestamp& at) {
  v1::Withdrawal withdrawal;
  *withdrawal.mutable_meta() =
      NewMeta(offer.meta().referral_id(), offer.meta().assignment_id(), at);
  withdrawal.set_organisation(offer.organisation());
  withdrawal.set_reason(reason);
  withdrawal.set_next_assignment_id(next_assignment_id);
  v1::InboxEvent wrapped;
  *wrapped.mutable_withdrawn() = withdrawal;
  return {topology::InboxTopic(offer.organisation()), offer.meta().assignment_id(),
          wrapped.SerializeAsString()};
}

Output Unroutable(const v1::EventMeta& meta, const v1::AssignmentRequested& need,
                  const std::vector<routing::PassedOver>& chain,
                  const std::vector<routing::PassedOver>& others) {
  v1::ReferralUnroutable unroutable;
  *unroutable.mutable_meta() = meta;
  unroutable.set_need_code(need.need_code());
  unroutable.set_need_index(need.need_index());
  unroutable.set_region(need.region());
  unroutable.set_urgency(need.urgency());
  unroutable.set_referring_organisation(need.referring_organisation());
  *unroutable.mutable_sharing() = need.sharing();
  for (const routing::PassedOver& p : chain) {
    v1::PassedOver* entry = unroutable.add_passed_over();
    entry->set_organisation(p.organisation);
    entry->set_reason(p.reason);
  }
  AddPassedOver(others, &unroutable);
  return {std::string(topology::kUnroutableTopic), meta.referral_id(),
          unroutable.SerializeAsString()};
}

void AddPassedOver(const std::vector<routing::PassedOver>& passed, v1::ReferralUnroutable* out) {
  absl::flat_hash_map<std::string_view, std::size_t> sharing;  // reason -> organisations
  for (const routing::PassedOver& p : passed) ++sharing[p.reason];
  absl::flat_hash_set<std::string_view> grouped;
  for (const routing::PassedOver& p : passed) {
    const std::size_t count = sharing[p.reason];
    if (count <= kGroupReasonsAbove) {
      v1::PassedOver* entry = out->add_passed_over();
      entry->set_organisation(p.organisation);
      entry->set_reason(p.reason);
    } else if (grouped.insert(p.reason).second) {  // in the place of its first organisation
      v1::PassedOver* entry = out->add_passed_over();
      entry->set_reason(absl::StrCat(p.reason, " (", count, " organisations)"));
    }
  }
}

Output Fact(const v1::AssignmentStatusChanged& fact) {
  return {std::string(topology::kStatusTopic), fact.meta().referral_id(), fact.SerializeAsString()};
}

Output StateRecord(const std::string& referral_id, const v1::RouterReferralState* state) {
  if (state == nullptr)
    return {std::string(topology::kRouterStateTopic), referral_id, std::nullopt};
  return {std::string(topology::kRouterStateTopic), referral_id, state->SerializeAsString()};
}

absl::StatusOr<std::vector<Output>> RouteReferral(
    const routing::Policy& policy, const v1::ReferralSubmitted& submitted,
    std::vector<v1::AssignmentRequested>* offers, const routing::OpenAssignments& open,
    std::vector<v1::AssignmentRequested>* unroutable_needs) {
  if (submitted.meta().schema_version() != 1) {
    return absl::InvalidArgumentError("unknown schema version");
  }
  if (submitted.meta().referral_id().empty()) return absl::InvalidArgumentError("no referral id");

  routing::RouteRequest request;
  request.open_assignments = open;
  request.region = submitted.region();
  request.languages.assign(submitted.languages().begin(), submitted.languages().end());
  for (const v1::NeedRequest& need : submitted.needs()) request.need_codes.push_back(need.code());
  request.sharing_organisations.assign(submitted.sharing().organisations().begin(),
                                       submitted.sharing().organisations().end());
  const std::vector<routing::NeedDecision> decisions = policy.Decide(request);

  const google::protobuf::Timestamp now = referral::Now();
  std::vector<Output> out;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    const routing::NeedDecision& decision = decisions[i];
    const std::uint32_t index = static_cast<std::uint32_t>(i);
    const bool linked =
        std::any_of(submitted.linked().begin(), submitted.linked().end(),
                    [index](const v1::LinkedNeed& l) { return l.need_index() == index; });
    if (linked) continue;  // already open for this client: intake linked it, nobody gets it twice
    const std::string assignment_id = referral::AssignmentId(submitted.meta().referral_id(), index);
    // Only this need travels to its organisation: the client's other needs stay out of its topic.
    v1::AssignmentRequested assignment;
    *assignment.mutable_meta() = NewMeta(submitted.meta().referral_id(), assignment_id, now);
    assignment.set_organisation(decision.organisation);
    assignment.set_need_code(decision.need_code);
    // Personal data travels sealed (the router never holds a key): the client's details and this
    // need's own details; an event from before sealing carries the details in clear.
    assignment.set_need_details(submitted.needs(static_cast<int>(i)).details());
    if (submitted.has_sealed_client())
      *assignment.mutable_sealed_client() = submitted.sealed_client();
    if (static_cast<int>(i) < submitted.sealed_need_details_size() &&
        !submitted.sealed_need_details(static_cast<int>(i)).key_id().empty()) {
      *assignment.mutable_sealed_need_details() =
          submitted.sealed_need_details(static_cast<int>(i));
    }
    assignment.set_client_pseudonym(submitted.client_pseudonym());
    assignment.set_urgency(submitted.urgency());
    assignment.set_region(submitted.region());
    *assignment.mutable_languages() = submitted.languages();
    assignment.set_referring_organisation(submitted.referring_organisation());
    assignment.set_need_index(index);
    *assignment.mutable_sharing() = submitted.sharing();
    if (decision.routable()) {
      AddOffer(assignment, &out);
      if (offers != nullptr) offers->push_back(std::move(assignment));
    } else {
      out.push_back(Unroutable(NewMeta(submitted.meta().referral_id(), assignment_id, now),
                               assignment, /*chain=*/{}, decision.passed_over));
      if (unroutable_needs != nullptr) unroutable_needs->push_back(std::move(assignment));
    }
  }
  return out;
}

absl::StatusOr<std::vector<Output>> RouteForward(const routing::Policy& policy,
                                                 const v1::ForwardRequested& forward,
                                                 std::vector<v1::AssignmentRequested>* offers) {
  const v1::AssignmentRequested& proposed = forward.proposed();
  if (forward.meta().schema_version() != 1)
    return absl::InvalidArgumentError("unknown schema version");
  if (forward.meta().assignment_id().empty() || forward.meta().referral_id().empty()) {
    return absl::InvalidArgumentError("no assignment or referral id");
  }
  // The router checks the target itself: an inbox's word is not enough to reach another
  // organisation.
  const routing::HandoverCheck check = routing::CheckHandover(
      policy.network(), {.target = forward.to_organisation(),
                         .from = forward.from_organisation(),
                         .need_code = proposed.need_code(),
                         .region = proposed.region(),
                         .sharing_organisations = {proposed.sharing().organisations().begin(),
                                                   proposed.sharing().organisations().end()}});
  const v1::EventMeta meta =
      NewMeta(forward.meta().referral_id(),
              referral::NextAssignmentId(forward.meta().assignment_id()), referral::Now());
  std::vector<Output> out;
  if (!check.ok()) {
    out.push_back(Unroutable(
        meta, proposed,
        {{forward.to_organisation(), absl::StrCat("forward from '", forward.from_organisation(),
                                                  "' refused: ", check.reason)}},
        /*others=*/{}));
    return out;
  }
  v1::AssignmentRequested assignment = proposed;
  *assignment.mutable_meta() = meta;
  assignment.set_organisation(forward.to_organisation());
  assignment.set_previous_assignment_id(forward.meta().assignment_id());
  AddOffer(assignment, &out);
  if (offers != nullptr) offers->push_back(std::move(assignment));
  return out;
}

absl::StatusOr<std::vector<Output>> RouteCancel(const routing::Network& network,
                                                const v1::CancelRequested& cancel) {
  if (cancel.meta().schema_version() != 1) {
    return absl::InvalidArgumentError("unknown schema version");
  }
  if (cancel.meta().assignment_id().empty() || cancel.meta().referral_id().empty()) {
    return absl::InvalidArgumentError("no assignment or referral id");
  }
  if (network.FindOrganisation(cancel.organisation()) == nullptr) {
    return absl::InvalidArgumentError("cancel request for an organisation outside the network");
  }
  v1::InboxEvent wrapped;
  *wrapped.mutable_cancel_requested() = cancel;
  return std::vector<Output>{{topology::InboxTopic(cancel.organisation()),
                              cancel.meta().assignment_id(), wrapped.SerializeAsString()}};
}

}  // namespace schakel::router
