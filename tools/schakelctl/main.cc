// schakelctl: one command line for operators and for trying Schakel out.
//   schakelctl network check <file>                   validate a network file
//   schakelctl network organisations <file>           list the organisations (id, name)
//   schakelctl topics create --network <file>         create every topic the network needs
//   schakelctl submit --as <org> --file <json>        submit a referral (JSON of
//   schakel.v1.Referral) schakelctl explain --file <json>                  where would it go, and
//   why schakelctl inbox list --inbox <addr>              what waits in an organisation's inbox
// Every call to a service has a deadline; an unreachable service or broker is named with its
// address.
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "libs/audit/entry.h"
#include "libs/audit/verify.h"
#include "libs/audit/writer.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/ops/queues.h"
#include "libs/ops/unroutable.h"
#include "libs/routing/kafka_access.h"
#include "libs/routing/network.h"
#include "libs/routing/topics.h"
#include "libs/service/security.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "schakel/v1/keys.grpc.pb.h"
#include "schakel/v1/routing.grpc.pb.h"
#include "tools/schakelctl/ops_client.h"

namespace {

constexpr auto kDeadline = std::chrono::seconds(15);

// Runs `argv` (a program and its arguments, no shell) with its output on ours; its exit status.
int Run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int Fail(const std::string& message) {
  std::cerr << "schakelctl: " << message << "\n";
  return 1;
}

int RpcFail(const std::string& what, const std::string& address, const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(what + ": cannot reach the service at " + address + " (" + status.error_message() +
                ")");
  }
  return Fail(what + ": " + status.error_message());
}

bool ReadReferral(const std::string& path, schakel::v1::Referral* referral, std::string* error) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) {
      *error = path + ": cannot open";
      return false;
    }
    text << in.rdbuf();
  }
  const auto status = google::protobuf::util::JsonStringToMessage(text.str(), referral);
  if (!status.ok()) {
    *error = path + ": not a schakel.v1.Referral in JSON: " + std::string(status.message());
    return false;
  }
  return true;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + kDeadline);
  return context;
}

std::string StatusName(schakel::v1::AssignmentStatus status) {
  std::string name = schakel::v1::AssignmentStatus_Name(status);
  const std::string prefix = "ASSIGNMENT_STATUS_";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

// Every record of `topic` (all `partitions` partitions) as it is now, read committed.
absl::StatusOr<std::vector<schakel::kafka::Record>> ReadTopic(const std::string& kafka,
                                                              std::string_view topic,
                                                              int partitions) {
  std::vector<std::int32_t> numbers;
  for (int p = 0; p < partitions; ++p) numbers.push_back(p);
  std::vector<schakel::kafka::Record> records;
  absl::Status read =
      schakel::kafka::ReadToEnd(kafka, std::string(topic), numbers, std::chrono::seconds(15),
                                [&](const schakel::kafka::Record& record, bool tombstone) {
                                  if (!tombstone) records.push_back(record);
                                });
  if (!read.ok()) return read;
  return records;
}

// Verifies the audit chains in `read` (which feeds a Verifier) and prints the report: exit 0 when
// every chain is intact, 1 when there are problems.
int PrintAuditReport(const schakel::audit::Verifier& verifier) {
  const schakel::audit::Report report = verifier.Finish();
  std::cout << schakel::audit::ReportText(report);
  return report.ok() ? 0 : 1;
}

std::string Time(const google::protobuf::Timestamp& at) {
  return google::protobuf::util::TimeUtil::ToString(at).substr(0, 19);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"schakelctl: operate and try out a Schakel network."};
  app.require_subcommand(1);
  spdlog::set_level(spdlog::level::warn);
  // A record that is no event (a poison record) is skipped where it is read; protobuf's own log
  // line about it would only clutter the output.
  google::protobuf::SetLogHandler(nullptr);

  // TLS: every service verifies who calls. Locally deploy/local/up made the certificates in
  // .state/pki; --as picks the organisation's. A partner elsewhere names its own files.
  std::string pki = ".state/pki";
  schakel::service::TlsFiles tls_override;
  app.add_option("--pki", pki,
                 "Folder of deploy/local/pki's certificates: ca.pem, organisations/<as>.pem, "
                 "operators/operator.pem")
      ->capture_default_str();
  app.add_option("--ca", tls_override.ca, "The network's certificate authority (instead of --pki)");
  app.add_option("--cert", tls_override.cert, "Your client certificate (instead of --pki)");
  app.add_option("--key", tls_override.key, "The key of --cert");
  // Kafka: who schakelctl is to the broker (the broker's ACLs decide what it may do).
  std::string kafka_config;
  app.add_option(
      "--kafka-config", kafka_config,
      "librdkafka properties of your Kafka identity, e.g. <pki>/kafka/operator.properties "
      "(default: $SCHAKEL_KAFKA_CONFIG, else that file under --pki when it exists); "
      "topics create and access apply need the admin's");
  // The credentials of `holder` (an organisation id, or "operator") for a call to `address`.
  auto channel = [&](const std::string& address,
                     const std::string& holder) -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    schakel::service::TlsFiles files = tls_override;
    if (files.ca.empty()) files.ca = pki + "/ca.pem";
    if (files.cert.empty()) {
      const std::string base =
          holder == "operator" ? pki + "/operators/operator" : pki + "/organisations/" + holder;
      files.cert = base + ".pem";
      files.key = base + ".key";
    }
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        schakel::service::ClientCredentials(files);
    if (!credentials.ok()) return credentials.status();
    return grpc::CreateChannel(address, *credentials);
  };

  // network check
  auto* network_cmd = app.add_subcommand("network", "Network file commands");
  network_cmd->require_subcommand(1);
  std::string check_file;
  auto* check_cmd = network_cmd->add_subcommand("check", "Validate a network file");
  check_cmd->add_option("file", check_file, "The network file")->required();

  std::string list_file;
  auto* organisations_cmd = network_cmd->add_subcommand(
      "organisations", "Print each organisation's id and name, in file order");
  organisations_cmd->add_option("file", list_file, "The network file")->required();

  // topics create
  std::string network_file = "deploy/local/network.yaml";
  std::string kafka = "127.0.0.1:9092";
  auto* topics_cmd = app.add_subcommand("topics", "Kafka topic commands");
  topics_cmd->require_subcommand(1);
  auto* create_cmd = topics_cmd->add_subcommand("create", "Create every topic the network needs");
  create_cmd->add_option("--network", network_file, "The network file")->capture_default_str();
  create_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  auto* retire_cmd = topics_cmd->add_subcommand(
      "retire",
      "Delete the topics an earlier version used, each once the consumer that read it has read it "
      "to the end (as the Kafka super user: --kafka-config)");
  retire_cmd->add_option("--network", network_file, "The network file")->capture_default_str();
  retire_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();

  // access show|apply
  auto* access_cmd = app.add_subcommand("access", "Who may do what on Kafka (ACLs)");
  access_cmd->require_subcommand(1);
  auto* access_show_cmd =
      access_cmd->add_subcommand("show", "Print the ACLs the network needs, one per line");
  access_show_cmd->add_option("--network", network_file, "The network file")->capture_default_str();
  bool access_markdown = false;
  access_show_cmd->add_flag("--markdown", access_markdown,
                            "Print README's table instead: one row per principal, as <org>");
  auto* access_apply_cmd = access_cmd->add_subcommand(
      "apply", "Create the ACLs the network needs (as the Kafka super user: --kafka-config)");
  access_apply_cmd->add_option("--network", network_file, "The network file")
      ->capture_default_str();
  access_apply_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  bool access_exact = false;
  access_apply_cmd->add_flag(
      "--exact", access_exact,
      "Also remove the topic and group ACLs of the table's principals that the table no longer "
      "has (after an upgrade; not on a broker that several networks share)");
  // librdkafka 2.0.2 cannot make ACLs on transactional ids (the router's): Kafka's own AclCommand
  // does.
  std::string kafka_jars;
  std::string java_config;
  access_apply_cmd->add_option(
      "--kafka-jars", kafka_jars,
      "Folder of the Kafka jars (deploy/local: .cache/kafka/libs), for the "
      "transactional-id ACLs, which Kafka's AclCommand makes");
  access_apply_cmd->add_option(
      "--java-config", java_config,
      "Kafka Java client properties of the super user for AclCommand, e.g. "
      "<pki>/kafka/admin.java.properties");

  // submit
  std::string intake = "127.0.0.1:50051";
  std::string as_org;
  std::string referral_file;
  auto* submit_cmd =
      app.add_subcommand("submit", "Submit a referral (JSON of schakel.v1.Referral)");
  submit_cmd->add_option("--intake", intake, "Intake address")->capture_default_str();
  submit_cmd->add_option("--as", as_org, "The submitting organisation")->required();
  submit_cmd->add_option("--file", referral_file, "JSON file, or - for standard input")->required();
  std::string idempotency_key;
  submit_cmd->add_option("--idempotency-key", idempotency_key,
                         "The same key again returns the first referral instead of a second one");

  // explain
  std::string router = "127.0.0.1:50052";
  auto* explain_cmd =
      app.add_subcommand("explain", "Show where a referral would be routed, and why");
  explain_cmd->add_option("--router", router, "Router address")->capture_default_str();
  explain_cmd->add_option("--file", referral_file, "JSON file, or - for standard input")
      ->required();

  // erase
  std::string keys_address = "127.0.0.1:50058";
  std::string erase_referral;
  std::string erase_reason;
  auto* erase_cmd = app.add_subcommand(
      "erase",
      "Right to erasure (operators): destroy the keys of the client of a referral, so that every "
      "copy of the client's personal data on Kafka becomes unreadable, and have every inbox purge "
      "it. The assignments stay (shown as erased). Cannot be undone");
  erase_cmd->add_option("referral", erase_referral, "Any referral of the client (r-…)")->required();
  erase_cmd
      ->add_option("--reason", erase_reason,
                   "Why (required; recorded with the erasure; no personal data)")
      ->required();
  erase_cmd->add_option("--keys", keys_address, "Key service address")->capture_default_str();

  // inbox list
  std::string inbox = "127.0.0.1:50061";
  std::string need;
  auto* inbox_cmd = app.add_subcommand("inbox", "An organisation's inbox");
  inbox_cmd->require_subcommand(1);
  auto* list_cmd = inbox_cmd->add_subcommand("list", "List the assignments in an inbox");
  list_cmd->add_option("--inbox", inbox, "Inbox address")->capture_default_str();
  list_cmd->add_option("--need", need, "Only this need code");
  bool overdue = false;
  list_cmd->add_flag("--overdue", overdue,
                     "Only what was not accepted in time (the network's SLA)");
  std::string inbox_as;
  list_cmd->add_option("--as", inbox_as, "The inbox's organisation (only it may read its inbox)")
      ->required();

  // dlq list / redrive
  std::string ops_address = "127.0.0.1:8080";
  auto* dlq_cmd = app.add_subcommand(
      "dlq",
      "Dead letters: records a consumer could not use, on its own schakel.deadletters.<principal>");
  dlq_cmd->require_subcommand(1);
  auto* dlq_list_cmd = dlq_cmd->add_subcommand(
      "list",
      "List every consumer's dead letters: where each is, the record it names, who gave up on it, "
      "and why (never the payload)");
  dlq_list_cmd->add_option("--network", network_file, "The network file (for the partitions)")
      ->capture_default_str();
  dlq_list_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  std::vector<std::string> redrive_keys;
  bool redrive_all = false;
  auto* dlq_redrive_cmd = dlq_cmd->add_subcommand(
      "redrive",
      "Have the ops service publish the original record of dead letters again to the topic it came "
      "from (after the cause is fixed). Ops re-reads the original at its place, refuses a dead "
      "letter that names what its consumer does not read or whose copy differs from the original, "
      "re-drives each dead letter once, and records it in its audit chain with your name (from "
      "your operator certificate)");
  dlq_redrive_cmd->add_option("dead-letters", redrive_keys,
                              "Dead letters by where they are, DEAD-LETTER-TOPIC/PARTITION/OFFSET, "
                              "as `dlq list` shows them");
  dlq_redrive_cmd->add_flag("--all", redrive_all,
                            "Every dead letter not re-driven yet (read with your Kafka identity)");
  dlq_redrive_cmd->add_option("--ops", ops_address, "The ops service's console/API address")
      ->capture_default_str();
  dlq_redrive_cmd->add_option("--network", network_file, "The network file (for --all)")
      ->capture_default_str();
  dlq_redrive_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers (for --all)")
      ->capture_default_str();

  // unroutable, referral: what operators read straight from the topics (no personal data)
  auto* unroutable_cmd = app.add_subcommand(
      "unroutable",
      "The needs nobody could take, with the chain of offers and everybody's reason, and whether "
      "an operator reassigned them");
  unroutable_cmd->add_option("--network", network_file, "The network file")->capture_default_str();
  unroutable_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  unroutable_cmd->require_subcommand(0, 1);
  std::string reassign_referral;
  std::uint32_t reassign_need = 0;
  std::string reassign_to;
  std::string reassign_reason;
  auto* reassign_cmd = unroutable_cmd->add_subcommand(
      "reassign",
      "Hand an unroutable need to an organisation that agreed to take it (e.g. by phone), through "
      "the ops service, as the operator your certificate names. The router offers it there, within "
      "the client's sharing permission; the decision (who, why, when) stays on "
      "schakel.operator.reassignments and in ops' audit chain");
  reassign_cmd->add_option("referral", reassign_referral, "The referral id (r-…)")->required();
  reassign_cmd
      ->add_option("need", reassign_need, "The need's index in the referral (#N in the list)")
      ->required();
  reassign_cmd->add_option("organisation", reassign_to, "The organisation's id")->required();
  reassign_cmd->add_option("--reason", reassign_reason, "Why this organisation (required)")
      ->required();
  reassign_cmd->add_option("--ops", ops_address, "The ops service's console/API address")
      ->capture_default_str();
  std::string referral_id;
  auto* referral_cmd = app.add_subcommand(
      "referral",
      "The timeline of one referral across organisations: every offer and status change (reasons "
      "only where the network gave them: organisations' own words stay in their inboxes)");
  referral_cmd->add_option("id", referral_id, "The referral id (r-…)")->required();
  referral_cmd->add_option("--network", network_file, "The network file")->capture_default_str();
  referral_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();

  bool queues_json = false;
  auto* queues_cmd = app.add_subcommand(
      "queues",
      "Per organisation: assignments waiting to be accepted (and of those overdue: past the "
      "network's SLA for their urgency), accepted, in progress (or on hold) and done, folded from "
      "the offers and status changes on Kafka (counts only, no personal data)");
  queues_cmd->add_flag("--json", queues_json, "The same figures as a JSON array");
  queues_cmd->add_option("--network", network_file, "The network file")->capture_default_str();
  queues_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();

  // audit verify / export
  auto* audit_cmd = app.add_subcommand(
      "audit",
      "The audit stream: who read personal data or changed a status, what, when and why, as one "
      "hash chain per writer, each in its own topic schakel.audit.<writer>");
  audit_cmd->require_subcommand(1);
  std::string audit_file;
  auto* audit_verify_cmd = audit_cmd->add_subcommand(
      "verify",
      "Check every writer's chain: sequence from 0 without gaps, each entry naming the previous "
      "one's hash, each hash recomputed, each entry signed by a key trusted for its writer "
      "(--audit-keys). Prints per writer the entries checked and OK, or each problem; exits 0 "
      "only when every chain is intact");
  audit_verify_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  audit_verify_cmd->add_option("--file", audit_file,
                               "Check an export (schakelctl audit export) instead of the topics");
  std::string audit_keys;
  audit_verify_cmd->add_option(
      "--audit-keys", audit_keys,
      "Folder of the public keys trusted to sign each writer's entries, <writer>.pub (PEM; "
      "several keys in one file for a renewed key); default: <pki>/audit");
  auto* audit_export_cmd = audit_cmd->add_subcommand(
      "export",
      "Print every record of every chain's topic (schakel.audit.*), each in order, one JSON object "
      "(an AuditEntry) per line; keep it, and check it later with audit verify --file");
  audit_export_cmd->add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();

  CLI11_PARSE(app, argc, argv);

  if (!kafka_config.empty()) {
    if (absl::Status s = schakel::kafka::SetClientConfigFile(kafka_config); !s.ok()) {
      return Fail(std::string(s.message()));
    }
  } else if (const char* env = std::getenv("SCHAKEL_KAFKA_CONFIG"); env == nullptr || !*env) {
    const std::string operator_config = pki + "/kafka/operator.properties";
    if (std::ifstream(operator_config).good()) {
      if (absl::Status s = schakel::kafka::SetClientConfigFile(operator_config); !s.ok()) {
        return Fail(std::string(s.message()));
      }
    }
  }

  if (*access_show_cmd && access_markdown) {
    std::cout << schakel::routing::KafkaAccessMarkdown();
    return 0;
  }
  if (*access_show_cmd || *access_apply_cmd) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(network_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    std::vector<schakel::kafka::AclBinding> acls;
    for (const schakel::routing::AclRule& rule : schakel::routing::KafkaAccessRules(*net)) {
      acls.push_back({"User:" + rule.principal, std::string(schakel::routing::Name(rule.resource)),
                      rule.name, rule.prefixed,
                      std::string(schakel::routing::Name(rule.operation))});
    }
    if (*access_show_cmd) {
      for (const schakel::kafka::AclBinding& acl : acls) {
        std::cout << acl.principal << "\t" << acl.operation << "\t" << acl.resource << "\t"
                  << acl.name << (acl.prefixed ? "*" : "") << "\n";
      }
      return 0;
    }
    std::vector<schakel::kafka::AclBinding> direct, transactional;
    for (schakel::kafka::AclBinding& acl : acls) {
      (acl.resource == "transactional-id" ? transactional : direct).push_back(std::move(acl));
    }
    absl::Status created = schakel::kafka::CreateAcls(kafka, direct, std::chrono::seconds(15));
    if (!created.ok()) return Fail("Kafka at " + kafka + ": " + std::string(created.message()));
    std::size_t removed = 0;
    if (access_exact) {
      // ACLs only add up: a right an older table gave (an inbox writing the status topic) stays
      // until it is removed.
      const auto wanted = [&direct](const schakel::kafka::AclBinding& acl) {
        return std::any_of(direct.begin(), direct.end(), [&acl](const auto& w) {
          return w.principal == acl.principal && w.resource == acl.resource && w.name == acl.name &&
                 w.prefixed == acl.prefixed && w.operation == acl.operation;
        });
      };
      std::vector<schakel::kafka::AclBinding> stale;
      for (const std::string& principal : schakel::routing::KafkaPrincipals(*net)) {
        absl::StatusOr<std::vector<schakel::kafka::AclBinding>> present =
            schakel::kafka::DescribeAcls(kafka, "User:" + principal, std::chrono::seconds(15));
        if (!present.ok())
          return Fail("Kafka at " + kafka + ": " + std::string(present.status().message()));
        for (schakel::kafka::AclBinding& acl : *present) {
          if (wanted(acl)) continue;
          std::cout << "removing " << acl.principal << "\t" << acl.operation << "\t" << acl.resource
                    << "\t" << acl.name << (acl.prefixed ? "*" : "") << "\n";
          stale.push_back(std::move(acl));
        }
      }
      absl::Status deleted = schakel::kafka::DeleteAcls(kafka, stale, std::chrono::seconds(15));
      if (!deleted.ok()) return Fail("Kafka at " + kafka + ": " + std::string(deleted.message()));
      removed = stale.size();
    }
    // One AclCommand (a JVM start, seconds) per resource, with all its operations.
    std::map<std::tuple<std::string, std::string, bool>, std::vector<std::string>> operations;
    for (const schakel::kafka::AclBinding& acl : transactional) {
      operations[{acl.principal, acl.name, acl.prefixed}].push_back(acl.operation);
    }
    for (const auto& [resource, ops] : operations) {
      const auto& [principal, name, prefixed] = resource;
      std::vector<std::string> command_line = {"java",
                                               "-cp",
                                               kafka_jars + "/*",
                                               "org.apache.kafka.tools.AclCommand",
                                               "--bootstrap-server",
                                               kafka,
                                               "--command-config",
                                               java_config,
                                               "--add",
                                               "--allow-principal",
                                               principal,
                                               "--transactional-id",
                                               name,
                                               "--resource-pattern-type",
                                               prefixed ? "prefixed" : "literal"};
      for (const std::string& op : ops) {
        command_line.push_back("--operation");
        command_line.push_back(op);
      }
      if (kafka_jars.empty() || java_config.empty()) {
        std::string command;
        for (const std::string& a : command_line) command += (command.empty() ? "" : " ") + a;
        return Fail(
            "not made (librdkafka 2.0.2 has no ACLs on transactional ids): give --kafka-jars "
            "and --java-config, or run: " +
            command);
      }
      // A JVM that lives two seconds: the client compiler only and the serial collector halve the
      // CPU it costs (3.8 to 1.9 s measured; a test network applies eleven of them).
      command_line.insert(command_line.begin() + 1,
                          {"-Dlog4j2.level=warn", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"});
      if (Run(command_line) != 0) return Fail("Kafka's AclCommand failed for " + principal);
    }
    std::cout << direct.size() + transactional.size() << " ACLs present on " << kafka << " for "
              << schakel::routing::KafkaPrincipals(*net).size() << " principals";
    if (access_exact) std::cout << "; " << removed << " no longer in the table removed";
    std::cout << "\n";
    return 0;
  }

  // The keys `audit verify` trusts, one writer each.
  schakel::audit::TrustedKeys trusted_audit_keys;
  if (*audit_verify_cmd) {
    if (audit_keys.empty()) audit_keys = pki + "/audit";
    if (absl::Status s = trusted_audit_keys.AddFolder(audit_keys); !s.ok()) {
      return Fail("audit verify: " + std::string(s.message()) +
                  " (give --audit-keys: the folder of the writers' <writer>.pub)");
    }
  }
  if (*audit_verify_cmd && !audit_file.empty()) {
    std::ifstream in(audit_file);
    if (!in) return Fail(audit_file + ": cannot open");
    schakel::audit::Verifier verifier(std::move(trusted_audit_keys));
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      const std::string position = "line " + std::to_string(number);
      schakel::v1::AuditEntry entry;
      if (const auto parsed = google::protobuf::util::JsonStringToMessage(line, &entry);
          !parsed.ok()) {
        verifier.AddUndecodable(position, "not an audit entry in JSON");
        continue;
      }
      verifier.AddEntry(position, "", std::move(entry));
    }
    return PrintAuditReport(verifier);
  }
  if (*audit_verify_cmd || *audit_export_cmd) {
    schakel::audit::Verifier verifier(std::move(trusted_audit_keys));
    google::protobuf::util::JsonPrintOptions json;
    json.preserve_proto_field_names = true;
    bool written = true;
    // Every chain's topic: one partition each (libs/routing/topics.h), so the log's order is the
    // chain's order.
    absl::StatusOr<std::vector<std::string>> topics = schakel::kafka::ListTopics(
        kafka, std::string(schakel::routing::kAuditTopicPrefix), std::chrono::seconds(30));
    if (!topics.ok())
      return Fail("Kafka at " + kafka + ": " + std::string(topics.status().message()));
    if (topics->empty()) {
      return Fail("Kafka at " + kafka + ": no audit topic (schakel.audit.*) to read");
    }
    absl::Status read;
    for (const std::string& topic : *topics) {
      read = schakel::kafka::ReadToEnd(
          kafka, topic, {0}, std::chrono::minutes(10),
          [&](const schakel::kafka::Record& record, bool tombstone) {
            const std::string position = topic + " offset " + std::to_string(record.offset);
            if (*audit_verify_cmd) {
              if (tombstone) {
                verifier.AddUndecodable(position, "a tombstone");
              } else {
                verifier.AddRecord(position, record.key, record.value, topic);
              }
              return;
            }
            schakel::v1::AuditEntry entry;
            std::string text;
            if (tombstone || !entry.ParseFromString(record.value) ||
                !google::protobuf::util::MessageToJsonString(entry, &text, json).ok()) {
              // Kept as a line that is no entry, so that verifying the export finds it too.
              text = "{\"undecodable_record_at\": \"" + position + "\"}";
            }
            std::cout << text << "\n";
            written = written && static_cast<bool>(std::cout);
          });
      if (!read.ok()) break;
    }
    if (!read.ok()) return Fail("Kafka at " + kafka + ": " + std::string(read.message()));
    if (*audit_export_cmd) return written ? 0 : Fail("audit export: cannot write the output");
    return PrintAuditReport(verifier);
  }

  if (*queues_cmd) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(network_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    schakel::ops::QueueFigures figures;
    std::map<std::string, schakel::ops::TopicLag> topic_lag;
    for (const schakel::routing::Organisation& org : net->organisations) {
      absl::StatusOr<std::vector<schakel::kafka::Record>> offers =
          ReadTopic(kafka, schakel::routing::InboxTopic(org.id), net->topics.partitions);
      if (!offers.ok()) {
        return Fail("Kafka at " + kafka + ": " + std::string(offers.status().message()));
      }
      for (const schakel::kafka::Record& r : *offers) {
        topic_lag[org.id].Seen(r.partition, r.offset);
        schakel::v1::InboxEvent event;
        if (event.ParseFromString(r.value) && event.has_requested()) {
          figures.AddOffer(event.requested());
        }
      }
    }
    absl::StatusOr<std::vector<schakel::kafka::Record>> changes =
        ReadTopic(kafka, schakel::routing::kStatusTopic, net->topics.partitions);
    if (!changes.ok()) {
      return Fail("Kafka at " + kafka + ": " + std::string(changes.status().message()));
    }
    for (const schakel::kafka::Record& r : *changes) {
      schakel::v1::AssignmentStatusChanged change;
      if (change.ParseFromString(r.value)) figures.AddStatus(change);
    }
    // Lag: the records on each inbox topic at or after its inbox group's committed offset (the
    // inboxes name their group in their load reports, each on its organisation's own load topic:
    // a report there that claims another organisation is not believed).
    std::map<std::string, std::string> groups;
    for (const schakel::routing::Organisation& org : net->organisations) {
      absl::StatusOr<std::vector<schakel::kafka::Record>> loads =
          ReadTopic(kafka, schakel::routing::LoadTopic(org.id), net->topics.partitions);
      if (!loads.ok()) {
        return Fail("Kafka at " + kafka + ": " + std::string(loads.status().message()));
      }
      for (const schakel::kafka::Record& r : *loads) {
        schakel::v1::InboxLoad load;
        if (load.ParseFromString(r.value) && load.organisation() == org.id &&
            !load.consumer_group().empty()) {
          groups[org.id] = load.consumer_group();
        }
      }
    }
    std::vector<std::int32_t> partitions;
    for (int p = 0; p < net->topics.partitions; ++p) partitions.push_back(p);
    std::map<std::string, std::int64_t> lag;
    for (const auto& [org, group] : groups) {
      absl::StatusOr<std::map<std::int32_t, std::int64_t>> committed =
          schakel::kafka::CommittedOffsets(kafka, group, schakel::routing::InboxTopic(org),
                                           partitions, std::chrono::seconds(10));
      if (!committed.ok()) continue;  // shown as not known
      lag[org] = topic_lag[org].Behind(*committed);
    }
    const std::vector<schakel::ops::QueueRow> rows =
        figures.Rows(*net, std::chrono::system_clock::now(), lag);
    std::cout << (queues_json ? schakel::ops::QueueJson(rows) : schakel::ops::QueueTable(rows));
    return 0;
  }

  if (*check_cmd) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(check_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    std::cout << check_file << ": valid (" << net->organisations.size() << " organisations, "
              << net->needs.size() << " needs, " << net->regions.size() << " regions)\n";
    return 0;
  }

  if (*organisations_cmd) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(list_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    for (const auto& org : net->organisations) std::cout << org.id << "\t" << org.name << "\n";
    return 0;
  }

  if (*create_cmd) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(network_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    const std::vector<schakel::kafka::TopicSpec> specs = schakel::routing::TopicSpecs(*net);
    absl::Status created = schakel::kafka::EnsureTopics(kafka, specs, std::chrono::seconds(15));
    if (!created.ok()) return Fail("Kafka at " + kafka + ": " + std::string(created.message()));
    std::cout << specs.size() << " topics present on " << kafka << " (" << net->topics.partitions
              << " partitions, replication factor " << net->topics.replication_factor << ")\n";
    return 0;
  }

  if (*retire_cmd) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(network_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    absl::StatusOr<std::vector<std::string>> present =
        schakel::kafka::ListTopics(kafka, "schakel.", std::chrono::seconds(15));
    if (!present.ok())
      return Fail("Kafka at " + kafka + ": " + std::string(present.status().message()));
    int not_yet = 0;
    for (const schakel::routing::RetiredTopic& retired : schakel::routing::kRetiredTopics) {
      const std::string topic(retired.name);
      if (std::find(present->begin(), present->end(), topic) == present->end()) continue;
      if (!retired.drained_by.empty()) {
        // Drained: the group has read every record (its committed offset is past each one).
        std::vector<std::int32_t> partitions;
        for (int p = 0; p < net->topics.partitions; ++p) partitions.push_back(p);
        absl::StatusOr<std::map<std::int32_t, std::int64_t>> committed =
            schakel::kafka::CommittedOffsets(kafka, std::string(retired.drained_by), topic,
                                             partitions, std::chrono::seconds(15));
        if (!committed.ok())
          return Fail("Kafka at " + kafka + ": " + std::string(committed.status().message()));
        absl::StatusOr<std::vector<schakel::kafka::Record>> records =
            ReadTopic(kafka, topic, net->topics.partitions);
        if (!records.ok())
          return Fail("Kafka at " + kafka + ": " + std::string(records.status().message()));
        std::size_t unread = 0;
        for (const schakel::kafka::Record& r : *records) {
          const auto at = committed->find(r.partition);
          if (at == committed->end() || r.offset >= at->second) ++unread;
        }
        if (unread > 0) {
          std::cout << topic << ": kept: " << retired.drained_by << " has " << unread
                    << " of its records still to read (stop what writes it, let "
                    << retired.drained_by << " run, then retire again)\n";
          ++not_yet;
          continue;
        }
      }
      absl::Status deleted = schakel::kafka::DeleteTopics(kafka, {topic}, std::chrono::seconds(15));
      if (!deleted.ok()) return Fail("Kafka at " + kafka + ": " + std::string(deleted.message()));
      std::cout << topic << ": deleted (" << retired.instead << ")\n";
    }
    return not_yet == 0 ? 0 : 1;
  }

  if (*submit_cmd) {
    schakel::v1::SubmitReferralRequest request;
    std::string error;
    if (!ReadReferral(referral_file, request.mutable_referral(), &error)) return Fail(error);
    request.set_idempotency_key(idempotency_key);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> to_intake = channel(intake, as_org);
    if (!to_intake.ok()) return Fail("submit: " + std::string(to_intake.status().message()));
    auto stub = schakel::v1::IntakeService::NewStub(*to_intake);
    auto context = Context();
    schakel::v1::SubmitReferralResponse response;
    grpc::Status status = stub->SubmitReferral(context.get(), request, &response);
    if (!status.ok()) return RpcFail("submit", intake, status);
    std::cout << "referral " << response.referral_id() << " accepted\n";
    for (int i = 0; i < response.assignment_ids_size(); ++i) {
      std::cout << "  need " << request.referral().needs(i).code() << ": assignment "
                << response.assignment_ids(i) << "\n";
    }
    return 0;
  }

  if (*erase_cmd) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> to_keys = channel(keys_address, "operator");
    if (!to_keys.ok()) return Fail("erase: " + std::string(to_keys.status().message()));
    auto stub = schakel::v1::KeyService::NewStub(*to_keys);
    schakel::v1::EraseClientRequest request;
    request.set_referral_id(erase_referral);
    request.set_reason(erase_reason);
    schakel::v1::EraseClientResponse response;
    grpc::Status status = stub->EraseClient(Context().get(), request, &response);
    if (!status.ok()) return RpcFail("erase", keys_address, status);
    std::cout << "erased the client of " << erase_referral << ": " << response.keys_destroyed()
              << " key(s) destroyed; every inbox purges the client's personal data\n";
    return 0;
  }

  if (*explain_cmd) {
    schakel::v1::ExplainRouteRequest request;
    std::string error;
    if (!ReadReferral(referral_file, request.mutable_referral(), &error)) return Fail(error);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> to_router = channel(router, "operator");
    if (!to_router.ok()) return Fail("explain: " + std::string(to_router.status().message()));
    auto stub = schakel::v1::RoutingService::NewStub(*to_router);
    schakel::v1::ExplainRouteResponse response;
    grpc::Status status = stub->ExplainRoute(Context().get(), request, &response);
    if (!status.ok()) return RpcFail("explain", router, status);
    for (const auto& route : response.routes()) {
      std::cout << route.need_code() << " -> "
                << (route.organisation().empty() ? "(nobody: unroutable)" : route.organisation())
                << "\n";
      for (const auto& passed : route.passed_over()) {
        std::cout << "    " << passed.organisation() << ": " << passed.reason() << "\n";
      }
    }
    return 0;
  }

  if (*dlq_list_cmd || (*dlq_redrive_cmd && redrive_all)) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(network_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    if (*dlq_redrive_cmd && !redrive_keys.empty()) {
      return Fail("dlq redrive: name dead letters, or --all, not both");
    }
    std::vector<std::int32_t> partitions;
    for (int p = 0; p < net->topics.partitions; ++p) partitions.push_back(p);
    // Every consumer's own dead-letter topic there is (a consumer of another network file too).
    absl::StatusOr<std::vector<std::string>> topics = schakel::kafka::ListTopics(
        kafka, std::string(schakel::routing::kDeadLetterTopicPrefix), std::chrono::seconds(15));
    if (!topics.ok()) {
      return Fail("Kafka at " + kafka + ": " + std::string(topics.status().message()));
    }
    struct Letter {
      std::string place;  // of the dead letter itself
      schakel::v1::DeadLetter letter;
    };
    std::vector<Letter> letters;
    for (const std::string& topic : *topics) {
      absl::Status read = schakel::kafka::ReadToEnd(
          kafka, topic, partitions, std::chrono::seconds(15),
          [&](const schakel::kafka::Record& record, bool tombstone) {
            schakel::v1::DeadLetter letter;
            if (!tombstone && letter.ParseFromString(record.value)) {
              letters.push_back({topic + "/" + std::to_string(record.partition) + "/" +
                                     std::to_string(record.offset),
                                 std::move(letter)});
            }
          });
      if (!read.ok()) return Fail("Kafka at " + kafka + ": " + std::string(read.message()));
    }
    // Which were re-driven, and by whom: ops records each redrive in its chain, which operators
    // read (a chain not there yet is no error: nothing was re-driven).
    std::map<std::string, std::string> redriven;  // dead letter's place -> "<at> by <operator>"
    const std::string redrive_prefix = "redrive ";
    const absl::Status chain = schakel::kafka::ReadToEnd(
        kafka, schakel::routing::AuditTopic("ops"), {0}, std::chrono::seconds(15),
        [&](const schakel::kafka::Record& record, bool tombstone) {
          schakel::v1::AuditEntry entry;
          if (tombstone || !entry.ParseFromString(record.value) ||
              entry.action() != schakel::audit::kDeadLetterRedriven ||
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
    if (*dlq_list_cmd) {
      std::printf("%-52s %-44s %-16s %-20s %s\n", "DEAD LETTER", "RECORD", "CONSUMER", "AT",
                  "REASON");
      for (const Letter& l : letters) {
        const std::string record = l.letter.topic() + "/" + std::to_string(l.letter.partition()) +
                                   "/" + std::to_string(l.letter.offset());
        std::printf("%-52s %-44s %-16s %-20s %s\n", l.place.c_str(), record.c_str(),
                    l.letter.consumer().c_str(), Time(l.letter.at()).c_str(),
                    l.letter.reason().c_str());
        if (auto it = redriven.find(l.place); it != redriven.end()) {
          std::printf("    re-driven %s\n", it->second.c_str());
        }
      }
      std::printf("(%zu dead letters, %zu re-driven)\n", letters.size(), redriven.size());
      return 0;
    }
    // --all: those not re-driven yet (ops refuses the others anyway).
    for (const Letter& l : letters) {
      if (!redriven.contains(l.place)) redrive_keys.push_back(l.place);
    }
  }

  // What operators do goes through the ops service's API, as the operator the certificate names
  // (operators may write no Kafka topic).
  auto ops_call = [&](const std::string& path,
                      const nlohmann::json& body) -> absl::StatusOr<schakel::ctl::OpsAnswer> {
    schakel::ctl::OpsTls files{tls_override.ca, tls_override.cert, tls_override.key};
    if (files.ca.empty()) files.ca = pki + "/ca.pem";
    if (files.cert.empty()) {
      files.cert = pki + "/operators/operator.pem";
      files.key = pki + "/operators/operator.key";
    }
    return schakel::ctl::PostJson(ops_address, files, path, body.dump(), kDeadline);
  };
  auto error_of = [](const schakel::ctl::OpsAnswer& answer) {
    const nlohmann::json json = nlohmann::json::parse(answer.body, nullptr, false);
    if (json.is_object() && json.contains("error") && json["error"].is_string()) {
      return json["error"].get<std::string>();
    }
    return "HTTP " + std::to_string(answer.status);
  };

  if (*reassign_cmd) {
    absl::StatusOr<schakel::ctl::OpsAnswer> answer =
        ops_call("/api/reassign", {{"referral_id", reassign_referral},
                                   {"need_index", reassign_need},
                                   {"organisation", reassign_to},
                                   {"reason", reassign_reason}});
    if (!answer.ok()) return Fail("unroutable reassign: " + std::string(answer.status().message()));
    if (answer->status != 202) return Fail("unroutable reassign: " + error_of(*answer));
    std::printf(
        "reassignment of %s need #%u to %s sent; the router offers it there (see schakelctl "
        "referral %s)\n",
        reassign_referral.c_str(), reassign_need, reassign_to.c_str(), reassign_referral.c_str());
    return 0;
  }

  if (*dlq_redrive_cmd) {
    if (redrive_keys.empty()) {
      return redrive_all ? (std::printf("(0 re-driven)\n"), 0)
                         : Fail(
                               "dlq redrive: name dead letters (DEAD-LETTER-TOPIC/PARTITION/"
                               "OFFSET, as dlq list shows them), or --all");
    }
    int sent = 0;
    int refused = 0;
    int earlier = 0;
    for (const std::string& place : redrive_keys) {
      // DEAD-LETTER-TOPIC/PARTITION/OFFSET (a topic name holds no '/').
      const std::size_t last = place.rfind('/');
      const std::size_t middle = last == std::string::npos ? last : place.rfind('/', last - 1);
      std::int32_t partition = 0;
      std::int64_t offset = 0;
      if (middle == std::string::npos || middle == 0 ||
          !absl::SimpleAtoi(place.substr(middle + 1, last - middle - 1), &partition) ||
          !absl::SimpleAtoi(place.substr(last + 1), &offset) || partition < 0 || offset < 0) {
        return Fail("dlq redrive: " + place +
                    ": not DEAD-LETTER-TOPIC/PARTITION/OFFSET (see schakelctl dlq list)");
      }
      absl::StatusOr<schakel::ctl::OpsAnswer> answer =
          ops_call("/api/redrive", {{"dead_letter_topic", place.substr(0, middle)},
                                    {"partition", partition},
                                    {"offset", offset}});
      if (!answer.ok()) return Fail("dlq redrive: " + std::string(answer.status().message()));
      if (answer->status == 200) {
        ++sent;
        std::printf("re-driven %s\n", place.c_str());
        continue;
      }
      const std::string why = error_of(*answer);
      // --all names every dead letter: those re-driven before are no failure.
      if (redrive_all && answer->status == 409 &&
          why.find(" was re-driven at ") != std::string::npos) {
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

  if (*unroutable_cmd || *referral_cmd) {
    absl::StatusOr<schakel::routing::Network> net = schakel::routing::LoadNetworkFile(network_file);
    if (!net.ok()) return Fail(std::string(net.status().message()));
    absl::StatusOr<std::vector<schakel::kafka::Record>> unroutable =
        ReadTopic(kafka, schakel::routing::kUnroutableTopic, net->topics.partitions);
    if (!unroutable.ok()) {
      return Fail("Kafka at " + kafka + ": " + std::string(unroutable.status().message()));
    }
    if (*unroutable_cmd) {
      // The queue: what went unroutable, the operators' reassignments, and the offers that
      // continue a need (a reassignment done).
      schakel::ops::UnroutableQueue queue;
      for (const schakel::kafka::Record& r : *unroutable) {
        schakel::v1::ReferralUnroutable u;
        if (u.ParseFromString(r.value)) queue.AddUnroutable(u);
      }
      absl::StatusOr<std::vector<schakel::kafka::Record>> reassignments =
          ReadTopic(kafka, schakel::routing::kReassignTopic, net->topics.partitions);
      if (!reassignments.ok()) {
        return Fail("Kafka at " + kafka + ": " + std::string(reassignments.status().message()));
      }
      for (const schakel::kafka::Record& r : *reassignments) {
        schakel::v1::ReassignRequested reassign;
        if (reassign.ParseFromString(r.value)) queue.AddReassign(reassign);
      }
      for (const schakel::routing::Organisation& org : net->organisations) {
        absl::StatusOr<std::vector<schakel::kafka::Record>> offers =
            ReadTopic(kafka, schakel::routing::InboxTopic(org.id), net->topics.partitions);
        if (!offers.ok()) {
          return Fail("Kafka at " + kafka + ": " + std::string(offers.status().message()));
        }
        for (const schakel::kafka::Record& r : *offers) {
          schakel::v1::InboxEvent event;
          if (event.ParseFromString(r.value) && event.has_requested()) {
            queue.AddOffer(event.requested());
          }
        }
      }
      int count = 0;
      for (const schakel::ops::UnroutableNeed& u : queue.Needs()) {
        ++count;
        std::printf("%s  %s  need %s (#%u)  %s  from %s  region %s\n", Time(u.at).c_str(),
                    u.unroutable_id.c_str(), u.need_code.c_str(), u.need_index,
                    schakel::v1::Urgency_Name(u.urgency).c_str(), u.referring_organisation.c_str(),
                    u.region.c_str());
        if (!u.reassigned_to.empty()) {
          std::printf("    reassigned to %s\n", u.reassigned_to.c_str());
        } else if (!u.requested_to.empty()) {
          std::printf("    reassignment to %s on its way\n", u.requested_to.c_str());
        }
        // The chain of offers first, then a few of everybody else's reasons.
        int others = 0;
        for (const schakel::v1::PassedOver& p : u.passed_over) {
          const bool offered = p.reason().rfind("offered (", 0) == 0;
          if (!offered && ++others > 5) continue;
          std::printf("    %s: %s\n", p.organisation().c_str(), p.reason().c_str());
        }
        if (others > 5) std::printf("    (+%d more organisations)\n", others - 5);
      }
      std::printf("(%d unroutable needs)\n", count);
      return 0;
    }
    absl::StatusOr<std::vector<schakel::kafka::Record>> statuses =
        ReadTopic(kafka, schakel::routing::kStatusTopic, net->topics.partitions);
    if (!statuses.ok()) {
      return Fail("Kafka at " + kafka + ": " + std::string(statuses.status().message()));
    }
    struct Line {
      google::protobuf::Timestamp at;
      std::string text;
    };
    std::vector<Line> lines;
    for (const schakel::kafka::Record& r : *statuses) {
      schakel::v1::AssignmentStatusChanged s;
      if (!s.ParseFromString(r.value) || s.meta().referral_id() != referral_id) continue;
      std::string text = s.meta().assignment_id() + "  " + s.need_code() + "  " + s.organisation() +
                         "  " + StatusName(s.from_status()) + " -> " + StatusName(s.to_status()) +
                         "  by " + s.by();
      if (s.by() == "network" && !s.reason().empty()) text += "  (" + s.reason() + ")";
      lines.push_back({s.meta().occurred_at(), text});
    }
    for (const schakel::kafka::Record& r : *unroutable) {
      schakel::v1::ReferralUnroutable u;
      if (!u.ParseFromString(r.value) || u.meta().referral_id() != referral_id) continue;
      lines.push_back({u.meta().occurred_at(), u.meta().assignment_id() + "  " + u.need_code() +
                                                   "  UNROUTABLE (schakelctl unroutable)"});
    }
    // Operators' reassignments: who decided, when and why (the audit of that decision).
    absl::StatusOr<std::vector<schakel::kafka::Record>> reassignments =
        ReadTopic(kafka, schakel::routing::kReassignTopic, net->topics.partitions);
    if (!reassignments.ok()) {
      return Fail("Kafka at " + kafka + ": " + std::string(reassignments.status().message()));
    }
    for (const schakel::kafka::Record& r : *reassignments) {
      schakel::v1::ReassignRequested a;
      if (!a.ParseFromString(r.value) || a.meta().referral_id() != referral_id) continue;
      lines.push_back({a.meta().occurred_at(), a.meta().assignment_id() + "  REASSIGN to " +
                                                   a.to_organisation() + " by " + a.by() + "  (\"" +
                                                   a.reason() + "\")"});
    }
    if (lines.empty()) return Fail("no events for referral " + referral_id);
    std::stable_sort(lines.begin(), lines.end(),
                     [](const Line& a, const Line& b) { return a.at < b.at; });
    for (const Line& line : lines)
      std::printf("%s  %s\n", Time(line.at).c_str(), line.text.c_str());
    return 0;
  }

  if (*list_cmd) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> to_inbox = channel(inbox, inbox_as);
    if (!to_inbox.ok()) return Fail("inbox list: " + std::string(to_inbox.status().message()));
    auto stub = schakel::v1::InboxService::NewStub(*to_inbox);
    schakel::v1::ListAssignmentsRequest request;
    request.set_need_code(need);
    request.set_overdue(overdue);
    request.set_page_size(500);
    std::printf("%-32s %-16s %-10s %-10s %s\n", "ASSIGNMENT", "NEED", "STATUS", "URGENCY", "FROM");
    int count = 0;
    do {
      schakel::v1::ListAssignmentsResponse response;
      auto context = Context();
      grpc::Status status = stub->ListAssignments(context.get(), request, &response);
      if (!status.ok()) return RpcFail("inbox list", inbox, status);
      for (const auto& a : response.assignments()) {
        std::string urgency = schakel::v1::Urgency_Name(a.urgency());
        urgency = urgency.substr(urgency.find('_') + 1);
        std::printf("%-32s %-16s %-10s %-10s %s\n", a.assignment_id().c_str(),
                    a.need_code().c_str(), StatusName(a.status()).c_str(), urgency.c_str(),
                    a.referring_organisation().c_str());
        ++count;
      }
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    std::printf("(%d assignments)\n", count);
    return 0;
  }
  return 0;
}
