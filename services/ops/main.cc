// The ops service: follows the network's events on Kafka and shows operators what waits where — the
// console (a web page over HTTPS, for operators' client certificates only), Prometheus gauges per
// organisation and need — and does what operators ask through its API (the page and schakelctl):
// reassignments of unroutable needs and redrives of dead letters, each recorded in its audit chain
// with the operator's name. It owns no state: a restart reads the topics (and its chain) again.
// Wiring only; the process shell (libs/service/process.h) does the rest.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <set>
#include <string>

#include "libs/audit/writer.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consume_loop.h"
#include "libs/kafka/follower.h"
#include "libs/kafka/probe.h"
#include "libs/kafka/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/routing/network.h"
#include "libs/service/process.h"
#include "services/ops/actions.h"
#include "services/ops/console_http.h"
#include "services/ops/follow.h"
#include "services/ops/ops_view.h"
#include "services/ops/redrive.h"

namespace schakel {

int Main(int argc, char** argv) {
  service::Process process(
      {.name = "ops",
       .description = "Schakel ops: the operators' console (a web page: queues per organisation, "
                      "the unroutable queue with reassignment, the dead letters), and their "
                      "figures as Prometheus gauges, followed live from Kafka.",
       .listen = "127.0.0.1:50059",
       .listen_help = "gRPC address (health checking, reflection, channelz)",
       .network = service::NetworkFlag::kOptional,
       .audit_signing_key = true});
  std::string console_listen = "127.0.0.1:8080";
  int lag_every_ms = 5000;
  CLI::App& app = process.app();
  app.add_option("--console-listen", console_listen,
                 "Serve the console at https://ADDRESS/ with --tls-cert, to operators only: their "
                 "client certificate (<name>.operator.schakel) from --tls-ca's authority")
      ->capture_default_str();
  app.add_option("--lag-every-ms", lag_every_ms,
                 "How often the inboxes' committed offsets are asked for (their lag)")
      ->capture_default_str()
      ->check(CLI::Range(100, 600000));
  process.Parse(argc, argv);
  const std::string kafka = process.kafka();

  const routing::Network network = process.Must(routing::LoadNetworkFile(process.network_file()));
  ops::OpsView view(network);
  std::unique_ptr<kafka::Follower> follower = process.Must(
      kafka::Follower::Create(kafka, view.Topics(), std::chrono::seconds(15)), "Kafka at " + kafka);
  std::unique_ptr<kafka::Producer> producer =
      process.Must(kafka::Producer::Create(
                       {.bootstrap_servers = kafka, .client_id = "schakel-ops", .extra = {}}),
                   "Kafka at " + kafka);
  process.OnStop([&] { producer->Close(std::chrono::seconds(5)); });
  std::unique_ptr<kafka::ReachabilityProbe> probe =
      process.Must(kafka::ReachabilityProbe::Start(kafka));
  process.metrics().AddCollectable(std::make_shared<ops::OpsGauges>(view));

  // The audit chain "ops": every reassignment and redrive operators make through ops.
  audit::AuditLog audit_log(process.Must(audit::ServiceChain(
      kafka, "ops", process.audit_signing_key(), network.topics.replication_factor)));
  process.Start(audit_log);

  ops::Redriver redriver(network, ops::KafkaRedriveIo(kafka, network, *producer, audit_log));
  std::unique_ptr<ops::ConsoleServer> console = process.Must(ops::ConsoleServer::Start(
      console_listen,
      {.cert = process.tls().cert, .key = process.tls().key, .ca = process.tls().ca},
      [&] { return view.Overview(std::chrono::system_clock::now(), probe->Reachable(), kafka); },
      ops::KafkaReassign(view, *producer, audit_log),
      [&](const ops::RedriveRequest& r) { return redriver.Redrive(r); }));
  process.OnStopInput([&] { console->Stop(); });
  process.Serve({});
  process.FollowKafka([&probe] { return probe->Reachable(); }, /*health=*/true);

  // What ops set aside at an earlier start is not sent to its dead letters again.
  absl::StatusOr<std::set<std::string>> set_aside =
      ops::SetAside(kafka, network, std::chrono::seconds(30));
  if (!set_aside.ok()) {
    spdlog::warn("ops: what it set aside before is not known (it may set it aside again): {}",
                 std::string(set_aside.status().message()));
  }
  deadletter::DeadLetters dead_letters(*producer, "ops", "ops");
  kafka::FollowerSource follow_source(*follower);
  ops::OpsFollower follow(kafka, network, follow_source, view, dead_letters,
                          set_aside.value_or(std::set<std::string>{}),
                          std::chrono::milliseconds(lag_every_ms));
  process.Start(follow);
  spdlog::info("ops listening on {} (gRPC), console at https://{}/, following {} topics (Kafka {})",
               process.listen(), console->address(), view.Topics().size(), kafka);

  const int code = process.Run();
  spdlog::info("ops stopped: {} records read, {} unreadable, {} forged load reports ignored",
               view.records(), view.unreadable(), view.forged());
  return code;
}

}  // namespace schakel

int main(int argc, char** argv) { return schakel::Main(argc, argv); }
