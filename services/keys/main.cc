// keys: wiring only. Opens the key store with the master key, follows the router's offers on its
// status topic, records hand-outs and erasures in the audit chain "keys", and serves
// schakel.v1.KeyService; the process shell (libs/service/process.h) does the rest.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>

#include "libs/audit/database_log.h"
#include "libs/audit/writer.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consume_loop.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/privacy/sealed.h"
#include "libs/service/process.h"
#include "libs/topology/topic_specs.h"
#include "services/keys/grant_follower.h"
#include "services/keys/key_service.h"
#include "services/keys/key_store.h"

namespace schakel {

int Main(int argc, char** argv) {
  service::Process process(
      {.name = "keys",
       .description = "Schakel keys: the clients' data keys, handed out to whoever may open "
                      "personal data, and destroyed on erasure (schakel.v1.KeyService).",
       .listen = "127.0.0.1:50058",
       .audit_signing_key = true});
  std::string master_key_file;
  std::string db_file = "keys.db";
  std::string group = "schakel.keys.grants";
  CLI::App& app = process.app();
  app.add_option("--master-key", master_key_file,
                 "File with the 32-byte master key in hex that wraps every data key (made, mode "
                 "0600, when missing)")
      ->required();
  app.add_option(
         "--db", db_file,
         "SQLite file of the keys and grants (the audit entries wait for Kafka beside it, in "
         "<name>-audit.db)")
      ->capture_default_str();
  app.add_option("--group", group,
                 "Consumer group that follows the router's facts (schakel.assignments.status) for "
                 "its offers")
      ->capture_default_str();
  process.Parse(argc, argv);

  const std::string master_key =
      process.Must(privacy::ReadKeyFile(master_key_file, /*create=*/true));
  std::unique_ptr<keys::KeyStore> store = process.Must(keys::KeyStore::Open(db_file, master_key));
  std::unique_ptr<kafka::Producer> producer = process.Must(kafka::Producer::Create(
      {.bootstrap_servers = process.kafka(), .client_id = "schakel-keys", .extra = {}}));
  int undelivered = 0;
  process.OnStop([&] {
    undelivered = producer->Close(std::chrono::seconds(10));
    return undelivered == 0 ? absl::OkStatus() : absl::DataLossError("events undelivered");
  });
  std::unique_ptr<kafka::Consumer> consumer = process.Must(kafka::Consumer::Create(
      process.metrics().Counting({.bootstrap_servers = process.kafka(),
                                  .group_id = group,
                                  .topics = {std::string(topology::kStatusTopic)},
                                  .client_id = "schakel-keys",
                                  .extra = {}})));
  process.OnStop([&] { consumer->Close(); });
  metrics::CountingPublisher publisher(*producer, process.metrics());
  // The audit chain "keys": every key handed to an organisation and every erasure, committed to
  // the audit queue beside the key store's file (keys-audit.db) before the call is answered, and
  // from there to its topic schakel.audit.keys (so it stops after the calls).
  audit::ChainWriterOptions chain =
      process.Must(audit::ServiceChain(process.kafka(), "keys", process.audit_signing_key()));
  chain.linger = audit::kDurableQueueLinger;
  std::unique_ptr<audit::DatabaseLog> audit_log =
      process.Must(audit::DatabaseLog::Open(audit::QueueFileBeside(db_file), std::move(chain)));
  process.Start(*audit_log);
  auto service = std::make_unique<keys::KeyService>(*store, publisher, keys::KeyServiceOptions{},
                                                    audit_log.get());
  process.OnStop([&] { service.reset(); });
  process.metrics().AddCounter(
      "schakel_keys_refused_outside_sharing_total",
      "Assignment keys refused: offered by the router outside the client's sharing permission",
      [&service] { return static_cast<double>(service->refused_outside_sharing()); });
  process.metrics().AddCounter(
      "schakel_keys_sharing_unknown_total",
      "Assignment keys handed out on the offer alone: no sharing permission recorded for the "
      "referral",
      [&service] { return static_cast<double>(service->handed_out_sharing_unknown()); });
  // Grants wake the calls waiting for them as soon as they are stored (it stops before the
  // service).
  deadletter::DeadLetters dead_letters(publisher, "keys-grants", "keys");
  kafka::ConsumerSource grant_source(*consumer);
  keys::GrantFollower grants(
      grant_source, *store, dead_letters, [&service] { service->GrantsArrived(); },
      process.FatalHandler());  // restart rather than stop granting
  process.Start(grants);
  process.Serve({service.get()}, {.drain = std::chrono::seconds(10)});
  process.FollowKafka([&producer] { return producer->Reachable(); });
  spdlog::info("keys listening on {} (Kafka {})", process.listen(), process.kafka());

  const int code = process.Run();
  spdlog::info("keys stopped ({} undelivered)", undelivered);
  return code;
}

}  // namespace schakel

int main(int argc, char** argv) { return schakel::Main(argc, argv); }
