// schakelctl access show|apply: who may do what on Kafka. The ACLs come from the table in code
// (libs/routing/kafka_access.h); apply makes the topic and group ACLs through librdkafka and the
// transactional-id ones through Kafka's own AclCommand (librdkafka 2.0.2 cannot make those).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "libs/kafka/admin.h"
#include "libs/routing/network.h"
#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddAccessCommands(CLI::App& app, Context& context);

// The ACLs `network` needs, in the table's order.
std::vector<kafka::AclBinding> AclsOf(const routing::Network& network);

// One ACL as `access show` prints it: principal, operation, resource, name (with * when
// prefixed), tab-separated.
std::string AclLine(const kafka::AclBinding& acl);

// Those of `present` that `wanted` does not have (the same principal, resource, name, pattern and
// operation).
std::vector<kafka::AclBinding> Unwanted(std::vector<kafka::AclBinding> present,
                                        const std::vector<kafka::AclBinding>& wanted);

// A run of Kafka's AclCommand that makes ACLs of one principal.
struct AclCommand {
  std::string principal;
  std::vector<std::string> argv;  // "java", its arguments
};

// The AclCommand runs that make the transactional-id ACLs `transactional` on `kafka`, with the
// super user's Java client properties `java_config`: one per resource (a JVM start costs
// seconds), with all its operations, for a `java` that finds Kafka's jars in `kafka_jars`.
std::vector<AclCommand> AclCommands(const std::vector<kafka::AclBinding>& transactional,
                                    const std::string& kafka, const std::string& kafka_jars,
                                    const std::string& java_config);

}  // namespace schakel::ctl
