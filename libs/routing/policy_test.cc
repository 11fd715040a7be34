#include "libs/routing/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace schakel::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

Network Example() {
  absl::StatusOr<Network> net = LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

const std::vector<std::string> kEveryone = {
    "gemeente", "leger-des-heils", "terwille", "overweeghuis", "ggd", "mjd"};

TEST(PolicyTest, SeedScenarioGoesToTheResponsibleOrganisations) {
  Policy policy(Example());
  std::vector<NeedDecision> d = policy.Decide({.region = "groningen-stad",
                                               .need_codes = {"debt", "income", "housing"},
                                               .sharing_organisations = kEveryone});
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].organisation, "mjd");
  EXPECT_EQ(d[1].organisation, "gemeente");
  EXPECT_EQ(d[2].organisation, "leger-des-heils");
  // Everyone else is passed over with a reason.
  EXPECT_EQ(d[0].passed_over.size(), 5u);
}

TEST(PolicyTest, NeverRoutesOutsideTheSharingPermission) {
  Policy policy(Example());
  std::vector<NeedDecision> d = policy.Decide(
      {.region = "groningen-stad", .need_codes = {"debt"}, .sharing_organisations = {"gemeente"}});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FALSE(d[0].routable());
  EXPECT_THAT(d[0].passed_over,
              testing::Contains(AllOf(
                  Field(&PassedOver::organisation, "mjd"),
                  Field(&PassedOver::reason, "not covered by the client's sharing permission"))));
}

TEST(PolicyTest, RegionMustBeCovered) {
  Policy policy(Example());
  // Only the municipality serves income, and only in the city.
  std::vector<NeedDecision> d = policy.Decide({.region = "groningen-ommeland",
                                               .need_codes = {"income"},
                                               .sharing_organisations = kEveryone});
  EXPECT_FALSE(d[0].routable());
  EXPECT_THAT(d[0].passed_over,
              testing::Contains(
                  AllOf(Field(&PassedOver::organisation, "gemeente"),
                        Field(&PassedOver::reason, "does not cover region 'groningen-ommeland'"))));
}

TEST(PolicyTest, TieGoesToTheFirstInTheNetworkFileAndTheOthersAreTold) {
  Policy policy(Example());
  std::vector<NeedDecision> d = policy.Decide({.region = "groningen-stad",
                                               .need_codes = {"exit-programme"},
                                               .sharing_organisations = kEveryone});
  EXPECT_EQ(d[0].organisation, "terwille");
  EXPECT_THAT(
      d[0].passed_over,
      testing::Contains(AllOf(
          Field(&PassedOver::organisation, "overweeghuis"),
          Field(&PassedOver::reason, "eligible, but 'terwille' comes first in the network"))));
  // Without Terwille in the permission, Het Overweeghuis takes it.
  d = policy.Decide({.region = "groningen-stad",
                     .need_codes = {"exit-programme"},
                     .sharing_organisations = {"overweeghuis"}});
  EXPECT_EQ(d[0].organisation, "overweeghuis");
}

TEST(PolicyTest, NoNeedsNoDecisions) {
  Policy policy(Example());
  EXPECT_THAT(
      policy.Decide({.region = "groningen-stad", .need_codes = {}, .sharing_organisations = {}}),
      IsEmpty());
}

TEST(PolicyTest, EveryOrganisationIsAccountedFor) {
  Policy policy(Example());
  for (const char* need : {"debt", "shelter", "health", "registration"}) {
    std::vector<NeedDecision> d = policy.Decide(
        {.region = "groningen-stad", .need_codes = {need}, .sharing_organisations = kEveryone});
    ASSERT_TRUE(d[0].routable()) << need;
    EXPECT_EQ(d[0].passed_over.size() + 1, kEveryone.size()) << need;
  }
}

}  // namespace
}  // namespace schakel::routing
