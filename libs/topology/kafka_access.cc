#include "libs/topology/kafka_access.h"

#include <map>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace schakel::topology {
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
    {"intake", Op::kWrite, Res::kTopic, "schakel.deadletters.intake"},
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

    // router: reads its inputs in group schakel.router (every organisation's schakel.from.<org>,
    // by pattern, also of organisations a changed network adds) and its state; follows the
    // organisations' load topics; writes offers (and withdrawals) to every inbox topic - also of
    // organisations a changed network file adds while it runs, hence the prefix -, status,
    // unroutable, its state and dead letters, in transactions (schakel-router-<instance>); creates
    // the topics of a (changed) network. (A new organisation's load is read once the admin has
    // applied the changed network's ACLs, as its inbox may write it only then.)
    {"router", Op::kRead, Res::kTopic, kSubmittedTopic},
    {"router", Op::kRead, Res::kTopic, kFromTopicPrefix, kPrefix},
    {"router", Op::kRead, Res::kTopic, kCancellationsTopic},
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
    {"router", Op::kWrite, Res::kTopic, kUnroutableTopic},
    {"router", Op::kWrite, Res::kTopic, kRouterStateTopic},
    {"router", Op::kWrite, Res::kTopic, "schakel.deadletters.router"},
    {"router", Op::kWrite, Res::kTransactionalId, "schakel-router-", kPrefix},
    {"router", Op::kDescribe, Res::kTransactionalId, "schakel-router-", kPrefix},
    {"router", Op::kCreate, Res::kTopic, "schakel.", kPrefix},

    // inbox-<org>: its own topic in its own groups (schakel.inbox.<org>.<database id>); writes its
    // status changes and forward requests to its own outgoing topic schakel.from.<org> (and the
    // changes back to its own topic), its load reports (to its own load topic) and dead letters.
    // Nothing else: not another organisation's topic, load topic or group, and not the status
    // topic, which only the router writes.
    {"inbox-{org}", Op::kRead, Res::kTopic, "schakel.inbox.{org}"},
    {"inbox-{org}", Op::kRead, Res::kGroup, "schakel.inbox.{org}.", kPrefix},
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.inbox.{org}"},
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.from.{org}"},
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.load.{org}"},
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.deadletters.inbox-{org}"},
    {"inbox-{org}", Op::kRead, Res::kTopic, kErasuresTopic},
    // Its audit chain "inbox-<org>", in its own topic (the writer reads it for the chain's head):
    // not the other chains, which would tell it whom else its clients are served by.
    {"inbox-{org}", Op::kWrite, Res::kTopic, "schakel.audit.inbox-{org}"},
    {"inbox-{org}", Op::kRead, Res::kTopic, "schakel.audit.inbox-{org}"},
    {"inbox-{org}", Op::kCreate, Res::kTopic, "schakel.audit.inbox-{org}"},
    {"inbox-{org}", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"inbox-{org}", Op::kWrite, Res::kTransactionalId, "schakel-audit-inbox-{org}"},
    {"inbox-{org}", Op::kDescribe, Res::kTransactionalId, "schakel-audit-inbox-{org}"},

    // ops: follows status, unroutable, reassignments, every consumer's dead letters, each
    // organisation's load topic and every inbox topic (without a group), setting aside what it
    // cannot use on its own dead-letter topic; asks the inboxes' groups what they committed (lag);
    // publishes operators' reassignments.
    {"ops", Op::kRead, Res::kTopic, kStatusTopic},
    {"ops", Op::kRead, Res::kTopic, kUnroutableTopic},
    {"ops", Op::kRead, Res::kTopic, kReassignTopic},
    {"ops", Op::kRead, Res::kTopic, kDeadLetterTopicPrefix, kPrefix},
    {"ops", Op::kRead, Res::kTopic, "schakel.load.{org}"},
    {"ops", Op::kRead, Res::kTopic, "schakel.inbox.{org}"},
    {"ops", Op::kDescribe, Res::kGroup, "schakel.inbox.", kPrefix},
    {"ops", Op::kDescribe, Res::kGroup, "schakel.follower"},
    {"ops", Op::kWrite, Res::kTopic, kReassignTopic},
    {"ops", Op::kWrite, Res::kTopic, "schakel.deadletters.ops"},
    // Redrive (an operator's, through ops' API, audited): ops re-reads the original record a dead
    // letter names on the consumer's input topic and publishes exactly those bytes there again. So
    // it reads and writes the consumers' inputs - ops is a trusted service, and it republishes only
    // what it read at the named offset itself, never what a dead letter says. Not the facts on
    // the status topic: only the router writes them (the key service's dead letters and those of
    // intake's view that name them are not re-driven).
    {"ops", Op::kRead, Res::kTopic, kSubmittedTopic},
    {"ops", Op::kRead, Res::kTopic, kCancellationsTopic},
    {"ops", Op::kRead, Res::kTopic, kErasuresTopic},
    {"ops", Op::kRead, Res::kTopic, "schakel.from.{org}"},
    {"ops", Op::kWrite, Res::kTopic, kSubmittedTopic},
    {"ops", Op::kWrite, Res::kTopic, kCancellationsTopic},
    {"ops", Op::kWrite, Res::kTopic, kUnroutableTopic},
    {"ops", Op::kWrite, Res::kTopic, kErasuresTopic},
    {"ops", Op::kWrite, Res::kTopic, "schakel.inbox.{org}"},
    {"ops", Op::kWrite, Res::kTopic, "schakel.from.{org}"},
    // Its audit chain "ops": operators' reassignments and redrives (console and schakelctl).
    {"ops", Op::kWrite, Res::kTopic, "schakel.audit.ops"},
    {"ops", Op::kRead, Res::kTopic, "schakel.audit.ops"},
    {"ops", Op::kCreate, Res::kTopic, "schakel.audit.ops"},
    {"ops", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"ops", Op::kWrite, Res::kTransactionalId, "schakel-audit-ops"},
    {"ops", Op::kDescribe, Res::kTransactionalId, "schakel-audit-ops"},

    // operator (schakelctl): reads what `referral`, `queues`, `unroutable`, `dlq list` and `audit
    // verify|export` show, and nothing else. Operators write no topic: a reassignment or a redrive
    // goes through ops' API, with the operator's certificate as the actor, recorded in ops' audit
    // chain. Creating topics and ACLs is the admin's.
    {"operator", Op::kRead, Res::kTopic, kStatusTopic},
    {"operator", Op::kRead, Res::kTopic, kUnroutableTopic},
    {"operator", Op::kRead, Res::kTopic, kReassignTopic},
    {"operator", Op::kRead, Res::kTopic, kDeadLetterTopicPrefix, kPrefix},
    {"operator", Op::kRead, Res::kTopic, "schakel.load.{org}"},
    {"operator", Op::kRead, Res::kTopic, "schakel.inbox.{org}"},
    {"operator", Op::kRead, Res::kTopic, kAuditTopicPrefix, kPrefix},
    {"operator", Op::kDescribe, Res::kGroup, "schakel.inbox.", kPrefix},
    {"operator", Op::kDescribe, Res::kGroup, "schakel.restore"},

    // keys (the key service): follows the router's offers among its facts on the status topic,
    // which nobody but the router writes (its group, schakel.keys.grants by default); publishes
    // erasures; records key hand-outs and erasures in its audit chain "keys"; its own dead-letter
    // topic.
    {"keys", Op::kRead, Res::kTopic, kStatusTopic},
    {"keys", Op::kRead, Res::kGroup, "schakel.keys.grants", kPrefix},
    {"keys", Op::kWrite, Res::kTopic, kErasuresTopic},
    {"keys", Op::kWrite, Res::kTopic, "schakel.deadletters.keys"},
    {"keys", Op::kWrite, Res::kTopic, "schakel.audit.keys"},
    {"keys", Op::kRead, Res::kTopic, "schakel.audit.keys"},
    {"keys", Op::kCreate, Res::kTopic, "schakel.audit.keys"},
    {"keys", Op::kDescribe, Res::kGroup, "schakel.restore"},
    {"keys", Op::kWrite, Res::kTransactionalId, "schakel-audit-keys"},
    {"keys", Op::kDescribe, Res::kTransactionalId, "schakel-audit-keys"},
};

// Why each principal has the rights it has: the last column of docs/architecture.md's table.
constexpr std::pair<std::string_view, std::string_view> kWhy[] = {
    {"intake",
     "takes referrals in and passes referrers' cancellations on; its view follows the submissions "
     "and the router's facts for the referrer's closed loop"},
    {"router",
     "the one writer of offers and facts: it checks each organisation's change, which it reads "
     "from that organisation's own topic, against the offer it made"},
    {"inbox-<org>",
     "one organisation (its inbox, or the partner itself): reads only its own offers and speaks "
     "only on its own topics, so the topic names the author"},
    {"ops",
     "the operators' console and API: reads the facts and queues; publishes operators' "
     "reassignments, and re-drives a dead letter by re-reading the original it names and "
     "publishing exactly that, once (never the router's facts)"},
    {"operator",
     "schakelctl: reads what operators look at and writes nothing: every action goes through "
     "ops' API with the operator's certificate"},
    {"keys", "the key service: grants keys on the router's offers alone; announces erasures"},
};

std::string Shown(const AclRule& rule) {
  return absl::StrCat("`", rule.name, rule.prefixed ? "*" : "", "`");
}

}  // namespace

std::string KafkaAccessMarkdown() {
  Network placeholder;
  placeholder.organisations.emplace_back();
  placeholder.organisations.back().id = "<org>";
  struct Row {
    std::vector<std::string> reads, writes, creates, groups, transactions;
  };
  std::vector<std::string> order;
  std::map<std::string, Row> rows;
  for (const AclRule& rule : KafkaAccessRules(placeholder)) {
    if (!rows.contains(rule.principal)) order.push_back(rule.principal);
    Row& row = rows[rule.principal];
    switch (rule.resource) {
      case AclResource::kTopic:
        if (rule.operation == AclOperation::kRead) row.reads.push_back(Shown(rule));
        if (rule.operation == AclOperation::kWrite) row.writes.push_back(Shown(rule));
        if (rule.operation == AclOperation::kCreate) row.creates.push_back(Shown(rule));
        if (rule.operation == AclOperation::kDescribe)
          row.reads.push_back(Shown(rule) + " (describe)");
        break;
      case AclResource::kGroup:
        row.groups.push_back(Shown(rule) +
                             (rule.operation == AclOperation::kRead ? "" : " (describe)"));
        break;
      case AclResource::kTransactionalId:
        if (rule.operation == AclOperation::kWrite) row.transactions.push_back(Shown(rule));
        break;
    }
  }
  std::string out =
      "| principal | reads | writes | creates | groups | transactional ids | why |\n"
      "|---|---|---|---|---|---|---|\n";
  auto cell = [](const std::vector<std::string>& items) {
    return items.empty() ? std::string("—") : absl::StrJoin(items, ", ");
  };
  for (const std::string& principal : order) {
    const Row& row = rows[principal];
    std::string why;
    for (const auto& [who, text] : kWhy) {
      if (who == principal) why = std::string(text);
    }
    absl::StrAppend(&out, "| `", principal, "` | ", cell(row.reads), " | ", cell(row.writes), " | ",
                    cell(row.creates), " | ", cell(row.groups), " | ", cell(row.transactions),
                    " | ", why, " |\n");
  }
  return out;
}

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

}  // namespace schakel::topology
