// router: wiring only. Watches the network file, starts the transactional producer, the load view,
// the routing loop and RoutingService; the process shell (libs/service/process.h) does the rest. A
// fenced producer or a fatal Kafka error in the loop is fatal: the router stops and is restarted.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>

#include "libs/kafka/consumer.h"
#include "libs/kafka/probe.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/metrics/metrics.h"
#include "libs/routing/network.h"
#include "libs/service/process.h"
#include "services/router/escalation.h"
#include "services/router/load_view.h"
#include "services/router/network_watch.h"
#include "services/router/router.h"
#include "services/router/routing_service.h"
#include "services/router/startup.h"

namespace schakel {

int Main(int argc, char** argv) {
  service::Process process(
      {.name = "router",
       .description = "Schakel router: offers each need of a referral to the organisation "
                      "responsible for it, and offers it to the next one when it is declined or "
                      "not accepted in time.",
       .listen = "127.0.0.1:50052",
       .listen_help = "gRPC address for RoutingService",
       .metrics_example = "127.0.0.1:9452",
       .network = service::NetworkFlag::kOptional,
       .network_help = "The network file (changes are picked up while running)"});
  std::string instance = "1";
  std::string clock_offset_file;
  int tick_ms = 1000;
  CLI::App& app = process.app();
  app.add_option("--instance", instance,
                 "This router's name among the routers of the network; its Kafka transactional "
                 "id is schakel-router-<instance> (keep it stable across restarts, unique among "
                 "running routers)")
      ->capture_default_str();
  process.AddCommandFlag("--check", "Only validate this network file and exit (0: valid, 2: not)",
                         router::CheckNetworkFile);
  app.add_option("--tick-ms", tick_ms, "How often deadlines are checked, in milliseconds")
      ->capture_default_str()
      ->check(CLI::Range(10, 60000));
  app.add_option("--clock-offset-file", clock_offset_file,
                 "Testing only: a file holding a number of seconds added to the router's clock");
  process.Parse(argc, argv);
  const std::string kafka = process.kafka();

  std::unique_ptr<router::NetworkWatch> watch = process.Must(
      router::NetworkWatch::Load(process.network_file(), router::CreateTopicsOn(kafka)));
  auto policy = [w = watch.get()] { return w->Current(); };
  std::unique_ptr<kafka::TransactionalProducer> producer = process.Must(
      kafka::TransactionalProducer::Create({.bootstrap_servers = kafka,
                                            .client_id = "schakel-router-" + instance,
                                            .transactional_id = "schakel-router-" + instance,
                                            .transaction_timeout = std::chrono::seconds(10),
                                            .extra = {}},
                                           std::chrono::seconds(60)),
      "Kafka at " + kafka);

  router::LoadView load_view;
  process.Must(load_view.Start(kafka, router::OrganisationsOf(*watch)), "Kafka at " + kafka);
  process.OnStop([&] { load_view.Stop(); });
  auto load = [&load_view] { return load_view.Snapshot(); };

  router::Escalation escalation(router::MakeClock(clock_offset_file));
  process.Must(escalation.failure(), "the router's state store (a temporary file)");
  router::Router router(policy, *producer, escalation, kafka, std::chrono::milliseconds(tick_ms),
                        load);
  router::AddRouterCounters(process.metrics(), escalation, load_view);
  // What a transaction made visible counts as produced (the state topic's tombstones too).
  router.OnCommitted([m = &process.metrics()](const std::vector<router::Output>& out) {
    for (const router::Output& o : out) m->Produced(o.topic, true);
  });
  std::unique_ptr<kafka::Consumer> consumer = process.Must(kafka::Consumer::Create(
      process.metrics().Counting({.bootstrap_servers = kafka,
                                  .group_id = "schakel.router",
                                  .topics = router::InputTopics(),
                                  .client_id = "schakel-router-" + instance,
                                  // Range: partition N of every topic goes to the same member;
                                  // patterns are matched again every 10 s.
                                  .extra = {{"partition.assignment.strategy", "range"},
                                            {"topic.metadata.refresh.interval.ms", "10000"}},
                                  .on_rebalance = router.Listener()})));
  process.OnStop([&] { consumer->Close(); });
  process.Must(router::CheckCopartitioned(*consumer, policy()->network()), "Kafka at " + kafka);

  router::RoutingService routing_service(policy, load);
  process.Serve({&routing_service});
  process.Thread(
      "routing", [&] { return router.Run(*consumer); }, [&] { router.Stop(); });
  // A refused change of the network file is logged; the old network runs on.
  process.Every(std::chrono::seconds(2), [&] { watch->CheckForChange().IgnoreError(); });
  spdlog::info("router {} listening on {}, routing for {} organisations (Kafka {})", instance,
               process.listen(), policy()->network().organisations.size(), kafka);
  // NOT_SERVING while no broker answers: nothing is routed then.
  std::unique_ptr<kafka::ReachabilityProbe> probe =
      process.Must(kafka::ReachabilityProbe::Start(kafka));
  process.FollowKafka([&probe] { return probe->Reachable(); }, /*health=*/true);

  const int code = process.Run();
  spdlog::info(
      "router stopped: {} records routed, {} skipped ({} unauthorised), {} escalations, {} "
      "transactions",
      router.routed(), router.rejected(), escalation.unauthorised(), escalation.escalated(),
      producer->committed());
  return code;
}

}  // namespace schakel

int main(int argc, char** argv) { return schakel::Main(argc, argv); }
