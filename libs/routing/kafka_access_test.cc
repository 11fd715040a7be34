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
      EXPECT_TRUE(rule.name == "schakel.inbox.alpha" || rule.name == "schakel.clients.erasures" ||
                  rule.name == "schakel.audit")
          << rule.name;
      EXPECT_FALSE(rule.prefixed);
    }
    if (rule.resource == AclResource::kGroup && rule.operation == AclOperation::kRead) {
      EXPECT_EQ(rule.name, "schakel.inbox.alpha.");
      EXPECT_TRUE(rule.prefixed);
    }
    if (rule.resource == AclResource::kGroup && rule.operation != AclOperation::kRead) {
      // The audit writer's head read assigns partitions; librdkafka still looks the group up.
      EXPECT_EQ(rule.operation, AclOperation::kDescribe);
      EXPECT_EQ(rule.name, "schakel.restore");
    }
    if (rule.resource == AclResource::kTransactionalId) {
      EXPECT_EQ(rule.name, "schakel-audit-inbox-alpha");
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

bool Has(const std::vector<AclRule>& rules, const AclRule& rule) {
  return std::find(rules.begin(), rules.end(), rule) != rules.end();
}

TEST(KafkaAccess, EachAuditWriterMayKeepItsOwnChainOnly) {
  const std::vector<AclRule> rules = KafkaAccessRules(TwoOrganisations());
  // principal -> its chain's transactional id (intake: "intake", "intake-2", ...).
  const std::vector<std::pair<std::string, AclRule>> writers = {
      {"intake",
       {"intake", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-intake",
        true}},
      {"inbox-alpha",
       {"inbox-alpha", AclOperation::kWrite, AclResource::kTransactionalId,
        "schakel-audit-inbox-alpha", false}},
      {"inbox-beta",
       {"inbox-beta", AclOperation::kWrite, AclResource::kTransactionalId,
        "schakel-audit-inbox-beta", false}},
      {"ops",
       {"ops", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-ops", false}},
      {"operator",
       {"operator", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-schakelctl",
        false}},
      {"keys",
       {"keys", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-keys", false}},
  };
  for (const auto& [principal, chain] : writers) {
    SCOPED_TRACE(principal);
    const std::string audit(kAuditTopic);
    EXPECT_TRUE(Has(rules, {principal, AclOperation::kWrite, AclResource::kTopic, audit, false}));
    // The writer reads the topic for its chain's head (assigned partitions, group schakel.restore).
    EXPECT_TRUE(Has(rules, {principal, AclOperation::kRead, AclResource::kTopic, audit, false}));
    EXPECT_TRUE(Has(rules, {principal, AclOperation::kDescribe, AclResource::kGroup,
                            "schakel.restore", false}));
    EXPECT_TRUE(Has(rules, chain));
    AclRule describe = chain;
    describe.operation = AclOperation::kDescribe;
    EXPECT_TRUE(Has(rules, describe));
  }
  // Nothing more on the chains: no principal may take another's chain, and the router (which
  // records nothing) has no right on the audit stream at all.
  for (const AclRule& rule : rules) {
    if (rule.resource == AclResource::kTransactionalId &&
        rule.name.rfind("schakel-audit", 0) == 0) {
      const auto own = std::find_if(writers.begin(), writers.end(), [&](const auto& w) {
        return w.first == rule.principal && w.second.name == rule.name &&
               w.second.prefixed == rule.prefixed;
      });
      EXPECT_NE(own, writers.end()) << rule.principal << " " << rule.name;
    }
    if (rule.principal == "router") {
      EXPECT_NE(rule.name, kAuditTopic);
      EXPECT_NE(rule.name.rfind("schakel-audit", 0), 0u) << rule.name;
    }
  }
  // The router's prefixed rights do not reach the audit stream either.
  EXPECT_FALSE(Has(rules, {"router", AclOperation::kWrite, AclResource::kTopic, "schakel.", true}));
}

TEST(KafkaAccess, EveryRuleOnce) {
  const std::vector<AclRule> rules = KafkaAccessRules(TwoOrganisations());
  for (std::size_t i = 0; i < rules.size(); ++i) {
    for (std::size_t j = i + 1; j < rules.size(); ++j) EXPECT_FALSE(rules[i] == rules[j]);
  }
}

}  // namespace
}  // namespace schakel::routing
