#include "services/ops/ops_view.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

namespace schakel::ops {
namespace {

using google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using ::testing::Not;

const auto kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

routing::Network Network() {
  routing::Network network;
  for (const auto& [id, name] : std::vector<std::pair<std::string, std::string>>{
           {"alpha", "Alpha Zorg"}, {"beta", "Beta Hulp"}}) {
    routing::Organisation org;
    org.id = id;
    org.name = name;
    network.organisations.push_back(org);
  }
  network.sla.urgent = std::chrono::hours(4);
  network.sla.normal = std::chrono::hours(72);
  network.topics.partitions = 2;
  return network;
}

kafka::Record Record(std::string topic, const google::protobuf::Message& m, std::int32_t partition,
                     std::int64_t offset) {
  kafka::Record r;
  r.topic = std::move(topic);
  r.partition = partition;
  r.offset = offset;
  r.value = m.SerializeAsString();
  return r;
}

v1::InboxEvent Offer(const std::string& id, const std::string& org, const std::string& need,
                     std::chrono::system_clock::time_point at) {
  v1::InboxEvent e;
  v1::AssignmentRequested* offer = e.mutable_requested();
  offer->mutable_meta()->set_referral_id("r-1");
  offer->mutable_meta()->set_assignment_id(id);
  *offer->mutable_meta()->mutable_occurred_at() =
      TimeUtil::TimeTToTimestamp(std::chrono::system_clock::to_time_t(at));
  offer->set_organisation(org);
  offer->set_need_code(need);
  offer->set_urgency(v1::URGENCY_URGENT);
  // Personal data the view must never pass on.
  offer->set_need_details("MARKER-DETAILS");
  offer->set_client_pseudonym("p-MARKER");
  return e;
}

class OpsViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    v1::InboxLoad load;
    load.set_organisation("alpha");
    load.set_open(2);
    load.set_consumer_group("schakel.inbox.alpha.db-1");
    ASSERT_TRUE(view_.Apply(Record("schakel.load.alpha", load, 0, 0)).ok());
    // alpha: an urgent housing offer 5 h old (overdue), one 1 h old, then a debt one accepted.
    ASSERT_TRUE(
        view_
            .Apply(Record("schakel.inbox.alpha",
                          Offer("a-1-0", "alpha", "housing", kNow - std::chrono::hours(5)), 0, 0))
            .ok());
    ASSERT_TRUE(
        view_
            .Apply(Record("schakel.inbox.alpha",
                          Offer("a-1-1", "alpha", "housing", kNow - std::chrono::hours(1)), 1, 0))
            .ok());
    ASSERT_TRUE(
        view_
            .Apply(Record("schakel.inbox.alpha",
                          Offer("a-1-2", "alpha", "debt", kNow - std::chrono::minutes(2)), 1, 2))
            .ok());
    v1::AssignmentStatusChanged accepted;
    accepted.mutable_meta()->set_assignment_id("a-1-2");
    *accepted.mutable_meta()->mutable_occurred_at() = TimeUtil::TimeTToTimestamp(
        std::chrono::system_clock::to_time_t(kNow - std::chrono::minutes(1)));
    accepted.set_organisation("alpha");
    accepted.set_to_status(v1::ASSIGNMENT_STATUS_ACCEPTED);
    accepted.set_version(3);
    accepted.set_need_code("debt");
    ASSERT_TRUE(view_.Apply(Record("schakel.assignments.status", accepted, 0, 0)).ok());

    v1::ReferralUnroutable unroutable;
    unroutable.mutable_meta()->set_referral_id("r-2");
    unroutable.mutable_meta()->set_assignment_id("a-2-0");
    *unroutable.mutable_meta()->mutable_occurred_at() = TimeUtil::SecondsToTimestamp(1'799'999'000);
    unroutable.set_need_code("income");
    unroutable.set_referring_organisation("beta");
    unroutable.set_urgency(v1::URGENCY_NORMAL);
    unroutable.mutable_sharing()->add_organisations("alpha");
    v1::PassedOver* p = unroutable.add_passed_over();
    p->set_reason("does not serve need 'income' (2 organisations)");
    ASSERT_TRUE(view_.Apply(Record("schakel.referrals.unroutable", unroutable, 1, 0)).ok());

    v1::DeadLetter letter;
    letter.set_topic("schakel.inbox.beta");
    letter.set_partition(1);
    letter.set_offset(9);
    letter.set_consumer("inbox-beta");
    letter.set_reason("undecodable InboxEvent");
    letter.set_value("MARKER-PAYLOAD");
    ASSERT_TRUE(view_.Apply(Record("schakel.deadletters.inbox-beta", letter, 2, 5)).ok());
  }

  OpsView view_{Network()};
};

TEST_F(OpsViewTest, TheOverviewShowsQueuesUnroutableAndDeadLetters) {
  view_.SetCommitted("alpha", {{0, 1}, {1, 1}});  // a-1-2 (partition 1, offset 2) not consumed
  const nlohmann::json o = view_.Overview(kNow, true, "127.0.0.1:9092");
  EXPECT_EQ(o["generated_at"], "2027-01-15T08:00:00Z");
  EXPECT_EQ(o["kafka"]["reachable"], true);
  ASSERT_EQ(o["organisations"].size(), 2u);
  const nlohmann::json& alpha = o["organisations"][0];
  EXPECT_EQ(alpha["id"], "alpha");
  EXPECT_EQ(alpha["name"], "Alpha Zorg");
  EXPECT_EQ(alpha["waiting"], 2);
  EXPECT_EQ(alpha["overdue"], 1);
  EXPECT_EQ(alpha["accepted"], 1);
  EXPECT_EQ(alpha["lag"], 1);
  EXPECT_DOUBLE_EQ(alpha["offered_per_minute"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(alpha["accepted_per_minute"].get<double>(), 0.2);
  EXPECT_EQ(o["organisations"][1]["lag"], -1);  // beta's inbox has not reported its group
  ASSERT_EQ(o["unroutable"].size(), 1u);
  EXPECT_EQ(o["unroutable"][0]["referral_id"], "r-2");
  EXPECT_EQ(o["unroutable"][0]["need_code"], "income");
  EXPECT_EQ(o["unroutable"][0]["urgency"], "URGENCY_NORMAL");
  EXPECT_EQ(o["unroutable"][0]["reassigned_to"], "");
  EXPECT_EQ(o["unroutable"][0]["passed_over"][0]["reason"],
            "does not serve need 'income' (2 organisations)");
  ASSERT_EQ(o["dead_letters"].size(), 1u);
  EXPECT_EQ(o["dead_letters"][0]["key"], "schakel.inbox.beta/1/9");
  EXPECT_EQ(o["dead_letters"][0]["dead_letter"],
            (nlohmann::json{
                {"topic", "schakel.deadletters.inbox-beta"}, {"partition", 2}, {"offset", 5}}));
  EXPECT_THAT(o.dump(), Not(HasSubstr("MARKER")));
}

TEST_F(OpsViewTest, TheGaugesSplitPerOrganisationAndNeed) {
  view_.SetCommitted("alpha", {{0, 1}, {1, 3}});
  std::string text;
  for (const prometheus::MetricFamily& f : view_.Families(kNow)) {
    for (const prometheus::ClientMetric& m : f.metric) {
      text += f.name + "{";
      for (const auto& l : m.label) text += l.name + "=" + l.value + ",";
      text += "} " + std::to_string(static_cast<int>(m.gauge.value)) + "\n";
    }
  }
  EXPECT_THAT(text,
              HasSubstr("schakel_assignments{need=housing,organisation=alpha,state=waiting,} 2"));
  EXPECT_THAT(text,
              HasSubstr("schakel_assignments{need=housing,organisation=alpha,state=overdue,} 1"));
  EXPECT_THAT(text,
              HasSubstr("schakel_assignments{need=debt,organisation=alpha,state=accepted,} 1"));
  EXPECT_THAT(text,
              HasSubstr("schakel_unroutable_needs{need=income,referring_organisation=beta,} 1"));
  EXPECT_THAT(text,
              HasSubstr("schakel_dead_letters{consumer=inbox-beta,topic=schakel.inbox.beta,} 1"));
  EXPECT_THAT(text, HasSubstr("schakel_inbox_lag{organisation=alpha,} 0"));
  EXPECT_THAT(text, Not(HasSubstr("MARKER")));
}

TEST_F(OpsViewTest, AReassignmentIsCheckedThenOnItsWay) {
  EXPECT_EQ(view_.PrepareReassign("r-2", 0, "beta", "by phone", "console").status().code(),
            absl::StatusCode::kInvalidArgument);  // the client allows alpha only
  absl::StatusOr<v1::ReassignRequested> event =
      view_.PrepareReassign("r-2", 0, "alpha", "by phone", "console");
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_EQ(event->meta().assignment_id(), "a-2-0");
  EXPECT_EQ(event->by(), "console");
  view_.Reassigned(*event);
  EXPECT_EQ(view_.Overview(kNow, true, "")["unroutable"][0]["requested_to"], "alpha");
  EXPECT_EQ(view_.PrepareReassign("r-2", 0, "alpha", "again", "console").status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The router's offer arrives on alpha's topic: done.
  v1::InboxEvent offer = Offer("a-2-0.1", "alpha", "income", kNow);
  offer.mutable_requested()->mutable_meta()->set_referral_id("r-2");
  offer.mutable_requested()->set_previous_assignment_id("a-2-0");
  ASSERT_TRUE(view_.Apply(Record("schakel.inbox.alpha", offer, 0, 5)).ok());
  EXPECT_EQ(view_.Overview(kNow, true, "")["unroutable"][0]["reassigned_to"], "alpha");
}

// Only beta writes schakel.load.beta: a report there that claims alpha (pointing alpha's lag at a
// group beta chose) is not believed, and alpha's figures stay what alpha's own report made them.
TEST_F(OpsViewTest, ALoadReportClaimingAnotherOrganisationIsIgnored) {
  view_.SetCommitted("alpha", {{0, 1}, {1, 1}});
  ASSERT_EQ(view_.ConsumerGroups().at("alpha"), "schakel.inbox.alpha.db-1");
  ASSERT_EQ(view_.Overview(kNow, true, "")["organisations"][0]["lag"], 1);
  v1::InboxLoad forged;
  forged.set_organisation("alpha");
  forged.set_open(1 << 30);
  forged.set_consumer_group("schakel.inbox.beta.chosen-by-beta");
  kafka::Record record = Record("schakel.load.beta", forged, 0, 1);
  record.key = "alpha";
  EXPECT_EQ(view_.Apply(record).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(view_.forged(), 1u);
  EXPECT_EQ(view_.ConsumerGroups(),
            (std::map<std::string, std::string>{{"alpha", "schakel.inbox.alpha.db-1"}}));
  EXPECT_EQ(view_.Overview(kNow, true, "")["organisations"][0]["lag"], 1);
}

// An organisation may write its own inbox topic (its changes' echoes), not the router's offers to
// others: an "offer" for beta on alpha's topic does not show as beta's work.
TEST_F(OpsViewTest, AnOfferOnAnotherOrganisationsTopicIsIgnored) {
  const nlohmann::json before = view_.Overview(kNow, true, "")["organisations"];
  const kafka::Record offer = Record(
      "schakel.inbox.alpha", Offer("a-9-0", "beta", "housing", kNow - std::chrono::hours(9)), 0, 1);
  EXPECT_EQ(view_.Apply(offer).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(view_.forged(), 1u);
  EXPECT_EQ(view_.Overview(kNow, true, "")["organisations"], before);
}

TEST_F(OpsViewTest, UnreadableRecordsAreCountedAndSkipped) {
  kafka::Record garbage;
  garbage.topic = "schakel.referrals.unroutable";
  garbage.value = "\xff\xff\xff";
  const std::uint64_t before = view_.unreadable();
  EXPECT_EQ(view_.Apply(garbage).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view_.unreadable(), before + 1);
  EXPECT_EQ(view_.Overview(kNow, true, "")["unroutable"].size(), 1u);
}

TEST(OpsViewTopicsTest, FollowsEveryInboxTopicAndTheOperatorsTopics) {
  const OpsView view(Network());
  EXPECT_THAT(
      view.Topics(),
      ::testing::UnorderedElementsAre(
          "schakel.assignments.status", "schakel.referrals.unroutable",
          "schakel.operator.reassignments", "schakel.load.alpha", "schakel.load.beta",
          "schakel.inbox.alpha", "schakel.inbox.beta", "schakel.deadletters.router",
          "schakel.deadletters.intake", "schakel.deadletters.keys", "schakel.deadletters.ops",
          "schakel.deadletters.inbox-alpha", "schakel.deadletters.inbox-beta"));
}

}  // namespace
}  // namespace schakel::ops
