#include "libs/topology/topics.h"

#include "absl/strings/str_cat.h"

namespace schakel::topology {

std::string InboxTopic(std::string_view organisation_id) {
  return absl::StrCat("schakel.inbox.", std::string(organisation_id));
}

std::string FromTopic(std::string_view organisation_id) {
  return absl::StrCat(std::string(kFromTopicPrefix), std::string(organisation_id));
}

std::string_view FromTopicOrganisation(std::string_view topic) {
  if (topic.size() <= kFromTopicPrefix.size() || topic.rfind(kFromTopicPrefix, 0) != 0) return {};
  return topic.substr(kFromTopicPrefix.size());
}

std::string DeadLetterTopic(std::string_view principal) {
  return absl::StrCat(std::string(kDeadLetterTopicPrefix), std::string(principal));
}

std::vector<std::string> DeadLetterPrincipals(const Network& network) {
  std::vector<std::string> principals = {"router", "intake", "keys", "ops"};
  for (const Organisation& org : network.organisations) principals.push_back("inbox-" + org.id);
  return principals;
}

std::string DeadLetterPrincipalOf(const Network& network, std::string_view topic) {
  for (const std::string& principal : DeadLetterPrincipals(network)) {
    if (topic == DeadLetterTopic(principal)) return principal;
  }
  return "";
}

std::string LoadTopic(std::string_view organisation_id) {
  return absl::StrCat(std::string(kLoadTopicPrefix), std::string(organisation_id));
}

std::vector<std::string> AllTopics(const Network& network) {
  std::vector<std::string> topics = {
      std::string(kSubmittedTopic),   std::string(kStatusTopic),
      std::string(kUnroutableTopic),  std::string(kCancellationsTopic),
      std::string(kRouterStateTopic), std::string(kReassignTopic),
      std::string(kErasuresTopic)};
  for (const Organisation& org : network.organisations) topics.push_back(InboxTopic(org.id));
  for (const Organisation& org : network.organisations) topics.push_back(FromTopic(org.id));
  for (const Organisation& org : network.organisations) topics.push_back(LoadTopic(org.id));
  for (const std::string& principal : DeadLetterPrincipals(network)) {
    topics.push_back(DeadLetterTopic(principal));
  }
  for (const std::string& writer : AuditWriters(network)) topics.push_back(AuditTopic(writer));
  return topics;
}

std::string AuditTopic(std::string_view writer) {
  return absl::StrCat(std::string(kAuditTopicPrefix), std::string(writer));
}

std::vector<std::string> AuditWriters(const Network& network) {
  std::vector<std::string> writers = {"intake", "keys", "ops"};
  for (const Organisation& org : network.organisations) writers.push_back("inbox-" + org.id);
  return writers;
}

}  // namespace schakel::topology
