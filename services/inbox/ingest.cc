#include "services/inbox/ingest.h"

#include <spdlog/spdlog.h>

#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/privacy/sealed.h"
#include "libs/referral/lifecycle.h"
#include "schakel/v1/events.pb.h"
#include "services/inbox/personal_data.h"

namespace schakel::inbox {
namespace {

absl::Status Reject(std::string_view reason) {
  return absl::InvalidArgumentError(std::string(reason));
}

bool ValidTimestamp(const google::protobuf::Timestamp& t) {
  // The range google.protobuf.Timestamp allows: 0001-01-01 to 9999-12-31.
  return t.seconds() >= -62'135'596'800 && t.seconds() <= 253'402'300'799 && t.nanos() >= 0 &&
         t.nanos() <= 999'999'999;
}

}  // namespace

std::string_view IngestOutcomeName(IngestOutcome outcome) {
  switch (outcome) {
    case IngestOutcome::kStored:
      return "stored";
    case IngestOutcome::kDuplicate:
      return "duplicate";
    case IngestOutcome::kRejected:
      return "rejected";
  }
  return "unknown";
}

namespace {

// AssignmentFromRecord on a value already decoded (`wrapper` is null when it did not parse).
absl::StatusOr<schakel::v1::Assignment> AssignmentFromEvent(
    std::string_view organisation, const kafka::Record& record,
    const schakel::v1::InboxEvent* wrapper) {
  if (wrapper == nullptr || !wrapper->has_requested()) {
    return Reject("value is not a schakel.v1.InboxEvent with an AssignmentRequested");
  }
  const schakel::v1::AssignmentRequested& event = wrapper->requested();
  if (!event.has_meta()) return Reject("meta is missing");
  const schakel::v1::EventMeta& meta = event.meta();
  if (meta.schema_version() != kAssignmentRequestedSchemaVersion) {
    return Reject(absl::StrCat("meta.schema_version ", meta.schema_version(),
                               " is not supported (this inbox reads ",
                               kAssignmentRequestedSchemaVersion, ")"));
  }
  if (event.organisation() != organisation) {
    // The value is not echoed: a record that is not for us may be anything.
    return Reject(
        absl::StrCat("organisation is not this inbox's (", std::string(organisation), ")"));
  }
  if (meta.assignment_id().empty()) return Reject("meta.assignment_id is missing");
  if (meta.referral_id().empty()) return Reject("meta.referral_id is missing");
  // Records are keyed by assignment id; a different key means the producer is confused about what
  // this is.
  if (!record.key.empty() && record.key != meta.assignment_id()) {
    return Reject("record key does not match meta.assignment_id");
  }
  if (event.need_code().empty()) return Reject("need_code is missing");
  if (!meta.has_occurred_at()) return Reject("meta.occurred_at is missing");
  if (!ValidTimestamp(meta.occurred_at())) return Reject("meta.occurred_at is out of range");

  schakel::v1::Assignment assignment;
  assignment.set_assignment_id(meta.assignment_id());
  assignment.set_referral_id(meta.referral_id());
  assignment.set_organisation(event.organisation());
  assignment.set_need_code(event.need_code());
  assignment.set_need_details(event.need_details());
  assignment.set_status(schakel::v1::ASSIGNMENT_STATUS_REQUESTED);
  assignment.set_client_pseudonym(event.client_pseudonym());
  assignment.set_urgency(event.urgency());
  assignment.set_region(event.region());
  *assignment.mutable_languages() = event.languages();
  assignment.set_referring_organisation(event.referring_organisation());
  *assignment.mutable_requested_at() = meta.occurred_at();
  *assignment.mutable_updated_at() = meta.occurred_at();
  assignment.set_version(1);
  assignment.set_forwarded_from(event.previous_assignment_id());
  *assignment.mutable_sharing() = event.sharing();
  schakel::v1::StatusChange* requested = assignment.add_history();
  requested->set_to_status(schakel::v1::ASSIGNMENT_STATUS_REQUESTED);
  *requested->mutable_at() = meta.occurred_at();
  requested->set_by(kByNetwork);
  requested->set_version(1);
  return assignment;
}

IngestResult Stored() { return {IngestOutcome::kStored, {}}; }
IngestResult Duplicate() { return {IngestOutcome::kDuplicate, {}}; }

}  // namespace

absl::StatusOr<schakel::v1::Assignment> AssignmentFromRecord(std::string_view organisation,
                                                             const kafka::Record& record) {
  schakel::v1::InboxEvent wrapper;
  const bool parsed = wrapper.ParseFromString(record.value);
  return AssignmentFromEvent(organisation, record, parsed ? &wrapper : nullptr);
}

AssignmentIngest::AssignmentIngest(std::string organisation, store::InboxStore& store, Clock clock,
                                   const routing::Network* network)
    : organisation_(std::move(organisation)),
      network_(network),
      store_(store),
      clock_(std::move(clock)) {}

absl::Status AssignmentIngest::ApplyRules(Batch& batch, const schakel::v1::Assignment& received) {
  const routing::Organisation* self =
      network_ == nullptr ? nullptr : network_->FindOrganisation(organisation_);
  if (self == nullptr) return absl::OkStatus();
  Step step;
  step.transition.to = schakel::v1::ASSIGNMENT_STATUS_REJECTED;
  step.transition.actor = referral::Actor::kNetwork;
  step.by = kByNetwork;
  step.at = clock_();
  for (const routing::ForwardRule& rule : self->forward_rules) {
    if (rule.need != received.need_code()) continue;
    // The rule was checked against the network when it was loaded; the client's sharing permission
    // can only be checked now. Outside it, the assignment stays for a person to decide.
    if (absl::Status allowed = CheckForwardTarget(*network_, organisation_, received, rule.to);
        !allowed.ok()) {
      spdlog::warn("inbox {}: automatic forward of {} not applied: {}", organisation_,
                   received.assignment_id(), std::string(allowed.message()));
      return absl::OkStatus();
    }
    step.forward_to = rule.to;
    step.transition.reason = absl::StrCat("forwarded to ", rule.to, ": automatic rule");
    break;
  }
  if (step.forward_to.empty()) {
    if (!self->decline_rule.has_value()) return absl::OkStatus();
    absl::StatusOr<std::int64_t> open = batch.CountOpen();
    if (!open.ok()) return open.status();
    if (*open <= self->decline_rule->open_above) return absl::OkStatus();
    step.transition.reason = self->decline_rule->reason;
  }
  absl::StatusOr<schakel::v1::Assignment> changed = batch.Apply(
      received.assignment_id(), received.version(),
      [&step](const schakel::v1::Assignment& current) { return MakeChange(current, step); });
  if (absl::IsAborted(changed.status()) || absl::IsFailedPrecondition(changed.status())) {
    return absl::OkStatus();  // a person acted first: theirs stands
  }
  if (!changed.ok()) return changed.status();
  spdlog::info("inbox {}: automatic rule: {} {}", organisation_, received.assignment_id(),
               step.transition.reason);
  return absl::OkStatus();
}

IngestResult AssignmentIngest::Rejected(const kafka::Record& record, std::string_view why) const {
  // Where it is and why, never what it says: the payload is personal data.
  spdlog::warn("inbox {}: rejected record {}/{}@{}: {}", organisation_, record.topic,
               record.partition, record.offset, std::string(why));
  return {IngestOutcome::kRejected, std::string(why)};
}

absl::StatusOr<IngestResult> AssignmentIngest::Restore(
    Batch& batch, const kafka::Record& record, const schakel::v1::AssignmentStatusChanged& change) {
  const std::string& id = change.meta().assignment_id();
  if (change.organisation() != organisation_) {
    return Rejected(record,
                    absl::StrCat("status change is not for this inbox (", organisation_, ")"));
  }
  if (id.empty() || change.version() < 2) {
    return Rejected(record, "status change without assignment id or with version below 2");
  }
  absl::StatusOr<schakel::v1::Assignment> current = batch.Get(id);
  if (absl::IsNotFound(current.status())) {
    return Rejected(record, "status change for an assignment this inbox does not have");
  }
  if (!current.ok()) return current.status();
  if (current->version() >= change.version()) {
    return Duplicate();  // our own change, already stored
  }
  // What the organisation typed comes back sealed: opened with the key kept with the assignment
  // (none: the client was erased, and the text stays unread).
  std::string reason = change.reason();
  std::string outcome = change.outcome();
  if (change.has_sealed_reason() || change.has_sealed_outcome()) {
    absl::StatusOr<std::optional<store::DataKey>> key = batch.GetKey(id);
    if (!key.ok()) return key.status();
    const std::string& referral_id = change.meta().referral_id();
    for (auto [sealed, context, text, field] :
         {std::tuple(&change.sealed_reason(),
                     privacy::StatusReasonContext(referral_id, id, change.version()), &reason,
                     "sealed_reason"),
          std::tuple(&change.sealed_outcome(),
                     privacy::StatusOutcomeContext(referral_id, id, change.version()), &outcome,
                     "sealed_outcome")}) {
      if (sealed->key_id().empty()) continue;
      absl::StatusOr<std::optional<std::string>> opened = OpenTyped(*sealed, *key, context);
      if (!opened.ok()) {
        return Rejected(record, absl::StrCat(field, ": ", opened.status().message()));
      }
      *text = opened->value_or(std::string());
    }
  }
  absl::StatusOr<schakel::v1::Assignment> restored =
      batch.Apply(id, current->version(),
                  [&change, &reason,
                   &outcome](const schakel::v1::Assignment& now) -> absl::StatusOr<store::Change> {
                    store::Change step;
                    step.assignment = now;
                    schakel::v1::Assignment& next = step.assignment;
                    next.set_status(change.to_status());
                    next.set_version(change.version());
                    next.set_status_reason(reason);
                    if (!outcome.empty()) next.set_outcome(outcome);
                    *next.mutable_updated_at() = change.meta().occurred_at();
                    schakel::v1::StatusChange* history = next.add_history();
                    history->set_from_status(change.from_status());
                    history->set_to_status(change.to_status());
                    *history->mutable_at() = change.meta().occurred_at();
                    history->set_reason(reason);
                    history->set_outcome(outcome);
                    history->set_by(change.by());
                    history->set_version(change.version());
                    return step;  // no events: this change was published when it was made
                  });
  if (!restored.ok()) return restored.status();
  spdlog::info("inbox {}: restored {} to {} (version {}) from {}/{}@{}", organisation_, id,
               referral::StatusName(change.to_status()), change.version(), record.topic,
               record.partition, record.offset);
  return Stored();
}

absl::StatusOr<IngestResult> AssignmentIngest::Cancel(Batch& batch, const kafka::Record& record,
                                                      const schakel::v1::CancelRequested& cancel) {
  const std::string& id = cancel.meta().assignment_id();
  if (cancel.meta().schema_version() != 1) {
    return Rejected(record, absl::StrCat("cancel request meta.schema_version ",
                                         cancel.meta().schema_version(), " is not supported"));
  }
  if (cancel.organisation() != organisation_) {
    return Rejected(record,
                    absl::StrCat("cancel request is not for this inbox (", organisation_, ")"));
  }
  if (id.empty()) return Rejected(record, "cancel request without assignment id");
  if (!record.key.empty() && record.key != id) {
    return Rejected(record, "record key does not match meta.assignment_id");
  }
  // The referrer's reason comes sealed with the client's key; the inbox opens it with its copy.
  absl::StatusOr<std::optional<store::DataKey>> key = batch.GetKey(id);
  if (!key.ok()) return key.status();
  std::string reason = cancel.reason();
  if (cancel.has_sealed_reason()) {
    absl::StatusOr<std::optional<std::string>> opened =
        OpenTyped(cancel.sealed_reason(), *key,
                  privacy::CancelReasonContext(cancel.meta().referral_id(), id));
    if (!opened.ok()) {
      return Rejected(record, absl::StrCat("sealed_reason: ", opened.status().message()));
    }
    reason = opened->value_or(std::string(kUnreadableCancelReason));
  }
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Rejected(record, "cancel request without reason");
  }
  // A concurrent change by the owner makes Apply answer ABORTED: decide again on what it made.
  // (Inside the batch's transaction nobody else writes; the loop keeps Cancel right without one.)
  for (int attempt = 0; attempt < 5; ++attempt) {
    absl::StatusOr<schakel::v1::Assignment> current = batch.Get(id);
    if (absl::IsNotFound(current.status())) {
      return Rejected(record, "cancel request for an assignment this inbox does not have");
    }
    if (!current.ok()) return current.status();
    if (cancel.referring_organisation() != current->referring_organisation()) {
      return Rejected(record, "cancel request not from the assignment's referring organisation");
    }
    const bool started = referral::WorkStarted(current->status());
    if (referral::IsFinal(current->status()) ||
        (started && current->cancellation_requested() == reason)) {
      return Duplicate();  // done already, or redelivered
    }
    absl::StatusOr<schakel::v1::Assignment> changed;
    if (!started) {
      Step step;
      step.transition.to = schakel::v1::ASSIGNMENT_STATUS_CANCELLED;
      step.transition.actor = referral::Actor::kReferrer;
      step.transition.reason = reason;
      step.by = cancel.referring_organisation();
      step.at = clock_();
      step.key = *key;
      changed = batch.Apply(id, current->version(), [&step](const schakel::v1::Assignment& now) {
        return MakeChange(now, step);
      });
    } else {
      // Work has started: the owner decides. Only the request is recorded, as a new version, so
      // that WatchAssignments shows it; the status and its history stay as they are.
      const google::protobuf::Timestamp at = clock_();
      changed = batch.Apply(
          id, current->version(),
          [&reason, &at](const schakel::v1::Assignment& now) -> absl::StatusOr<store::Change> {
            store::Change step;
            step.assignment = now;
            step.assignment.set_cancellation_requested(reason);
            step.assignment.set_version(now.version() + 1);
            *step.assignment.mutable_updated_at() = at;
            return step;
          });
    }
    if (absl::IsAborted(changed.status())) continue;
    if (absl::IsFailedPrecondition(changed.status())) {
      // The lifecycle refused on the state we read: the owner's change stands.
      spdlog::info("inbox {}: cancel request for {} not applied: {}", organisation_, id,
                   std::string(changed.status().message()));
      return Duplicate();
    }
    if (absl::IsInvalidArgument(changed.status())) {
      return Rejected(record, std::string(changed.status().message()));
    }
    if (!changed.ok()) return changed.status();
    spdlog::info("inbox {}: {} {} by the referring organisation (version {})", organisation_, id,
                 started ? "cancellation requested" : "cancelled", changed->version());
    return Stored();
  }
  // The owner keeps changing it: their changes stand; the request is dropped with a trace.
  spdlog::warn("inbox {}: cancel request for {} not applied: the assignment kept changing",
               organisation_, id);
  return Duplicate();
}

absl::StatusOr<IngestResult> AssignmentIngest::Withdraw(Batch& batch, const kafka::Record& record,
                                                        const schakel::v1::Withdrawal& withdrawal) {
  const std::string& id = withdrawal.meta().assignment_id();
  if (withdrawal.meta().schema_version() != 1) {
    return Rejected(record, absl::StrCat("withdrawal meta.schema_version ",
                                         withdrawal.meta().schema_version(), " is not supported"));
  }
  if (withdrawal.organisation() != organisation_) {
    return Rejected(record, absl::StrCat("withdrawal is not for this inbox (", organisation_, ")"));
  }
  if (id.empty()) return Rejected(record, "withdrawal without assignment id");
  if (!record.key.empty() && record.key != id) {
    return Rejected(record, "record key does not match meta.assignment_id");
  }
  if (withdrawal.reason().find_first_not_of(" \t\r\n") == std::string::npos) {
    return Rejected(record, "withdrawal without reason");
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    absl::StatusOr<schakel::v1::Assignment> current = batch.Get(id);
    if (absl::IsNotFound(current.status())) {
      return Rejected(record, "withdrawal of an assignment this inbox does not have");
    }
    if (!current.ok()) return current.status();
    if (referral::IsFinal(current->status()) || referral::WorkStarted(current->status()) ||
        current->status() == schakel::v1::ASSIGNMENT_STATUS_ACCEPTED) {
      spdlog::info("inbox {}: withdrawal of {} not applied: it is {}", organisation_, id,
                   referral::StatusName(current->status()));
      return Duplicate();  // accepted first, or ended already
    }
    Step step;
    step.transition.to = schakel::v1::ASSIGNMENT_STATUS_CANCELLED;
    step.transition.actor = referral::Actor::kNetwork;
    step.transition.reason = withdrawal.reason();
    step.by = std::string(kByNetwork);
    step.at = clock_();
    absl::StatusOr<schakel::v1::Assignment> changed =
        batch.Apply(id, current->version(),
                    [&step](const schakel::v1::Assignment& now) { return MakeChange(now, step); });
    if (absl::IsAborted(changed.status())) continue;  // the owner changed it meanwhile: look again
    if (absl::IsFailedPrecondition(changed.status())) {
      return Duplicate();
    }
    if (absl::IsInvalidArgument(changed.status())) {
      // The lifecycle refuses the reason (longer than it allows): a bad record, which must not
      // block the inbox as a failing store does.
      return Rejected(record, std::string(changed.status().message()));
    }
    if (!changed.ok()) return changed.status();
    spdlog::info("inbox {}: {} withdrawn by the network ({}; continues as {})", organisation_, id,
                 withdrawal.reason(),
                 withdrawal.next_assignment_id().empty() ? "-" : withdrawal.next_assignment_id());
    return Stored();
  }
  spdlog::warn("inbox {}: withdrawal of {} not applied: the assignment kept changing",
               organisation_, id);
  return Duplicate();
}

AssignmentIngest::Prepared AssignmentIngest::Decode(const kafka::Record& record) {
  Prepared prepared;
  prepared.record = &record;
  prepared.parsed = prepared.event.ParseFromString(record.value);
  // After a failed parse the event may hold whatever was read before the bad bytes: act on none of
  // it (Decide rejects the record).
  if (!prepared.parsed) prepared.event.Clear();
  if (prepared.parsed && prepared.event.has_requested()) {
    prepared.personal.set_need_details(prepared.event.requested().need_details());
  }
  return prepared;
}

absl::Status AssignmentIngest::OpenAll(std::vector<Prepared>& prepared) const {
  // Which offers carry sealed data, and the key each needs.
  std::vector<Prepared*> sealed;
  std::vector<privacy::AssignmentKeyAsk> asks;
  for (Prepared& p : prepared) {
    if (!p.parsed || !p.event.has_requested()) continue;
    absl::StatusOr<std::optional<privacy::AssignmentKeyAsk>> ask = KeyToOpen(p.event.requested());
    if (!ask.ok()) {
      p.unopenable = std::string(ask.status().message());
    } else if (ask->has_value()) {
      sealed.push_back(&p);
      asks.push_back(**std::move(ask));
    }
  }
  if (sealed.empty()) return absl::OkStatus();
  // All keys at once: the key service answers what arrives together after one audit commit.
  std::vector<absl::StatusOr<v1::DataKey>> keys;
  if (keys_ != nullptr) {
    keys = keys_->AssignmentKeys(asks);
  } else {
    keys.assign(asks.size(), NoKeyService());
  }
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    Prepared& p = *sealed[i];
    absl::Status opened = OpenWithKey(p.event.requested(), keys[i], p.personal);
    if (absl::IsDataLoss(opened)) {
      p.unopenable = std::string(opened.message());
    } else if (!opened.ok()) {
      return opened;  // the key comes later: the batch is tried again
    } else if (keys[i].ok()) {
      p.key = store::DataKey{.key_id = keys[i]->key_id(), .key = keys[i]->key()};
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<IngestResult> AssignmentIngest::Decide(Batch& batch, const Prepared& prepared,
                                                      bool replay) {
  const kafka::Record& record = *prepared.record;
  const schakel::v1::InboxEvent& event = prepared.event;
  if (prepared.parsed && event.has_status_changed()) {
    return Restore(batch, record, event.status_changed());
  }
  if (prepared.parsed && event.has_withdrawn()) {
    if (replay)
      return Duplicate();  // as with cancel requests: the inbox's answer follows on the topic
    return Withdraw(batch, record, event.withdrawn());
  }
  if (prepared.parsed && event.has_cancel_requested()) {
    // In a rebuild the inbox's answer to an old request is already on the topic as a status change.
    if (replay) return Duplicate();
    return Cancel(batch, record, event.cancel_requested());
  }
  return Offer(batch, prepared, replay);
}

absl::StatusOr<IngestResult> AssignmentIngest::Offer(Batch& batch, const Prepared& prepared,
                                                     bool replay) {
  const kafka::Record& record = *prepared.record;
  absl::StatusOr<schakel::v1::Assignment> assignment =
      AssignmentFromEvent(organisation_, record, prepared.parsed ? &prepared.event : nullptr);
  if (!assignment.ok()) return Rejected(record, std::string(assignment.status().message()));
  if (!prepared.unopenable.empty()) return Rejected(record, prepared.unopenable);
  assignment->set_need_details(prepared.personal.need_details());
  assignment->set_client_name(prepared.personal.client_name());
  assignment->set_client_contact(prepared.personal.client_contact());
  assignment->set_erased(prepared.personal.erased());
  assignment->set_personal_data_unavailable(prepared.personal.personal_data_unavailable());
  if (replay) {
    // History: stored as requested; its own status changes follow on the topic.
    absl::StatusOr<bool> inserted = batch.Insert(*assignment, {});
    if (!inserted.ok()) return inserted.status();
    if (*inserted && prepared.key.has_value()) {
      if (absl::Status kept = batch.PutKey(assignment->assignment_id(), *prepared.key);
          !kept.ok()) {
        return kept;
      }
    }
    return *inserted ? Stored() : Duplicate();
  }
  // Received the moment it is stored: the referrer learns that it arrived.
  Step received;
  received.transition.to = schakel::v1::ASSIGNMENT_STATUS_RECEIVED;
  received.transition.actor = referral::Actor::kOwner;
  received.by = organisation_;
  received.at = clock_();
  absl::StatusOr<store::Change> change = MakeChange(*assignment, received);
  if (!change.ok()) {
    // REQUESTED -> RECEIVED by the owner is always allowed; anything else is a broken invariant.
    return absl::InternalError(absl::StrCat("inbox: cannot receive assignment ",
                                            assignment->assignment_id(), ": ",
                                            std::string(change.status().message())));
  }
  absl::StatusOr<bool> inserted = batch.Insert(change->assignment, change->events, change->audit);
  if (!inserted.ok()) return inserted.status();
  if (*inserted && prepared.key.has_value()) {
    if (absl::Status kept = batch.PutKey(assignment->assignment_id(), *prepared.key); !kept.ok()) {
      return kept;
    }
  }
  if (*inserted) {
    if (absl::Status ruled = ApplyRules(batch, change->assignment); !ruled.ok()) return ruled;
    spdlog::debug("inbox {}: stored assignment {} from {}/{}@{}", organisation_,
                  assignment->assignment_id(), record.topic, record.partition, record.offset);
    return Stored();
  }
  spdlog::debug("inbox {}: assignment {} from {}/{}@{} was already stored", organisation_,
                assignment->assignment_id(), record.topic, record.partition, record.offset);
  return Duplicate();
}

absl::StatusOr<std::vector<IngestResult>> AssignmentIngest::IngestBatch(
    std::span<const kafka::Record> records) {
  // First what may wait, outside the transaction: every other user of the store waits for it.
  std::vector<Prepared> prepared;
  prepared.reserve(records.size());
  for (const kafka::Record& record : records) prepared.push_back(Decode(record));
  if (absl::Status opened = OpenAll(prepared); !opened.ok()) return opened;

  std::vector<IngestResult> results;
  // The replay's progress moves with the batch: taken over only once the batch is durable.
  std::map<std::int32_t, std::int64_t> replay_end = replay_end_;
  absl::Status stored = store_.InTransaction([&](Batch& batch) -> absl::Status {
    results.clear();
    results.reserve(prepared.size());
    for (const Prepared& p : prepared) {
      const kafka::Record& record = *p.record;
      const auto end = replay_end.find(record.partition);
      const bool replay = end != replay_end.end() && record.offset < end->second;
      absl::StatusOr<IngestResult> result = Decide(batch, p, replay);
      if (!result.ok()) return result.status();
      results.push_back(*std::move(result));
      if (end == replay_end.end() || record.offset + 1 < end->second) continue;
      replay_end.erase(end);  // this partition's history is in
      if (replay_end.empty()) {
        if (absl::Status finished = FinishReplay(batch); !finished.ok()) return finished;
      }
    }
    return absl::OkStatus();
  });
  if (!stored.ok()) return stored;

  replay_end_ = std::move(replay_end);
  for (const IngestResult& result : results) {
    switch (result.outcome) {
      case IngestOutcome::kStored:
        stored_.fetch_add(1, std::memory_order_relaxed);
        break;
      case IngestOutcome::kDuplicate:
        duplicates_.fetch_add(1, std::memory_order_relaxed);
        break;
      case IngestOutcome::kRejected:
        rejected_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
  }
  return results;
}

absl::StatusOr<IngestOutcome> AssignmentIngest::Ingest(const kafka::Record& record) {
  absl::StatusOr<std::vector<IngestResult>> results = IngestBatch({&record, 1});
  if (!results.ok()) return results.status();
  IngestResult& result = results->front();
  if (result.outcome == IngestOutcome::kRejected) last_rejection_ = std::move(result.rejection);
  return result.outcome;
}

absl::Status AssignmentIngest::ReplayUntil(std::map<std::int32_t, std::int64_t> end_offsets) {
  replay_end_.clear();
  for (const auto& [partition, end] : end_offsets) {
    if (end > 0) replay_end_[partition] = end;
  }
  spdlog::info("inbox {}: rebuilding from the topic ({} partitions to replay)", organisation_,
               replay_end_.size());
  if (replay_end_.empty()) {
    return store_.InTransaction([this](Batch& batch) { return FinishReplay(batch); });
  }
  return absl::OkStatus();
}

absl::Status AssignmentIngest::Receive(Batch& batch, const schakel::v1::Assignment& requested) {
  Step received;
  received.transition.to = schakel::v1::ASSIGNMENT_STATUS_RECEIVED;
  received.transition.actor = referral::Actor::kOwner;
  received.by = organisation_;
  received.at = clock_();
  absl::StatusOr<schakel::v1::Assignment> changed =
      batch.Apply(requested.assignment_id(), requested.version(),
                  [&received](const schakel::v1::Assignment& current) {
                    return MakeChange(current, received);
                  });
  if (!changed.ok()) return changed.status();
  return ApplyRules(batch, *changed);
}

absl::Status AssignmentIngest::FinishReplay(Batch& batch) {
  int received = 0;
  store::ListQuery query;
  query.status = schakel::v1::ASSIGNMENT_STATUS_REQUESTED;
  query.page_size = 500;
  // Receiving moves an assignment out of the filter, so the first page is asked again until empty.
  while (true) {
    absl::StatusOr<store::Page> page = batch.List(query);
    if (!page.ok()) return page.status();
    if (page->assignments.empty()) break;
    for (const schakel::v1::Assignment& a : page->assignments) {
      if (absl::Status s = Receive(batch, a); !s.ok()) return s;
      ++received;
    }
  }
  spdlog::info("inbox {}: rebuilt from the topic; {} assignments received now", organisation_,
               received);
  return absl::OkStatus();
}

IngestCounts AssignmentIngest::counts() const {
  IngestCounts counts;
  counts.stored = stored_.load(std::memory_order_relaxed);
  counts.duplicates = duplicates_.load(std::memory_order_relaxed);
  counts.rejected = rejected_.load(std::memory_order_relaxed);
  return counts;
}

}  // namespace schakel::inbox
