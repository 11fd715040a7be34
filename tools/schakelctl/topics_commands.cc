#include "tools/schakelctl/topics_commands.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libs/kafka/admin.h"
#include "libs/routing/network.h"
#include "libs/topology/topic_specs.h"
#include "tools/schakelctl/common.h"

namespace schakel::ctl {
namespace {

int CreateTopics(const NetworkAndKafka& flags) {
  const std::string& kafka = flags.kafka;
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.network);
  if (!net.ok()) return Fail(net.status());
  const std::vector<kafka::TopicSpec> specs = topology::TopicSpecs(*net);
  absl::Status created = kafka::EnsureTopics(kafka, specs, kDeadline);
  if (!created.ok()) return KafkaFail(kafka, created);
  std::cout << specs.size() << " topics present on " << kafka << " (" << net->topics.partitions
            << " partitions, replication factor " << net->topics.replication_factor << ")\n";
  return 0;
}

// How many records of `topic` the group `drained_by` has not read yet (at or after its committed
// offset).
absl::StatusOr<std::size_t> Unread(const std::string& kafka, const std::string& topic,
                                   const std::string& drained_by, int partitions) {
  absl::StatusOr<std::map<std::int32_t, std::int64_t>> committed =
      kafka::CommittedOffsets(kafka, drained_by, topic, Partitions(partitions), kDeadline);
  if (!committed.ok()) return AtKafka(kafka, committed.status());
  absl::StatusOr<std::vector<kafka::Record>> records = ReadTopic(kafka, topic, partitions);
  if (!records.ok()) return records.status();
  std::size_t unread = 0;
  for (const kafka::Record& r : *records) {
    const auto at = committed->find(r.partition);
    if (at == committed->end() || r.offset >= at->second) ++unread;
  }
  return unread;
}

int RetireTopics(const NetworkAndKafka& flags) {
  const std::string& kafka = flags.kafka;
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.network);
  if (!net.ok()) return Fail(net.status());
  absl::StatusOr<std::vector<std::string>> present =
      kafka::ListTopics(kafka, "schakel.", kDeadline);
  if (!present.ok()) return KafkaFail(kafka, present.status());
  int not_yet = 0;
  for (const topology::RetiredTopic& retired : topology::kRetiredTopics) {
    const std::string topic(retired.name);
    if (std::find(present->begin(), present->end(), topic) == present->end()) continue;
    if (!retired.drained_by.empty()) {
      // Drained: the group has read every record (its committed offset is past each one).
      absl::StatusOr<std::size_t> unread =
          Unread(kafka, topic, std::string(retired.drained_by), net->topics.partitions);
      if (!unread.ok()) return Fail(unread.status());
      if (*unread > 0) {
        std::cout << topic << ": kept: " << retired.drained_by << " has " << *unread
                  << " of its records still to read (stop what writes it, let "
                  << retired.drained_by << " run, then retire again)\n";
        ++not_yet;
        continue;
      }
    }
    absl::Status deleted = kafka::DeleteTopics(kafka, {topic}, kDeadline);
    if (!deleted.ok()) return KafkaFail(kafka, deleted);
    std::cout << topic << ": deleted (" << retired.instead << ")\n";
  }
  return not_yet == 0 ? 0 : 1;
}

}  // namespace

void AddTopicsCommands(CLI::App& app, Context& context) {
  auto* topics = app.add_subcommand("topics", "Kafka topic commands");
  topics->require_subcommand(1);

  auto create_flags = std::make_shared<NetworkAndKafka>();
  auto* create = topics->add_subcommand("create", "Create every topic the network needs");
  AddNetworkOption(create, create_flags->network);
  AddKafkaOption(create, create_flags->kafka);
  context.Handle(create, [create_flags] { return CreateTopics(*create_flags); });

  auto retire_flags = std::make_shared<NetworkAndKafka>();
  auto* retire = topics->add_subcommand(
      "retire",
      "Delete the topics an earlier version used, each once the consumer that read it has read it "
      "to the end (as the Kafka super user: --kafka-config)");
  AddNetworkOption(retire, retire_flags->network);
  AddKafkaOption(retire, retire_flags->kafka);
  context.Handle(retire, [retire_flags] { return RetireTopics(*retire_flags); });
}

}  // namespace schakel::ctl
