// The network: which organisations exist, which needs each serves, where, in which languages.
// Loaded from the YAML file operators edit (deploy/local/network.yaml is the example).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace schakel::routing {

struct NeedKind {
  std::string id;
  std::string name;
};

struct Region {
  std::string id;
  std::string name;
};

struct Organisation {
  std::string id;  // also names its Kafka topic: schakel.inbox.<id>
  std::string name;
  std::vector<std::string> needs;
  std::vector<std::string> regions;
  std::vector<std::string> languages;

  bool Serves(std::string_view need) const;
  bool Covers(std::string_view region) const;
};

// How the topics are created (explicitly; the broker never auto-creates them).
struct TopicSettings {
  int partitions = 3;
  int replication_factor = 1;
};

struct Network {
  std::vector<NeedKind> needs;
  std::vector<Region> regions;
  std::vector<std::string> languages;
  std::vector<Organisation> organisations;  // in file order: this order breaks ties
  TopicSettings topics;

  const Organisation* FindOrganisation(std::string_view id) const;
  bool HasNeed(std::string_view id) const;
  bool HasRegion(std::string_view id) const;
  bool HasLanguage(std::string_view code) const;
};

// Parses and checks a network file. Errors name the source, the place (line:column or the path of
// keys) and what is wrong, e.g. "network.yaml:12:5: organisations[2].needs[0]: unknown need
// 'debts'".
absl::StatusOr<Network> ParseNetwork(std::string_view yaml_text, std::string_view source_name);
absl::StatusOr<Network> LoadNetworkFile(const std::string& path);

// Topic names, in one place.
inline constexpr std::string_view kSubmittedTopic = "schakel.referrals.submitted";
inline constexpr std::string_view kStatusTopic = "schakel.assignments.status";
inline constexpr std::string_view kUnroutableTopic = "schakel.referrals.unroutable";
std::string InboxTopic(std::string_view organisation_id);
// Every topic the network needs, in a stable order.
std::vector<std::string> AllTopics(const Network& network);

}  // namespace schakel::routing
