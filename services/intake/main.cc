// intake: wiring only. Loads the network and the pseudonym key, starts the producer, the audit log,
// the referral view and the gRPC server; the process shell (libs/service/process.h) does the rest.
// On the way down calls in flight finish from delivery reports, so the producer stops last.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>

#include "libs/audit/database_log.h"
#include "libs/audit/writer.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consume_loop.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/privacy/key_client.h"
#include "libs/privacy/pseudonym.h"
#include "libs/routing/network.h"
#include "libs/service/process.h"
#include "libs/topology/topics.h"
#include "services/intake/intake_limits.h"
#include "services/intake/intake_service.h"
#include "services/intake/referral_view.h"
#include "services/intake/view_consumer.h"

namespace schakel {

int Main(int argc, char** argv) {
  service::Process process(
      {.name = "intake",
       .description =
           "Schakel intake: partner systems submit referrals here (schakel.v1.IntakeService).",
       .listen = "127.0.0.1:50051",
       .metrics_example = "127.0.0.1:9451",
       .network = service::NetworkFlag::kOptional,
       .audit_signing_key = true});
  std::string key_file;
  std::string keys_address;
  std::string db_file = "intake-view.db";
  std::string view_group = "schakel.intake.view";
  std::string audit_writer = "intake";
  int delivery_timeout_ms = 10000;
  // Below the 512 calls one connection may have open (service::kMaxStreamsPerConnection): however
  // fast intake answers, a busy caller's connection keeps room for the refusals, which free their
  // place at once, so that its calls do not queue on its side towards their deadline.
  std::size_t max_in_flight = 384;
  int target_wait_ms = 500;
  CLI::App& app = process.app();
  app.add_option("--pseudonym-key", key_file, "File with the 32-byte pseudonym key in hex")
      ->required();
  app.add_option("--keys", keys_address,
                 "Address of the key service (services/keys): personal data is sealed with the "
                 "client's key from there")
      ->required();
  app.add_option("--delivery-timeout-ms", delivery_timeout_ms,
                 "How long a referral may wait for Kafka before the caller hears UNAVAILABLE")
      ->capture_default_str();
  app.add_option(
         "--db", db_file,
         "SQLite file for the referrers' view of their referrals (the audit entries wait for "
         "Kafka beside it, in <name>-audit.db)")
      ->capture_default_str();
  app.add_option(
         "--view-group", view_group,
         "Consumer group of the referral view (one per intake instance, each with its own --db)")
      ->capture_default_str();
  app.add_option(
         "--max-in-flight", max_in_flight,
         "SubmitReferral calls waiting for Kafka at most, however fast they are answered; "
         "beyond, a call is refused at once (RESOURCE_EXHAUSTED, retry-after-ms) so that memory "
         "stays bounded under a flood (0: no ceiling)")
      ->capture_default_str();
  app.add_option(
         "--target-wait-ms", target_wait_ms,
         "Let as many SubmitReferral calls wait as intake answers in this long at its "
         "present rate (at least 256, at most --max-in-flight); beyond, a call is refused at "
         "once (RESOURCE_EXHAUSTED, retry-after-ms) instead of waiting towards its deadline")
      ->check(CLI::Range(1, 60000))
      ->capture_default_str();
  app.add_option(
         "--audit-writer", audit_writer,
         "This instance's audit chain, in topic schakel.audit.<writer> (instances sharing one "
         "take turns); starts with \"intake\", e.g. intake-1: the broker lets intake keep only "
         "those chains (transactional ids schakel-audit-intake*)")
      ->capture_default_str()
      ->check([](const std::string& writer) {
        return writer.rfind("intake", 0) == 0 ? std::string()
                                              : std::string("must start with \"intake\"");
      });
  process.Parse(argc, argv);

  const routing::Network network = process.Must(routing::LoadNetworkFile(process.network_file()));
  const privacy::Pseudonymiser pseudonymiser =
      process.Must(privacy::Pseudonymiser::FromKeyFile(key_file));
  std::unique_ptr<kafka::Producer> producer = process.Must(
      kafka::Producer::Create({.bootstrap_servers = process.kafka(),
                               .client_id = "schakel-intake",
                               .delivery_timeout = std::chrono::milliseconds(delivery_timeout_ms),
                               .extra = {}}));
  int undelivered = 0;
  process.OnStop([&] {
    undelivered = producer->Close(std::chrono::seconds(10));
    return undelivered == 0 ? absl::OkStatus() : absl::DataLossError("events undelivered");
  });
  metrics::CountingPublisher publisher(*producer, process.metrics());

  std::unique_ptr<intake::ReferralView> view = process.Must(intake::ReferralView::Open(db_file));
  std::unique_ptr<kafka::Consumer> consumer =
      process.Must(kafka::Consumer::Create(process.metrics().Counting(
          {.bootstrap_servers = process.kafka(),
           .group_id = view_group,
           .topics = {std::string(topology::kSubmittedTopic), std::string(topology::kStatusTopic),
                      std::string(topology::kUnroutableTopic)},
           .client_id = "schakel-intake",
           .extra = {}})));
  process.OnStop([&] { consumer->Close(); });
  deadletter::DeadLetters dead_letters(publisher, "intake-view", "intake");
  kafka::ConsumerSource view_source(*consumer);
  // A fatal consumer error is the process's: restart rather than serve a view that no longer moves.
  intake::ViewConsumer view_consumer(view_source, *view, &dead_letters, process.FatalHandler());
  process.Start(view_consumer);

  // The key service is called over TLS with this service's own certificate ("intake").
  privacy::KeyClient keys(process.Channel(keys_address));
  // The organisations' intake_limit from the network file (none configured: nobody is limited).
  auto limits = std::make_shared<intake::IntakeLimits>(network);
  process.metrics().AddCollectable(std::make_shared<intake::IntakeLimitCounters>(limits));
  intake::LogIntakeLimits(network);
  // The audit chain: every referral received (the personal data of a client) is recorded, and
  // SubmitReferral answers only once its entry is committed too: to the audit queue beside the
  // view's file (intake-view-audit.db), from where it goes to the chain's topic.
  audit::ChainWriterOptions chain =
      process.Must(audit::ServiceChain(process.kafka(), audit_writer, process.audit_signing_key(),
                                       network.topics.replication_factor));
  chain.linger = audit::kDurableQueueLinger;
  std::unique_ptr<audit::DatabaseLog> audit_log =
      process.Must(audit::DatabaseLog::Open(audit::QueueFileBeside(db_file), std::move(chain)));
  process.Start(*audit_log);
  intake::IntakeService service(network, pseudonymiser, publisher, view.get(), limits.get(), &keys,
                                audit_log.get());
  service.Admit(
      {.target_wait = std::chrono::milliseconds(target_wait_ms), .ceiling = max_in_flight});
  process.Serve({&service}, {.drain = std::chrono::seconds(15)});
  // NOT_SERVING while no broker answers: a referral could not be acknowledged.
  process.FollowKafka([&producer] { return producer->Reachable(); }, /*health=*/true);
  spdlog::info("intake listening on {} (Kafka {}{})", process.listen(), process.kafka(),
               process.metrics_listen().empty() ? "" : ", metrics on " + process.metrics_listen());

  const int code = process.Run();
  spdlog::info("intake stopped ({} undelivered)", undelivered);
  return code;
}

}  // namespace schakel

int main(int argc, char** argv) { return schakel::Main(argc, argv); }
