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

#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::schakel::inbox::testing::kOrg;
using ::schakel::inbox::testing::MakeEvent;
using ::schakel::inbox::testing::MakeRecord;
using ::schakel::inbox::testing::TempStore;
using ::schakel::v1::Assignment;
using ::schakel::v1::AssignmentRequested;
using ::testing::HasSubstr;
using ::testing::Not;

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
  EXPECT_TRUE(MessageDifferencer::Equals(*assignment, expected))
      << assignment->DebugString() << "\nexpected:\n"
      << expected.DebugString();
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
    AssignmentRequested event;
    ASSERT_TRUE(event.ParseFromString(record.value));
    change(event);
    record.value = event.SerializeAsString();
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
  EXPECT_EQ(ingest.counts().rejected, 1u);
  EXPECT_EQ(ingest.counts().stored, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Records, RejectTest,
    ::testing::Values(
        RejectCase{"Undecodable", [](kafka::Record& r) { r.value = std::string("\x0a\xff", 2); },
                   "value is not a schakel.v1.AssignmentRequested"},
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

TEST(AssignmentIngestTest, StoresThenFindsTheDuplicate) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  kafka::Record record = MakeRecord(MakeEvent("r-1", 0, "debt", 100));

  EXPECT_EQ(ingest.Ingest(record).value_or(IngestOutcome::kRejected), IngestOutcome::kStored);
  EXPECT_EQ(ingest.Ingest(record).value_or(IngestOutcome::kRejected), IngestOutcome::kDuplicate);
  EXPECT_EQ(temp.store().Count().value_or(-1), 1);
  absl::StatusOr<Assignment> stored = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(stored->version(), 1u);
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

TEST(IngestOutcomeTest, Names) {
  EXPECT_EQ(IngestOutcomeName(IngestOutcome::kStored), "stored");
  EXPECT_EQ(IngestOutcomeName(IngestOutcome::kDuplicate), "duplicate");
  EXPECT_EQ(IngestOutcomeName(IngestOutcome::kRejected), "rejected");
}

}  // namespace
}  // namespace schakel::inbox
