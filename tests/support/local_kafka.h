// Brokers a test owns, so that it may kill them: one node, or a KRaft cluster of three on loopback,
// each started and restarted with deploy/local/kafka in its own folder on free ports. The fault
// suite uses it; the other tests share the broker tests/run started.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace schakel::testing {

class LocalKafka {
 public:
  struct Node {
    int id = 0;
    int port = 0;
    int controller_port = 0;
    std::filesystem::path dir;
    std::filesystem::path data;  // log.dirs; inside dir unless a test mounts something there
    bool running = false;
  };

  // `nodes` brokers (1, or 3 for a cluster with replication 3 and min.insync.replicas 2) in
  // folders under `dir`; nothing runs until Start().
  LocalKafka(const std::filesystem::path& dir, int nodes);
  ~LocalKafka();  // stops every node that runs
  LocalKafka(const LocalKafka&) = delete;
  LocalKafka& operator=(const LocalKafka&) = delete;

  // Starts every node (at the same time: a cluster is ready only when a majority runs).
  absl::Status Start();
  // Starts one node again on its ports and data.
  absl::Status Restart(int node_id);
  // Sends `signo` to the node's JVM; for SIGKILL, waits until it is gone.
  absl::Status Signal(int node_id, int signo);
  // Stops a node cleanly (SIGTERM).
  absl::Status Stop(int node_id);

  // "127.0.0.1:p1,127.0.0.1:p2,…": every node, also those that are down (what services get).
  std::string bootstrap() const;
  // Only the nodes not killed or stopped through this class: for a test's own short-lived readers
  // (a fresh librdkafka 2.0.2 reader that lists a dead broker was seen to wait out its whole
  // timeout in the watermark query of every partition).
  std::string running_bootstrap() const;
  const std::vector<Node>& nodes() const { return nodes_; }
  // The node that leads most partitions of `topic` right now (by metadata), if any answers.
  std::optional<int> BusiestLeader(const std::string& topic) const;

 private:
  Node& Find(int node_id);
  std::string Script() const;
  absl::Status StartNode(const Node& node) const;

  std::string cluster_id_;
  std::vector<Node> nodes_;
};

}  // namespace schakel::testing
