#include "services/router/startup.h"

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>

#include "libs/kafka/admin.h"
#include "libs/topology/topic_specs.h"

namespace schakel::router {
namespace {

const std::vector<std::string>& SharedInputs() {
  static const std::vector<std::string> inputs = {std::string(topology::kSubmittedTopic),
                                                  std::string(topology::kCancellationsTopic),
                                                  std::string(topology::kReassignTopic)};
  return inputs;
}

}  // namespace

int CheckNetworkFile(const std::string& file) {
  absl::StatusOr<routing::Network> checked = routing::LoadNetworkFile(file);
  if (!checked.ok()) {
    std::cerr << checked.status().message() << "\n";
    return 2;
  }
  std::cout << file << ": valid (" << checked->organisations.size() << " organisations, "
            << checked->needs.size() << " needs, " << checked->regions.size() << " regions)\n";
  return 0;
}

Clock MakeClock(const std::string& offset_file) {
  if (offset_file.empty()) return [] { return std::chrono::system_clock::now(); };
  return [offset_file] {
    long long seconds = 0;
    std::ifstream in(offset_file);
    if (in) in >> seconds;
    return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
  };
}

std::vector<std::string> InputTopics() {
  std::vector<std::string> inputs = SharedInputs();
  inputs.push_back("^schakel\\.from\\..+");  // topology::kFromTopicPrefix as a pattern
  return inputs;
}

absl::Status CheckCopartitioned(kafka::Consumer& consumer, const routing::Network& network) {
  std::vector<std::string> topics = SharedInputs();
  for (const routing::Organisation& org : network.organisations) {
    topics.push_back(topology::FromTopic(org.id));
  }
  topics.push_back(std::string(topology::kRouterStateTopic));
  std::size_t expected = 0;
  for (const std::string& topic : topics) {
    absl::StatusOr<std::map<std::int32_t, std::int64_t>> ends =
        consumer.EndOffsets(topic, std::chrono::seconds(30));
    if (!ends.ok()) return ends.status();
    if (expected == 0) expected = ends->size();
    if (ends->size() != expected) {
      return absl::FailedPreconditionError(
          "topic " + topic + " has " + std::to_string(ends->size()) + " partitions, " +
          topics.front() + " has " + std::to_string(expected) +
          ": every topic the router reads needs the same number (schakelctl topics create)");
    }
  }
  return absl::OkStatus();
}

NetworkWatch::Prepare CreateTopicsOn(const std::string& kafka) {
  return [kafka](const routing::Network& changed) {
    return kafka::EnsureTopics(kafka, topology::TopicSpecs(changed), std::chrono::seconds(15));
  };
}

LoadView::Organisations OrganisationsOf(const NetworkWatch& watch) {
  return [&watch] {
    std::vector<std::string> ids;
    for (const routing::Organisation& org : watch.Current()->network().organisations) {
      ids.push_back(org.id);
    }
    return ids;
  };
}

void AddRouterCounters(metrics::Metrics& metrics, const Escalation& escalation,
                       const LoadView& load_view) {
  metrics.AddCounter(
      "schakel_router_unauthorised_total",
      "Status changes and forward requests refused: their sender does not own the assignment",
      [&escalation] { return static_cast<double>(escalation.unauthorised()); });
  metrics.AddCounter(
      "schakel_router_forged_load_reports_total",
      "Load reports ignored: they claim an organisation other than the one whose topic they are "
      "on",
      [&load_view] { return static_cast<double>(load_view.forged()); });
}

}  // namespace schakel::router
