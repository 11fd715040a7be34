#include "tools/schakelctl/dlq_commands.h"

#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "absl/strings/numbers.h"
#include "libs/audit/entry.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/routing/network.h"
#include "libs/topology/topic_specs.h"
#include "schakel/v1/audit.pb.h"
#include "tools/schakelctl/common.h"

namespace schakel::ctl {
namespace {

struct DlqFlags {
  std::string network = kDefaultNetworkFile;
  std::string kafka = kDefaultKafka;
  std::string ops = kDefaultOps;
  std::vector<std::string> places;  // of the dead letters to re-drive
  bool all = false;
};

struct DeadLetterAt {
  std::string place;  // of the dead letter itself
  v1::DeadLetter letter;
};

// Every dead letter on every consumer's own dead-letter topic there is (a consumer of another
// network file too), each topic with `partitions` partitions; the error names the brokers.
absl::StatusOr<std::vector<DeadLetterAt>> ReadDeadLetters(const std::string& kafka,
                                                          int partitions) {
  absl::StatusOr<std::vector<std::string>> topics =
      kafka::ListTopics(kafka, std::string(topology::kDeadLetterTopicPrefix), kDeadline);
  if (!topics.ok()) return AtKafka(kafka, topics.status());
  std::vector<DeadLetterAt> letters;
  for (const std::string& topic : *topics) {
    absl::Status read =
        kafka::ReadToEnd(kafka, topic, Partitions(partitions), kDeadline,
                         [&](const kafka::Record& record, bool tombstone) {
                           v1::DeadLetter letter;
                           if (!tombstone && letter.ParseFromString(record.value)) {
                             letters.push_back({topic + "/" + std::to_string(record.partition) +
                                                    "/" + std::to_string(record.offset),
                                                std::move(letter)});
                           }
                         });
    if (!read.ok()) return AtKafka(kafka, read);
  }
  return letters;
}

// Which dead letters were re-driven, and by whom: dead letter's place -> "<at> by <operator>".
// Ops records each redrive in its chain, which operators read (a chain not there yet is no error:
// nothing was re-driven); when the chain cannot be read, says so on stderr and knows none.
std::map<std::string, std::string> ReadRedriven(const std::string& kafka) {
  std::map<std::string, std::string> redriven;
  const std::string redrive_prefix = "redrive ";
  const absl::Status chain =
      kafka::ReadToEnd(kafka, topology::AuditTopic("ops"), {0}, kDeadline,
                       [&](const kafka::Record& record, bool tombstone) {
                         v1::AuditEntry entry;
                         if (tombstone || !entry.ParseFromString(record.value) ||
                             entry.action() != audit::kDeadLetterRedriven ||
                             entry.reason().rfind(redrive_prefix, 0) != 0) {
                           return;
                         }
                         redriven.emplace(entry.reason().substr(redrive_prefix.size()),
                                          Time(entry.at()) + " by " + entry.actor().id());
                       });
  if (!chain.ok()) {
    std::fprintf(stderr, "schakelctl: which dead letters were re-driven is not known: %s\n",
                 std::string(chain.message()).c_str());
  }
  return redriven;
}

int ListDeadLetters(const DlqFlags& flags) {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.network);
  if (!net.ok()) return Fail(net.status());
  absl::StatusOr<std::vector<DeadLetterAt>> letters =
      ReadDeadLetters(flags.kafka, net->topics.partitions);
  if (!letters.ok()) return Fail(letters.status());
  const std::map<std::string, std::string> redriven = ReadRedriven(flags.kafka);
  std::printf("%-52s %-44s %-16s %-20s %s\n", "DEAD LETTER", "RECORD", "CONSUMER", "AT", "REASON");
  for (const DeadLetterAt& l : *letters) {
    const std::string record = l.letter.topic() + "/" + std::to_string(l.letter.partition()) + "/" +
                               std::to_string(l.letter.offset());
    std::printf("%-52s %-44s %-16s %-20s %s\n", l.place.c_str(), record.c_str(),
                l.letter.consumer().c_str(), Time(l.letter.at()).c_str(),
                l.letter.reason().c_str());
    if (auto it = redriven.find(l.place); it != redriven.end()) {
      std::printf("    re-driven %s\n", it->second.c_str());
    }
  }
  std::printf("(%zu dead letters, %zu re-driven)\n", letters->size(), redriven.size());
  return 0;
}

// --all: the places of the dead letters not re-driven yet (ops refuses the others anyway).
absl::StatusOr<std::vector<std::string>> NotRedrivenYet(const DlqFlags& flags) {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.network);
  if (!net.ok()) return net.status();
  if (!flags.places.empty()) {
    return absl::InvalidArgumentError("dlq redrive: name dead letters, or --all, not both");
  }
  absl::StatusOr<std::vector<DeadLetterAt>> letters =
      ReadDeadLetters(flags.kafka, net->topics.partitions);
  if (!letters.ok()) return letters.status();
  const std::map<std::string, std::string> redriven = ReadRedriven(flags.kafka);
  std::vector<std::string> places;
  for (const DeadLetterAt& l : *letters) {
    if (!redriven.contains(l.place)) places.push_back(l.place);
  }
  return places;
}

int Redrive(const Context& context, const DlqFlags& flags) {
  std::vector<std::string> places = flags.places;
  if (flags.all) {
    absl::StatusOr<std::vector<std::string>> not_yet = NotRedrivenYet(flags);
    if (!not_yet.ok()) return Fail(not_yet.status());
    places = *std::move(not_yet);
  }
  if (places.empty()) {
    return flags.all ? (std::printf("(0 re-driven)\n"), 0)
                     : Fail(
                           "dlq redrive: name dead letters (DEAD-LETTER-TOPIC/PARTITION/"
                           "OFFSET, as dlq list shows them), or --all");
  }
  int sent = 0;
  int refused = 0;
  int earlier = 0;
  for (const std::string& place : places) {
    const std::optional<DeadLetterPlace> at = ParseDeadLetterPlace(place);
    if (!at) {
      return Fail("dlq redrive: " + place +
                  ": not DEAD-LETTER-TOPIC/PARTITION/OFFSET (see schakelctl dlq list)");
    }
    absl::StatusOr<OpsAnswer> answer = context.PostToOps(
        flags.ops, "/api/redrive",
        nlohmann::json{
            {"dead_letter_topic", at->topic}, {"partition", at->partition}, {"offset", at->offset}}
            .dump());
    if (!answer.ok()) return Fail("dlq redrive: " + std::string(answer.status().message()));
    if (answer->status == 200) {
      ++sent;
      std::printf("re-driven %s\n", place.c_str());
      continue;
    }
    const std::string why = ErrorOf(*answer);
    // --all names every dead letter: those re-driven before are no failure.
    if (flags.all && answer->status == 409 && why.find(" was re-driven at ") != std::string::npos) {
      ++earlier;
      continue;
    }
    ++refused;
    std::fprintf(stderr, "schakelctl: dlq redrive: %s\n", why.c_str());
  }
  std::printf("(%d re-driven%s%s)\n", sent,
              refused > 0 ? (", " + std::to_string(refused) + " refused").c_str() : "",
              earlier > 0 ? (", " + std::to_string(earlier) + " re-driven before").c_str() : "");
  return refused == 0 ? 0 : 1;
}

}  // namespace

std::optional<DeadLetterPlace> ParseDeadLetterPlace(const std::string& text) {
  // A topic name holds no '/'.
  const std::size_t last = text.rfind('/');
  const std::size_t middle = last == std::string::npos ? last : text.rfind('/', last - 1);
  DeadLetterPlace place;
  if (middle == std::string::npos || middle == 0 ||
      !absl::SimpleAtoi(text.substr(middle + 1, last - middle - 1), &place.partition) ||
      !absl::SimpleAtoi(text.substr(last + 1), &place.offset) || place.partition < 0 ||
      place.offset < 0) {
    return std::nullopt;
  }
  place.topic = text.substr(0, middle);
  return place;
}

void AddDlqCommands(CLI::App& app, Context& context) {
  auto* dlq = app.add_subcommand(
      "dlq",
      "Dead letters: records a consumer could not use, on its own schakel.deadletters.<principal>");
  dlq->require_subcommand(1);

  auto list_flags = std::make_shared<DlqFlags>();
  auto* list = dlq->add_subcommand(
      "list",
      "List every consumer's dead letters: where each is, the record it names, who gave up on it, "
      "and why (never the payload)");
  AddNetworkOption(list, list_flags->network, "The network file (for the partitions)");
  AddKafkaOption(list, list_flags->kafka);
  context.Handle(list, [list_flags] { return ListDeadLetters(*list_flags); });

  auto redrive_flags = std::make_shared<DlqFlags>();
  auto* redrive = dlq->add_subcommand(
      "redrive",
      "Have the ops service publish the original record of dead letters again to the topic it came "
      "from (after the cause is fixed). Ops re-reads the original at its place, refuses a dead "
      "letter that names what its consumer does not read or whose copy differs from the original, "
      "re-drives each dead letter once, and records it in its audit chain with your name (from "
      "your operator certificate)");
  redrive->add_option("dead-letters", redrive_flags->places,
                      "Dead letters by where they are, DEAD-LETTER-TOPIC/PARTITION/OFFSET, "
                      "as `dlq list` shows them");
  redrive->add_flag("--all", redrive_flags->all,
                    "Every dead letter not re-driven yet (read with your Kafka identity)");
  redrive->add_option("--ops", redrive_flags->ops, "The ops service's console/API address")
      ->capture_default_str();
  AddNetworkOption(redrive, redrive_flags->network, "The network file (for --all)");
  AddKafkaOption(redrive, redrive_flags->kafka, "Kafka bootstrap servers (for --all)");
  context.Handle(redrive, [&context, redrive_flags] { return Redrive(context, *redrive_flags); });
}

}  // namespace schakel::ctl
