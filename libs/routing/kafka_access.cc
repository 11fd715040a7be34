#include "libs/routing/kafka_access.h"

#include <set>
#include <string_view>

namespace schakel::routing {
namespace {

using Op = AclOperation;
using Res = AclResource;

struct Row {
  std::string_view principal;  // "{org}" stands for every organisation of the network
  Op operation;
  Res resource;
  std::string_view name;  // "{org}" likewise
  bool prefixed = false;
};

constexpr bool kPrefix = true;

std::string ForOrg(std::string_view text, const std::string& org) {
  std::string out(text);
  for (std::size_t at; (at = out.find("{org}")) != std::string::npos;) out.replace(at, 5, org);
  return out;
}

// The whole table. Read and Write imply Describe. Written from what the code does
// (services/*/main.cc, the publishers they use, libs/deadletter); a new topic or group is a new
// line here.
constexpr Row kRows[] = {
    // intake: publishes referrals and referrers' cancellation requests; its referral view follows
    // the referrals, their status and the unroutable needs, in its own group(s); dead letters.
    {"intake", Op::kWrite, Res::kTopic, kSubmittedTopic},
    {"intake", Op::kWrite, Res::kTopic, kCancellationsTopic},
    {"intake", Op::kWrite, Res::kTopic, kDeadLetterTopic},
    {"intake", Op::kRead, Res::kTopic, kSubmittedTopic},
    {"intake", Op::kRead, Res::kTopic, kStatusTopic},
    {"intake", Op::kRead, Res::kTopic, kUnroutableTopic},
    {"intake", Op::kRead, Res::kGroup, "schakel.intake.view", kPrefix},
    // Its audit chain (--audit-writer: "intake", or "intake-<n>" for more instances), each in its
    // own topic, which the writer reads for the chain's head and makes when it is missing.
    {"intake", Op::kWrite, Res::kTopic, "schakel.audit.intake", kPrefix},
    {"intake", Op::kRead, Res::kTopic, "schakel.audit.intake", kPrefix},
    {"intake", Op::kCreate, Res::kTopic, "schakel.audit.intake", kPrefix},
    {"intake", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"intake", Op::kWrite, Res::kTransactionalId, "schakel-audit-intake", kPrefix},
    {"intake", Op::kDescribe, Res::kTransactionalId, "schakel-audit-intake", kPrefix},

    // router: reads its inputs in group schakel.router and its state; follows each
    // organisation's load topic; writes offers (and withdrawals) to every inbox topic - also of
    // organisations a changed network file adds while it runs, hence the prefix -, status,
    // unroutable, its state and dead letters, in transactions (schakel-router-<instance>); creates
    // the topics of a (changed) network. (A new organisation's load is read once the admin has
    // applied the changed network's ACLs, as its inbox may write it only then.)
    {"router", Op::kRead, Res::kTopic, kSubmittedTopic},
    {"router", Op::kRead, Res::kTopic, kForwardingTopic},
    {"router", Op::kRead, Res::kTopic, kCancellationsTopic},
    {"router", Op::kRead, Res::kTopic, kStatusTopic},
    {"router", Op::kRead, Res::kTopic, kReassignTopic},
    {"router", Op::kRead, Res::kTopic, kRouterStateTopic},
    {"router", Op::kRead, Res::kTopic, "schakel.load.{org}"},
    {"router", Op::kRead, Res::kGroup, "schakel.router"},
    // (librdkafka asks for the coordinator of a reader's group.id even when it only assigns
    // partitions and never commits: the load follower's and the state restore's.)
    {"router", Op::kDescribe, Res::kGroup, "schakel.follower"},
    {"router", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"router", Op::kWrite, Res::kTopic, "schakel.inbox.", kPrefix},
    {"router", Op::kWrite, Res::kTopic, kStatusTopic},
    {"router", Op::kWrite, Res::kTopic, kKeyGrantsTopic},
    {"router", Op::kWrite, Res::kTopic, kUnroutableTopic},
    {"router", Op::kWrite, Res::kTopic, kRouterStateTopic},
    {"router", Op::kWrite, Res::kTopic, kDeadLetterTopic},
    {"router", Op::kWrite, Res::kTransactionalId, "schakel-router-", kPrefix},
    {"router", Op::kDescribe, Res::kTransactionalId, "schakel-router-", kPrefix},
    {"router", Op::kCreate, Res::kTopic, "schakel.", kPrefix},

    // inbox-<org>: its own topic in its own groups (schakel.inbox.<org>.<database id>); writes its
    // status changes (to the status topic and back to its own topic), forwarding requests, its load
    // reports (to its own load topic: whose load a report is, its readers learn from the topic) and
    // dead letters. Nothing else: not another organisation's topic, load topic or group.
    {"inbox-{org}", Op::kRead, Res::kTopic, "schakel.inbox.{org}"},
    {"inbox-{org}", Op::kRead, Res::kGroup, "schakel.inbox.{org}.", kPrefix},
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.inbox.{org}"},
    {"inbox-{org}", Op::kWrite, Res::kTopic, kStatusTopic},
    {"inbox-{org}", Op::kWrite, Res::kTopic, kForwardingTopic},
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.load.{org}"},
    {"inbox-{org}", Op::kWrite, Res::kTopic, kDeadLetterTopic},
    {"inbox-{org}", Op::kRead, Res::kTopic, kErasuresTopic},
    // Its audit chain "inbox-<org>", in its own topic (the writer reads it for the chain's head):
    // not the other chains, which would tell it whom else its clients are served by.
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.audit.inbox-{org}"},
    {"inbox-{org}", Op::kRead, Res::kTopic, "schakel.audit.inbox-{org}"},
    {"inbox-{org}", Op::kCreate, Res::kTopic, "schakel.audit.inbox-{org}"},
    {"inbox-{org}", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"inbox-{org}", Op::kWrite, Res::kTransactionalId, "schakel-audit-inbox-{org}"},
    {"inbox-{org}", Op::kDescribe, Res::kTransactionalId, "schakel-audit-inbox-{org}"},

    // ops: follows status, unroutable, reassignments, dead letters, every load topic and every
    // inbox topic (without a group); asks the inboxes' groups what they committed (lag); publishes
    // operators' reassignments.
    {"ops", Op::kRead, Res::kTopic, kStatusTopic},
    {"ops", Op::kRead, Res::kTopic, kUnroutableTopic},
    {"ops", Op::kRead, Res::kTopic, kReassignTopic},
    {"ops", Op::kRead, Res::kTopic, kDeadLetterTopic},
    {"ops", Op::kRead, Res::kTopic, "schakel.load.{org}"},
    {"ops", Op::kRead, Res::kTopic, "schakel.inbox.{org}"},
    {"ops", Op::kDescribe, Res::kGroup, "schakel.inbox.", kPrefix},
    {"ops", Op::kDescribe, Res::kGroup, "schakel.follower"},
    {"ops", Op::kWrite, Res::kTopic, kReassignTopic},
    // Its audit chain "ops" (the console's reassignments).
    {"ops", Op::kWrite, Res::kTopic, "schakel.audit.ops"},
    {"ops", Op::kRead, Res::kTopic, "schakel.audit.ops"},
    {"ops", Op::kCreate, Res::kTopic, "schakel.audit.ops"},
    {"ops", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"ops", Op::kWrite, Res::kTransactionalId, "schakel-audit-ops"},
    {"ops", Op::kDescribe, Res::kTransactionalId, "schakel-audit-ops"},

    // operator (schakelctl): reads what `referral`, `queues`, `unroutable` and `dlq list` show;
    // `unroutable reassign` publishes a reassignment; `dlq redrive` publishes a dead letter again
    // to the topic it came from (a consumer's input). Creating topics and ACLs is the admin's.
    {"operator", Op::kRead, Res::kTopic, kStatusTopic},
    {"operator", Op::kRead, Res::kTopic, kUnroutableTopic},
    {"operator", Op::kRead, Res::kTopic, kDeadLetterTopic},
    {"operator", Op::kRead, Res::kTopic, "schakel.load.{org}"},
    {"operator", Op::kRead, Res::kTopic, "schakel.inbox.{org}"},
    {"operator", Op::kRead, Res::kTopic, kAuditTopicPrefix, kPrefix},
    {"operator", Op::kDescribe, Res::kGroup, "schakel.inbox.", kPrefix},
    {"operator", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"operator", Op::kWrite, Res::kTopic, kReassignTopic},
    {"operator", Op::kWrite, Res::kTopic, kSubmittedTopic},
    {"operator", Op::kWrite, Res::kTopic, kStatusTopic},
    {"operator", Op::kWrite, Res::kTopic, kForwardingTopic},
    {"operator", Op::kWrite, Res::kTopic, kCancellationsTopic},
    {"operator", Op::kWrite, Res::kTopic, kUnroutableTopic},
    {"operator", Op::kWrite, Res::kTopic, "schakel.inbox.{org}"},
    // `audit verify|export` read every chain's topic (above); `unroutable reassign` records in
    // the chain "schakelctl".
    {"operator", Op::kWrite, Res::kTopic, "schakel.audit.schakelctl"},
    {"operator", Op::kCreate, Res::kTopic, "schakel.audit.schakelctl"},
    {"operator", Op::kWrite, Res::kTransactionalId, "schakel-audit-schakelctl"},
    {"operator", Op::kDescribe, Res::kTransactionalId, "schakel-audit-schakelctl"},

    // keys (the key service): follows the router's offers on the grants topic, which nobody but the
    // router writes (its group, schakel.keys.grants by default); publishes erasures; records key
    // hand-outs and erasures in its audit chain "keys".
    {"keys", Op::kRead, Res::kTopic, kKeyGrantsTopic},
    {"keys", Op::kRead, Res::kGroup, "schakel.keys.grants", kPrefix},
    {"keys", Op::kWrite, Res::kTopic, kErasuresTopic},
    {"keys", Op::kWrite, Res::kTopic, "schakel.audit.keys"},
    {"keys", Op::kRead, Res::kTopic, "schakel.audit.keys"},
    {"keys", Op::kCreate, Res::kTopic, "schakel.audit.keys"},
    {"keys", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"keys", Op::kWrite, Res::kTransactionalId, "schakel-audit-keys"},
    {"keys", Op::kDescribe, Res::kTransactionalId, "schakel-audit-keys"},
};

}  // namespace

std::vector<AclRule> KafkaAccessRules(const Network& network) {
  std::vector<AclRule> rules;
  auto add = [&rules](std::string principal, Op op, Res res, std::string name, bool prefixed) {
    AclRule rule{std::move(principal), op, res, std::move(name), prefixed};
    for (const AclRule& r : rules) {
      if (r == rule) return;
    }
    rules.push_back(std::move(rule));
  };
  auto expand = [&](const Row& row) {
    const bool per_org = row.principal.find("{org}") != std::string_view::npos ||
                         row.name.find("{org}") != std::string_view::npos;
    if (!per_org) {
      add(std::string(row.principal), row.operation, row.resource, std::string(row.name),
          row.prefixed);
      return;
    }
    for (const Organisation& org : network.organisations) {
      add(ForOrg(row.principal, org.id), row.operation, row.resource, ForOrg(row.name, org.id),
          row.prefixed);
    }
  };
  for (const Row& row : kRows) expand(row);
  return rules;
}

std::vector<std::string> KafkaPrincipals(const Network& network) {
  std::vector<std::string> principals;
  std::set<std::string> seen;
  for (const AclRule& rule : KafkaAccessRules(network)) {
    if (seen.insert(rule.principal).second) principals.push_back(rule.principal);
  }
  return principals;
}

std::string_view Name(AclOperation operation) {
  switch (operation) {
    case AclOperation::kRead:
      return "Read";
    case AclOperation::kWrite:
      return "Write";
    case AclOperation::kDescribe:
      return "Describe";
    case AclOperation::kCreate:
      return "Create";
  }
  return "?";
}

std::string_view Name(AclResource resource) {
  switch (resource) {
    case AclResource::kTopic:
      return "topic";
    case AclResource::kGroup:
      return "group";
    case AclResource::kTransactionalId:
      return "transactional-id";
  }
  return "?";
}

}  // namespace schakel::routing
