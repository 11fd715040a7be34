// How each topic of a network is created: partitions and replication from the network file, and
// compaction for the router's state, the inboxes' load and the erasures. Every topic but the audit
// topic gets the same number of partitions: the router relies on it (all events of a referral land
// in the same partition number). The audit topic has one partition and keeps everything.
#pragma once

#include <string>
#include <vector>

#include "libs/kafka/admin.h"
#include "libs/routing/network.h"

namespace schakel::routing {

inline std::vector<kafka::TopicSpec> TopicSpecs(const Network& network) {
  std::vector<kafka::TopicSpec> specs;
  for (const std::string& topic : AllTopics(network)) {
    kafka::TopicSpec spec{topic, network.topics.partitions, network.topics.replication_factor};
    if (topic == kRouterStateTopic || topic == kInboxLoadTopic || topic == kErasuresTopic) {
      spec.config = {{"cleanup.policy", "compact"}};
    }
    if (topic == kAuditTopic) {
      // One partition: the chains' order is the log's, and a writer finds its head in one place.
      // Kept for ever: verification needs every entry from each chain's first.
      spec.partitions = 1;
      spec.config = {
          {"cleanup.policy", "delete"}, {"retention.ms", "-1"}, {"retention.bytes", "-1"}};
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace schakel::routing
