#include "libs/ops/unroutable.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

namespace schakel::ops {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

const std::string kReferral = "r-000000000000000000000001";
const std::string kUnroutable = "a-000000000000000000000001-1";

routing::Network Network() {
  routing::Network network;
  for (const char* id : {"alpha", "beta", "gamma"}) {
    routing::Organisation org;
    org.id = id;
    network.organisations.push_back(org);
  }
  return network;
}

v1::ReferralUnroutable Unroutable(const std::string& id, std::int64_t at_seconds = 100,
                                  const std::string& referral = kReferral) {
  v1::ReferralUnroutable u;
  u.mutable_meta()->set_referral_id(referral);
  u.mutable_meta()->set_assignment_id(id);
  *u.mutable_meta()->mutable_occurred_at() = TimeUtil::SecondsToTimestamp(at_seconds);
  u.set_need_code("debt");
  u.set_need_index(1);
  u.set_region("stad");
  u.set_urgency(v1::URGENCY_URGENT);
  u.set_referring_organisation("gamma");
  v1::PassedOver* p = u.add_passed_over();
  p->set_organisation("alpha");
  p->set_reason("does not serve need 'debt'");
  u.mutable_sharing()->add_organisations("alpha");
  u.mutable_sharing()->add_organisations("beta");
  return u;
}

v1::AssignmentRequested Offer(const std::string& id, const std::string& previous,
                              const std::string& org) {
  v1::AssignmentRequested offer;
  offer.mutable_meta()->set_referral_id(kReferral);
  offer.mutable_meta()->set_assignment_id(id);
  offer.set_previous_assignment_id(previous);
  offer.set_organisation(org);
  offer.set_need_index(1);
  return offer;
}

TEST(UnroutableQueueTest, ListsEachNeedOnceWithItsReasonsOldestFirst) {
  UnroutableQueue queue;
  queue.AddUnroutable(
      Unroutable("a-000000000000000000000002-1", 200, "r-000000000000000000000002"));
  queue.AddUnroutable(Unroutable(kUnroutable, 100));
  queue.AddUnroutable(Unroutable(kUnroutable, 100));  // redelivered
  const std::vector<UnroutableNeed> needs = queue.Needs();
  ASSERT_EQ(needs.size(), 2u);
  EXPECT_EQ(needs[0].referral_id, kReferral);
  EXPECT_EQ(needs[0].unroutable_id, kUnroutable);
  EXPECT_EQ(needs[0].need_code, "debt");
  EXPECT_EQ(needs[0].urgency, v1::URGENCY_URGENT);
  ASSERT_EQ(needs[0].passed_over.size(), 1u);
  EXPECT_EQ(needs[0].passed_over[0].reason(), "does not serve need 'debt'");
  EXPECT_THAT(needs[0].sharing, ElementsAre("alpha", "beta"));
  EXPECT_EQ(needs[1].referral_id, "r-000000000000000000000002");
}

TEST(UnroutableQueueTest, AReassignmentIsOnItsWayThenDone) {
  UnroutableQueue queue;
  queue.AddUnroutable(Unroutable(kUnroutable));
  const routing::Network network = Network();
  ASSERT_TRUE(queue.CheckReassign(network, kReferral, 1, "beta", "agreed by phone").ok());
  const v1::ReassignRequested event =
      queue.MakeReassign(*queue.Find(kReferral, 1), "beta", "agreed by phone", "console");
  EXPECT_EQ(event.meta().schema_version(), 1u);
  EXPECT_EQ(event.meta().referral_id(), kReferral);
  EXPECT_EQ(event.meta().assignment_id(), kUnroutable);
  EXPECT_EQ(event.need_index(), 1u);
  EXPECT_EQ(event.to_organisation(), "beta");
  EXPECT_EQ(event.by(), "console");

  queue.AddReassign(event);
  EXPECT_EQ(queue.Find(kReferral, 1)->requested_to, "beta");
  absl::Status twice = queue.CheckReassign(network, kReferral, 1, "alpha", "changed my mind");
  EXPECT_EQ(twice.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(twice.message(),
            "need 1 of referral " + kReferral + ": a reassignment to 'beta' is on its way");

  queue.AddOffer(Offer(kUnroutable + ".1", kUnroutable, "beta"));
  EXPECT_EQ(queue.Find(kReferral, 1)->reassigned_to, "beta");
  EXPECT_EQ(queue.Find(kReferral, 1)->requested_to, "");
  EXPECT_EQ(queue.CheckReassign(network, kReferral, 1, "alpha", "x").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(UnroutableQueueTest, ARefusalFromTheRouterKeepsTheNeedOpenWithTheReasonFirst) {
  UnroutableQueue queue;
  queue.AddUnroutable(Unroutable(kUnroutable));
  v1::ReassignRequested event;
  event.mutable_meta()->set_referral_id(kReferral);
  event.mutable_meta()->set_assignment_id(kUnroutable);
  event.set_need_index(1);
  event.set_to_organisation("beta");
  queue.AddReassign(event);
  v1::ReferralUnroutable refused = Unroutable(kUnroutable, 150);
  refused.clear_passed_over();
  v1::PassedOver* p = refused.add_passed_over();
  p->set_organisation("beta");
  p->set_reason("reassign by console refused: not covered by the client's sharing permission");
  queue.AddUnroutable(refused);
  const UnroutableNeed* need = queue.Find(kReferral, 1);
  ASSERT_NE(need, nullptr);
  EXPECT_EQ(need->requested_to, "");
  EXPECT_EQ(need->reassigned_to, "");
  ASSERT_EQ(need->passed_over.size(), 2u);
  EXPECT_EQ(need->passed_over[0].organisation(), "beta");
  EXPECT_TRUE(queue.CheckReassign(Network(), kReferral, 1, "alpha", "next try").ok());
}

TEST(UnroutableQueueTest, AnOfferReadBeforeItsUnroutableEventStillCounts) {
  UnroutableQueue queue;
  queue.AddOffer(Offer(kUnroutable + ".1", kUnroutable, "alpha"));
  queue.AddUnroutable(Unroutable(kUnroutable));
  EXPECT_EQ(queue.Find(kReferral, 1)->reassigned_to, "alpha");
}

TEST(UnroutableQueueTest, ANewerUnroutableStepReplacesTheOlder) {
  UnroutableQueue queue;
  queue.AddUnroutable(Unroutable(kUnroutable));
  queue.AddOffer(Offer(kUnroutable + ".1", kUnroutable, "alpha"));
  // alpha did not accept in time; nobody else: unroutable again, one step further.
  queue.AddUnroutable(Unroutable(kUnroutable + ".2", 300));
  EXPECT_EQ(queue.Find(kReferral, 1)->unroutable_id, kUnroutable + ".2");
  EXPECT_EQ(queue.Find(kReferral, 1)->reassigned_to, "");
  // The old word, read late, changes nothing.
  queue.AddUnroutable(Unroutable(kUnroutable, 100));
  EXPECT_EQ(queue.Find(kReferral, 1)->unroutable_id, kUnroutable + ".2");
}

struct BadReassign {
  std::string name;
  std::string referral_id;
  std::uint32_t need_index;
  std::string organisation;
  std::string reason;
  absl::StatusCode code;
  std::string message;
};
void PrintTo(const BadReassign& c, std::ostream* os) { *os << c.name; }

class BadReassignTest : public ::testing::TestWithParam<BadReassign> {};

TEST_P(BadReassignTest, IsRefusedWithTheFieldAndWhy) {
  UnroutableQueue queue;
  queue.AddUnroutable(Unroutable(kUnroutable));
  const BadReassign& c = GetParam();
  const absl::Status status =
      queue.CheckReassign(Network(), c.referral_id, c.need_index, c.organisation, c.reason);
  EXPECT_EQ(status.code(), c.code) << status;
  EXPECT_EQ(status.message(), c.message);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadReassignTest,
    ::testing::Values(
        BadReassign{"NoReferral", "", 1, "beta", "x", absl::StatusCode::kInvalidArgument,
                    "referral_id: required"},
        BadReassign{"NoOrganisation", kReferral, 1, "", "x", absl::StatusCode::kInvalidArgument,
                    "organisation: required"},
        BadReassign{"BlankReason", kReferral, 1, "beta", "  \n", absl::StatusCode::kInvalidArgument,
                    "reason: required (why this organisation, e.g. \"agreed by phone with MJD\")"},
        BadReassign{"LongReason", kReferral, 1, "beta", std::string(501, 'x'),
                    absl::StatusCode::kInvalidArgument, "reason: at most 500 bytes, got 501"},
        BadReassign{"ABsnInTheReason", kReferral, 1, "beta", "agreed for BSN 1112.22.333",
                    absl::StatusCode::kInvalidArgument,
                    "reason: holds what looks like a BSN; the reason is kept for every operator to "
                    "read and cannot be erased, so say why without naming the client"},
        BadReassign{"AnEmailAddressInTheReason", kReferral, 1, "beta",
                    "see the mail of j.de-vries@example.nl", absl::StatusCode::kInvalidArgument,
                    "reason: holds what looks like an e-mail address; the reason is kept for every "
                    "operator to read and cannot be erased, so say why without naming the client"},
        BadReassign{"UnknownNeed", kReferral, 0, "beta", "x", absl::StatusCode::kNotFound,
                    "no need 0 of referral " + kReferral + " in the unroutable queue"},
        BadReassign{"OutsideTheNetwork", kReferral, 1, "delta", "x",
                    absl::StatusCode::kInvalidArgument,
                    "organisation: 'delta' is not in the network"},
        BadReassign{"OutsideTheSharingPermission", kReferral, 1, "gamma", "x",
                    absl::StatusCode::kInvalidArgument,
                    "organisation: 'gamma' is not covered by the client's sharing permission"}),
    [](const ::testing::TestParamInfo<BadReassign>& param_info) { return param_info.param.name; });

// What is not a BSN or an e-mail address passes: the network's phone numbers, dates, ticket
// numbers that fail the 11-proef, an organisation's "@" handle.
TEST(UnroutableQueueTest, AReasonWithNumbersThatNameNobodyIsTaken) {
  UnroutableQueue queue;
  queue.AddUnroutable(Unroutable(kUnroutable));
  for (const std::string reason :
       {"agreed by phone with MJD (050-3675000) on 12-03-2026", "ticket 123456789",
        "ticket 1112223334", "asked @mjd in the team chat", "see 11122233"}) {
    EXPECT_TRUE(queue.CheckReassign(Network(), kReferral, 1, "beta", reason).ok()) << reason;
  }
}

TEST(DeadLetterRowTest, NamesTheRecordWithoutItsPayload) {
  v1::DeadLetter letter;
  letter.set_topic("schakel.inbox.mjd");
  letter.set_partition(2);
  letter.set_offset(17);
  letter.set_value("secret payload");
  letter.set_consumer("inbox-mjd");
  letter.set_reason("undecodable InboxEvent");
  const DeadLetterRow row = DeadLetterRowOf(letter);
  EXPECT_EQ(row.key, "schakel.inbox.mjd/2/17");
  EXPECT_EQ(row.consumer, "inbox-mjd");
  EXPECT_EQ(row.reason, "undecodable InboxEvent");
}

}  // namespace
}  // namespace schakel::ops
