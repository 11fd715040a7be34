#include "tests/support/local_kafka.h"

#include <librdkafka/rdkafkacpp.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "libs/kafka/client_config.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel::testing {
namespace {

// A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (Kafka's Uuid form).
std::string NewClusterId() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device random;
  unsigned char bytes[16];
  for (unsigned char& b : bytes) b = static_cast<unsigned char>(random());
  bytes[0] |= 0x01;  // never the reserved all-zero ids
  std::string id;
  int bits = 0;
  unsigned value = 0;
  for (unsigned char b : bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      id += kAlphabet[(value >> bits) & 0x3f];
    }
  }
  if (bits > 0) id += kAlphabet[(value << (6 - bits)) & 0x3f];
  return id;
}

std::optional<pid_t> PidOf(const LocalKafka::Node& node) {
  std::ifstream in(node.dir / "broker.pid");
  pid_t pid = 0;
  if (in >> pid && pid > 0) return pid;
  return std::nullopt;
}

}  // namespace

LocalKafka::LocalKafka(const std::filesystem::path& dir, int nodes) : cluster_id_(NewClusterId()) {
  std::set<int> ports;
  while (static_cast<int>(ports.size()) < 2 * nodes) ports.insert(FreePort());
  auto port = ports.begin();
  for (int id = 1; id <= nodes; ++id) {
    Node node;
    node.id = id;
    node.port = *port++;
    node.controller_port = *port++;
    node.dir = dir / ("broker-" + std::to_string(id));
    node.data = node.dir / "data";
    std::filesystem::create_directories(node.data);
    nodes_.push_back(node);
  }
}

LocalKafka::~LocalKafka() {
  std::vector<std::thread> stopping;
  for (const Node& node : nodes_) {
    ::kill(PidOf(node).value_or(-1), SIGCONT);  // a paused broker cannot stop
    stopping.emplace_back([this, id = node.id] { (void)Stop(id); });
  }
  for (std::thread& t : stopping) t.join();
}

std::string LocalKafka::Script() const {
  return std::string(SCHAKEL_SOURCE_DIR) + "/deploy/local/kafka";
}

LocalKafka::Node& LocalKafka::Find(int node_id) {
  for (Node& node : nodes_) {
    if (node.id == node_id) return node;
  }
  throw std::out_of_range(absl::StrCat("no broker node ", node_id));
}

std::string LocalKafka::bootstrap() const {
  std::string list;
  for (const Node& node : nodes_) {
    absl::StrAppend(&list, list.empty() ? "" : ",", "127.0.0.1:", node.port);
  }
  return list;
}

std::string LocalKafka::running_bootstrap() const {
  std::string list;
  for (const Node& node : nodes_) {
    if (node.running) absl::StrAppend(&list, list.empty() ? "" : ",", "127.0.0.1:", node.port);
  }
  return list;
}

absl::Status LocalKafka::StartNode(const Node& node) const {
  std::vector<std::string> argv = {Script(),
                                   "start",
                                   "--dir",
                                   node.dir.string(),
                                   "--port",
                                   std::to_string(node.port),
                                   "--controller-port",
                                   std::to_string(node.controller_port),
                                   "--pki",
                                   TestPki().string()};
  if (nodes_.size() > 1) {
    std::string quorum;
    for (const Node& n : nodes_) {
      absl::StrAppend(&quorum, quorum.empty() ? "" : ",", n.id, "@127.0.0.1:", n.controller_port);
    }
    for (const std::string& a :
         {std::string("--node-id"), std::to_string(node.id), std::string("--quorum"), quorum,
          std::string("--cluster-id"), cluster_id_, std::string("--replication"),
          std::to_string(nodes_.size())}) {
      argv.push_back(a);
    }
  }
  std::string output;
  if (RunCommand(argv, &output) != 0) {
    return absl::UnavailableError(absl::StrCat("broker ", node.id, " did not start:\n", output));
  }
  return absl::OkStatus();
}

absl::Status LocalKafka::Start() {
  std::vector<std::future<absl::Status>> started;
  for (Node& node : nodes_) {
    node.running = true;
    started.push_back(std::async(std::launch::async, [this, &node] { return StartNode(node); }));
  }
  absl::Status all = absl::OkStatus();
  for (auto& s : started) all.Update(s.get());
  return all;
}

absl::Status LocalKafka::Restart(int node_id) {
  Find(node_id).running = true;
  return StartNode(Find(node_id));
}

absl::Status LocalKafka::Signal(int node_id, int signo) {
  Node& node = Find(node_id);
  if (signo == SIGKILL || signo == SIGSTOP) node.running = false;
  if (signo == SIGCONT) node.running = true;
  const std::optional<pid_t> pid = PidOf(node);
  if (!pid || ::kill(*pid, signo) != 0) {
    return absl::NotFoundError(absl::StrCat("broker ", node_id, " does not run"));
  }
  if (signo == SIGKILL) {
    while (::kill(*pid, 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::OkStatus();
}

absl::Status LocalKafka::Stop(int node_id) {
  Find(node_id).running = false;
  std::string output;
  if (RunCommand({Script(), "stop", "--dir", Find(node_id).dir.string()}, &output) != 0) {
    return absl::InternalError(output);
  }
  return absl::OkStatus();
}

std::optional<int> LocalKafka::BusiestLeader(const std::string& topic) const {
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const auto& [key, value] : kafka::ClientConfig()) conf->set(key, value, error);
  conf->set("bootstrap.servers", bootstrap(), error);
  std::unique_ptr<RdKafka::Producer> client(RdKafka::Producer::create(conf.get(), error));
  if (!client) return std::nullopt;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(client.get(), topic, nullptr, error));
  RdKafka::Metadata* raw = nullptr;
  if (client->metadata(false, handle.get(), &raw, 10000) != RdKafka::ERR_NO_ERROR) {
    return std::nullopt;
  }
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::map<int, int> led;
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      if (p->leader() >= 0) ++led[p->leader()];
    }
  }
  std::optional<int> busiest;
  for (const auto& [id, count] : led) {
    if (!busiest || count > led[*busiest]) busiest = id;
  }
  return busiest;
}

}  // namespace schakel::testing
