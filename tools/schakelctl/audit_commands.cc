#include "tools/schakelctl/audit_commands.h"

#include <google/protobuf/util/json_util.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "libs/audit/signing.h"
#include "libs/audit/verify.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/topology/topic_specs.h"
#include "schakel/v1/audit.pb.h"
#include "tools/schakelctl/common.h"

namespace schakel::ctl {
namespace {

struct VerifyFlags {
  std::string kafka = kDefaultKafka;
  std::string file;  // an export, instead of the topics
  std::string keys;  // the trusted keys' folder; empty: <pki>/audit
};

using AuditRecordFn =
    std::function<void(const std::string& topic, const kafka::Record& record, bool tombstone)>;

// Hands every record of every chain's topic to `fn`, each topic in order: one partition each
// (libs/routing/topics.h), so the log's order is the chain's order. The error names the brokers.
absl::Status ForEachAuditRecord(const std::string& kafka, const AuditRecordFn& fn) {
  absl::StatusOr<std::vector<std::string>> topics =
      kafka::ListTopics(kafka, std::string(topology::kAuditTopicPrefix), std::chrono::seconds(30));
  if (!topics.ok()) return AtKafka(kafka, topics.status());
  if (topics->empty()) {
    return absl::NotFoundError("Kafka at " + kafka + ": no audit topic (schakel.audit.*) to read");
  }
  for (const std::string& topic : *topics) {
    absl::Status read = kafka::ReadToEnd(
        kafka, topic, {0}, std::chrono::minutes(10),
        [&](const kafka::Record& record, bool tombstone) { fn(topic, record, tombstone); });
    if (!read.ok()) return AtKafka(kafka, read);
  }
  return absl::OkStatus();
}

// Prints the report of the chains `verifier` was fed: exit 0 when every chain is intact, 1 when
// there are problems.
int PrintAuditReport(const audit::Verifier& verifier) {
  const audit::Report report = verifier.Finish();
  std::cout << audit::ReportText(report);
  return report.ok() ? 0 : 1;
}

// Feeds `verifier` the export in `file`, one AuditEntry in JSON per line.
absl::Status AddExport(const std::string& file, audit::Verifier& verifier) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(file + ": cannot open");
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string position = "line " + std::to_string(number);
    v1::AuditEntry entry;
    if (const auto parsed = google::protobuf::util::JsonStringToMessage(line, &entry);
        !parsed.ok()) {
      verifier.AddUndecodable(position, "not an audit entry in JSON");
      continue;
    }
    verifier.AddEntry(position, "", std::move(entry));
  }
  return absl::OkStatus();
}

int Verify(const Context& context, const VerifyFlags& flags) {
  // The keys verify trusts, one writer each.
  audit::TrustedKeys trusted;
  const std::string keys = flags.keys.empty() ? context.pki() + "/audit" : flags.keys;
  if (absl::Status s = trusted.AddFolder(keys); !s.ok()) {
    return Fail("audit verify: " + std::string(s.message()) +
                " (give --audit-keys: the folder of the writers' <writer>.pub)");
  }
  audit::Verifier verifier(std::move(trusted));
  absl::Status read =
      !flags.file.empty()
          ? AddExport(flags.file, verifier)
          : ForEachAuditRecord(flags.kafka, [&](const std::string& topic,
                                                const kafka::Record& record, bool tombstone) {
              const std::string position = topic + " offset " + std::to_string(record.offset);
              if (tombstone) {
                verifier.AddUndecodable(position, "a tombstone");
              } else {
                verifier.AddRecord(position, record.key, record.value, topic);
              }
            });
  if (!read.ok()) return Fail(read);
  return PrintAuditReport(verifier);
}

int Export(const std::string& kafka) {
  google::protobuf::util::JsonPrintOptions json;
  json.preserve_proto_field_names = true;
  bool written = true;
  absl::Status read = ForEachAuditRecord(
      kafka, [&](const std::string& topic, const kafka::Record& record, bool tombstone) {
        v1::AuditEntry entry;
        std::string text;
        if (tombstone || !entry.ParseFromString(record.value) ||
            !google::protobuf::util::MessageToJsonString(entry, &text, json).ok()) {
          // Kept as a line that is no entry, so that verifying the export finds it too.
          text = "{\"undecodable_record_at\": \"" + topic + " offset " +
                 std::to_string(record.offset) + "\"}";
        }
        std::cout << text << "\n";
        written = written && static_cast<bool>(std::cout);
      });
  if (!read.ok()) return Fail(read);
  return written ? 0 : Fail("audit export: cannot write the output");
}

}  // namespace

void AddAuditCommands(CLI::App& app, Context& context) {
  auto* audit = app.add_subcommand(
      "audit",
      "The audit stream: who read personal data or changed a status, what, when and why, as one "
      "hash chain per writer, each in its own topic schakel.audit.<writer>");
  audit->require_subcommand(1);

  auto verify_flags = std::make_shared<VerifyFlags>();
  auto* verify = audit->add_subcommand(
      "verify",
      "Check every writer's chain: sequence from 0 without gaps, each entry naming the previous "
      "one's hash, each hash recomputed, each entry signed by a key trusted for its writer "
      "(--audit-keys). Prints per writer the entries checked and OK, or each problem; exits 0 "
      "only when every chain is intact");
  AddKafkaOption(verify, verify_flags->kafka);
  verify->add_option("--file", verify_flags->file,
                     "Check an export (schakelctl audit export) instead of the topics");
  verify->add_option(
      "--audit-keys", verify_flags->keys,
      "Folder of the public keys trusted to sign each writer's entries, <writer>.pub (PEM; "
      "several keys in one file for a renewed key); default: <pki>/audit");
  context.Handle(verify, [&context, verify_flags] { return Verify(context, *verify_flags); });

  auto export_kafka = std::make_shared<std::string>(kDefaultKafka);
  auto* export_command = audit->add_subcommand(
      "export",
      "Print every record of every chain's topic (schakel.audit.*), each in order, one JSON object "
      "(an AuditEntry) per line; keep it, and check it later with audit verify --file");
  AddKafkaOption(export_command, *export_kafka);
  context.Handle(export_command, [export_kafka] { return Export(*export_kafka); });
}

}  // namespace schakel::ctl
