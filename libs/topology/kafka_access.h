// Who may do what on the Kafka broker: the one table of ACLs, per principal, that the broker
// enforces (StandardAuthorizer, deny unless allowed). `schakelctl access show|apply` prints it or
// creates it as the super user. Principals are the names the broker gives a client certificate
// (deploy/local/kafka, ssl.principal.mapping.rules): intake, router, ops, operator (schakelctl),
// keys, and inbox-<org> per organisation (its inbox service, or the partner itself).
#pragma once

#include <string>
#include <vector>

#include "libs/topology/topics.h"

namespace schakel::topology {

enum class AclResource { kTopic, kGroup, kTransactionalId };
enum class AclOperation { kRead, kWrite, kDescribe, kCreate };

struct AclRule {
  std::string principal;  // without "User:"
  AclOperation operation = AclOperation::kRead;
  AclResource resource = AclResource::kTopic;
  std::string name;
  bool prefixed = false;  // every name that starts with `name`
  friend bool operator==(const AclRule&, const AclRule&) = default;
};

// Every rule for `network`, in table order (rows for "{org}" once per organisation).
std::vector<AclRule> KafkaAccessRules(const Network& network);

// The principals the rules name, each once.
std::vector<std::string> KafkaPrincipals(const Network& network);

// The table docs/architecture.md shows under "Kafka access": one row per principal (organisations
// as <org>) with what it reads, writes and creates, its groups and transactional ids, and why. Made
// from the rules above, so it cannot say otherwise; kafka_access_test.cc keeps the document's copy
// equal to it and `schakelctl access show --markdown` prints it.
std::string KafkaAccessMarkdown();

std::string_view Name(AclOperation operation);
std::string_view Name(AclResource resource);

}  // namespace schakel::topology
