#include "tools/schakelctl/ops_commands.h"

#include <google/protobuf/util/time_util.h>  // Timestamp's operator<

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "libs/ops/queues.h"
#include "libs/ops/unroutable.h"
#include "libs/routing/network.h"
#include "libs/topology/topic_specs.h"
#include "tools/schakelctl/common.h"

namespace schakel::ctl {
namespace {

struct ReassignFlags {
  std::string ops = kDefaultOps;
  std::string referral;
  std::uint32_t need = 0;
  std::string organisation;
  std::string reason;
};

struct ReferralFlags {
  NetworkAndKafka from;
  std::string id;
};

struct QueuesFlags {
  NetworkAndKafka from;
  bool json = false;
};

// The queue: what went unroutable, the operators' reassignments, and the offers that continue a
// need (a reassignment done).
absl::StatusOr<ops::UnroutableQueue> ReadUnroutableQueue(const std::string& kafka,
                                                         const routing::Network& net) {
  absl::StatusOr<std::vector<kafka::Record>> unroutable =
      ReadTopic(kafka, topology::kUnroutableTopic, net.topics.partitions);
  if (!unroutable.ok()) return unroutable.status();
  ops::UnroutableQueue queue;
  for (const kafka::Record& r : *unroutable) {
    v1::ReferralUnroutable u;
    if (u.ParseFromString(r.value)) queue.AddUnroutable(u);
  }
  absl::StatusOr<std::vector<kafka::Record>> reassignments =
      ReadTopic(kafka, topology::kReassignTopic, net.topics.partitions);
  if (!reassignments.ok()) return reassignments.status();
  for (const kafka::Record& r : *reassignments) {
    v1::ReassignRequested reassign;
    if (reassign.ParseFromString(r.value)) queue.AddReassign(reassign);
  }
  for (const routing::Organisation& org : net.organisations) {
    absl::StatusOr<std::vector<kafka::Record>> offers =
        ReadTopic(kafka, topology::InboxTopic(org.id), net.topics.partitions);
    if (!offers.ok()) return offers.status();
    for (const kafka::Record& r : *offers) {
      v1::InboxEvent event;
      if (event.ParseFromString(r.value) && event.has_requested()) {
        queue.AddOffer(event.requested());
      }
    }
  }
  return queue;
}

void PrintUnroutable(const ops::UnroutableQueue& queue) {
  int count = 0;
  for (const ops::UnroutableNeed& u : queue.Needs()) {
    ++count;
    std::printf("%s  %s  need %s (#%u)  %s  from %s  region %s\n", Time(u.at).c_str(),
                u.unroutable_id.c_str(), u.need_code.c_str(), u.need_index,
                v1::Urgency_Name(u.urgency).c_str(), u.referring_organisation.c_str(),
                u.region.c_str());
    if (!u.reassigned_to.empty()) {
      std::printf("    reassigned to %s\n", u.reassigned_to.c_str());
    } else if (!u.requested_to.empty()) {
      std::printf("    reassignment to %s on its way\n", u.requested_to.c_str());
    }
    // The chain of offers first, then a few of everybody else's reasons.
    int others = 0;
    for (const v1::PassedOver& p : u.passed_over) {
      const bool offered = p.reason().rfind("offered (", 0) == 0;
      if (!offered && ++others > 5) continue;
      std::printf("    %s: %s\n", p.organisation().c_str(), p.reason().c_str());
    }
    if (others > 5) std::printf("    (+%d more organisations)\n", others - 5);
  }
  std::printf("(%d unroutable needs)\n", count);
}

int ListUnroutable(const NetworkAndKafka& flags) {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.network);
  if (!net.ok()) return Fail(net.status());
  absl::StatusOr<ops::UnroutableQueue> queue = ReadUnroutableQueue(flags.kafka, *net);
  if (!queue.ok()) return Fail(queue.status());
  PrintUnroutable(*queue);
  return 0;
}

int Reassign(const Context& context, const ReassignFlags& flags) {
  absl::StatusOr<OpsAnswer> answer =
      context.PostToOps(flags.ops, "/api/reassign",
                        nlohmann::json{{"referral_id", flags.referral},
                                       {"need_index", flags.need},
                                       {"organisation", flags.organisation},
                                       {"reason", flags.reason}}
                            .dump());
  if (!answer.ok()) return Fail("unroutable reassign: " + std::string(answer.status().message()));
  if (answer->status != 202) return Fail("unroutable reassign: " + ErrorOf(*answer));
  std::printf(
      "reassignment of %s need #%u to %s sent; the router offers it there (see schakelctl "
      "referral %s)\n",
      flags.referral.c_str(), flags.need, flags.organisation.c_str(), flags.referral.c_str());
  return 0;
}

int ShowReferral(const ReferralFlags& flags) {
  const std::string& kafka = flags.from.kafka;
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.from.network);
  if (!net.ok()) return Fail(net.status());
  absl::StatusOr<std::vector<kafka::Record>> unroutable =
      ReadTopic(kafka, topology::kUnroutableTopic, net->topics.partitions);
  if (!unroutable.ok()) return Fail(unroutable.status());
  absl::StatusOr<std::vector<kafka::Record>> statuses =
      ReadTopic(kafka, topology::kStatusTopic, net->topics.partitions);
  if (!statuses.ok()) return Fail(statuses.status());
  // Operators' reassignments: who decided, when and why (the audit of that decision).
  absl::StatusOr<std::vector<kafka::Record>> reassignments =
      ReadTopic(kafka, topology::kReassignTopic, net->topics.partitions);
  if (!reassignments.ok()) return Fail(reassignments.status());
  const std::vector<std::string> lines =
      ReferralTimeline(flags.id, *statuses, *unroutable, *reassignments);
  if (lines.empty()) return Fail("no events for referral " + flags.id);
  for (const std::string& line : lines) std::printf("%s\n", line.c_str());
  return 0;
}

// The consumer group of each organisation's inbox, as its inbox names it in its load reports, each
// on its organisation's own load topic (a report there that claims another organisation is not
// believed).
absl::StatusOr<std::map<std::string, std::string>> InboxGroups(const std::string& kafka,
                                                               const routing::Network& net) {
  std::map<std::string, std::string> groups;
  for (const routing::Organisation& org : net.organisations) {
    absl::StatusOr<std::vector<kafka::Record>> loads =
        ReadTopic(kafka, topology::LoadTopic(org.id), net.topics.partitions);
    if (!loads.ok()) return loads.status();
    for (const kafka::Record& r : *loads) {
      v1::InboxLoad load;
      if (load.ParseFromString(r.value) && load.organisation() == org.id &&
          !load.consumer_group().empty()) {
        groups[org.id] = load.consumer_group();
      }
    }
  }
  return groups;
}

int ShowQueues(const QueuesFlags& flags) {
  const std::string& kafka = flags.from.kafka;
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.from.network);
  if (!net.ok()) return Fail(net.status());
  ops::QueueFigures figures;
  std::map<std::string, ops::TopicLag> topic_lag;
  for (const routing::Organisation& org : net->organisations) {
    absl::StatusOr<std::vector<kafka::Record>> offers =
        ReadTopic(kafka, topology::InboxTopic(org.id), net->topics.partitions);
    if (!offers.ok()) return Fail(offers.status());
    for (const kafka::Record& r : *offers) {
      topic_lag[org.id].Seen(r.partition, r.offset);
      v1::InboxEvent event;
      if (event.ParseFromString(r.value) && event.has_requested()) {
        figures.AddOffer(event.requested());
      }
    }
  }
  absl::StatusOr<std::vector<kafka::Record>> changes =
      ReadTopic(kafka, topology::kStatusTopic, net->topics.partitions);
  if (!changes.ok()) return Fail(changes.status());
  for (const kafka::Record& r : *changes) {
    v1::AssignmentStatusChanged change;
    if (change.ParseFromString(r.value)) figures.AddStatus(change);
  }
  // Lag: the records on each inbox topic at or after its inbox group's committed offset.
  absl::StatusOr<std::map<std::string, std::string>> groups = InboxGroups(kafka, *net);
  if (!groups.ok()) return Fail(groups.status());
  std::map<std::string, std::int64_t> lag;
  for (const auto& [org, group] : *groups) {
    absl::StatusOr<std::map<std::int32_t, std::int64_t>> committed =
        kafka::CommittedOffsets(kafka, group, topology::InboxTopic(org),
                                Partitions(net->topics.partitions), std::chrono::seconds(10));
    if (!committed.ok()) continue;  // shown as not known
    lag[org] = topic_lag[org].Behind(*committed);
  }
  const std::vector<ops::QueueRow> rows = figures.Rows(*net, std::chrono::system_clock::now(), lag);
  std::cout << (flags.json ? ops::QueueJson(rows) : ops::QueueTable(rows));
  return 0;
}

}  // namespace

std::vector<std::string> ReferralTimeline(const std::string& referral_id,
                                          const std::vector<kafka::Record>& statuses,
                                          const std::vector<kafka::Record>& unroutable,
                                          const std::vector<kafka::Record>& reassignments) {
  struct Line {
    google::protobuf::Timestamp at;
    std::string text;
  };
  std::vector<Line> lines;
  for (const kafka::Record& r : statuses) {
    v1::AssignmentStatusChanged s;
    if (!s.ParseFromString(r.value) || s.meta().referral_id() != referral_id) continue;
    std::string text = s.meta().assignment_id() + "  " + s.need_code() + "  " + s.organisation() +
                       "  " + StatusName(s.from_status()) + " -> " + StatusName(s.to_status()) +
                       "  by " + s.by();
    if (s.by() == "network" && !s.reason().empty()) text += "  (" + s.reason() + ")";
    lines.push_back({s.meta().occurred_at(), text});
  }
  for (const kafka::Record& r : unroutable) {
    v1::ReferralUnroutable u;
    if (!u.ParseFromString(r.value) || u.meta().referral_id() != referral_id) continue;
    lines.push_back({u.meta().occurred_at(), u.meta().assignment_id() + "  " + u.need_code() +
                                                 "  UNROUTABLE (schakelctl unroutable)"});
  }
  for (const kafka::Record& r : reassignments) {
    v1::ReassignRequested a;
    if (!a.ParseFromString(r.value) || a.meta().referral_id() != referral_id) continue;
    lines.push_back({a.meta().occurred_at(), a.meta().assignment_id() + "  REASSIGN to " +
                                                 a.to_organisation() + " by " + a.by() + "  (\"" +
                                                 a.reason() + "\")"});
  }
  std::stable_sort(lines.begin(), lines.end(),
                   [](const Line& a, const Line& b) { return a.at < b.at; });
  std::vector<std::string> timeline;
  for (const Line& line : lines) timeline.push_back(Time(line.at) + "  " + line.text);
  return timeline;
}

void AddOpsCommands(CLI::App& app, Context& context) {
  auto unroutable_flags = std::make_shared<NetworkAndKafka>();
  auto* unroutable = app.add_subcommand(
      "unroutable",
      "The needs nobody could take, with the chain of offers and everybody's reason, and whether "
      "an operator reassigned them");
  AddNetworkOption(unroutable, unroutable_flags->network);
  AddKafkaOption(unroutable, unroutable_flags->kafka);
  unroutable->require_subcommand(0, 1);
  context.Handle(unroutable, [unroutable_flags] { return ListUnroutable(*unroutable_flags); });

  auto reassign_flags = std::make_shared<ReassignFlags>();
  auto* reassign = unroutable->add_subcommand(
      "reassign",
      "Hand an unroutable need to an organisation that agreed to take it (e.g. by phone), through "
      "the ops service, as the operator your certificate names. The router offers it there, within "
      "the client's sharing permission; the decision (who, why, when) stays on "
      "schakel.operator.reassignments and in ops' audit chain");
  reassign->add_option("referral", reassign_flags->referral, "The referral id (r-…)")->required();
  reassign
      ->add_option("need", reassign_flags->need,
                   "The need's index in the referral (#N in the list)")
      ->required();
  reassign->add_option("organisation", reassign_flags->organisation, "The organisation's id")
      ->required();
  reassign->add_option("--reason", reassign_flags->reason, "Why this organisation (required)")
      ->required();
  reassign->add_option("--ops", reassign_flags->ops, "The ops service's console/API address")
      ->capture_default_str();
  context.Handle(reassign,
                 [&context, reassign_flags] { return Reassign(context, *reassign_flags); });

  auto referral_flags = std::make_shared<ReferralFlags>();
  auto* referral = app.add_subcommand(
      "referral",
      "The timeline of one referral across organisations: every offer and status change (reasons "
      "only where the network gave them: organisations' own words stay in their inboxes)");
  referral->add_option("id", referral_flags->id, "The referral id (r-…)")->required();
  AddNetworkOption(referral, referral_flags->from.network);
  AddKafkaOption(referral, referral_flags->from.kafka);
  context.Handle(referral, [referral_flags] { return ShowReferral(*referral_flags); });

  auto queues_flags = std::make_shared<QueuesFlags>();
  auto* queues = app.add_subcommand(
      "queues",
      "Per organisation: assignments waiting to be accepted (and of those overdue: past the "
      "network's SLA for their urgency), accepted, in progress (or on hold) and done, folded from "
      "the offers and status changes on Kafka (counts only, no personal data)");
  queues->add_flag("--json", queues_flags->json, "The same figures as a JSON array");
  AddNetworkOption(queues, queues_flags->from.network);
  AddKafkaOption(queues, queues_flags->from.kafka);
  context.Handle(queues, [queues_flags] { return ShowQueues(*queues_flags); });
}

}  // namespace schakel::ctl
