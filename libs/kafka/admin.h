// Explicit topic creation: the broker never auto-creates topics, so every service's topics are made
// here, with partitions and replication factor from the network file.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// Deletes the topics (those that do not exist are no error). UNAVAILABLE when no broker answers
// within `timeout`; PERMISSION_DENIED when the broker refuses.
absl::Status DeleteTopics(const std::string& bootstrap_servers,
                          const std::vector<std::string>& topics, std::chrono::milliseconds timeout,
                          const Properties& extra = {});

// The names of the topics that start with `prefix`, sorted (only those the client may describe: the
// broker leaves out the others). UNAVAILABLE when no broker answers within `timeout`.
absl::StatusOr<std::vector<std::string>> ListTopics(const std::string& bootstrap_servers,
                                                    const std::string& prefix,
                                                    std::chrono::milliseconds timeout,
                                                    const Properties& extra = {});

// One ACL that allows `operation` ("Read", "Write", "Describe", "Create", ...) on a topic, group or
// transactional id, from any host.
struct AclBinding {
  std::string principal;  // "User:inbox-mjd"
  std::string resource;   // "topic", "group" or "transactional-id"
  std::string name;
  bool prefixed = false;  // every resource whose name starts with `name`
  std::string operation;
};

// Creates the ACLs (the broker keeps each once, so repeating is harmless). Needs a principal
// allowed to Alter the cluster (the super user). UNAVAILABLE when no broker answers within
// `timeout`; PERMISSION_DENIED when the broker refuses. Topics and groups only: librdkafka 2.0.2's
// ACL API knows no transactional ids (INVALID_ARGUMENT; Kafka's own AclCommand makes those).
absl::Status CreateAcls(const std::string& bootstrap_servers, const std::vector<AclBinding>& acls,
                        std::chrono::milliseconds timeout);

// The topic and group ACLs that allow `principal` ("User:inbox-mjd") something, as the broker
// has them. UNAVAILABLE when no broker answers within `timeout`; PERMISSION_DENIED when the
// broker refuses (only the super user may describe every ACL).
absl::StatusOr<std::vector<AclBinding>> DescribeAcls(const std::string& bootstrap_servers,
                                                     const std::string& principal,
                                                     std::chrono::milliseconds timeout);

// Deletes exactly these ACLs (topics and groups). Errors as CreateAcls.
absl::Status DeleteAcls(const std::string& bootstrap_servers, const std::vector<AclBinding>& acls,
                        std::chrono::milliseconds timeout);

}  // namespace schakel::kafka
