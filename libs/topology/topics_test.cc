#include "libs/topology/topics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace schakel::topology {
namespace {

using ::testing::ElementsAre;

TEST(TopicsTest, AnOrganisationsOwnTopicNamesIt) {
  EXPECT_EQ(FromTopic("mjd"), "schakel.from.mjd");
  EXPECT_EQ(FromTopicOrganisation("schakel.from.mjd"), "mjd");
  EXPECT_EQ(FromTopicOrganisation("schakel.from."), "");
  EXPECT_EQ(FromTopicOrganisation("schakel.inbox.mjd"), "");
  EXPECT_EQ(FromTopicOrganisation("xschakel.from.mjd"), "");
}

TEST(TopicsTest, TheExampleNetworkHasTheseTopics) {
  absl::StatusOr<Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_THAT(
      AllTopics(*net),
      ElementsAre("schakel.referrals.submitted", "schakel.assignments.status",
                  "schakel.referrals.unroutable", "schakel.assignments.cancellations",
                  "schakel.router.state", "schakel.operator.reassignments",
                  "schakel.clients.erasures", "schakel.inbox.gemeente",
                  "schakel.inbox.leger-des-heils", "schakel.inbox.terwille",
                  "schakel.inbox.overweeghuis", "schakel.inbox.ggd", "schakel.inbox.mjd",
                  "schakel.from.gemeente", "schakel.from.leger-des-heils", "schakel.from.terwille",
                  "schakel.from.overweeghuis", "schakel.from.ggd", "schakel.from.mjd",
                  "schakel.load.gemeente", "schakel.load.leger-des-heils", "schakel.load.terwille",
                  "schakel.load.overweeghuis", "schakel.load.ggd", "schakel.load.mjd",
                  "schakel.deadletters.router", "schakel.deadletters.intake",
                  "schakel.deadletters.keys", "schakel.deadletters.ops",
                  "schakel.deadletters.inbox-gemeente", "schakel.deadletters.inbox-leger-des-heils",
                  "schakel.deadletters.inbox-terwille", "schakel.deadletters.inbox-overweeghuis",
                  "schakel.deadletters.inbox-ggd", "schakel.deadletters.inbox-mjd",
                  "schakel.audit.intake", "schakel.audit.keys", "schakel.audit.ops",
                  "schakel.audit.inbox-gemeente", "schakel.audit.inbox-leger-des-heils",
                  "schakel.audit.inbox-terwille", "schakel.audit.inbox-overweeghuis",
                  "schakel.audit.inbox-ggd", "schakel.audit.inbox-mjd"));
}

}  // namespace
}  // namespace schakel::topology
