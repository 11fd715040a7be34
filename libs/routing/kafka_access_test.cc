#include "libs/routing/kafka_access.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace schakel::routing {
namespace {

Network TwoOrganisations() {
  Network network;
  network.organisations.push_back(Organisation{});
  network.organisations.back().id = "alpha";
  network.organisations.push_back(Organisation{});
  network.organisations.back().id = "beta";
  return network;
}

std::vector<AclRule> Of(const std::vector<AclRule>& rules, const std::string& principal) {
  std::vector<AclRule> out;
  std::copy_if(rules.begin(), rules.end(), std::back_inserter(out),
               [&](const AclRule& r) { return r.principal == principal; });
  return out;
}

TEST(KafkaAccess, AnInboxReadsOnlyItsOwnTopicAndGroups) {
  const std::vector<AclRule> alpha = Of(KafkaAccessRules(TwoOrganisations()), "inbox-alpha");
  ASSERT_FALSE(alpha.empty());
  for (const AclRule& rule : alpha) {
    EXPECT_EQ(rule.name.find("beta"), std::string::npos) << rule.name;
    if (rule.operation == AclOperation::kRead && rule.resource == AclResource::kTopic) {
      EXPECT_TRUE(rule.name == "schakel.inbox.alpha" || rule.name == "schakel.clients.erasures")
          << rule.name;
      EXPECT_FALSE(rule.prefixed);
    }
    if (rule.resource == AclResource::kGroup) {
      EXPECT_EQ(rule.name, "schakel.inbox.alpha.");
      EXPECT_TRUE(rule.prefixed);
    }
    if (rule.prefixed) {
      EXPECT_EQ(rule.resource, AclResource::kGroup) << rule.name;
    }
    EXPECT_NE(rule.operation, AclOperation::kCreate);
  }
  const AclRule writes_status{"inbox-alpha", AclOperation::kWrite, AclResource::kTopic,
                              std::string(kStatusTopic), false};
  EXPECT_NE(std::find(alpha.begin(), alpha.end(), writes_status), alpha.end());
}

TEST(KafkaAccess, PrincipalsAreTheServicesOperatorAndOneInboxPerOrganisation) {
  std::vector<std::string> principals = KafkaPrincipals(TwoOrganisations());
  std::sort(principals.begin(), principals.end());
  EXPECT_EQ(principals, (std::vector<std::string>{"inbox-alpha", "inbox-beta", "intake", "keys",
                                                  "operator", "ops", "router"}));
}

// The key service hands a client's key to whoever the grants topic says was offered the assignment:
// nobody but the router may write it (the status topic, which inboxes and operators also write,
// would let them grant themselves any client's key), and nobody but the key service reads it.
TEST(KafkaAccess, OnlyTheRouterWritesTheGrantsAndOnlyTheKeyServiceReadsThem) {
  std::vector<std::string> writers;
  std::vector<std::string> readers;
  for (const AclRule& rule : KafkaAccessRules(TwoOrganisations())) {
    const bool grants = rule.resource == AclResource::kTopic &&
                        (rule.name == kKeyGrantsTopic ||
                         (rule.prefixed && std::string(kKeyGrantsTopic).starts_with(rule.name)));
    if (!grants) continue;
    if (rule.operation == AclOperation::kWrite) writers.push_back(rule.principal);
    if (rule.operation == AclOperation::kRead) readers.push_back(rule.principal);
  }
  EXPECT_EQ(writers, std::vector<std::string>{"router"});
  EXPECT_EQ(readers, std::vector<std::string>{"keys"});
}

TEST(KafkaAccess, EveryRuleOnce) {
  const std::vector<AclRule> rules = KafkaAccessRules(TwoOrganisations());
  for (std::size_t i = 0; i < rules.size(); ++i) {
    for (std::size_t j = i + 1; j < rules.size(); ++j) EXPECT_FALSE(rules[i] == rules[j]);
  }
}

}  // namespace
}  // namespace schakel::routing
