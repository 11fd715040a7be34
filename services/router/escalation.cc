#include "services/router/escalation.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/referral/ids.h"
#include "libs/referral/lifecycle.h"
#include "libs/topology/topics.h"

namespace schakel::router {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToTimestamp(std::chrono::system_clock::time_point t) {
  return TimeUtil::MicrosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

// A time system_clock cannot hold (it counts nanoseconds: 1677 to 2262), which only a damaged
// record carries, is clamped to its range instead of overflowing (found by the fuzzer).
std::chrono::system_clock::time_point FromTimestamp(const google::protobuf::Timestamp& t) {
  using std::chrono::duration_cast;
  using std::chrono::seconds;
  using Clock = std::chrono::system_clock;
  constexpr std::int64_t kMax =
      duration_cast<seconds>(Clock::time_point::max().time_since_epoch()).count() - 1;
  constexpr std::int64_t kMin =
      duration_cast<seconds>(Clock::time_point::min().time_since_epoch()).count() + 1;
  const std::int64_t s = std::clamp<std::int64_t>(t.seconds(), kMin, kMax);
  const std::int64_t ns = std::clamp<std::int64_t>(t.nanos(), 0, 999'999'999);
  return Clock::time_point(duration_cast<Clock::duration>(seconds(s)) +
                           duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

bool Waiting(const v1::RouterNeedState& need) {
  return !need.settled() && !need.forwarding() &&
         (need.status() == v1::ASSIGNMENT_STATUS_REQUESTED ||
          need.status() == v1::ASSIGNMENT_STATUS_RECEIVED);
}

}  // namespace

std::chrono::system_clock::time_point AcceptBy(const routing::Network& network, v1::Urgency urgency,
                                               std::chrono::system_clock::time_point offered_at) {
  return network.sla.Deadline(urgency == v1::URGENCY_URGENT, offered_at);
}

Escalation::Escalation(Clock clock) : clock_(std::move(clock)) {
  absl::StatusOr<std::unique_ptr<StateStore>> store = StateStore::Open();
  if (store.ok()) {
    store_ = *std::move(store);
  } else {
    Fail(store.status());
  }
}

void Escalation::Fail(const absl::Status& status) {
  if (!failure_.ok()) return;
  failure_ = status;
  spdlog::error("router: the state store failed: {}", std::string(status.message()));
}

Escalation::Entry* Escalation::Lookup(const std::string& referral_id) {
  if (auto it = referrals_.find(referral_id); it != referrals_.end()) return &it->second;
  if (!failure_.ok()) return nullptr;
  absl::StatusOr<std::optional<StateStore::Row>> row = store_->Get(referral_id);
  if (!row.ok()) {
    Fail(row.status());
    return nullptr;
  }
  if (!row->has_value()) return nullptr;
  Entry entry;
  entry.partition = (*row)->partition;
  if (!entry.state.ParseFromString((*row)->value)) {
    Fail(absl::DataLossError(absl::StrCat("router state: ", referral_id, " cannot be read back")));
    return nullptr;
  }
  return &referrals_.emplace(referral_id, std::move(entry)).first->second;
}

void Escalation::Keep(const std::string& referral_id, const Entry& entry,
                      const std::string& value) {
  if (!failure_.ok()) return;
  std::int64_t waiting = 0;
  std::optional<std::int64_t> due;
  for (const v1::RouterNeedState& need : entry.state.needs()) {
    if (!Waiting(need)) continue;
    ++waiting;
    if (!need.has_accept_by()) continue;
    const std::int64_t at = std::chrono::duration_cast<std::chrono::microseconds>(
                                FromTimestamp(need.accept_by()).time_since_epoch())
                                .count();
    due = due ? std::min(*due, at) : at;
  }
  if (absl::Status s = store_->Put(referral_id, entry.partition, value, waiting, due); !s.ok()) {
    Fail(s);
  }
}

absl::Status Escalation::Restore(std::int32_t partition, const std::string& referral_id,
                                 const std::optional<std::string>& value) {
  referrals_.erase(referral_id);
  if (!value) {
    if (failure_.ok()) {
      if (absl::Status s = store_->Erase(referral_id); !s.ok()) Fail(s);
    }
    return failure_;
  }
  Entry entry;
  entry.partition = partition;
  if (!entry.state.ParseFromString(*value) || entry.state.referral_id() != referral_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("router state for ", referral_id, " cannot be read"));
  }
  if (!entry.state.assignments().empty()) {
    Keep(referral_id, entry, *value);
    return failure_;
  }
  // Written by a router older than tracking: it kept only needs still waiting (or unroutable).
  // Their live offers are followed from the status the router saw; the version is unknown (0),
  // so the owner's next change of it is taken whatever its number.
  for (const v1::RouterNeedState& need : entry.state.needs()) {
    if (need.unroutable() || need.current().organisation().empty()) continue;
    v1::TrackedAssignment* tracked = entry.state.add_assignments();
    tracked->set_assignment_id(need.current().meta().assignment_id());
    tracked->set_organisation(need.current().organisation());
    tracked->set_status(need.forwarding() ? v1::ASSIGNMENT_STATUS_REJECTED
                        : need.status() == v1::ASSIGNMENT_STATUS_UNSPECIFIED
                            ? v1::ASSIGNMENT_STATUS_REQUESTED
                            : need.status());
    tracked->set_version(0);
  }
  Keep(referral_id, entry, entry.state.SerializeAsString());
  return failure_;
}

absl::Status Escalation::Restored() {
  if (failure_.ok()) {
    if (absl::Status s = store_->Flush(); !s.ok()) Fail(s);
  }
  return failure_;
}

void Escalation::Forget(std::int32_t partition) {
  absl::erase_if(referrals_,
                 [partition](const auto& kv) { return kv.second.partition == partition; });
  if (failure_.ok()) {
    if (absl::Status s = store_->Forget(partition); !s.ok()) Fail(s);
  }
}

void Escalation::ForgetAll() {
  referrals_.clear();
  dirty_.clear();
  if (failure_.ok()) {
    if (absl::Status s = store_->ForgetAll(); !s.ok()) Fail(s);
  }
}

std::optional<v1::RouterReferralState> Escalation::Find(const std::string& referral_id) {
  const Entry* entry = Lookup(referral_id);
  if (entry == nullptr) return std::nullopt;
  return entry->state;
}

std::size_t Escalation::waiting() {
  if (!failure_.ok()) return 0;
  absl::StatusOr<std::int64_t> stored = store_->Waiting();
  if (!stored.ok()) {
    Fail(stored.status());
    return 0;
  }
  std::int64_t n = *stored;
  // What is in memory may have changed since it was stored.
  for (const auto& [id, entry] : referrals_) {
    absl::StatusOr<std::int64_t> before = store_->Waiting(id);
    if (!before.ok()) {
      Fail(before.status());
      return 0;
    }
    n -= *before;
    for (const v1::RouterNeedState& need : entry.state.needs()) n += Waiting(need) ? 1 : 0;
  }
  return static_cast<std::size_t>(n);
}

v1::RouterNeedState* Escalation::FindNeed(Entry& entry, std::uint32_t need_index) {
  for (v1::RouterNeedState& need : *entry.state.mutable_needs()) {
    if (need.need_index() == need_index) return &need;
  }
  return nullptr;
}

void Escalation::Wait(const routing::Network& network, v1::RouterNeedState& need,
                      const v1::AssignmentRequested& offer) {
  need.set_need_index(offer.need_index());
  need.set_need_code(offer.need_code());
  *need.mutable_current() = offer;
  need.set_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  need.set_settled(false);
  need.set_forwarding(false);
  *need.mutable_accept_by() = ToTimestamp(AcceptBy(network, offer.urgency(), clock_()));
}

v1::TrackedAssignment* Escalation::FindTracked(Entry& entry, const std::string& assignment_id) {
  for (v1::TrackedAssignment& tracked : *entry.state.mutable_assignments()) {
    if (tracked.assignment_id() == assignment_id) return &tracked;
  }
  return nullptr;
}

void Escalation::Track(Entry& entry, const v1::AssignmentRequested& offer) {
  v1::TrackedAssignment* tracked = FindTracked(entry, offer.meta().assignment_id());
  if (tracked == nullptr) tracked = entry.state.add_assignments();
  tracked->set_assignment_id(offer.meta().assignment_id());
  tracked->set_organisation(offer.organisation());
  tracked->set_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  tracked->set_version(1);  // the REQUESTED the router publishes with the offer
  tracked->set_withdrawn(false);
}

void Escalation::MarkWithdrawn(Entry& entry, const std::string& assignment_id) {
  if (v1::TrackedAssignment* tracked = FindTracked(entry, assignment_id)) {
    tracked->set_withdrawn(true);
  }
}

absl::StatusOr<v1::TrackedAssignment*> Escalation::OwnedBy(const std::string& sender,
                                                           const v1::EventMeta& meta) {
  if (meta.schema_version() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("meta.schema_version: ", meta.schema_version(), " is not supported"));
  }
  if (meta.referral_id().empty() || meta.assignment_id().empty()) {
    return absl::InvalidArgumentError("meta: no referral or assignment id");
  }
  Entry* found = Lookup(meta.referral_id());
  v1::TrackedAssignment* tracked =
      found == nullptr ? nullptr : FindTracked(*found, meta.assignment_id());
  if (tracked == nullptr) {
    unauthorised_.fetch_add(1, std::memory_order_relaxed);
    return absl::PermissionDeniedError(
        absl::StrCat("assignment ", meta.assignment_id(), ": the router has no open offer of it"));
  }
  if (tracked->organisation() != sender) {
    unauthorised_.fetch_add(1, std::memory_order_relaxed);
    // Ids only: the sender may be another organisation trying to take the need.
    spdlog::warn("router: a change of {} (referral {}) from {} refused: not its owner",
                 meta.assignment_id(), meta.referral_id(), topology::FromTopic(sender));
    return absl::PermissionDeniedError(absl::StrCat("assignment ", meta.assignment_id(),
                                                    " is not offered to ", sender,
                                                    ": only its owner changes it"));
  }
  return tracked;
}

absl::StatusOr<std::vector<Output>> Escalation::HandleOwnerStatus(
    const routing::Policy& policy, const std::string& sender,
    const v1::AssignmentStatusChanged& status) {
  if (status.organisation() != sender) {
    unauthorised_.fetch_add(1, std::memory_order_relaxed);
    return absl::PermissionDeniedError(absl::StrCat("organisation: says '", status.organisation(),
                                                    "' on ", topology::FromTopic(sender)));
  }
  absl::StatusOr<v1::TrackedAssignment*> owned = OwnedBy(sender, status.meta());
  if (!owned.ok()) return owned.status();
  v1::TrackedAssignment& tracked = **owned;
  // Redelivered (an inbox's outbox publishes at least once): taken already.
  if (status.version() <= tracked.version()) return std::vector<Output>{};
  Entry& entry = *Lookup(status.meta().referral_id());  // read by OwnedBy
  const v1::RouterNeedState* need =
      FindNeed(entry, referral::NeedIndexOf(status.meta().assignment_id()));
  const std::string referrer = need == nullptr ? "" : need->current().referring_organisation();
  // An unknown status: an offer made by a router older than tracking (see Restore).
  if (tracked.status() != v1::ASSIGNMENT_STATUS_UNSPECIFIED &&
      status.from_status() != tracked.status()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "from_status: ", referral::StatusName(status.from_status()), ", but ",
        status.meta().assignment_id(), " is ", referral::StatusName(tracked.status())));
  }
  // Who made the change, as far as the owner's inbox may act for them: the owner itself, the
  // referrer (a cancellation it asked for) or the network (an automatic rule, or the cancellation
  // of an offer the router withdrew).
  std::vector<referral::Actor> actors;
  if (status.by() == referral::kNetworkName) actors.push_back(referral::Actor::kNetwork);
  if (status.by() == sender) actors.push_back(referral::Actor::kOwner);
  if (!referrer.empty() && status.by() == referrer) actors.push_back(referral::Actor::kReferrer);
  if (actors.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("by: '", status.by(), "' is not the owner, its referrer or the network"));
  }
  absl::Status step = absl::OkStatus();
  for (referral::Actor actor : actors) {
    step = referral::CheckStep(status.from_status(), status.to_status(), actor);
    if (step.ok()) break;
  }
  if (!step.ok()) return step;
  if (status.by() == referral::kNetworkName &&
      status.to_status() == v1::ASSIGNMENT_STATUS_CANCELLED && !tracked.withdrawn()) {
    return absl::FailedPreconditionError(
        "by: only an offer the router withdrew is cancelled by the network");
  }
  if (!status.forward_to().empty() && status.to_status() != v1::ASSIGNMENT_STATUS_REJECTED) {
    return absl::InvalidArgumentError("forward_to: only with to_status rejected");
  }
  tracked.set_status(status.to_status());
  tracked.set_version(status.version());
  dirty_.insert(entry.state.referral_id());

  // The accepted fact, with what the router knows itself in place of what the inbox said.
  v1::AssignmentStatusChanged fact = status;
  fact.set_organisation(sender);
  fact.set_referring_organisation(referrer);
  if (need != nullptr) fact.set_need_code(need->need_code());
  std::vector<Output> out = {Fact(fact)};
  for (Output& o : HandleStatus(policy, entry, fact)) out.push_back(std::move(o));
  return out;
}

absl::StatusOr<std::vector<Output>> Escalation::HandleForward(const routing::Policy& policy,
                                                              const std::string& sender,
                                                              const v1::ForwardRequested& forward) {
  if (forward.from_organisation() != sender) {
    unauthorised_.fetch_add(1, std::memory_order_relaxed);
    return absl::PermissionDeniedError(absl::StrCat("from_organisation: says '",
                                                    forward.from_organisation(), "' on ",
                                                    topology::FromTopic(sender)));
  }
  absl::StatusOr<v1::TrackedAssignment*> owned = OwnedBy(sender, forward.meta());
  if (!owned.ok()) return owned.status();
  const std::string& referral_id = forward.meta().referral_id();
  Entry& entry = *Lookup(referral_id);  // read by OwnedBy
  v1::RouterNeedState* need =
      FindNeed(entry, referral::NeedIndexOf(forward.meta().assignment_id()));
  // Only the live offer of a need that is still open can be forwarded. Another offer is one this
  // forward replaced already (redelivery), or one withdrawn meanwhile (its owner forwarded it
  // before our withdrawal arrived): the need lives on elsewhere, and offering it again would
  // make a second live offer, under an id that may be taken. A settled need was accepted
  // elsewhere meanwhile, cancelled, or is in the unroutable queue.
  if (need == nullptr || need->settled() ||
      need->current().meta().assignment_id() != forward.meta().assignment_id()) {
    return std::vector<Output>{};
  }
  // The next offer is the router's own offer of the need, to the organisation the owner chose:
  // the referral as submitted (its sharing permission, region, languages, personal data), never
  // what the owner proposed.
  v1::ForwardRequested checked = forward;
  *checked.mutable_proposed() = need->current();
  checked.mutable_proposed()->set_organisation(forward.to_organisation());
  std::vector<v1::AssignmentRequested> offers;
  absl::StatusOr<std::vector<Output>> out = RouteForward(policy, checked, &offers);
  if (!out.ok()) return out.status();

  v1::EarlierOffer* earlier = need->add_earlier();
  earlier->set_assignment_id(forward.meta().assignment_id());
  earlier->set_organisation(sender);
  earlier->set_ended(absl::StrCat("forwarded to ", forward.to_organisation()));
  if (offers.empty()) {
    // The forward was refused: the need is in the unroutable queue, as the router offered it.
    KeepUnroutable(*need, need->current(),
                   referral::NextAssignmentId(forward.meta().assignment_id()));
  } else {
    Wait(policy.network(), *need, offers.front());
    Track(entry, offers.front());
  }
  dirty_.insert(referral_id);
  return out;
}

absl::StatusOr<std::vector<Output>> Escalation::Handle(const routing::Policy& policy,
                                                       const kafka::Record& record) {
  // An organisation's own topic: the broker lets only that organisation write it, so the topic,
  // not the record, says who sent it.
  if (const std::string_view sender = topology::FromTopicOrganisation(record.topic);
      !sender.empty()) {
    v1::OrganisationEvent event;
    if (!event.ParseFromString(record.value)) {
      return absl::InvalidArgumentError("not an OrganisationEvent");
    }
    if (event.has_status_changed()) {
      return HandleOwnerStatus(policy, std::string(sender), event.status_changed());
    }
    if (event.has_forward_requested()) {
      return HandleForward(policy, std::string(sender), event.forward_requested());
    }
    return absl::InvalidArgumentError("an OrganisationEvent without an event");
  }
  if (record.topic == topology::kSubmittedTopic) {
    v1::ReferralSubmitted submitted;
    if (!submitted.ParseFromString(record.value)) {
      return absl::InvalidArgumentError("not a ReferralSubmitted event");
    }
    if (Lookup(submitted.meta().referral_id()) != nullptr) {
      return std::vector<Output>{};  // routed already (its offers are waiting)
    }
    std::vector<v1::AssignmentRequested> offers;
    std::vector<v1::AssignmentRequested> unroutable;
    absl::StatusOr<std::vector<Output>> out =
        RouteReferral(policy, submitted, &offers, load_, &unroutable);
    if (!out.ok()) return out.status();
    if (!offers.empty() || !unroutable.empty()) {
      Entry& entry = referrals_[submitted.meta().referral_id()];
      entry.partition = record.partition;
      entry.state.set_referral_id(submitted.meta().referral_id());
      for (const v1::AssignmentRequested& offer : offers) {
        Wait(policy.network(), *entry.state.add_needs(), offer);
        Track(entry, offer);
      }
      for (const v1::AssignmentRequested& need : unroutable) {
        KeepUnroutable(*entry.state.add_needs(), need, need.meta().assignment_id());
      }
      dirty_.insert(submitted.meta().referral_id());
    }
    return out;
  }
  if (record.topic == topology::kReassignTopic) {
    v1::ReassignRequested reassign;
    if (!reassign.ParseFromString(record.value)) {
      return absl::InvalidArgumentError("not a ReassignRequested event");
    }
    return HandleReassign(policy, reassign);
  }
  if (record.topic == topology::kCancellationsTopic) {
    v1::CancelRequested cancel;
    if (!cancel.ParseFromString(record.value)) {
      return absl::InvalidArgumentError("not a CancelRequested event");
    }
    return RouteCancel(policy.network(), cancel);
  }
  return absl::InvalidArgumentError(absl::StrCat("the router does not read ", record.topic));
}

std::vector<Output> Escalation::HandleStatus(const routing::Policy& policy, Entry& entry,
                                             const v1::AssignmentStatusChanged& status) {
  std::vector<Output> out;
  const std::string& id = status.meta().assignment_id();
  v1::RouterNeedState* need = FindNeed(entry, referral::NeedIndexOf(id));
  if (need == nullptr) return out;
  const v1::AssignmentStatus to = status.to_status();
  const bool accepted = to == v1::ASSIGNMENT_STATUS_ACCEPTED || referral::WorkStarted(to) ||
                        to == v1::ASSIGNMENT_STATUS_COMPLETED || to == v1::ASSIGNMENT_STATUS_FAILED;

  if (need->current().meta().assignment_id() != id) {
    // An earlier offer of this need. Only one thing matters: its owner accepted it before our
    // withdrawal arrived (the inbox then keeps it). That acceptance stands; the newer offer, still
    // waiting, is withdrawn.
    if (!accepted || need->settled()) return out;
    const auto earlier =
        std::find_if(need->earlier().begin(), need->earlier().end(),
                     [&](const v1::EarlierOffer& e) { return e.assignment_id() == id; });
    // An unroutable need's id (reassigned since) was never offered to anyone: nobody accepts it.
    if (earlier == need->earlier().end() || earlier->organisation().empty()) return out;
    if (Waiting(*need)) {
      out.push_back(Withdrawal(need->current(),
                               absl::StrCat("accepted by ", status.organisation(), " first"),
                               /*next_assignment_id=*/"", ToTimestamp(clock_())));
      MarkWithdrawn(entry, need->current().meta().assignment_id());
    } else {
      // Not waiting and not settled: its owner forwarded it, and that forward is now moot.
      spdlog::warn("router: {} was accepted after {} was forwarded; the acceptance stands", id,
                   need->current().meta().assignment_id());
    }
    v1::EarlierOffer* ended = need->add_earlier();
    ended->set_assignment_id(need->current().meta().assignment_id());
    ended->set_organisation(need->current().organisation());
    ended->set_ended(absl::StrCat("withdrawn: ", status.organisation(), " accepted first"));
    need->set_settled(true);
    need->clear_accept_by();
    dirty_.insert(entry.state.referral_id());
    return out;
  }

  if (need->settled()) return out;
  // A withdrawal's CANCELLED by "network" is the owner's answer to what the router did already.
  if (to == v1::ASSIGNMENT_STATUS_CANCELLED && status.by() == referral::kNetworkName) return out;
  if (accepted) {
    need->set_status(to);
    need->set_settled(true);
    need->clear_accept_by();
    dirty_.insert(entry.state.referral_id());
  } else if (to == v1::ASSIGNMENT_STATUS_RECEIVED) {
    need->set_status(to);  // still waiting; not worth a state record of its own
  } else if (to == v1::ASSIGNMENT_STATUS_REJECTED && !status.forward_to().empty()) {
    need->set_forwarding(true);  // the ForwardRequested makes the next offer
    need->clear_accept_by();
    dirty_.insert(entry.state.referral_id());
  } else if (to == v1::ASSIGNMENT_STATUS_REJECTED) {
    // The organisation's reason is its own free text: it stays in its inbox, not in the chain.
    Escalate(policy, entry, *need, "declined", /*withdraw=*/false, &out);
  } else if (to == v1::ASSIGNMENT_STATUS_CANCELLED && status.by() != referral::kNetworkName) {
    need->set_status(to);  // the referrer cancelled it: nobody else should get it
    need->set_settled(true);
    need->clear_accept_by();
    dirty_.insert(entry.state.referral_id());
  }
  return out;
}

void Escalation::Escalate(const routing::Policy& policy, Entry& entry, v1::RouterNeedState& need,
                          const std::string& ended, bool withdraw, std::vector<Output>* out) {
  const v1::AssignmentRequested current = need.current();
  const std::string& current_id = current.meta().assignment_id();
  const std::string next_id = referral::NextAssignmentId(current_id);
  const google::protobuf::Timestamp now = ToTimestamp(clock_());
  ++escalated_;
  v1::EarlierOffer* earlier = need.add_earlier();
  earlier->set_assignment_id(current_id);
  earlier->set_organisation(current.organisation());
  earlier->set_ended(ended);

  routing::RouteRequest request;
  request.open_assignments = load_;
  request.region = current.region();
  request.need_codes = {current.need_code()};
  request.sharing_organisations.assign(current.sharing().organisations().begin(),
                                       current.sharing().organisations().end());
  request.languages.assign(current.languages().begin(), current.languages().end());
  for (const v1::EarlierOffer& e : need.earlier()) {
    request.excluded_organisations.push_back(e.organisation());
  }
  const routing::NeedDecision decision = policy.Decide(request).front();

  // An organisation taken out of the network (its topic may be gone) gets no withdrawal.
  if (withdraw && policy.network().FindOrganisation(current.organisation()) != nullptr) {
    // The next id only when an offer continues the need; an unroutable need has none.
    out->push_back(Withdrawal(current, ended, decision.routable() ? next_id : "", now));
  }
  if (withdraw) MarkWithdrawn(entry, current_id);

  if (decision.routable()) {
    v1::AssignmentRequested next = current;
    *next.mutable_meta() = NewMeta(current.meta().referral_id(), next_id, now);
    next.set_organisation(decision.organisation);
    next.set_previous_assignment_id(current_id);
    AddOffer(next, out, absl::StrCat(current.organisation(), ": ", ended));
    Wait(policy.network(), need, next);
    Track(entry, next);
    spdlog::info("router: {} {} ({}); offered {} to {}", current_id, ended, current.organisation(),
                 next_id, decision.organisation);
  } else {
    // The chain first (oldest offer first), then everybody else's reason.
    std::vector<routing::PassedOver> chain;
    for (const v1::EarlierOffer& e : need.earlier()) {
      chain.push_back(
          {e.organisation(), absl::StrCat("offered (", e.assignment_id(), "): ", e.ended())});
    }
    std::vector<routing::PassedOver> others;
    for (const routing::PassedOver& p : decision.passed_over) {
      const bool tried = std::any_of(
          need.earlier().begin(), need.earlier().end(),
          [&](const v1::EarlierOffer& e) { return e.organisation() == p.organisation; });
      if (!tried) others.push_back(p);
    }
    out->push_back(
        Unroutable(NewMeta(current.meta().referral_id(), next_id, now), current, chain, others));
    KeepUnroutable(need, current, next_id);
    spdlog::info("router: {} {} ({}); nobody else can take need {}: unroutable", current_id, ended,
                 current.organisation(), current.need_index());
  }
  dirty_.insert(entry.state.referral_id());
}

void Escalation::KeepUnroutable(v1::RouterNeedState& need,
                                const v1::AssignmentRequested& as_offered,
                                const std::string& unroutable_id) {
  need.set_need_index(as_offered.need_index());
  need.set_need_code(as_offered.need_code());
  *need.mutable_current() = as_offered;
  need.set_settled(true);
  need.set_forwarding(false);
  need.clear_accept_by();
  need.set_unroutable(true);
  need.set_unroutable_id(unroutable_id);
}

std::vector<Output> Escalation::HandleReassign(const routing::Policy& policy,
                                               const v1::ReassignRequested& reassign) {
  std::vector<Output> out;
  const std::string& referral_id = reassign.meta().referral_id();
  const std::string& unroutable_id = reassign.meta().assignment_id();
  Entry* found = Lookup(referral_id);
  v1::RouterNeedState* need = found == nullptr ? nullptr : FindNeed(*found, reassign.need_index());
  // Redelivered after it was done, or about a need that is not (or no longer) in the queue: an
  // operator's second click, or a need that went on elsewhere meanwhile. Nothing to do.
  if (need == nullptr || !need->unroutable() || need->unroutable_id() != unroutable_id) {
    spdlog::info("router: reassign of {} (need {}) to {}: not in the unroutable queue, ignored",
                 unroutable_id, reassign.need_index(), reassign.to_organisation());
    return out;
  }
  const v1::AssignmentRequested& as_offered = need->current();
  // An operator's choice, checked by the forward-target rule as one: only membership of the
  // network and the client's sharing permission hold.
  const routing::HandoverCheck check = routing::CheckHandover(
      policy.network(), {.target = reassign.to_organisation(),
                         .sharing_organisations = {as_offered.sharing().organisations().begin(),
                                                   as_offered.sharing().organisations().end()},
                         .by_operator = true});
  const google::protobuf::Timestamp now = ToTimestamp(clock_());
  if (!check.ok()) {
    // The need stays in the queue; a new word about it says why the operator's choice failed.
    out.push_back(
        Unroutable(NewMeta(referral_id, unroutable_id, now), as_offered,
                   {{reassign.to_organisation(),
                     absl::StrCat("reassign by ", reassign.by(), " refused: ", check.reason)}},
                   /*others=*/{}));
    spdlog::warn("router: reassign of {} to {} refused: {}", unroutable_id,
                 reassign.to_organisation(), check.reason);
    return out;
  }
  const std::string& target = reassign.to_organisation();
  v1::AssignmentRequested next = as_offered;
  *next.mutable_meta() = NewMeta(referral_id, referral::NextAssignmentId(unroutable_id), now);
  next.set_organisation(target);
  next.set_previous_assignment_id(unroutable_id);
  AddOffer(next, &out, absl::StrCat("unroutable; reassigned by ", reassign.by()));
  v1::EarlierOffer* earlier = need->add_earlier();
  earlier->set_assignment_id(unroutable_id);
  earlier->set_ended(absl::StrCat("unroutable; reassigned to ", target, " by ", reassign.by()));
  need->set_unroutable(false);
  need->clear_unroutable_id();
  Wait(policy.network(), *need, next);
  Track(*found, next);
  dirty_.insert(referral_id);
  spdlog::info("router: {} reassigned by {}: offered {} to {}", unroutable_id, reassign.by(),
               next.meta().assignment_id(), target);
  return out;
}

std::vector<Output> Escalation::Tick(const routing::Policy& policy) {
  std::vector<Output> out;
  const auto now = clock_();
  if (!failure_.ok()) return out;
  // What the store says is due, and what is in memory (changed since it was stored).
  absl::StatusOr<std::vector<std::string>> due = store_->Due(
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count(),
      kMaxDuePerTick);
  if (!due.ok()) {
    Fail(due.status());
    return out;
  }
  absl::flat_hash_set<std::string> ids(due->begin(), due->end());
  for (const auto& [id, entry] : referrals_) {
    if (ids.insert(id).second) due->push_back(id);
  }
  for (const std::string& id : *due) {
    Entry* entry = Lookup(id);
    if (entry == nullptr) continue;
    for (v1::RouterNeedState& need : *entry->state.mutable_needs()) {
      if (!Waiting(need) || !need.has_accept_by()) continue;
      if (FromTimestamp(need.accept_by()) > now) continue;
      Escalate(policy, *entry, need, "not accepted in time", /*withdraw=*/true, &out);
    }
  }
  return out;
}

std::vector<Output> Escalation::TakeStateChanges() {
  std::vector<Output> out;
  for (const std::string& id : dirty_) {
    auto it = referrals_.find(id);
    if (it == referrals_.end()) continue;
    const v1::RouterReferralState& state = it->second.state;
    // A need in the unroutable queue is remembered until an operator reassigns it, an offer
    // until its lifecycle ends (the router accepts changes of it only while it knows its owner).
    const bool settled =
        std::all_of(state.needs().begin(), state.needs().end(),
                    [](const v1::RouterNeedState& n) { return n.settled() && !n.unroutable(); }) &&
        std::all_of(state.assignments().begin(), state.assignments().end(),
                    [](const v1::TrackedAssignment& a) { return referral::IsFinal(a.status()); });
    out.push_back(StateRecord(id, settled ? nullptr : &state));
    if (!failure_.ok()) continue;
    if (settled) {
      if (absl::Status s = store_->Erase(id); !s.ok()) Fail(s);
    } else {
      Keep(id, it->second, *out.back().value);
    }
  }
  dirty_.clear();
  referrals_.clear();
  if (failure_.ok()) {
    if (absl::Status s = store_->Flush(); !s.ok()) Fail(s);
  }
  return out;
}

}  // namespace schakel::router
