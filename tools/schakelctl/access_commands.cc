#include "tools/schakelctl/access_commands.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <tuple>

#include "libs/topology/kafka_access.h"
#include "tools/schakelctl/common.h"

namespace schakel::ctl {
namespace {

struct AccessFlags {
  std::string network = kDefaultNetworkFile;
  std::string kafka = kDefaultKafka;
  bool markdown = false;
  bool exact = false;
  std::string kafka_jars;
  std::string java_config;
};

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

int ShowAccess(const AccessFlags& flags) {
  if (flags.markdown) {
    std::cout << topology::KafkaAccessMarkdown();
    return 0;
  }
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.network);
  if (!net.ok()) return Fail(net.status());
  for (const kafka::AclBinding& acl : AclsOf(*net)) std::cout << AclLine(acl) << "\n";
  return 0;
}

// Removes the topic and group ACLs of the table's principals that `direct` (the table's) does not
// have, printing each; how many it removed.
absl::StatusOr<std::size_t> RemoveUnwanted(const std::string& kafka, const routing::Network& net,
                                           const std::vector<kafka::AclBinding>& direct) {
  std::vector<kafka::AclBinding> stale;
  for (const std::string& principal : topology::KafkaPrincipals(net)) {
    absl::StatusOr<std::vector<kafka::AclBinding>> present =
        kafka::DescribeAcls(kafka, "User:" + principal, kDeadline);
    if (!present.ok()) return present.status();
    for (kafka::AclBinding& acl : Unwanted(*std::move(present), direct)) {
      std::cout << "removing " << AclLine(acl) << "\n";
      stale.push_back(std::move(acl));
    }
  }
  if (absl::Status deleted = kafka::DeleteAcls(kafka, stale, kDeadline); !deleted.ok()) {
    return deleted;
  }
  return stale.size();
}

int ApplyAccess(const AccessFlags& flags) {
  const std::string& kafka = flags.kafka;
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(flags.network);
  if (!net.ok()) return Fail(net.status());
  std::vector<kafka::AclBinding> direct, transactional;
  for (kafka::AclBinding& acl : AclsOf(*net)) {
    (acl.resource == "transactional-id" ? transactional : direct).push_back(std::move(acl));
  }
  absl::Status created = kafka::CreateAcls(kafka, direct, kDeadline);
  if (!created.ok()) return KafkaFail(kafka, created);
  std::size_t removed = 0;
  if (flags.exact) {
    // ACLs only add up: a right an older table gave (an inbox writing the status topic) stays
    // until it is removed.
    absl::StatusOr<std::size_t> stale = RemoveUnwanted(kafka, *net, direct);
    if (!stale.ok()) return KafkaFail(kafka, stale.status());
    removed = *stale;
  }
  for (AclCommand& acl_command :
       AclCommands(transactional, kafka, flags.kafka_jars, flags.java_config)) {
    std::vector<std::string>& command_line = acl_command.argv;
    if (flags.kafka_jars.empty() || flags.java_config.empty()) {
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
    if (Run(command_line) != 0) {
      return Fail("Kafka's AclCommand failed for " + acl_command.principal);
    }
  }
  std::cout << direct.size() + transactional.size() << " ACLs present on " << kafka << " for "
            << topology::KafkaPrincipals(*net).size() << " principals";
  if (flags.exact) std::cout << "; " << removed << " no longer in the table removed";
  std::cout << "\n";
  return 0;
}

}  // namespace

std::vector<kafka::AclBinding> AclsOf(const routing::Network& network) {
  std::vector<kafka::AclBinding> acls;
  for (const topology::AclRule& rule : topology::KafkaAccessRules(network)) {
    acls.push_back({"User:" + rule.principal, std::string(topology::Name(rule.resource)), rule.name,
                    rule.prefixed, std::string(topology::Name(rule.operation))});
  }
  return acls;
}

std::string AclLine(const kafka::AclBinding& acl) {
  return acl.principal + "\t" + acl.operation + "\t" + acl.resource + "\t" + acl.name +
         (acl.prefixed ? "*" : "");
}

std::vector<kafka::AclBinding> Unwanted(std::vector<kafka::AclBinding> present,
                                        const std::vector<kafka::AclBinding>& wanted) {
  const auto same = [](const kafka::AclBinding& a) {
    return std::tie(a.principal, a.resource, a.name, a.prefixed, a.operation);
  };
  std::vector<kafka::AclBinding> unwanted;
  for (kafka::AclBinding& acl : present) {
    if (std::none_of(wanted.begin(), wanted.end(),
                     [&](const kafka::AclBinding& w) { return same(w) == same(acl); })) {
      unwanted.push_back(std::move(acl));
    }
  }
  return unwanted;
}

std::vector<AclCommand> AclCommands(const std::vector<kafka::AclBinding>& transactional,
                                    const std::string& kafka, const std::string& kafka_jars,
                                    const std::string& java_config) {
  std::map<std::tuple<std::string, std::string, bool>, std::vector<std::string>> operations;
  for (const kafka::AclBinding& acl : transactional) {
    operations[{acl.principal, acl.name, acl.prefixed}].push_back(acl.operation);
  }
  std::vector<AclCommand> commands;
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
    commands.push_back({principal, std::move(command_line)});
  }
  return commands;
}

void AddAccessCommands(CLI::App& app, Context& context) {
  auto* access = app.add_subcommand("access", "Who may do what on Kafka (ACLs)");
  access->require_subcommand(1);

  auto show_flags = std::make_shared<AccessFlags>();
  auto* show = access->add_subcommand("show", "Print the ACLs the network needs, one per line");
  AddNetworkOption(show, show_flags->network);
  show->add_flag(
      "--markdown", show_flags->markdown,
      "Print the table of docs/architecture.md instead: one row per principal, as <org>");
  context.Handle(show, [show_flags] { return ShowAccess(*show_flags); });

  auto apply_flags = std::make_shared<AccessFlags>();
  auto* apply = access->add_subcommand(
      "apply", "Create the ACLs the network needs (as the Kafka super user: --kafka-config)");
  AddNetworkOption(apply, apply_flags->network);
  AddKafkaOption(apply, apply_flags->kafka);
  apply->add_flag("--exact", apply_flags->exact,
                  "Also remove the topic and group ACLs of the table's principals that the table "
                  "no longer has (after an upgrade; not on a broker that several networks share)");
  // librdkafka 2.0.2 cannot make ACLs on transactional ids (the router's): Kafka's own AclCommand
  // does.
  apply->add_option("--kafka-jars", apply_flags->kafka_jars,
                    "Folder of the Kafka jars (deploy/local: .cache/kafka/libs), for the "
                    "transactional-id ACLs, which Kafka's AclCommand makes");
  apply->add_option("--java-config", apply_flags->java_config,
                    "Kafka Java client properties of the super user for AclCommand, e.g. "
                    "<pki>/kafka/admin.java.properties");
  context.Handle(apply, [apply_flags] { return ApplyAccess(*apply_flags); });
}

}  // namespace schakel::ctl
