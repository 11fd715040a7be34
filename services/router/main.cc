// router: wiring only. `router --check <file>` validates a network file and exits.
// Shutdown order: stop serving ExplainRoute, stop the routing loop (its current batch is either
// published and marked done, or left to be routed again), leave the consumer group, flush the
// producer.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/routing/network.h"
#include "libs/service/logging.h"
#include "libs/service/server.h"
#include "libs/service/shutdown.h"
#include "services/router/router.h"
#include "services/router/routing_service.h"

int main(int argc, char** argv) {
  schakel::service::BlockShutdownSignals();
  CLI::App app{
      "Schakel router: offers each need of a referral to the organisation responsible for it."};
  std::string network_file = "deploy/local/network.yaml";
  std::string listen = "127.0.0.1:50052";
  std::string kafka = "127.0.0.1:9092";
  std::string check_file;
  std::string log_level = "info";
  bool log_json = false;
  app.add_option("--network", network_file, "The network file")->capture_default_str();
  app.add_option("--listen", listen, "gRPC address for RoutingService")->capture_default_str();
  app.add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  app.add_option("--check", check_file,
                 "Only validate this network file and exit (0: valid, 2: not)");
  app.add_flag("--log-json", log_json, "Log one JSON object per line");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!check_file.empty()) {
    absl::StatusOr<schakel::routing::Network> checked =
        schakel::routing::LoadNetworkFile(check_file);
    if (!checked.ok()) {
      std::cerr << checked.status().message() << "\n";
      return 2;
    }
    std::cout << check_file << ": valid (" << checked->organisations.size() << " organisations, "
              << checked->needs.size() << " needs, " << checked->regions.size() << " regions)\n";
    return 0;
  }

  schakel::service::SetupLogging("router", log_json, log_level);
  absl::StatusOr<schakel::routing::Network> network =
      schakel::routing::LoadNetworkFile(network_file);
  if (!network.ok()) {
    std::cerr << "router: " << network.status().message() << "\n";
    return 2;
  }
  const schakel::routing::Policy policy(*network);

  absl::StatusOr<std::unique_ptr<schakel::kafka::Producer>> producer =
      schakel::kafka::Producer::Create({.bootstrap_servers = kafka,
                                        .client_id = "schakel-router",
                                        .delivery_timeout = std::chrono::seconds(30),
                                        .extra = {}});
  if (!producer.ok()) {
    std::cerr << "router: " << producer.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::kafka::Consumer>> consumer =
      schakel::kafka::Consumer::Create(
          {.bootstrap_servers = kafka,
           .group_id = "schakel.router",
           .topics = {std::string(schakel::routing::kSubmittedTopic),
                      std::string(schakel::routing::kForwardingTopic),
                      std::string(schakel::routing::kCancellationsTopic)},
           .client_id = "schakel-router",
           .extra = {}});
  if (!consumer.ok()) {
    std::cerr << "router: " << consumer.status().message() << "\n";
    return 2;
  }

  schakel::router::RoutingService routing_service(policy);
  absl::StatusOr<schakel::service::RunningServer> server =
      schakel::service::StartServer(listen, {&routing_service});
  if (!server.ok()) {
    std::cerr << "router: " << server.status().message() << "\n";
    return 2;
  }

  schakel::router::Router router(policy, **consumer, **producer);
  std::thread loop([&] {
    if (absl::Status s = router.Run(); !s.ok()) {
      spdlog::critical("router: {}", std::string(s.message()));
      std::abort();  // a fatal consumer error: restart rather than limp on
    }
  });
  spdlog::info("router listening on {}, routing {} for {} organisations (Kafka {})", listen,
               schakel::routing::kSubmittedTopic, network->organisations.size(), kafka);

  const int signal = schakel::service::WaitForShutdownSignal();
  spdlog::info("router stopping (signal {})", signal);
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  router.Stop();
  loop.join();
  (*consumer)->Close();
  const int undelivered = (*producer)->Close(std::chrono::seconds(10));
  spdlog::info("router stopped: {} referrals routed, {} skipped, {} undelivered", router.routed(),
               router.rejected(), undelivered);
  return 0;
}
