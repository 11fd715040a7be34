#include "services/inbox/ingest.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::schakel::inbox::testing::At;
using ::schakel::inbox::testing::kFromTopic;
using ::schakel::inbox::testing::kOrg;
using ::schakel::inbox::testing::MakeEvent;
using ::schakel::inbox::testing::MakeRecord;
using ::schakel::inbox::testing::SentForward;
using ::schakel::inbox::testing::SentStatus;
using ::schakel::inbox::testing::TempStore;
using ::schakel::v1::Assignment;
using ::schakel::v1::AssignmentRequested;
using ::schakel::v1::AssignmentStatusChanged;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

TEST(AssignmentFromRecordTest, MapsEveryField) {
  AssignmentRequested event = MakeEvent("r-1", 0, "debt", 1'700'000'000);
  absl::StatusOr<Assignment> assignment = AssignmentFromRecord(kOrg, MakeRecord(event));
  ASSERT_TRUE(assignment.ok()) << assignment.status();

  Assignment expected;
  expected.set_assignment_id("a-r-1-0");
  expected.set_referral_id("r-1");
  expected.set_organisation("mjd");
  expected.set_need_code("debt");
  expected.set_need_details("Needs help with a letter from the tax office");
  expected.set_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  expected.set_client_pseudonym("p-0123456789abcdef");
  expected.set_urgency(v1::URGENCY_URGENT);
  expected.set_region("groningen-stad");
  expected.add_languages("nl");
  expected.add_languages("ro");
  expected.set_referring_organisation("gemeente");
  expected.mutable_requested_at()->set_seconds(1'700'000'000);
  expected.mutable_requested_at()->set_nanos(500);
  *expected.mutable_updated_at() = expected.requested_at();
  expected.set_version(1);
  expected.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  expected.mutable_sharing()->add_organisations("gemeente");
  expected.mutable_sharing()->add_organisations("mjd");
  v1::StatusChange* requested = expected.add_history();
  requested->set_to_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  *requested->mutable_at() = expected.requested_at();
  requested->set_by("network");
  requested->set_version(1);
  EXPECT_TRUE(MessageDifferencer::Equals(*assignment, expected))
      << assignment->DebugString() << "\nexpected:\n"
      << expected.DebugString();
}

TEST(AssignmentFromRecordTest, KeepsWhereAForwardedAssignmentCameFrom) {
  AssignmentRequested event = MakeEvent("r-1", 0, "debt", 100);
  event.set_previous_assignment_id("a-r-1-0-terwille");
  absl::StatusOr<Assignment> assignment = AssignmentFromRecord(kOrg, MakeRecord(event));
  ASSERT_TRUE(assignment.ok()) << assignment.status();
  EXPECT_EQ(assignment->forwarded_from(), "a-r-1-0-terwille");
}

TEST(AssignmentFromRecordTest, AcceptsARecordWithoutKey) {
  kafka::Record record = MakeRecord(MakeEvent("r-1", 0, "debt", 100));
  record.key.clear();
  EXPECT_TRUE(AssignmentFromRecord(kOrg, record).ok());
}

struct RejectCase {
  std::string name;
  std::function<void(kafka::Record&)> spoil;
  std::string reason;
};
// ctest lists parameterised tests by this name instead of a byte dump.
void PrintTo(const RejectCase& c, std::ostream* os) { *os << c.name; }

// Applies `change` to a valid event and puts it back in the record.
std::function<void(kafka::Record&)> Event(std::function<void(AssignmentRequested&)> change) {
  return [change](kafka::Record& record) {
    v1::InboxEvent wrapper;
    ASSERT_TRUE(wrapper.ParseFromString(record.value));
    change(*wrapper.mutable_requested());
    record.value = wrapper.SerializeAsString();
  };
}

class RejectTest : public ::testing::TestWithParam<RejectCase> {};

TEST_P(RejectTest, RejectsWithReasonAndStoresNothing) {
  kafka::Record record = MakeRecord(MakeEvent("r-1", 0, "debt", 100));
  GetParam().spoil(record);

  absl::StatusOr<Assignment> assignment = AssignmentFromRecord(kOrg, record);
  EXPECT_EQ(assignment.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(assignment.status().message(), GetParam().reason);

  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  absl::StatusOr<IngestOutcome> outcome = ingest.Ingest(record);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, IngestOutcome::kRejected);
  EXPECT_EQ(temp.store().Count().value_or(-1), 0);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), 0);
  EXPECT_TRUE(temp.store().PendingOutbox(10).value().empty());
  EXPECT_EQ(ingest.counts().rejected, 1u);
  EXPECT_EQ(ingest.counts().stored, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Records, RejectTest,
    ::testing::Values(
        RejectCase{"Undecodable", [](kafka::Record& r) { r.value = std::string("\x0a\xff", 2); },
                   "value is not a schakel.v1.InboxEvent with an AssignmentRequested"},
        RejectCase{"NoMeta", Event([](AssignmentRequested& e) { e.clear_meta(); }),
                   "meta is missing"},
        RejectCase{"SchemaVersionZero",
                   Event([](AssignmentRequested& e) { e.mutable_meta()->set_schema_version(0); }),
                   "meta.schema_version 0 is not supported (this inbox reads 1)"},
        RejectCase{"SchemaVersionTwo",
                   Event([](AssignmentRequested& e) { e.mutable_meta()->set_schema_version(2); }),
                   "meta.schema_version 2 is not supported (this inbox reads 1)"},
        RejectCase{"OtherOrganisation",
                   Event([](AssignmentRequested& e) { e.set_organisation("ggd"); }),
                   "organisation is not this inbox's (mjd)"},
        RejectCase{"NoOrganisation", Event([](AssignmentRequested& e) { e.clear_organisation(); }),
                   "organisation is not this inbox's (mjd)"},
        RejectCase{"NoAssignmentId",
                   Event([](AssignmentRequested& e) { e.mutable_meta()->clear_assignment_id(); }),
                   "meta.assignment_id is missing"},
        RejectCase{"NoReferralId",
                   Event([](AssignmentRequested& e) { e.mutable_meta()->clear_referral_id(); }),
                   "meta.referral_id is missing"},
        RejectCase{"KeyMismatch", [](kafka::Record& r) { r.key = "a-other-0"; },
                   "record key does not match meta.assignment_id"},
        RejectCase{"NoNeed", Event([](AssignmentRequested& e) { e.clear_need_code(); }),
                   "need_code is missing"},
        RejectCase{"NoTime",
                   Event([](AssignmentRequested& e) { e.mutable_meta()->clear_occurred_at(); }),
                   "meta.occurred_at is missing"},
        RejectCase{"BadTime", Event([](AssignmentRequested& e) {
                     e.mutable_meta()->mutable_occurred_at()->set_nanos(-1);
                   }),
                   "meta.occurred_at is out of range"}),
    [](const ::testing::TestParamInfo<RejectCase>& param) { return param.param.name; });

TEST(AssignmentIngestTest, StoresItAsReceivedWithOneStatusEvent) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(2'000'000'000); });
  AssignmentRequested event = MakeEvent("r-1", 0, "debt", 1'700'000'000);
  event.set_previous_assignment_id("a-earlier");
  ASSERT_EQ(ingest.Ingest(MakeRecord(event)).value_or(IngestOutcome::kRejected),
            IngestOutcome::kStored);

  absl::StatusOr<Assignment> requested = AssignmentFromRecord(kOrg, MakeRecord(event));
  ASSERT_TRUE(requested.ok());
  Assignment expected = *requested;
  expected.set_status(v1::ASSIGNMENT_STATUS_RECEIVED);
  expected.set_version(2);
  *expected.mutable_updated_at() = At(2'000'000'000);
  v1::StatusChange* received = expected.add_history();
  received->set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  received->set_to_status(v1::ASSIGNMENT_STATUS_RECEIVED);
  *received->mutable_at() = At(2'000'000'000);
  received->set_by("mjd");
  received->set_version(2);
  absl::StatusOr<Assignment> stored = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*stored, expected))
      << stored->DebugString() << "\nexpected:\n"
      << expected.DebugString();
  EXPECT_EQ(stored->forwarded_from(), "a-earlier");
  EXPECT_EQ(stored->sharing().organisations_size(), 2);

  // One row in the changes feed; in the outbox its status event and the same on the org's own
  // topic.
  absl::StatusOr<std::vector<store::StoredChange>> changes = temp.store().ChangesAfter(0, 10);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*changes)[0].assignment, expected));
  absl::StatusOr<std::vector<store::OutboxEntry>> outbox = temp.store().PendingOutbox(10);
  ASSERT_TRUE(outbox.ok());
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[0].event.topic, kFromTopic);
  EXPECT_EQ((*outbox)[1].event.topic, "schakel.inbox.mjd");
  EXPECT_EQ((*outbox)[0].event.key, "r-1");  // the router keeps its state per referral
  ASSERT_TRUE(SentStatus((*outbox)[0].event).has_value());
  AssignmentStatusChanged published = *SentStatus((*outbox)[0].event);
  EXPECT_THAT(published.meta().event_id(), StartsWith("e-"));
  EXPECT_NE(published.meta().event_id(), event.meta().event_id());

  AssignmentStatusChanged want;
  want.mutable_meta()->set_schema_version(1);
  want.mutable_meta()->set_event_id(published.meta().event_id());
  *want.mutable_meta()->mutable_occurred_at() = At(2'000'000'000);
  want.mutable_meta()->set_referral_id("r-1");
  want.mutable_meta()->set_assignment_id("a-r-1-0");
  want.set_organisation("mjd");
  want.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  want.set_to_status(v1::ASSIGNMENT_STATUS_RECEIVED);
  want.set_version(2);
  want.set_by("mjd");
  want.set_need_code("debt");
  want.set_referring_organisation("gemeente");
  EXPECT_TRUE(MessageDifferencer::Equals(published, want)) << published.DebugString();
}

// A status change as the inbox writes it back to its own topic.
kafka::Record Echo(const std::string& org, std::uint64_t version, v1::AssignmentStatus from,
                   v1::AssignmentStatus to, std::int64_t offset) {
  AssignmentStatusChanged change;
  change.mutable_meta()->set_schema_version(1);
  change.mutable_meta()->set_referral_id("r-1");
  change.mutable_meta()->set_assignment_id("a-r-1-0");
  *change.mutable_meta()->mutable_occurred_at() = At(200 + static_cast<std::int64_t>(version));
  change.set_organisation(org);
  change.set_from_status(from);
  change.set_to_status(to);
  change.set_version(version);
  change.set_by(org);
  change.set_reason(to == v1::ASSIGNMENT_STATUS_ON_HOLD ? "waiting for papers" : "");
  v1::InboxEvent wrapper;
  *wrapper.mutable_status_changed() = change;
  kafka::Record record = MakeRecord(MakeEvent("r-1", 0, "debt", 100), offset);
  record.value = wrapper.SerializeAsString();
  return record;
}

TEST(AssignmentIngestTest, ReplayingTheOwnTopicRestoresLaterSteps) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).value(),
            IngestOutcome::kStored);
  // The echo of our own RECEIVED (version 2) changes nothing.
  EXPECT_EQ(
      ingest
          .Ingest(Echo(kOrg, 2, v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_RECEIVED, 8))
          .value(),
      IngestOutcome::kDuplicate);
  // Later steps, as after deleting the database: restored in order, without publishing them again.
  const std::size_t outbox_before = temp.store().PendingOutbox(100).value().size();
  EXPECT_EQ(
      ingest
          .Ingest(Echo(kOrg, 3, v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_ACCEPTED, 9))
          .value(),
      IngestOutcome::kStored);
  EXPECT_EQ(
      ingest
          .Ingest(Echo(kOrg, 4, v1::ASSIGNMENT_STATUS_ACCEPTED, v1::ASSIGNMENT_STATUS_ON_HOLD, 10))
          .value(),
      IngestOutcome::kStored);
  EXPECT_EQ(
      ingest
          .Ingest(Echo(kOrg, 4, v1::ASSIGNMENT_STATUS_ACCEPTED, v1::ASSIGNMENT_STATUS_ON_HOLD, 10))
          .value(),
      IngestOutcome::kDuplicate);
  absl::StatusOr<Assignment> restored = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->status(), v1::ASSIGNMENT_STATUS_ON_HOLD);
  EXPECT_EQ(restored->version(), 4u);
  EXPECT_EQ(restored->status_reason(), "waiting for papers");
  ASSERT_EQ(restored->history_size(), 4);
  EXPECT_EQ(restored->history(3).to_status(), v1::ASSIGNMENT_STATUS_ON_HOLD);
  EXPECT_EQ(temp.store().PendingOutbox(100).value().size(), outbox_before);
  // Another organisation's change never lands here.
  EXPECT_EQ(
      ingest.Ingest(Echo("ggd", 5, v1::ASSIGNMENT_STATUS_ON_HOLD, v1::ASSIGNMENT_STATUS_FAILED, 11))
          .value(),
      IngestOutcome::kRejected);
  EXPECT_EQ(temp.store().Get("a-r-1-0")->version(), 4u);
}

// MJD with automatic rules: legal questions go to a law firm; more than one open assignment:
// decline.
routing::Network RulesNetwork() {
  absl::StatusOr<routing::Network> net = routing::ParseNetwork(R"(version: 1
needs: [{id: debt}, {id: legal}]
regions: [{id: groningen-stad}]
languages: [nl, ro]
organisations:
  - id: mjd
    needs: [debt, legal]
    regions: [groningen-stad]
    languages: [nl]
    rules:
      - forward: {need: legal, to: advocaat}
      - {decline_when_open_above: 1, reason: "at capacity"}
  - id: advocaat
    needs: [legal]
    regions: [groningen-stad]
    languages: [nl]
  - id: gemeente
    needs: [debt]
    regions: [groningen-stad]
    languages: [nl]
)",
                                                               "rules.yaml");
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

std::vector<v1::StatusChange> History(TempStore& temp, const std::string& id) {
  absl::StatusOr<Assignment> a = temp.store().Get(id);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? std::vector<v1::StatusChange>(a->history().begin(), a->history().end())
                : std::vector<v1::StatusChange>();
}

TEST(AutomaticRulesTest, ForwardRuleHandsTheNeedOnLikeAPersonWould) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  const routing::Network network = RulesNetwork();
  AssignmentIngest ingest(
      kOrg, temp.store(), [] { return At(300); }, &network);
  AssignmentRequested event = MakeEvent("r-1", 0, "legal", 100);
  event.mutable_sharing()->add_organisations("advocaat");
  ASSERT_EQ(ingest.Ingest(MakeRecord(event)).value(), IngestOutcome::kStored);
  const std::vector<v1::StatusChange> history = History(temp, "a-r-1-0");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[2].to_status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(history[2].reason(), "forwarded to advocaat: automatic rule");
  EXPECT_EQ(history[2].by(), "network");
  // The same events as a person's Forward: status, echo and the request for the router.
  bool forward_requested = false;
  absl::StatusOr<std::vector<store::OutboxEntry>> pending = temp.store().PendingOutbox(100);
  ASSERT_TRUE(pending.ok());
  for (const store::OutboxEntry& entry : *pending) {
    std::optional<v1::ForwardRequested> sent = SentForward(entry.event);
    if (!sent.has_value()) continue;
    const v1::ForwardRequested& forward = *sent;
    EXPECT_EQ(forward.to_organisation(), "advocaat");
    forward_requested = true;
  }
  EXPECT_TRUE(forward_requested);
}

TEST(AutomaticRulesTest, ForwardRuleStaysWithinTheSharingPermission) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  const routing::Network network = RulesNetwork();
  AssignmentIngest ingest(
      kOrg, temp.store(), [] { return At(300); }, &network);
  // advocaat is not in the permission: the assignment stays received for a person to decide.
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "legal", 100))).value(),
            IngestOutcome::kStored);
  EXPECT_EQ(temp.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_RECEIVED);
}

TEST(AutomaticRulesTest, DeclineRuleActsOnlyAboveTheLimit) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  const routing::Network network = RulesNetwork();
  AssignmentIngest ingest(
      kOrg, temp.store(), [] { return At(300); }, &network);
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).value(),
            IngestOutcome::kStored);
  EXPECT_EQ(temp.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_RECEIVED);  // 1 open: fine
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-2", 0, "debt", 101))).value(),
            IngestOutcome::kStored);
  absl::StatusOr<Assignment> second = temp.store().Get("a-r-2-0");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status(), v1::ASSIGNMENT_STATUS_REJECTED);  // 2 open > 1
  EXPECT_EQ(second->status_reason(), "at capacity");
  EXPECT_EQ(second->history(2).by(), "network");
}

TEST(ReplayTest, ARebuildRestoresTheSameAssignmentWithoutPublishing) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(999); });
  // The topic holds: requested (offset 7), its RECEIVED (8) and ACCEPTED (9); it ends at 10.
  ASSERT_TRUE(ingest.ReplayUntil({{2, 10}, {0, 0}}).ok());
  EXPECT_TRUE(ingest.replaying());
  EXPECT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100), 7)).value(),
            IngestOutcome::kStored);
  EXPECT_EQ(temp.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(
      ingest
          .Ingest(Echo(kOrg, 2, v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_RECEIVED, 8))
          .value(),
      IngestOutcome::kStored);
  EXPECT_EQ(
      ingest
          .Ingest(Echo(kOrg, 3, v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_ACCEPTED, 9))
          .value(),
      IngestOutcome::kStored);
  EXPECT_FALSE(ingest.replaying());
  absl::StatusOr<Assignment> rebuilt = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->status(), v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(rebuilt->version(), 3u);
  ASSERT_EQ(rebuilt->history_size(), 3);
  // The received time is the original one from the topic, not the time of the rebuild.
  EXPECT_EQ(rebuilt->history(1).at().seconds(), 202);
  EXPECT_TRUE(temp.store().PendingOutbox(10).value().empty()) << "a rebuild publishes nothing";
}

TEST(ReplayTest, WhatWasNeverReceivedIsReceivedWhenTheReplayEnds) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(999); });
  ASSERT_TRUE(ingest.ReplayUntil({{2, 8}}).ok());
  // Offset 7 is the last record of the history: its RECEIVED was never published (crash, lost
  // disk).
  EXPECT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100), 7)).value(),
            IngestOutcome::kStored);
  EXPECT_FALSE(ingest.replaying());
  absl::StatusOr<Assignment> received = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(received.ok());
  EXPECT_EQ(received->status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_EQ(received->history(1).at().seconds(), 999);
  EXPECT_EQ(temp.store().PendingOutbox(10).value().size(), 2u);  // status event and its echo
}

TEST(ReplayTest, AnEmptyTopicHasNothingToReplay) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_TRUE(ingest.ReplayUntil({{0, 0}, {1, 0}, {2, 0}}).ok());
  EXPECT_FALSE(ingest.replaying());
  EXPECT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100), 0)).value(),
            IngestOutcome::kStored);
  EXPECT_EQ(temp.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_RECEIVED);
}

TEST(AssignmentIngestTest, ADuplicateWritesNothing) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  kafka::Record record = MakeRecord(MakeEvent("r-1", 0, "debt", 100));

  EXPECT_EQ(ingest.Ingest(record).value_or(IngestOutcome::kRejected), IngestOutcome::kStored);
  absl::StatusOr<Assignment> first = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(ingest.Ingest(record).value_or(IngestOutcome::kRejected), IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Count().value_or(-1), 1);
  EXPECT_TRUE(MessageDifferencer::Equals(temp.store().Get("a-r-1-0").value(), *first));
  EXPECT_EQ(first->status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_EQ(first->version(), 2u);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), 1);
  EXPECT_EQ(temp.store().PendingOutbox(10).value().size(), 2u);
  EXPECT_EQ(ingest.counts().stored, 1u);
  EXPECT_EQ(ingest.counts().duplicates, 1u);
  EXPECT_EQ(ingest.counts().rejected, 0u);
}

TEST(AssignmentIngestTest, ABadRecordDoesNotBlockTheNext) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  kafka::Record bad = MakeRecord(MakeEvent("r-1", 0, "debt", 100), 1);
  bad.value = "garbage";
  kafka::Record good = MakeRecord(MakeEvent("r-2", 0, "debt", 100), 2);

  EXPECT_EQ(ingest.Ingest(bad).value_or(IngestOutcome::kStored), IngestOutcome::kRejected);
  EXPECT_EQ(ingest.Ingest(good).value_or(IngestOutcome::kRejected), IngestOutcome::kStored);
  EXPECT_TRUE(temp.store().Get("a-r-2-0").ok());
}

TEST(AssignmentIngestTest, LogsWhereAndWhyButNotThePayload) {
  std::ostringstream log;
  std::shared_ptr<spdlog::logger> previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_level(spdlog::level::trace);
  spdlog::set_default_logger(capture);

  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  AssignmentRequested event = MakeEvent("r-1", 0, "debt", 100);
  event.set_organisation("ggd");
  ingest.Ingest(MakeRecord(event, 42)).status().IgnoreError();
  ingest.Ingest(MakeRecord(MakeEvent("r-2", 0, "debt", 100), 43)).status().IgnoreError();
  spdlog::set_default_logger(previous);

  EXPECT_THAT(log.str(), HasSubstr("rejected record schakel.inbox.mjd/2@42: organisation is not "
                                   "this inbox's (mjd)"));
  EXPECT_THAT(log.str(), Not(HasSubstr("tax office")));
  EXPECT_THAT(log.str(), Not(HasSubstr("p-0123456789abcdef")));
}

// A referrer's request to cancel a-r-1-0, as the router puts it on kOrg's topic.
v1::CancelRequested MakeCancel(const std::string& reason = "client found help elsewhere") {
  v1::CancelRequested cancel;
  cancel.mutable_meta()->set_schema_version(1);
  cancel.mutable_meta()->set_event_id("e-cancel");
  cancel.mutable_meta()->set_referral_id("r-1");
  cancel.mutable_meta()->set_assignment_id("a-r-1-0");
  *cancel.mutable_meta()->mutable_occurred_at() = At(500);
  cancel.set_organisation(kOrg);
  cancel.set_referring_organisation("gemeente");
  cancel.set_reason(reason);
  return cancel;
}

kafka::Record CancelRecord(const v1::CancelRequested& cancel, std::int64_t offset = 9) {
  kafka::Record record = MakeRecord(MakeEvent("r-1", 0, "debt", 100), offset);
  record.key = cancel.meta().assignment_id();
  v1::InboxEvent wrapper;
  *wrapper.mutable_cancel_requested() = cancel;
  record.value = wrapper.SerializeAsString();
  return record;
}

// The owner moves a-r-1-0 on, as InboxService would.
void OwnerStep(TempStore& temp, v1::AssignmentStatus to, const std::string& reason = "") {
  absl::StatusOr<Assignment> current = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(current.ok()) << current.status();
  Step step;
  step.transition.to = to;
  step.transition.actor = referral::Actor::kOwner;
  step.transition.reason = reason;
  step.by = kOrg;
  step.at = At(300 + static_cast<std::int64_t>(current->version()));
  absl::StatusOr<Assignment> changed =
      temp.store().Apply("a-r-1-0", current->version(),
                         [&step](const Assignment& now) { return MakeChange(now, step); });
  ASSERT_TRUE(changed.ok()) << changed.status();
}

TEST(CancelRequestTest, BeforeWorkStartsTheReferrerCancelsThroughTheLifecycle) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100)))
                .value_or(IngestOutcome::kRejected),
            IngestOutcome::kStored);
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_ACCEPTED);

  EXPECT_EQ(ingest.Ingest(CancelRecord(MakeCancel())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kStored);
  absl::StatusOr<Assignment> cancelled = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(cancelled->version(), 4u);
  EXPECT_EQ(cancelled->status_reason(), "client found help elsewhere");
  EXPECT_EQ(cancelled->cancellation_requested(), "");
  ASSERT_EQ(cancelled->history_size(), 4);
  const v1::StatusChange& last = cancelled->history(3);
  EXPECT_EQ(last.from_status(), v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(last.to_status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(last.by(), "gemeente");
  EXPECT_EQ(last.reason(), "client found help elsewhere");
  EXPECT_EQ(last.version(), 4u);

  // Published like every change: the status event and its echo on the own topic.
  std::vector<store::OutboxEntry> outbox = temp.store().PendingOutbox(10).value();
  ASSERT_EQ(outbox.size(), 6u);
  EXPECT_EQ(outbox[4].event.topic, kFromTopic);
  EXPECT_EQ(outbox[5].event.topic, "schakel.inbox.mjd");
  ASSERT_TRUE(SentStatus(outbox[4].event).has_value());
  AssignmentStatusChanged published = *SentStatus(outbox[4].event);
  EXPECT_EQ(published.to_status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(published.by(), "gemeente");
  EXPECT_EQ(published.version(), 4u);
  // The referrer's words are not sent on: this offer came without the client's key to seal them
  // with (personal_data_test has the sealed way).
  EXPECT_EQ(published.reason(), "");
  EXPECT_FALSE(published.has_sealed_reason());

  // Redelivered: nothing more.
  EXPECT_EQ(ingest.Ingest(CancelRecord(MakeCancel())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().version(), 4u);
  EXPECT_EQ(temp.store().PendingOutbox(10).value().size(), 6u);
  EXPECT_EQ(ingest.counts().stored, 2u);
  EXPECT_EQ(ingest.counts().duplicates, 1u);
}

TEST(CancelRequestTest, AfterWorkStartedOnlyTheRequestIsRecordedForTheOwner) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100)))
                .value_or(IngestOutcome::kRejected),
            IngestOutcome::kStored);
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_ACCEPTED);
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_IN_PROGRESS);
  const std::int64_t sequence = temp.store().LastSequence().value_or(-1);

  EXPECT_EQ(ingest.Ingest(CancelRecord(MakeCancel())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kStored);
  absl::StatusOr<Assignment> requested = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(requested.ok());
  EXPECT_EQ(requested->status(), v1::ASSIGNMENT_STATUS_IN_PROGRESS);
  EXPECT_EQ(requested->version(), 5u);
  EXPECT_EQ(requested->cancellation_requested(), "client found help elsewhere");
  EXPECT_EQ(requested->status_reason(), "");
  EXPECT_EQ(requested->history_size(), 4);
  EXPECT_TRUE(MessageDifferencer::Equals(requested->updated_at(), At(1000)));
  // No status event, but the changes feed (WatchAssignments) shows it.
  EXPECT_EQ(temp.store().PendingOutbox(10).value().size(), 6u);
  std::vector<store::StoredChange> changes = temp.store().ChangesAfter(sequence, 10).value();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].assignment.cancellation_requested(), "client found help elsewhere");

  // Redelivered: nothing more.
  EXPECT_EQ(ingest.Ingest(CancelRecord(MakeCancel())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().version(), 5u);

  // The owner answers by cancelling; a later redelivery still changes nothing.
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_CANCELLED, "as the referrer asked");
  EXPECT_EQ(ingest.Ingest(CancelRecord(MakeCancel())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  absl::StatusOr<Assignment> answered = temp.store().Get("a-r-1-0");
  EXPECT_EQ(answered->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(answered->version(), 6u);
  EXPECT_EQ(answered->history(4).by(), "mjd");
}

TEST(CancelRequestTest, WhenTheOwnerEndedItFirstNothingChanges) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_TRUE(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).ok());
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_REJECTED, "not our area");
  const std::int64_t sequence = temp.store().LastSequence().value_or(-1);
  EXPECT_EQ(ingest.Ingest(CancelRecord(MakeCancel())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), sequence);
}

TEST(CancelRequestTest, UnusableRequestsAreRejectedAndChangeNothing) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_TRUE(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).ok());
  const std::int64_t sequence = temp.store().LastSequence().value_or(-1);

  std::vector<kafka::Record> bad;
  v1::CancelRequested other_org = MakeCancel();
  other_org.set_organisation("ggd");
  bad.push_back(CancelRecord(other_org));
  v1::CancelRequested unknown = MakeCancel();
  unknown.mutable_meta()->set_assignment_id("a-r-9-0");
  bad.push_back(CancelRecord(unknown));
  v1::CancelRequested other_referrer = MakeCancel();
  other_referrer.set_referring_organisation("ggd");
  bad.push_back(CancelRecord(other_referrer));
  bad.push_back(CancelRecord(MakeCancel(" ")));
  v1::CancelRequested new_schema = MakeCancel();
  new_schema.mutable_meta()->set_schema_version(2);
  bad.push_back(CancelRecord(new_schema));
  kafka::Record wrong_key = CancelRecord(MakeCancel());
  wrong_key.key = "a-r-1-1";
  bad.push_back(wrong_key);

  for (const kafka::Record& record : bad) {
    EXPECT_EQ(ingest.Ingest(record).value_or(IngestOutcome::kStored), IngestOutcome::kRejected);
  }
  EXPECT_EQ(ingest.counts().rejected, bad.size());
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), sequence);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_RECEIVED);
}

// The router's withdrawal of a-r-1-0, as it puts it on kOrg's topic.
v1::Withdrawal MakeWithdrawal(const std::string& reason = "not accepted in time") {
  v1::Withdrawal withdrawal;
  withdrawal.mutable_meta()->set_schema_version(1);
  withdrawal.mutable_meta()->set_event_id("e-withdrawal");
  withdrawal.mutable_meta()->set_referral_id("r-1");
  withdrawal.mutable_meta()->set_assignment_id("a-r-1-0");
  *withdrawal.mutable_meta()->mutable_occurred_at() = At(600);
  withdrawal.set_organisation(kOrg);
  withdrawal.set_reason(reason);
  withdrawal.set_next_assignment_id("a-r-1-0.1");
  return withdrawal;
}

kafka::Record WithdrawalRecord(const v1::Withdrawal& withdrawal, std::int64_t offset = 9) {
  kafka::Record record = MakeRecord(MakeEvent("r-1", 0, "debt", 100), offset);
  record.key = withdrawal.meta().assignment_id();
  v1::InboxEvent wrapper;
  *wrapper.mutable_withdrawn() = withdrawal;
  record.value = wrapper.SerializeAsString();
  return record;
}

// What the default logger writes while it lives.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto capture = std::make_shared<spdlog::logger>(
        "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    capture->set_level(spdlog::level::trace);
    spdlog::set_default_logger(capture);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string str() const { return log_.str(); }

 private:
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> previous_;
};

class WaitingWithdrawalTest : public ::testing::TestWithParam<bool> {};

TEST_P(WaitingWithdrawalTest, IsCancelledByTheNetwork) {
  const bool received = GetParam();
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
  if (received) {
    ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100)))
                  .value_or(IngestOutcome::kRejected),
              IngestOutcome::kStored);
  } else {
    // As a rebuild leaves it until its replay ends: offered, not yet received.
    absl::StatusOr<Assignment> requested =
        AssignmentFromRecord(kOrg, MakeRecord(MakeEvent("r-1", 0, "debt", 100)));
    ASSERT_TRUE(requested.ok());
    ASSERT_TRUE(temp.store().Insert(*requested).value_or(false));
  }
  const v1::AssignmentStatus before =
      received ? v1::ASSIGNMENT_STATUS_RECEIVED : v1::ASSIGNMENT_STATUS_REQUESTED;
  const std::uint64_t version = received ? 3u : 2u;
  const std::size_t outbox_before = temp.store().PendingOutbox(10).value().size();

  EXPECT_EQ(ingest.Ingest(WithdrawalRecord(MakeWithdrawal())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kStored);
  absl::StatusOr<Assignment> cancelled = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(cancelled->version(), version);
  EXPECT_EQ(cancelled->status_reason(), "not accepted in time");
  EXPECT_TRUE(MessageDifferencer::Equals(cancelled->updated_at(), At(1000)));
  const v1::StatusChange& last = cancelled->history(cancelled->history_size() - 1);
  EXPECT_EQ(last.from_status(), before);
  EXPECT_EQ(last.to_status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(last.by(), "network");
  EXPECT_EQ(last.reason(), "not accepted in time");
  EXPECT_EQ(last.version(), version);

  // Published once: the status event (for the router and the referrer) and its echo.
  std::vector<store::OutboxEntry> outbox = temp.store().PendingOutbox(10).value();
  ASSERT_EQ(outbox.size(), outbox_before + 2);
  const store::OutboxEvent& status = outbox[outbox_before].event;
  EXPECT_EQ(status.topic, kFromTopic);
  EXPECT_EQ(status.key, "r-1");
  ASSERT_TRUE(SentStatus(status).has_value());
  AssignmentStatusChanged published = *SentStatus(status);
  EXPECT_EQ(published.meta().assignment_id(), "a-r-1-0");
  EXPECT_EQ(published.organisation(), "mjd");
  EXPECT_EQ(published.from_status(), before);
  EXPECT_EQ(published.to_status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(published.by(), "network");
  EXPECT_EQ(published.reason(), "not accepted in time");
  EXPECT_EQ(published.version(), version);
  EXPECT_EQ(outbox[outbox_before + 1].event.topic, "schakel.inbox.mjd");
  EXPECT_EQ(outbox[outbox_before + 1].event.key, "a-r-1-0");

  // Redelivered: nothing more.
  EXPECT_EQ(ingest.Ingest(WithdrawalRecord(MakeWithdrawal())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().version(), version);
  EXPECT_EQ(temp.store().PendingOutbox(10).value().size(), outbox_before + 2);
  EXPECT_EQ(ingest.counts().duplicates, 1u);
}

INSTANTIATE_TEST_SUITE_P(All, WaitingWithdrawalTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "Received" : "Requested";
                         });

TEST(WithdrawalTest, AnAcceptanceThatCameFirstStands) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
  ASSERT_TRUE(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).ok());
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_ACCEPTED);
  const std::int64_t sequence = temp.store().LastSequence().value_or(-1);
  const std::size_t outbox = temp.store().PendingOutbox(10).value().size();

  EXPECT_EQ(ingest.Ingest(WithdrawalRecord(MakeWithdrawal())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  absl::StatusOr<Assignment> accepted = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(accepted->status(), v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(accepted->version(), 3u);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), sequence);
  EXPECT_EQ(temp.store().PendingOutbox(10).value().size(), outbox) << "nothing published";

  // Nor once work has started, or when the owner declined first.
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_IN_PROGRESS);
  EXPECT_EQ(ingest.Ingest(WithdrawalRecord(MakeWithdrawal())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_IN_PROGRESS);
  EXPECT_EQ(ingest.counts().duplicates, 2u);
  EXPECT_EQ(ingest.counts().rejected, 0u);
}

TEST(WithdrawalTest, AnAssignmentTheOwnerDeclinedFirstStaysDeclined) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_TRUE(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).ok());
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_REJECTED, "not our area");
  const std::int64_t sequence = temp.store().LastSequence().value_or(-1);
  EXPECT_EQ(ingest.Ingest(WithdrawalRecord(MakeWithdrawal())).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), sequence);
}

struct BadWithdrawal {
  std::string name;
  std::function<void(kafka::Record&, v1::Withdrawal&)> change;
  std::string why;
};
void PrintTo(const BadWithdrawal& c, std::ostream* os) { *os << c.name; }

class BadWithdrawalTest : public ::testing::TestWithParam<BadWithdrawal> {};

TEST_P(BadWithdrawalTest, IsRejectedWithItsReasonAndChangesNothing) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_TRUE(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).ok());
  const std::int64_t sequence = temp.store().LastSequence().value_or(-1);

  v1::Withdrawal withdrawal = MakeWithdrawal();
  kafka::Record record = WithdrawalRecord(withdrawal, 42);
  GetParam().change(record, withdrawal);
  v1::InboxEvent wrapper;
  *wrapper.mutable_withdrawn() = withdrawal;
  record.value = wrapper.SerializeAsString();

  CapturedLog log;
  absl::StatusOr<IngestOutcome> outcome = ingest.Ingest(record);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, IngestOutcome::kRejected);
  EXPECT_THAT(log.str(), HasSubstr("rejected record schakel.inbox.mjd/2@42: " + GetParam().why));
  EXPECT_EQ(ingest.counts().rejected, 1u);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), sequence);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_RECEIVED);
}

INSTANTIATE_TEST_SUITE_P(
    All, BadWithdrawalTest,
    ::testing::Values(
        BadWithdrawal{"OtherOrganisation",
                      [](kafka::Record&, v1::Withdrawal& w) { w.set_organisation("ggd"); },
                      "withdrawal is not for this inbox (mjd)"},
        BadWithdrawal{"KeyMismatch", [](kafka::Record& r, v1::Withdrawal&) { r.key = "a-r-1-1"; },
                      "record key does not match meta.assignment_id"},
        BadWithdrawal{"NoReason", [](kafka::Record&, v1::Withdrawal& w) { w.set_reason(""); },
                      "withdrawal without reason"},
        BadWithdrawal{"BlankReason",
                      [](kafka::Record&, v1::Withdrawal& w) { w.set_reason(" \t\n"); },
                      "withdrawal without reason"},
        BadWithdrawal{"UnknownAssignment",
                      [](kafka::Record& r, v1::Withdrawal& w) {
                        w.mutable_meta()->set_assignment_id("a-r-9-0");
                        r.key = "a-r-9-0";
                      },
                      "withdrawal of an assignment this inbox does not have"},
        BadWithdrawal{"NoAssignmentId",
                      [](kafka::Record& r, v1::Withdrawal& w) {
                        w.mutable_meta()->clear_assignment_id();
                        r.key.clear();
                      },
                      "withdrawal without assignment id"},
        BadWithdrawal{
            "NewSchema",
            [](kafka::Record&, v1::Withdrawal& w) { w.mutable_meta()->set_schema_version(2); },
            "withdrawal meta.schema_version 2 is not supported"},
        // The lifecycle refuses it; that must not block the inbox as a failing store would.
        BadWithdrawal{
            "ReasonTooLong",
            [](kafka::Record&, v1::Withdrawal& w) { w.set_reason(std::string(501, 'x')); },
            "reason: at most 500 characters"}),
    [](const ::testing::TestParamInfo<BadWithdrawal>& param_info) {
      return param_info.param.name;
    });

TEST(WithdrawalTest, ACorruptRecordIsNotActedOn) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_TRUE(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).ok());
  const std::int64_t sequence = temp.store().LastSequence().value_or(-1);
  // A whole withdrawal followed by bytes that do not parse: the record as a whole is unreadable.
  kafka::Record record = WithdrawalRecord(MakeWithdrawal());
  record.value += "\xff\xff\xff";
  v1::InboxEvent check;
  ASSERT_FALSE(check.ParseFromString(record.value));
  EXPECT_EQ(ingest.Ingest(record).value_or(IngestOutcome::kStored), IngestOutcome::kRejected);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), sequence);
}

TEST(WithdrawalTest, DuringAReplayItIsHistoryAndItsAnswerFollows) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(999); });
  // The topic holds: requested (7), the withdrawal (8) and the inbox's answer to it (9).
  ASSERT_TRUE(ingest.ReplayUntil({{2, 10}}).ok());
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100), 7)).value(),
            IngestOutcome::kStored);
  EXPECT_EQ(ingest.Ingest(WithdrawalRecord(MakeWithdrawal(), 8)).value_or(IngestOutcome::kRejected),
            IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_TRUE(temp.store().PendingOutbox(10).value().empty());

  AssignmentStatusChanged answer;
  answer.mutable_meta()->set_schema_version(1);
  answer.mutable_meta()->set_referral_id("r-1");
  answer.mutable_meta()->set_assignment_id("a-r-1-0");
  *answer.mutable_meta()->mutable_occurred_at() = At(700);
  answer.set_organisation(kOrg);
  answer.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  answer.set_to_status(v1::ASSIGNMENT_STATUS_CANCELLED);
  answer.set_version(2);
  answer.set_by("network");
  answer.set_reason("not accepted in time");
  kafka::Record echo = MakeRecord(MakeEvent("r-1", 0, "debt", 100), 9);
  v1::InboxEvent wrapper;
  *wrapper.mutable_status_changed() = answer;
  echo.value = wrapper.SerializeAsString();
  EXPECT_EQ(ingest.Ingest(echo).value_or(IngestOutcome::kRejected), IngestOutcome::kStored);
  EXPECT_FALSE(ingest.replaying());
  // Cancelled as it was, not received again when the replay ended, and nothing published.
  absl::StatusOr<Assignment> rebuilt = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(rebuilt->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(rebuilt->status_reason(), "not accepted in time");
  EXPECT_TRUE(temp.store().PendingOutbox(10).value().empty());
}

// Everything an inbox database holds, to compare two of them.
struct Contents {
  std::vector<std::string> assignments;
  std::vector<std::string> changes;
  std::vector<std::string> outbox;
  friend bool operator==(const Contents&, const Contents&) = default;
};

Contents Read(store::InboxStore& store) {
  Contents contents;
  store::ListQuery query;
  query.page_size = 1000;
  absl::StatusOr<store::Page> page = store.List(query);
  absl::StatusOr<std::vector<store::StoredChange>> changes = store.ChangesAfter(0, 1000);
  absl::StatusOr<std::vector<store::OutboxEntry>> outbox = store.PendingOutbox(1000);
  EXPECT_TRUE(page.ok() && changes.ok() && outbox.ok());
  if (!page.ok() || !changes.ok() || !outbox.ok()) return contents;
  for (const Assignment& a : page->assignments) {
    contents.assignments.push_back(a.SerializeAsString());
  }
  for (const store::StoredChange& c : *changes) {
    contents.changes.push_back(absl::StrCat(c.sequence, " ", c.assignment.SerializeAsString()));
  }
  for (const store::OutboxEntry& e : *outbox) {
    contents.outbox.push_back(
        absl::StrCat(e.id, " ", e.event.topic, " ", e.event.key, " ", e.event.value));
  }
  return contents;
}

std::vector<IngestOutcome> Outcomes(const std::vector<IngestResult>& results) {
  std::vector<IngestOutcome> outcomes;
  for (const IngestResult& r : results) outcomes.push_back(r.outcome);
  return outcomes;
}

// A batch as one poll round gives it: two new assignments, a poison record between them, the
// first one delivered again, and a cancel request for the first one.
std::vector<kafka::Record> MixedBatch() {
  kafka::Record poison = MakeRecord(MakeEvent("r-9", 0, "debt", 100), 11);
  poison.value = "garbage";
  return {MakeRecord(MakeEvent("r-1", 0, "debt", 100), 10), poison,
          MakeRecord(MakeEvent("r-2", 0, "housing", 101), 12),
          MakeRecord(MakeEvent("r-1", 0, "debt", 100), 13), CancelRecord(MakeCancel(), 14)};
}

TEST(IngestBatchTest, APoisonRecordInTheMiddleIsRejectedAloneAndTheRestIsStoredInOneCommit) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
  int commits = 0;
  store::InboxStore::Subscription subscription = temp.store().OnCommit([&] { ++commits; });

  absl::StatusOr<std::vector<IngestResult>> results = ingest.IngestBatch(MixedBatch());
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_THAT(Outcomes(*results),
              ::testing::ElementsAre(IngestOutcome::kStored, IngestOutcome::kRejected,
                                     IngestOutcome::kStored, IngestOutcome::kDuplicate,
                                     IngestOutcome::kStored));
  EXPECT_EQ((*results)[1].rejection,
            "value is not a schakel.v1.InboxEvent with an AssignmentRequested");
  for (std::size_t i : {0u, 2u, 3u, 4u}) EXPECT_EQ((*results)[i].rejection, "") << i;
  EXPECT_EQ(commits, 1);

  // The cancel request saw the assignment stored earlier in the same batch.
  EXPECT_EQ(temp.store().Get("a-r-1-0").value().status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(temp.store().Get("a-r-2-0").value().status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_TRUE(absl::IsNotFound(temp.store().Get("a-r-9-0").status()));
  EXPECT_EQ(temp.store().Count().value_or(-1), 2);
  EXPECT_EQ(temp.store().LastSequence().value_or(-1), 3);  // received, received, cancelled
  // Each change's status event and its echo on the organisation's own topic, exactly as one
  // record at a time would have queued them.
  EXPECT_EQ(temp.store().PendingOutbox(100).value().size(), 6u);
  EXPECT_EQ(ingest.counts().stored, 3u);
  EXPECT_EQ(ingest.counts().duplicates, 1u);
  EXPECT_EQ(ingest.counts().rejected, 1u);
}

TEST(IngestBatchTest, ABatchDecidesAsOneRecordAtATimeWould) {
  TempStore batched;
  TempStore one_by_one;
  ASSERT_TRUE(batched.ok() && one_by_one.ok());
  AssignmentIngest batch_ingest(kOrg, batched.store(), [] { return At(1000); });
  AssignmentIngest single_ingest(kOrg, one_by_one.store(), [] { return At(1000); });
  std::vector<kafka::Record> records = MixedBatch();
  ASSERT_TRUE(batch_ingest.IngestBatch(records).ok());
  for (const kafka::Record& r : records) ASSERT_TRUE(single_ingest.Ingest(r).ok());

  // The same rows; the events differ only in their random ids, so compare them without those.
  const Contents a = Read(batched.store());
  const Contents b = Read(one_by_one.store());
  EXPECT_EQ(a.assignments, b.assignments);
  EXPECT_EQ(a.changes, b.changes);
  ASSERT_EQ(a.outbox.size(), b.outbox.size());
}

TEST(IngestBatchTest, ABatchDeliveredAgainAfterACrashBeforeTheOffsetCommitChangesNothing) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  const std::vector<kafka::Record> records = MixedBatch();
  {
    AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
    ASSERT_TRUE(ingest.IngestBatch(records).ok());
  }
  const Contents before = Read(temp.store());
  // The process dies before the offsets are committed; the restarted inbox opens the same file and
  // Kafka delivers the whole batch again.
  ASSERT_TRUE(temp.Reopen());
  AssignmentIngest restarted(kOrg, temp.store(), [] { return At(2000); });
  int commits = 0;
  store::InboxStore::Subscription subscription = temp.store().OnCommit([&] { ++commits; });
  absl::StatusOr<std::vector<IngestResult>> again = restarted.IngestBatch(records);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(Outcomes(*again),
              ::testing::ElementsAre(IngestOutcome::kDuplicate, IngestOutcome::kRejected,
                                     IngestOutcome::kDuplicate, IngestOutcome::kDuplicate,
                                     IngestOutcome::kDuplicate));
  EXPECT_EQ(commits, 0);  // nothing written
  EXPECT_TRUE(Read(temp.store()) == before);
}

TEST(IngestBatchTest, WhenTheStoreFailsOnOneRecordNothingOfTheBatchIsStored) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
  const std::vector<kafka::Record> records = MixedBatch();
  testing::RefuseWritesOf(temp.path(), "a-r-2-0");

  absl::StatusOr<std::vector<IngestResult>> failed = ingest.IngestBatch(records);
  EXPECT_TRUE(absl::IsInternal(failed.status())) << failed.status();
  EXPECT_EQ(temp.store().Count().value_or(-1), 0);  // not even a-r-1-0, before the failure
  EXPECT_TRUE(temp.store().PendingOutbox(10).value().empty());
  EXPECT_EQ(ingest.counts().stored + ingest.counts().duplicates + ingest.counts().rejected, 0u);

  // Tried again once the store works: as if the failure never happened.
  testing::AllowWrites(temp.path());
  absl::StatusOr<std::vector<IngestResult>> retried = ingest.IngestBatch(records);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(Outcomes(*retried)[2], IngestOutcome::kStored);
  EXPECT_EQ(temp.store().Count().value_or(-1), 2);
  EXPECT_EQ(ingest.counts().stored, 3u);
  EXPECT_EQ(ingest.counts().rejected, 1u);
}

TEST(IngestBatchTest, AReplayEndsWithTheBatchThatIsDurable) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(999); });
  // Offsets 7 and 8 are the history; 9 is new.
  ASSERT_TRUE(ingest.ReplayUntil({{2, 9}}).ok());
  const std::vector<kafka::Record> records = {MakeRecord(MakeEvent("r-1", 0, "debt", 100), 7),
                                              MakeRecord(MakeEvent("r-2", 0, "debt", 100), 8),
                                              MakeRecord(MakeEvent("r-3", 0, "debt", 100), 9)};
  testing::RefuseWritesOf(temp.path(), "a-r-3-0");
  EXPECT_FALSE(ingest.IngestBatch(records).ok());
  EXPECT_TRUE(ingest.replaying());  // the history is not in: it must be replayed again
  EXPECT_EQ(temp.store().Count().value_or(-1), 0);

  testing::AllowWrites(temp.path());
  absl::StatusOr<std::vector<IngestResult>> results = ingest.IngestBatch(records);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_FALSE(ingest.replaying());
  // The history was received when the replay ended, within the batch; the new one as it came.
  for (const char* id : {"a-r-1-0", "a-r-2-0", "a-r-3-0"}) {
    EXPECT_EQ(temp.store().Get(id).value().status(), v1::ASSIGNMENT_STATUS_RECEIVED) << id;
  }
  EXPECT_EQ(temp.store().PendingOutbox(100).value().size(), 6u);
}

// --- Every change goes to the router on the organisation's own topic, and nowhere else ---

// Checks every record in the outbox: a status change or forward request on schakel.from.mjd (the
// only topic of the router's that this inbox may write), or its echo on schakel.inbox.mjd. Returns
// how many went to the router.
std::size_t ExpectEverythingOnItsOwnTopics(TempStore& temp) {
  std::size_t sent = 0;
  absl::StatusOr<std::vector<store::OutboxEntry>> pending = temp.store().PendingOutbox(1000);
  EXPECT_TRUE(pending.ok()) << pending.status();
  for (const store::OutboxEntry& entry : pending.value_or(std::vector<store::OutboxEntry>{})) {
    if (entry.event.topic == kFromTopic) {
      EXPECT_TRUE(SentStatus(entry.event).has_value() || SentForward(entry.event).has_value());
      if (const std::optional<AssignmentStatusChanged> change = SentStatus(entry.event)) {
        EXPECT_EQ(change->organisation(), kOrg);
      }
      if (const std::optional<v1::ForwardRequested> forward = SentForward(entry.event)) {
        EXPECT_EQ(forward->from_organisation(), kOrg);
      }
      ++sent;
    } else {
      EXPECT_EQ(entry.event.topic, testing::kTopic);
    }
  }
  return sent;
}

TEST(InboxOwnTopicTest, ReceivedAndTheOwnersStepsGoToTheRouterOnItsOwnTopic) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(300); });
  ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).value(),
            IngestOutcome::kStored);
  EXPECT_EQ(ExpectEverythingOnItsOwnTopics(temp), 1u);
  OwnerStep(temp, v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(ExpectEverythingOnItsOwnTopics(temp), 2u);
}

TEST(InboxOwnTopicTest, AnAutomaticForwardAndItsRequestGoThere) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  const routing::Network network = RulesNetwork();
  AssignmentIngest ingest(
      kOrg, temp.store(), [] { return At(300); }, &network);
  AssignmentRequested event = MakeEvent("r-1", 0, "legal", 100);
  event.mutable_sharing()->add_organisations("advocaat");
  ASSERT_EQ(ingest.Ingest(MakeRecord(event)).value(), IngestOutcome::kStored);
  ASSERT_EQ(temp.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(ExpectEverythingOnItsOwnTopics(temp), 3u);  // received, rejected, forward request
}

TEST(InboxOwnTopicTest, AWithdrawalsAndAReferrersCancellationGoThere) {
  for (const bool withdrawn : {true, false}) {
    SCOPED_TRACE(withdrawn ? "withdrawal" : "referrer's cancellation");
    TempStore temp;
    ASSERT_TRUE(temp.ok());
    AssignmentIngest ingest(kOrg, temp.store(), [] { return At(1000); });
    ASSERT_EQ(ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))).value(),
              IngestOutcome::kStored);
    ASSERT_EQ(
        ingest.Ingest(withdrawn ? WithdrawalRecord(MakeWithdrawal()) : CancelRecord(MakeCancel()))
            .value(),
        IngestOutcome::kStored);
    ASSERT_EQ(temp.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
    EXPECT_EQ(ExpectEverythingOnItsOwnTopics(temp), 2u);
  }
}

TEST(InboxOwnTopicTest, AnOfferFromAnOlderRouterWithATokenIsStoredAsAnyOther) {
  // Routers before the topic proved authorship gave each offer an owner_token (field 15, now
  // reserved): an inbox reading such an offer from its topic stores it as any other.
  AssignmentRequested event = MakeEvent("r-1", 0, "debt", 100);
  std::string bytes = event.SerializeAsString();
  bytes += std::string("\x7a\x20", 2) + std::string(32, '\x01');  // field 15, 32 bytes
  kafka::Record record = MakeRecord(event);
  v1::InboxEvent wrapped;
  ASSERT_TRUE(wrapped.mutable_requested()->ParseFromString(bytes));
  record.value = wrapped.SerializeAsString();
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store(), [] { return At(300); });
  ASSERT_EQ(ingest.Ingest(record).value(), IngestOutcome::kStored);
  EXPECT_EQ(temp.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_EQ(ExpectEverythingOnItsOwnTopics(temp), 1u);
}

TEST(IngestOutcomeTest, Names) {
  EXPECT_EQ(IngestOutcomeName(IngestOutcome::kStored), "stored");
  EXPECT_EQ(IngestOutcomeName(IngestOutcome::kDuplicate), "duplicate");
  EXPECT_EQ(IngestOutcomeName(IngestOutcome::kRejected), "rejected");
}

}  // namespace
}  // namespace schakel::inbox
