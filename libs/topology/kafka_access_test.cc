#include "libs/topology/kafka_access.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace schakel::topology {
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
                  rule.name == "schakel.audit.inbox-alpha")
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
    if (rule.operation == AclOperation::kCreate) {
      // Only its own audit chain's topic, which its writer makes when it is missing.
      EXPECT_EQ(rule.name, "schakel.audit.inbox-alpha");
      EXPECT_EQ(rule.resource, AclResource::kTopic);
    }
  }
  // It speaks to the router on its own outgoing topic only; the facts are the router's.
  const AclRule writes_own{"inbox-alpha", AclOperation::kWrite, AclResource::kTopic,
                           "schakel.from.alpha", false};
  EXPECT_NE(std::find(alpha.begin(), alpha.end(), writes_own), alpha.end());
  for (const AclRule& rule : alpha) {
    if (rule.operation != AclOperation::kWrite) continue;
    EXPECT_NE(rule.name, kStatusTopic);
    EXPECT_NE(rule.name, "schakel.from.beta");
  }
}

TEST(KafkaAccess, PrincipalsAreTheServicesOperatorAndOneInboxPerOrganisation) {
  std::vector<std::string> principals = KafkaPrincipals(TwoOrganisations());
  std::sort(principals.begin(), principals.end());
  EXPECT_EQ(principals, (std::vector<std::string>{"inbox-alpha", "inbox-beta", "intake", "keys",
                                                  "operator", "ops", "router"}));
}

// The key service hands a client's key to whoever the status topic says was offered the
// assignment: nobody but the router may write it (an inbox that could would grant itself any
// client's key), and no organisation reads it (it says who was offered what for every client).
TEST(KafkaAccess, OnlyTheRouterWritesTheFactsTheKeyServiceGrantsOn) {
  std::vector<std::string> writers;
  std::vector<std::string> readers;
  for (const AclRule& rule : KafkaAccessRules(TwoOrganisations())) {
    const bool facts = rule.resource == AclResource::kTopic &&
                       (rule.name == kStatusTopic ||
                        (rule.prefixed && std::string(kStatusTopic).starts_with(rule.name)));
    if (!facts) continue;
    if (rule.operation == AclOperation::kWrite) writers.push_back(rule.principal);
    if (rule.operation == AclOperation::kRead) readers.push_back(rule.principal);
  }
  std::sort(readers.begin(), readers.end());
  EXPECT_EQ(writers, std::vector<std::string>{"router"});
  EXPECT_EQ(readers, (std::vector<std::string>{"intake", "keys", "operator", "ops"}));
}

bool Has(const std::vector<AclRule>& rules, const AclRule& rule) {
  return std::find(rules.begin(), rules.end(), rule) != rules.end();
}

// Whether `rules` let `principal` do `operation` on the topic `topic` (a literal rule naming it, or
// a prefixed one it starts with).
bool Allows(const std::vector<AclRule>& rules, const std::string& principal, AclOperation operation,
            const std::string& topic) {
  return std::any_of(rules.begin(), rules.end(), [&](const AclRule& r) {
    return r.principal == principal && r.operation == operation &&
           r.resource == AclResource::kTopic &&
           (r.prefixed ? topic.rfind(r.name, 0) == 0 : topic == r.name);
  });
}

TEST(KafkaAccess, EachAuditWriterMayKeepItsOwnChainOnly) {
  const Network network = TwoOrganisations();
  const std::vector<AclRule> rules = KafkaAccessRules(network);
  // principal -> its chain (intake: "intake", "intake-2", ...) and its chain's transactional id.
  struct Writer {
    std::string principal;
    std::string chain;
    AclRule transactional_id;
  };
  const std::vector<Writer> writers = {
      {"intake",
       "intake",
       {"intake", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-intake",
        true}},
      {"intake",
       "intake-2",
       {"intake", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-intake",
        true}},
      {"inbox-alpha",
       "inbox-alpha",
       {"inbox-alpha", AclOperation::kWrite, AclResource::kTransactionalId,
        "schakel-audit-inbox-alpha", false}},
      {"inbox-beta",
       "inbox-beta",
       {"inbox-beta", AclOperation::kWrite, AclResource::kTransactionalId,
        "schakel-audit-inbox-beta", false}},
      {"ops",
       "ops",
       {"ops", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-ops", false}},
      {"keys",
       "keys",
       {"keys", AclOperation::kWrite, AclResource::kTransactionalId, "schakel-audit-keys", false}},
  };
  std::vector<std::string> chains = AuditWriters(network);
  chains.push_back("intake-2");
  for (const Writer& w : writers) {
    SCOPED_TRACE(w.principal + " " + w.chain);
    const std::string own = AuditTopic(w.chain);
    // It writes its chain's topic, reads it for the chain's head (assigned partitions, group
    // schakel.restore) and makes it when it is missing.
    EXPECT_TRUE(Allows(rules, w.principal, AclOperation::kWrite, own));
    EXPECT_TRUE(Allows(rules, w.principal, AclOperation::kRead, own));
    EXPECT_TRUE(Allows(rules, w.principal, AclOperation::kCreate, own));
    EXPECT_TRUE(Has(rules, {w.principal, AclOperation::kDescribe, AclResource::kGroup,
                            "schakel.restore", false}));
    EXPECT_TRUE(Has(rules, w.transactional_id));
    AclRule describe = w.transactional_id;
    describe.operation = AclOperation::kDescribe;
    EXPECT_TRUE(Has(rules, describe));
    // Another writer's chain: neither written, made nor read (only operators read every chain,
    // to verify them).
    for (const std::string& other : chains) {
      const bool mine =
          other == w.chain || (w.principal == "intake" && other.rfind("intake", 0) == 0);
      if (mine) continue;
      SCOPED_TRACE(other);
      const std::string topic = AuditTopic(other);
      EXPECT_FALSE(Allows(rules, w.principal, AclOperation::kWrite, topic));
      EXPECT_FALSE(Allows(rules, w.principal, AclOperation::kCreate, topic));
      EXPECT_EQ(Allows(rules, w.principal, AclOperation::kRead, topic), w.principal == "operator");
    }
  }
  // Nothing more on the chains: no principal may take another's chain, and the router (which
  // records nothing) has no right on the audit topics but making them with the network's other
  // topics.
  for (const AclRule& rule : rules) {
    if (rule.resource == AclResource::kTransactionalId &&
        rule.name.rfind("schakel-audit", 0) == 0) {
      const auto own = std::find_if(writers.begin(), writers.end(), [&](const Writer& w) {
        return w.principal == rule.principal && w.transactional_id.name == rule.name &&
               w.transactional_id.prefixed == rule.prefixed;
      });
      EXPECT_NE(own, writers.end()) << rule.principal << " " << rule.name;
    }
    if (rule.principal == "router") {
      EXPECT_NE(rule.name.rfind("schakel-audit", 0), 0u) << rule.name;
    }
  }
  for (const std::string& chain : chains) {
    EXPECT_FALSE(Allows(rules, "router", AclOperation::kWrite, AuditTopic(chain))) << chain;
    EXPECT_FALSE(Allows(rules, "router", AclOperation::kRead, AuditTopic(chain))) << chain;
  }
}

// Operators' Kafka rights are read-only: what they do goes through ops' API (audited there with
// their name), never straight onto a topic.
TEST(KafkaAccess, OperatorsWriteNothing) {
  const std::vector<AclRule> rules = Of(KafkaAccessRules(TwoOrganisations()), "operator");
  ASSERT_FALSE(rules.empty());
  for (const AclRule& rule : rules) {
    EXPECT_TRUE(rule.operation == AclOperation::kRead || rule.operation == AclOperation::kDescribe)
        << Name(rule.operation) << " " << rule.name;
    EXPECT_NE(rule.resource, AclResource::kTransactionalId) << rule.name;
  }
  EXPECT_TRUE(Allows(rules, "operator", AclOperation::kRead, "schakel.deadletters.inbox-alpha"));
  EXPECT_TRUE(Allows(rules, "operator", AclOperation::kRead, "schakel.deadletters.router"));
}

// A dead letter's topic says who set it aside: each consumer writes its own and no other; ops and
// operators read them all.
TEST(KafkaAccess, EachConsumerWritesOnlyItsOwnDeadLetters) {
  const Network network = TwoOrganisations();
  const std::vector<AclRule> rules = KafkaAccessRules(network);
  const std::vector<std::string> principals = DeadLetterPrincipals(network);
  EXPECT_EQ(principals, (std::vector<std::string>{"router", "intake", "keys", "ops", "inbox-alpha",
                                                  "inbox-beta"}));
  for (const std::string& writer : KafkaPrincipals(network)) {
    for (const std::string& owner : principals) {
      SCOPED_TRACE(writer + " on " + owner + "'s");
      const std::string topic = DeadLetterTopic(owner);
      EXPECT_EQ(Allows(rules, writer, AclOperation::kWrite, topic), writer == owner);
      const bool router_makes_topics = writer == "router";
      EXPECT_EQ(Allows(rules, writer, AclOperation::kCreate, topic), router_makes_topics);
      EXPECT_EQ(Allows(rules, writer, AclOperation::kRead, topic),
                writer == "ops" || writer == "operator");
    }
  }
  // The old shared topic is nobody's.
  for (const std::string& writer : KafkaPrincipals(network)) {
    EXPECT_FALSE(Allows(rules, writer, AclOperation::kWrite, "schakel.deadletters")) << writer;
  }
}

// Issue 18: Kafka proves who connected, not who wrote a record. Each organisation's load reports
// are on a topic only it writes, so that a reader takes the author from the topic: inbox-alpha
// writes schakel.load.alpha and no other load topic, nobody else writes any load topic (no prefix
// rule reaches one either), and the router, ops and operators read every organisation's.
TEST(KafkaAccess, EachOrganisationAloneWritesItsOwnLoadTopic) {
  const Network network = TwoOrganisations();
  const std::vector<AclRule> rules = KafkaAccessRules(network);
  for (const Organisation& org : network.organisations) {
    SCOPED_TRACE(org.id);
    const std::string topic = LoadTopic(org.id);
    EXPECT_EQ(topic, "schakel.load." + org.id);
    std::vector<std::string> writers;
    for (const AclRule& rule : rules) {
      if (rule.operation == AclOperation::kWrite && rule.resource == AclResource::kTopic &&
          (rule.prefixed ? topic.rfind(rule.name, 0) == 0 : topic == rule.name)) {
        writers.push_back(rule.principal);
      }
    }
    EXPECT_EQ(writers, std::vector<std::string>{"inbox-" + org.id});
    for (const char* reader : {"router", "ops", "operator"}) {
      EXPECT_TRUE(Allows(rules, reader, AclOperation::kRead, topic)) << reader;
    }
    // An inbox reads no load topic, its own included: it has no use for them.
    EXPECT_FALSE(Allows(rules, "inbox-alpha", AclOperation::kRead, topic));
  }
  EXPECT_FALSE(Allows(rules, "inbox-alpha", AclOperation::kWrite, LoadTopic("beta")));
  EXPECT_FALSE(Allows(rules, "inbox-beta", AclOperation::kWrite, LoadTopic("alpha")));
  // The shared topic of before is gone: nobody may write or read it.
  for (const AclRule& rule : rules) EXPECT_NE(rule.name, "schakel.inbox.load") << rule.principal;
}

TEST(KafkaAccess, EveryRuleOnce) {
  const std::vector<AclRule> rules = KafkaAccessRules(TwoOrganisations());
  for (std::size_t i = 0; i < rules.size(); ++i) {
    for (std::size_t j = i + 1; j < rules.size(); ++j) EXPECT_FALSE(rules[i] == rules[j]);
  }
}

// docs/architecture.md's table of who may do what is this table, not a description of it that could
// drift.
TEST(KafkaAccess, TheDocumentedTableIsTheTableInCode) {
  std::ifstream file(SCHAKEL_ACCESS_TABLE_DOC);
  ASSERT_TRUE(file) << SCHAKEL_ACCESS_TABLE_DOC;
  const std::string doc((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  const std::string begin = "<!-- access table: schakelctl access show --markdown -->\n";
  const std::string end = "<!-- end of the access table -->";
  const std::size_t from = doc.find(begin);
  ASSERT_NE(from, std::string::npos) << SCHAKEL_ACCESS_TABLE_DOC << " has no line " << begin;
  const std::size_t to = doc.find(end, from);
  ASSERT_NE(to, std::string::npos) << SCHAKEL_ACCESS_TABLE_DOC << " has no line " << end;
  EXPECT_EQ(doc.substr(from + begin.size(), to - from - begin.size()), KafkaAccessMarkdown())
      << SCHAKEL_ACCESS_TABLE_DOC
      << "'s table differs from the ACLs: paste `schakelctl access show --markdown`";
}

}  // namespace
}  // namespace schakel::topology
