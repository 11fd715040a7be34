// Explicit topic creation: the broker never auto-creates topics, so every service's topics are made
// here, with partitions and replication factor from the network file.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "libs/kafka/producer.h"

namespace schakel::kafka {

struct TopicSpec {
  std::string name;
  int partitions = 3;
  int replication_factor = 1;
  Properties config = {};  // topic configuration, e.g. cleanup.policy=compact
};

// Creates the topics that do not exist yet; existing ones are left as they are. UNAVAILABLE when no
// broker answers within `timeout`.
absl::Status EnsureTopics(const std::string& bootstrap_servers,
                          const std::vector<TopicSpec>& topics, std::chrono::milliseconds timeout,
                          const Properties& extra = {});

}  // namespace schakel::kafka
