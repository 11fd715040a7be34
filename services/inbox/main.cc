// inbox: one organisation's inbox. Consumes schakel.inbox.<org> into its own SQLite database,
// serves it over gRPC, and relays every stored status change to the router (schakel.from.<org>).
// Wiring only; the logic lives in InboxService, AssignmentIngest, InboxConsumer and OutboxRelay,
// the process shell (libs/service/process.h) does the rest. The database closes last, when `store`
// goes out of scope after everything that uses it.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "libs/audit/writer.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consume_loop.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/privacy/key_client.h"
#include "libs/routing/network.h"
#include "libs/service/process.h"
#include "libs/topology/topics.h"
#include "services/inbox/assignment_gauges.h"
#include "services/inbox/audit_queue.h"
#include "services/inbox/erasure_consumer.h"
#include "services/inbox/inbox_consumer.h"
#include "services/inbox/inbox_service.h"
#include "services/inbox/ingest.h"
#include "services/inbox/load_reporter.h"
#include "services/inbox/outbox_relay.h"
#include "services/inbox/startup.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel {

int Main(int argc, char** argv) {
  std::string org;
  service::Process process(
      {.name = "inbox",
       .description = "Schakel inbox: one organisation's assignments, from its Kafka topic into "
                      "its own database",
       .listen = "127.0.0.1:50061",
       .listen_help = "gRPC address",
       .metrics_example = "127.0.0.1:9461",
       .kafka_principal = "inbox-<org>",
       .network = service::NetworkFlag::kRequired,
       .network_help = "Network file (YAML)",
       .audit_signing_key = true,
       .log_name = [&org] { return "inbox-" + org; }});
  std::string db_path;
  std::string keys_address;
  CLI::App& app = process.app();
  app.add_option("--org", org, "Organisation id (as in the network file)")->required();
  app.add_option("--db", db_path, "SQLite database file (default: inbox-<org>.db)");
  app.add_option("--keys", keys_address,
                 "Address of the key service (services/keys): the personal data of an offer "
                 "opens with the client's key from there")
      ->required();
  process.Parse(argc, argv);
  const std::string me = "inbox-" + org;  // its certificate, Kafka principal and audit chain

  const routing::Network network = process.Must(routing::LoadNetworkFile(process.network_file()));
  if (network.FindOrganisation(org) == nullptr) {
    process.Fail(
        absl::NotFoundError("organisation '" + org + "' is not in " + process.network_file()));
  }
  const std::string topic = topology::InboxTopic(org);
  std::unique_ptr<inbox::store::InboxStore> store =
      process.Must(inbox::store::InboxStore::Open(db_path.empty() ? me + ".db" : db_path));
  // One producer for the process; the relay publishes what the store queued, including what an
  // earlier run stored but could not publish. What it could not deliver stays in the outbox.
  std::unique_ptr<kafka::Producer> producer = process.Must(kafka::Producer::Create(
      {.bootstrap_servers = process.kafka(), .client_id = me, .extra = {}}));
  process.OnStop([&] {
    if (int left = producer->Close(std::chrono::seconds(5)); left > 0) {
      spdlog::warn("inbox {}: {} events not acknowledged at shutdown stay in the outbox", org,
                   left);
    }
  });
  process.metrics().AddCollectable(std::make_shared<inbox::AssignmentGauges>(org, *store));
  process.FollowKafka([&producer] { return producer->Reachable(); });
  metrics::CountingPublisher publisher(*producer, process.metrics());

  // The audit chain "inbox-<org>": every read of personal data and every status change, queued in
  // the database with the read or change, linked and published by the writer (what it could not
  // publish stays in the database for the next start).
  inbox::StoreAuditQueue audit_queue(*store);
  audit::ChainWriterOptions chain = process.Must(audit::ServiceChain(
      process.kafka(), me, process.audit_signing_key(), network.topics.replication_factor));
  chain.linger = audit::kDurableQueueLinger;
  audit::ChainWriter audit_writer(std::move(chain), audit_queue);
  process.Start(audit_writer);
  inbox::store::InboxStore::Subscription audit_wake =
      store->OnCommit([&audit_writer] { audit_writer.Notify(); });
  process.OnStop([&] { audit_wake.Reset(); });
  inbox::OutboxRelay relay(*store, publisher);
  process.Start(relay);

  inbox::InboxServiceOptions service_options;
  service_options.audit_recorded = [&audit_writer] { audit_writer.Notify(); };
  inbox::InboxService service(org, *store, network, service_options);
  // Ending the open watches first: they would hold the drain up to its end.
  const int port =
      process.Serve({&service}, {.before_drain = [&service] { service.StopWatches(); }});

  const kafka::ConsumerOptions consumer_options = process.metrics().Counting(
      process.Must(inbox::TopicConsumerOptions(org, *store, process.kafka())));
  // The router respects the network's capacity for this organisation from these reports.
  inbox::LoadReporter load_reporter(
      org, [&store] { return store->CountOpen(); }, publisher, std::chrono::milliseconds(500),
      std::chrono::seconds(60), consumer_options.group_id);
  process.Start(load_reporter);
  std::unique_ptr<kafka::Consumer> kafka_consumer =
      process.Must(kafka::Consumer::Create(consumer_options));
  // The key service is asked over TLS with this inbox's own certificate ("inbox-<org>"): it hands
  // the organisation the keys of what was offered to it.
  privacy::KeyClient keys(process.Channel(keys_address));
  inbox::AssignmentIngest ingest(org, *store, inbox::SystemNow, &network);
  ingest.UseKeys(&keys);

  std::unique_ptr<kafka::Consumer> erasure_consumer =
      process.Must(kafka::Consumer::Create(inbox::ErasureConsumerOptions(consumer_options)));
  process.OnStop([&] { erasure_consumer->Close(); });
  deadletter::DeadLetters dead_letters(publisher, me, me);
  kafka::ConsumerSource erasure_source(*erasure_consumer);
  // Like every consumer's, its fatal error is the process's: the ordered shutdown, exit 1, and a
  // restart rather than keep data an operator erased.
  inbox::ErasureConsumer erasures(org, erasure_source, *store, dead_letters,
                                  process.FatalHandler());
  process.Start(erasures);
  process.Must(inbox::ReplayIfNew(*store, *kafka_consumer, ingest, topic),
               "cannot rebuild from " + topic);
  inbox::InboxConsumerOptions loop_options;
  // Without its topic the inbox is useless: fatal, the ordered shutdown.
  loop_options.on_fatal = process.FatalHandler();
  loop_options.dead_letters = &dead_letters;
  inbox::InboxConsumer consumer(std::make_unique<kafka::ConsumerSource>(std::move(kafka_consumer)),
                                ingest, loop_options);
  process.Start(consumer);

  // The address actually bound (the port differs when asked for ":0").
  const std::string& listen = process.listen();
  spdlog::info("inbox {} listening on {}{}, consuming {}{}", org,
               listen.substr(0, listen.rfind(':') + 1), port, topic,
               process.metrics_listen().empty() ? "" : ", metrics on " + process.metrics_listen());
  const int code = process.Run();
  const inbox::IngestCounts counts = ingest.counts();
  spdlog::info("inbox {}: stopped; stored {}, duplicates {}, rejected {}; published {} events", org,
               counts.stored, counts.duplicates, counts.rejected, relay.counts().published);
  return code;
}

}  // namespace schakel

int main(int argc, char** argv) { return schakel::Main(argc, argv); }
