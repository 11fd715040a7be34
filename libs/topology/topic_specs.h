// How each topic of a network is created: partitions and replication from the network file, and
// compaction for the router's state, each organisation's load topic and the erasures. Every topic
// but the audit chains' gets the same number of partitions: the router relies on it (all events of
// a referral land in the same partition number). An audit chain's topic has one partition and keeps
// everything.
#pragma once

#include <string>
#include <vector>

#include "libs/kafka/admin.h"
#include "libs/topology/topics.h"

namespace schakel::topology {

// An audit chain's topic (AuditTopic). One partition: the chain's order is the log's, and its
// writer finds the head in one place. Kept for ever: verification needs every entry from the
// chain's first. `replication_factor` -1: the broker's default (for a writer that makes its own).
inline kafka::TopicSpec AuditTopicSpec(const std::string& topic, int replication_factor) {
  return {topic,
          1,
          replication_factor,
          {{"cleanup.policy", "delete"}, {"retention.ms", "-1"}, {"retention.bytes", "-1"}}};
}

inline std::vector<kafka::TopicSpec> TopicSpecs(const Network& network) {
  std::vector<kafka::TopicSpec> specs;
  for (const std::string& topic : AllTopics(network)) {
    kafka::TopicSpec spec{topic, network.topics.partitions, network.topics.replication_factor};
    if (topic == kRouterStateTopic || topic == kErasuresTopic ||
        topic.rfind(kLoadTopicPrefix, 0) == 0) {
      spec.config = {{"cleanup.policy", "compact"}};
    }
    if (topic.rfind(kAuditTopicPrefix, 0) == 0)
      spec = AuditTopicSpec(topic, spec.replication_factor);
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace schakel::topology
