#include "services/router/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "libs/referral/ids.h"

namespace schakel::router {
namespace {

using ::testing::ElementsAre;

routing::Policy ExamplePolicy() {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  EXPECT_TRUE(net.ok()) << net.status();
  return routing::Policy(*net);
}

v1::ReferralSubmitted Seed() {
  v1::ReferralSubmitted s;
  s.mutable_meta()->set_schema_version(1);
  s.mutable_meta()->set_referral_id("r-000000000000000000000001");
  s.set_referring_organisation("ggd");
  s.set_client_pseudonym("p-00");
  for (const char* code : {"debt", "income", "housing"}) {
    v1::NeedRequest* need = s.add_needs();
    need->set_code(code);
    need->set_details(std::string("details for ") + code);
  }
  s.set_urgency(v1::URGENCY_NORMAL);
  s.set_region("groningen-stad");
  s.add_languages("nl");
  s.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"gemeente", "leger-des-heils", "mjd"})
    s.mutable_sharing()->add_organisations(org);
  return s;
}

TEST(RouteReferralTest, EachNeedGoesToItsOrganisationsTopicOnly) {
  absl::StatusOr<std::vector<OutgoingEvent>> events = RouteReferral(ExamplePolicy(), Seed());
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> topics;
  for (const OutgoingEvent& e : *events) topics.push_back(e.topic);
  EXPECT_THAT(topics, ElementsAre("schakel.inbox.mjd", "schakel.inbox.gemeente",
                                  "schakel.inbox.leger-des-heils"));

  v1::AssignmentRequested income;
  ASSERT_TRUE(income.ParseFromString((*events)[1].value));
  EXPECT_EQ((*events)[1].key, "a-000000000000000000000001-1");
  EXPECT_EQ(income.meta().assignment_id(), "a-000000000000000000000001-1");
  EXPECT_EQ(income.meta().referral_id(), "r-000000000000000000000001");
  EXPECT_EQ(income.organisation(), "gemeente");
  EXPECT_EQ(income.need_code(), "income");
  EXPECT_EQ(income.need_details(), "details for income");
  EXPECT_EQ(income.need_index(), 1u);
  EXPECT_EQ(income.referring_organisation(), "ggd");
  // The municipality's event carries nothing of the other needs.
  EXPECT_EQ((*events)[1].value.find("details for debt"), std::string::npos);
  EXPECT_EQ((*events)[1].value.find("details for housing"), std::string::npos);
}

TEST(RouteReferralTest, RoutingAgainGivesTheSameAssignmentIds) {
  auto first = RouteReferral(ExamplePolicy(), Seed());
  auto second = RouteReferral(ExamplePolicy(), Seed());
  ASSERT_TRUE(first.ok() && second.ok());
  for (std::size_t i = 0; i < first->size(); ++i) EXPECT_EQ((*first)[i].key, (*second)[i].key);
}

TEST(RouteReferralTest, ANeedNobodyMayTakeGoesToUnroutableWithReasons) {
  v1::ReferralSubmitted s = Seed();
  s.mutable_sharing()->clear_organisations();
  s.mutable_sharing()->add_organisations("gemeente");
  absl::StatusOr<std::vector<OutgoingEvent>> events = RouteReferral(ExamplePolicy(), s);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].topic, "schakel.referrals.unroutable");
  EXPECT_EQ((*events)[0].key, "r-000000000000000000000001");
  EXPECT_EQ((*events)[1].topic, "schakel.inbox.gemeente");
  v1::ReferralUnroutable debt;
  ASSERT_TRUE(debt.ParseFromString((*events)[0].value));
  EXPECT_EQ(debt.need_code(), "debt");
  EXPECT_EQ(debt.meta().assignment_id(), "a-000000000000000000000001-0");
  EXPECT_EQ(debt.passed_over_size(), 6);
  bool mjd_reason_found = false;
  for (const v1::PassedOver& p : debt.passed_over()) {
    if (p.organisation() == "mjd") {
      EXPECT_EQ(p.reason(), "not covered by the client's sharing permission");
      mjd_reason_found = true;
    }
  }
  EXPECT_TRUE(mjd_reason_found);
  // The unroutable queue is for operators: no personal free text in it.
  EXPECT_EQ((*events)[0].value.find("details for"), std::string::npos);
}

TEST(RouteReferralTest, UnknownSchemaVersionIsRefused) {
  v1::ReferralSubmitted s = Seed();
  s.mutable_meta()->set_schema_version(2);
  EXPECT_EQ(RouteReferral(ExamplePolicy(), s).status().code(), absl::StatusCode::kInvalidArgument);
  s = Seed();
  s.mutable_meta()->clear_referral_id();
  EXPECT_EQ(RouteReferral(ExamplePolicy(), s).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace schakel::router
