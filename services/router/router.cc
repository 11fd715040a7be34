#include "services/router/router.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/referral/ids.h"

namespace schakel::router {
namespace {

constexpr std::size_t kMaxBatch = 500;

constexpr std::string_view kNetworkActor = "network";

v1::EventMeta Meta(const std::string& referral_id, const std::string& assignment_id) {
  v1::EventMeta meta;
  meta.set_schema_version(1);
  meta.set_event_id(referral::NewEventId());
  *meta.mutable_occurred_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  meta.set_referral_id(referral_id);
  meta.set_assignment_id(assignment_id);
  return meta;
}

}  // namespace

// The first status event of a new assignment: it was offered to `assignment.organisation()`.
OutgoingEvent RequestedStatus(const v1::AssignmentRequested& assignment, std::string_view why) {
  v1::AssignmentStatusChanged status;
  *status.mutable_meta() = assignment.meta();
  status.mutable_meta()->set_event_id(referral::NewEventId());
  status.set_organisation(assignment.organisation());
  status.set_from_status(v1::ASSIGNMENT_STATUS_UNSPECIFIED);
  status.set_to_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  status.set_version(1);
  status.set_by(std::string(kNetworkActor));
  status.set_need_code(assignment.need_code());
  status.set_referring_organisation(assignment.referring_organisation());
  if (!assignment.previous_assignment_id().empty()) {
    std::string reason = absl::StrCat("continues ", assignment.previous_assignment_id());
    if (!why.empty()) absl::StrAppend(&reason, " (", std::string(why), ")");
    status.set_reason(reason);
  }
  return {std::string(routing::kStatusTopic), assignment.meta().referral_id(),
          status.SerializeAsString()};
}

std::optional<Output> KeyGrantFor(const Output& out) {
  if (out.topic != routing::kStatusTopic || !out.value) return std::nullopt;
  v1::AssignmentStatusChanged status;
  if (!status.ParseFromString(*out.value) ||
      status.to_status() != v1::ASSIGNMENT_STATUS_REQUESTED || status.by() != kNetworkActor) {
    return std::nullopt;
  }
  return Output{std::string(routing::kKeyGrantsTopic), out.key, out.value};
}

void AddAssignment(v1::AssignmentRequested* assignment, std::vector<OutgoingEvent>* events,
                   std::string_view why) {
  v1::InboxEvent offer;
  *offer.mutable_requested() = *assignment;
  events->push_back({routing::InboxTopic(assignment->organisation()),
                     assignment->meta().assignment_id(), offer.SerializeAsString()});
  events->push_back(RequestedStatus(*assignment, why));
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

absl::StatusOr<std::vector<OutgoingEvent>> RouteReferral(
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

  std::vector<OutgoingEvent> events;
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
    *assignment.mutable_meta() = Meta(submitted.meta().referral_id(), assignment_id);
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
      AddAssignment(&assignment, &events);
      if (offers != nullptr) offers->push_back(std::move(assignment));
    } else {
      v1::ReferralUnroutable unroutable;
      *unroutable.mutable_meta() = Meta(submitted.meta().referral_id(), assignment_id);
      unroutable.set_need_code(decision.need_code);
      unroutable.set_need_index(index);
      unroutable.set_region(submitted.region());
      unroutable.set_urgency(submitted.urgency());
      unroutable.set_referring_organisation(submitted.referring_organisation());
      *unroutable.mutable_sharing() = submitted.sharing();
      AddPassedOver(decision.passed_over, &unroutable);
      events.push_back({std::string(routing::kUnroutableTopic), submitted.meta().referral_id(),
                        unroutable.SerializeAsString()});
      if (unroutable_needs != nullptr) unroutable_needs->push_back(std::move(assignment));
    }
  }
  return events;
}

absl::StatusOr<std::vector<OutgoingEvent>> RouteForward(
    const routing::Policy& policy, const v1::ForwardRequested& forward,
    std::vector<v1::AssignmentRequested>* offers) {
  const v1::AssignmentRequested& proposed = forward.proposed();
  if (forward.meta().schema_version() != 1)
    return absl::InvalidArgumentError("unknown schema version");
  if (forward.meta().assignment_id().empty() || forward.meta().referral_id().empty()) {
    return absl::InvalidArgumentError("no assignment or referral id");
  }
  // The router checks the target itself: an inbox's word is not enough to reach another
  // organisation.
  const routing::Organisation* target =
      policy.network().FindOrganisation(forward.to_organisation());
  std::string refusal;
  if (target == nullptr) {
    refusal = "is not part of the network";
  } else if (forward.to_organisation() == forward.from_organisation()) {
    refusal = "already had this assignment";
  } else if (!target->Serves(proposed.need_code())) {
    refusal = absl::StrCat("does not serve need '", proposed.need_code(), "'");
  } else if (!target->Covers(proposed.region())) {
    refusal = absl::StrCat("does not cover region '", proposed.region(), "'");
  } else if (std::find(proposed.sharing().organisations().begin(),
                       proposed.sharing().organisations().end(),
                       target->id) == proposed.sharing().organisations().end()) {
    refusal = "not covered by the client's sharing permission";
  }
  const std::string new_id = referral::NextAssignmentId(forward.meta().assignment_id());
  std::vector<OutgoingEvent> events;
  if (!refusal.empty()) {
    v1::ReferralUnroutable unroutable;
    *unroutable.mutable_meta() = Meta(forward.meta().referral_id(), new_id);
    unroutable.set_need_code(proposed.need_code());
    unroutable.set_need_index(proposed.need_index());
    unroutable.set_region(proposed.region());
    unroutable.set_urgency(proposed.urgency());
    unroutable.set_referring_organisation(proposed.referring_organisation());
    *unroutable.mutable_sharing() = proposed.sharing();
    v1::PassedOver* passed = unroutable.add_passed_over();
    passed->set_organisation(forward.to_organisation());
    passed->set_reason(
        absl::StrCat("forward from '", forward.from_organisation(), "' refused: ", refusal));
    events.push_back({std::string(routing::kUnroutableTopic), forward.meta().referral_id(),
                      unroutable.SerializeAsString()});
    return events;
  }
  v1::AssignmentRequested assignment = proposed;
  *assignment.mutable_meta() = Meta(forward.meta().referral_id(), new_id);
  assignment.set_organisation(target->id);
  assignment.set_previous_assignment_id(forward.meta().assignment_id());
  AddAssignment(&assignment, &events);
  if (offers != nullptr) offers->push_back(std::move(assignment));
  return events;
}

absl::StatusOr<std::vector<OutgoingEvent>> RouteCancel(const routing::Network& network,
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
  return std::vector<OutgoingEvent>{{routing::InboxTopic(cancel.organisation()),
                                     cancel.meta().assignment_id(), wrapped.SerializeAsString()}};
}

absl::StatusOr<std::vector<OutgoingEvent>> RouteRecord(const routing::Policy& policy,
                                                       const kafka::Record& record) {
  if (record.topic == routing::kCancellationsTopic) {
    v1::CancelRequested cancel;
    if (!cancel.ParseFromString(record.value)) {
      return absl::InvalidArgumentError("not a CancelRequested event");
    }
    return RouteCancel(policy.network(), cancel);
  }
  v1::ReferralSubmitted submitted;
  if (!submitted.ParseFromString(record.value)) {
    return absl::InvalidArgumentError("not a ReferralSubmitted event");
  }
  return RouteReferral(policy, submitted);
}

kafka::RebalanceListener Router::Listener() {
  return [this](bool assigned, const std::vector<kafka::TopicPartition>& partitions) {
    // The eager protocol revokes everything before each new assignment: the batch in hand is
    // dropped (its records are read again by whoever owns them now) and the state is read afresh.
    rebalanced_ = true;
    if (!assigned) {
      assigned_.clear();
      return;
    }
    for (const kafka::TopicPartition& tp : partitions) {
      if (std::find(assigned_.begin(), assigned_.end(), tp.partition) == assigned_.end()) {
        assigned_.push_back(tp.partition);
      }
    }
    std::sort(assigned_.begin(), assigned_.end());
  };
}

absl::Status Router::Reset(kafka::Consumer& consumer) {
  escalation_.ForgetAll();
  // Waits for the committed positions to be stable (no transaction of a former owner still open),
  // so the state read next includes everything those positions stand for.
  if (absl::Status s = consumer.RewindToCommitted(std::chrono::seconds(30)); !s.ok()) return s;
  std::size_t records = 0;
  std::size_t skipped = 0;
  absl::Status read =
      kafka::ReadToEnd(bootstrap_servers_, std::string(routing::kRouterStateTopic), assigned_,
                       std::chrono::seconds(30), [&](const kafka::Record& record, bool tombstone) {
                         ++records;
                         absl::Status s = escalation_.Restore(
                             record.partition, record.key,
                             tombstone ? std::nullopt : std::optional<std::string>(record.value));
                         // Reading again would not mend a record that cannot be read: skip it,
                         // loudly.
                         if (!s.ok()) {
                           spdlog::error("router: state record {}[{}]@{} skipped: {}", record.topic,
                                         record.partition, record.offset, std::string(s.message()));
                           ++skipped;
                         }
                       });
  if (!read.ok()) return read;
  spdlog::info("router: restored partitions [{}] ({} state records, {} skipped, {} offers waiting)",
               absl::StrJoin(assigned_, ","), records, skipped, escalation_.waiting());
  return absl::OkStatus();
}

absl::Status Router::Publish(kafka::Consumer& consumer, const std::vector<Output>& out) {
  if (absl::Status s = producer_.Begin(); !s.ok()) return s;
  for (const Output& o : out) {
    if (absl::Status s = producer_.Produce(o.topic, o.key, o.value); !s.ok()) return s;
    if (std::optional<Output> grant = KeyGrantFor(o)) {
      if (absl::Status s = producer_.Produce(grant->topic, grant->key, grant->value); !s.ok()) {
        return s;
      }
    }
  }
  return producer_.CommitWithPositions(consumer, std::chrono::seconds(30));
}

absl::Status Router::Renew(const absl::Status& why) {
  // A fenced producer is most often the broker's doing: an outage longer than the transaction
  // timeout makes the coordinator abort the open transaction and bump the epoch; a commit that
  // timed out leaves its outcome unknown. A new producer under the same transactional id settles
  // both and goes on. Renewing again and again means another router runs with the same
  // --instance: stop rather than fence each other for ever.
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(renewals_, [&](auto t) { return now - t > std::chrono::minutes(5); });
  renewals_.push_back(now);
  if (renewals_.size() > 10) {
    return absl::FailedPreconditionError(absl::StrCat(
        "fenced ", renewals_.size(),
        " times within 5 minutes: does another router run with the same --instance? Last: ",
        std::string(why.message())));
  }
  spdlog::warn("router: the transactional producer cannot go on ({}); starting a new one",
               std::string(why.message()));
  auto backoff = std::chrono::milliseconds(500);
  while (!stop_.load()) {
    absl::Status renewed = producer_.Renew(std::chrono::seconds(30));
    if (renewed.ok()) {
      spdlog::info(
          "router: new transactional producer ready; redoing from the committed positions");
      return absl::OkStatus();
    }
    if (!absl::IsUnavailable(renewed)) return renewed;
    spdlog::warn("router: cannot start a new transactional producer yet: {}",
                 std::string(renewed.message()));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  return absl::OkStatus();
}

absl::Status Router::Run(kafka::Consumer& consumer) {
  auto next_tick = std::chrono::steady_clock::now();
  auto backoff = std::chrono::milliseconds(200);
  while (!stop_.load()) {
    if (rebalanced_) {
      rebalanced_ = false;
      if (absl::Status s = Reset(consumer); !s.ok()) {
        spdlog::warn("router: cannot restore the escalation state yet: {}",
                     std::string(s.message()));
        rebalanced_ = true;
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        consumer.Poll(std::chrono::milliseconds(0)).IgnoreError();  // serve group events
        continue;
      }
      backoff = std::chrono::milliseconds(200);
    }
    const std::shared_ptr<const routing::Policy> policy = policy_();
    // The organisations' load is read once a batch is in hand, not before the poll waits: a
    // referral that arrives during the wait is decided on what was known when it arrived.
    bool load_taken = false;
    auto take_load = [&] {
      if (load_taken) return;
      escalation_.SetLoad(load_ ? load_() : nullptr);
      load_taken = true;
    };
    std::vector<Output> out;
    std::size_t consumed = 0;
    auto timeout = std::chrono::milliseconds(100);
    while (consumed < kMaxBatch) {
      absl::StatusOr<std::optional<kafka::Record>> record = consumer.Poll(timeout);
      if (!record.ok()) return record.status();
      if (rebalanced_ || !record->has_value()) break;
      timeout = std::chrono::milliseconds(0);  // take what is already there, then publish
      ++consumed;
      take_load();
      absl::StatusOr<std::vector<Output>> handled = escalation_.Handle(*policy, **record);
      if (handled.ok()) {
        for (Output& o : *handled) out.push_back(std::move(o));
        routed_.fetch_add(1);
      } else {
        // Never log the payload: it holds personal data. The record goes to the dead letters in
        // this batch's transaction, so it is neither lost nor blocking.
        spdlog::error("router: dead letter {}[{}]@{}: {}", (*record)->topic, (*record)->partition,
                      (*record)->offset, std::string(handled.status().message()));
        out.push_back({routing::DeadLetterTopic("router"), deadletter::Key(**record),
                       deadletter::Make(**record, std::string(handled.status().message()), "router")
                           .SerializeAsString()});
        rejected_.fetch_add(1);
      }
    }
    if (rebalanced_) continue;  // the batch is dropped; Reset reads the state again
    if (std::chrono::steady_clock::now() >= next_tick) {
      take_load();
      for (Output& o : escalation_.Tick(*policy)) out.push_back(std::move(o));
      next_tick = std::chrono::steady_clock::now() + tick_;
    }
    for (Output& o : escalation_.TakeStateChanges()) out.push_back(std::move(o));
    if (consumed == 0 && out.empty()) continue;

    absl::Status published = Publish(consumer, out);
    if (published.ok()) {
      if (on_committed_) on_committed_(out);
      continue;
    }
    if (absl::IsFailedPrecondition(published)) {
      if (absl::Status renewed = Renew(published); !renewed.ok()) return renewed;
      rebalanced_ = true;  // forget what was not committed and read it again
      continue;
    }
    spdlog::warn(
        "router: transaction of {} records aborted ({}); redoing from the committed "
        "positions",
        out.size(), std::string(published.message()));
    // A producer that cannot abort is in no state to begin again: a new one.
    if (absl::Status s = producer_.Abort(std::chrono::seconds(30)); !s.ok()) {
      if (absl::Status renewed = Renew(s); !renewed.ok()) return renewed;
    }
    rebalanced_ = true;  // forget what was not committed and read it again
  }
  return absl::OkStatus();
}

}  // namespace schakel::router
