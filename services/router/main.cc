// router: wiring only. `router --check <file>` validates a network file and exits.
// Shutdown order: stop serving ExplainRoute, stop the routing loop (its current batch is either
// committed in its transaction or left to be routed again), leave the consumer group.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libs/kafka/admin.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/probe.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/metrics/metrics.h"
#include "libs/routing/network.h"
#include "libs/routing/topics.h"
#include "libs/service/health.h"
#include "libs/service/logging.h"
#include "libs/service/security.h"
#include "libs/service/server.h"
#include "libs/service/shutdown.h"
#include "services/router/escalation.h"
#include "services/router/load_view.h"
#include "services/router/network_watch.h"
#include "services/router/router.h"
#include "services/router/routing_service.h"

namespace {

// schakel_router_unauthorised_total: status changes and forward requests refused because their
// sender does not own the assignment (Escalation::unauthorised; each one is in the dead letters).
class UnauthorisedCounter final : public prometheus::Collectable {
 public:
  explicit UnauthorisedCounter(const schakel::router::Escalation& escalation)
      : escalation_(escalation) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "schakel_router_unauthorised_total";
    family.help =
        "Status changes and forward requests refused: their sender does not own the assignment";
    family.type = prometheus::MetricType::Counter;
    prometheus::ClientMetric metric;
    metric.counter.value = static_cast<double>(escalation_.unauthorised());
    family.metric.push_back(std::move(metric));
    return {family};
  }

 private:
  const schakel::router::Escalation& escalation_;
};

// schakel_router_forged_load_reports_total: load reports ignored because they claim an
// organisation other than the one whose topic they are on (LoadView::forged).
class ForgedLoadCounter final : public prometheus::Collectable {
 public:
  explicit ForgedLoadCounter(const schakel::router::LoadView& view) : view_(view) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "schakel_router_forged_load_reports_total";
    family.help =
        "Load reports ignored: they claim an organisation other than the one whose topic they are "
        "on";
    family.type = prometheus::MetricType::Counter;
    prometheus::ClientMetric metric;
    metric.counter.value = static_cast<double>(view_.forged());
    family.metric.push_back(std::move(metric));
    return {family};
  }

 private:
  const schakel::router::LoadView& view_;
};

// The router's clock: the system clock, plus (for tests only) a number of seconds read from a file,
// so that a test can move the router's time past a deadline without waiting for it.
schakel::router::Clock MakeClock(const std::string& offset_file) {
  if (offset_file.empty()) return [] { return std::chrono::system_clock::now(); };
  return [offset_file] {
    long long seconds = 0;
    std::ifstream in(offset_file);
    if (in) in >> seconds;
    return std::chrono::system_clock::now() + std::chrono::seconds(seconds);
  };
}

// All topics the router reads and its state topic must have the same number of partitions: the
// events of one referral then share a partition number.
absl::Status CheckCopartitioned(schakel::kafka::Consumer& consumer,
                                const std::vector<std::string>& topics) {
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

}  // namespace

int main(int argc, char** argv) {
  schakel::service::BlockShutdownSignals();
  CLI::App app{
      "Schakel router: offers each need of a referral to the organisation responsible for it, and "
      "offers it to the next one when it is declined or not accepted in time."};
  std::string network_file = "deploy/local/network.yaml";
  std::string listen = "127.0.0.1:50052";
  std::string kafka = "127.0.0.1:9092";
  std::string instance = "1";
  std::string check_file;
  std::string clock_offset_file;
  int tick_ms = 1000;
  std::string log_level = "info";
  bool log_json = false;
  app.add_option("--network", network_file,
                 "The network file (changes are picked up while running)")
      ->capture_default_str();
  app.add_option("--listen", listen, "gRPC address for RoutingService")->capture_default_str();
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve Prometheus metrics at http://ADDRESS/metrics, e.g. 127.0.0.1:9452 "
                 "(default: not served)");
  app.add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  app.add_option("--instance", instance,
                 "This router's name among the routers of the network; its Kafka transactional "
                 "id is schakel-router-<instance> (keep it stable across restarts, unique among "
                 "running routers)")
      ->capture_default_str();
  app.add_option("--check", check_file,
                 "Only validate this network file and exit (0: valid, 2: not)");
  app.add_option("--tick-ms", tick_ms, "How often deadlines are checked, in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--clock-offset-file", clock_offset_file,
                 "Testing only: a file holding a number of seconds added to the router's clock");
  app.add_flag("--log-json", log_json, "Log one JSON object per line");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  schakel::service::SecurityFlags security_flags;
  schakel::service::AddSecurityFlags(app, security_flags);
  std::string kafka_config;
  app.add_option("--kafka-config", kafka_config,
                 "librdkafka properties of this service's Kafka identity (the broker's ACLs decide "
                 "what it may do), e.g. <pki>/kafka/router.properties; without it: no identity");
  CLI11_PARSE(app, argc, argv);
  // Every Kafka client of this process presents this identity (and nothing from the environment).
  if (absl::Status s = schakel::kafka::SetClientConfigFile(kafka_config); !s.ok()) {
    std::cerr << "router: " << s.message() << "\n";
    return 2;
  }

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

  schakel::service::LimitMallocArenas();
  schakel::service::SetupLogging("router", log_json, log_level);

  // TLS for every call; the caller's identity from its certificate or token, never the request.
  absl::StatusOr<schakel::service::ServerSecurity> security =
      schakel::service::LoadServerSecurity(security_flags);
  if (!security.ok()) {
    std::cerr << "router: " << security.status().message() << "\n";
    return 2;
  }
  schakel::service::UseAuthenticator(security->authenticator);
  // A new organisation in a changed network file gets its topic before anything is routed to it.
  auto create_topics = [kafka](const schakel::routing::Network& changed) {
    return schakel::kafka::EnsureTopics(kafka, schakel::routing::TopicSpecs(changed),
                                        std::chrono::seconds(15));
  };
  absl::StatusOr<std::unique_ptr<schakel::router::NetworkWatch>> watch =
      schakel::router::NetworkWatch::Load(network_file, create_topics);
  if (!watch.ok()) {
    std::cerr << "router: " << watch.status().message() << "\n";
    return 2;
  }
  auto policy = [w = watch->get()] { return w->Current(); };

  absl::StatusOr<std::unique_ptr<schakel::kafka::TransactionalProducer>> producer =
      schakel::kafka::TransactionalProducer::Create(
          {.bootstrap_servers = kafka,
           .client_id = "schakel-router-" + instance,
           .transactional_id = "schakel-router-" + instance,
           .transaction_timeout = std::chrono::seconds(10),
           .extra = {}},
          std::chrono::seconds(60));
  if (!producer.ok()) {
    std::cerr << "router: Kafka at " << kafka << ": " << producer.status().message() << "\n";
    return 2;
  }

  schakel::router::LoadView load_view;
  // Every organisation's load topic, those of organisations a changed network file adds too.
  auto organisations = [w = watch->get()] {
    std::vector<std::string> ids;
    for (const schakel::routing::Organisation& org : w->Current()->network().organisations) {
      ids.push_back(org.id);
    }
    return ids;
  };
  if (absl::Status s = load_view.Start(kafka, organisations); !s.ok()) {
    std::cerr << "router: Kafka at " << kafka << ": " << s.message() << "\n";
    return 2;
  }
  auto load = [&load_view] { return load_view.Snapshot(); };

  schakel::router::Escalation escalation(MakeClock(clock_offset_file));
  schakel::router::Router router(policy, **producer, escalation, kafka,
                                 std::chrono::milliseconds(tick_ms), load);
  const std::vector<std::string> shared_inputs = {
      std::string(schakel::routing::kSubmittedTopic),
      std::string(schakel::routing::kCancellationsTopic),
      std::string(schakel::routing::kReassignTopic)};
  // Every organisation's own topic, also of organisations a changed network file adds later: a
  // pattern, which the consumer matches again at each metadata refresh (every 10 s here).
  std::vector<std::string> inputs = shared_inputs;
  inputs.push_back("^schakel\\.from\\..+");  // routing::kFromTopicPrefix as a pattern
  absl::StatusOr<std::unique_ptr<schakel::metrics::Metrics>> metrics =
      schakel::metrics::Metrics::Start(metrics_listen);
  if (!metrics.ok()) {
    std::cerr << "router: " << metrics.status().message() << "\n";
    return 2;
  }
  // What a transaction made visible counts as produced (the state topic's tombstones too).
  (*metrics)->AddCollectable(std::make_shared<UnauthorisedCounter>(escalation));
  (*metrics)->AddCollectable(std::make_shared<ForgedLoadCounter>(load_view));
  router.OnCommitted([m = metrics->get()](const std::vector<schakel::router::Output>& out) {
    for (const schakel::router::Output& o : out) m->Produced(o.topic, true);
  });
  absl::StatusOr<std::unique_ptr<schakel::kafka::Consumer>> consumer =
      schakel::kafka::Consumer::Create(
          {.bootstrap_servers = kafka,
           .group_id = "schakel.router",
           .topics = inputs,
           .client_id = "schakel-router-" + instance,
           // Range: partition N of every topic goes to the same member.
           .extra = {{"partition.assignment.strategy", "range"},
                     {"topic.metadata.refresh.interval.ms", "10000"}},
           .on_rebalance = router.Listener(),
           .on_record = [m = metrics->get()](const auto& r) { m->Consumed(r.topic); },
           .on_lag = [m = metrics->get()](const auto& lags) { m->SetConsumerLag(lags); }});
  if (!consumer.ok()) {
    std::cerr << "router: " << consumer.status().message() << "\n";
    return 2;
  }
  std::vector<std::string> copartitioned = shared_inputs;
  for (const schakel::routing::Organisation& org : policy()->network().organisations) {
    copartitioned.push_back(schakel::routing::FromTopic(org.id));
  }
  copartitioned.push_back(std::string(schakel::routing::kRouterStateTopic));
  if (absl::Status s = CheckCopartitioned(**consumer, copartitioned); !s.ok()) {
    std::cerr << "router: Kafka at " << kafka << ": " << s.message() << "\n";
    return 2;
  }

  schakel::router::RoutingService routing_service(policy, load);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*metrics)->GrpcInterceptor());
  absl::StatusOr<schakel::service::RunningServer> server = schakel::service::StartServer(
      listen, security->credentials, {&routing_service}, std::move(interceptors));
  if (!server.ok()) {
    std::cerr << "router: " << server.status().message() << "\n";
    return 2;
  }

  std::thread loop([&] {
    if (absl::Status s = router.Run(**consumer); !s.ok()) {
      spdlog::critical("router: {}", std::string(s.message()));
      std::abort();  // fenced or a fatal Kafka error: restart rather than limp on
    }
  });
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread watcher([&] {
    std::unique_lock lock(stop_mu);
    while (!stop_cv.wait_for(lock, std::chrono::seconds(2), [&] { return stopping; })) {
      (*watch)->CheckForChange().IgnoreError();  // a refused change is logged; the old one runs on
    }
  });
  spdlog::info("router {} listening on {}, routing for {} organisations (Kafka {})", instance,
               listen, policy()->network().organisations.size(), kafka);
  // NOT_SERVING while no broker answers: nothing is routed then.
  absl::StatusOr<std::unique_ptr<schakel::kafka::ReachabilityProbe>> probe =
      schakel::kafka::ReachabilityProbe::Start(kafka);
  if (!probe.ok()) {
    std::cerr << "router: " << probe.status().message() << "\n";
    return 2;
  }
  auto health = std::make_unique<schakel::service::HealthFollower>(
      *server->server, "Kafka", [&probe] { return (*probe)->Reachable(); });
  (*metrics)->SetKafkaReachableSource([&probe] { return (*probe)->Reachable(); });

  const int signal = schakel::service::WaitForShutdownSignal();
  spdlog::info("router stopping (signal {})", signal);
  health.reset();
  (*metrics)->StopServing();
  schakel::service::SetServing(*server->server, false);
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  {
    std::lock_guard lock(stop_mu);
    stopping = true;
  }
  stop_cv.notify_all();
  watcher.join();
  router.Stop();
  loop.join();
  (*consumer)->Close();
  load_view.Stop();
  spdlog::info(
      "router stopped: {} records routed, {} skipped ({} unauthorised), {} escalations, {} "
      "transactions",
      router.routed(), router.rejected(), escalation.unauthorised(), escalation.escalated(),
      (*producer)->committed());
  return 0;
}
