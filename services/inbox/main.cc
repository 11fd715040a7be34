// inbox: one organisation's inbox. Consumes schakel.inbox.<org> into its own SQLite database,
// serves it over gRPC, and relays every stored status change to the router (schakel.from.<org>).
// Wiring only; the logic lives in InboxService, AssignmentIngest, InboxConsumer and OutboxRelay.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "libs/audit/writer.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/privacy/key_client.h"
#include "libs/routing/network.h"
#include "libs/service/logging.h"
#include "libs/service/security.h"
#include "libs/service/server.h"
#include "libs/service/shutdown.h"
#include "services/inbox/assignment_gauges.h"
#include "services/inbox/audit_queue.h"
#include "services/inbox/erasure_consumer.h"
#include "services/inbox/inbox_consumer.h"
#include "services/inbox/inbox_service.h"
#include "services/inbox/ingest.h"
#include "services/inbox/load_reporter.h"
#include "services/inbox/outbox_relay.h"
#include "services/inbox/store/inbox_store.h"

int main(int argc, char** argv) {
  // Before any thread starts, so that every thread inherits the mask.
  schakel::service::BlockShutdownSignals();

  std::string org;
  std::string network_path;
  std::string listen = "127.0.0.1:50061";
  std::string kafka = "127.0.0.1:9092";
  std::string db_path;
  std::string keys_address;
  bool log_json = false;
  std::string log_level = "info";

  CLI::App app{
      "Schakel inbox: one organisation's assignments, from its Kafka topic into its own database"};
  app.add_option("--org", org, "Organisation id (as in the network file)")->required();
  app.add_option("--network", network_path, "Network file (YAML)")->required();
  app.add_option("--listen", listen, "gRPC address")->capture_default_str();
  app.add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  app.add_option("--db", db_path, "SQLite database file (default: inbox-<org>.db)");
  app.add_option("--keys", keys_address,
                 "Address of the key service (services/keys): the personal data of an offer "
                 "opens with the client's key from there")
      ->required();
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve Prometheus metrics at http://ADDRESS/metrics, e.g. 127.0.0.1:9461 "
                 "(default: not served)");
  app.add_flag("--log-json", log_json, "Log one JSON object per line");
  std::string audit_signing_key;
  schakel::service::AddAuditSigningKeyFlag(app, audit_signing_key);
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  schakel::service::SecurityFlags security_flags;
  schakel::service::AddSecurityFlags(app, security_flags);
  std::string kafka_config;
  app.add_option(
      "--kafka-config", kafka_config,
      "librdkafka properties of this service's Kafka identity (the broker's ACLs decide "
      "what it may do), e.g. <pki>/kafka/inbox-<org>.properties; without it: no identity");
  CLI11_PARSE(app, argc, argv);
  // Every Kafka client of this process presents this identity (and nothing from the environment).
  if (absl::Status s = schakel::kafka::SetClientConfigFile(kafka_config); !s.ok()) {
    std::cerr << "inbox: " << s.message() << "\n";
    return 2;
  }

  // TLS for every call; the caller's identity from its certificate or token, never the request.
  absl::StatusOr<schakel::service::ServerSecurity> security =
      schakel::service::LoadServerSecurity(security_flags);
  if (!security.ok()) {
    std::cerr << "inbox: " << security.status().message() << "\n";
    return 2;
  }
  schakel::service::UseAuthenticator(security->authenticator);

  absl::StatusOr<schakel::routing::Network> network =
      schakel::routing::LoadNetworkFile(network_path);
  if (!network.ok()) {
    std::cerr << "inbox: " << network.status().message() << "\n";
    return 2;
  }
  if (network->FindOrganisation(org) == nullptr) {
    std::cerr << "inbox: organisation '" << org << "' is not in " << network_path << "\n";
    return 2;
  }
  if (db_path.empty()) db_path = "inbox-" + org + ".db";
  const std::string topic = schakel::routing::InboxTopic(org);

  schakel::service::LimitMallocArenas();
  schakel::service::SetupLogging("inbox-" + org, log_json, log_level);

  absl::StatusOr<std::unique_ptr<schakel::inbox::store::InboxStore>> store =
      schakel::inbox::store::InboxStore::Open(db_path);
  if (!store.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(store.status().message()));
    return 1;
  }

  // One producer for the process; the relay publishes what the store queued, including what an
  // earlier run stored but could not publish.
  schakel::kafka::ProducerOptions producer_options;
  producer_options.bootstrap_servers = kafka;
  producer_options.client_id = "inbox-" + org;
  absl::StatusOr<std::unique_ptr<schakel::kafka::Producer>> producer =
      schakel::kafka::Producer::Create(producer_options);
  if (!producer.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(producer.status().message()));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<schakel::metrics::Metrics>> metrics =
      schakel::metrics::Metrics::Start(metrics_listen);
  if (!metrics.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(metrics.status().message()));
    return 1;
  }
  (*metrics)->AddCollectable(std::make_shared<schakel::inbox::AssignmentGauges>(org, **store));
  (*metrics)->SetKafkaReachableSource([&producer] { return (*producer)->Reachable(); });
  schakel::metrics::CountingPublisher publisher(**producer, **metrics);
  schakel::inbox::OutboxRelay relay(**store, publisher);
  relay.Start();

  // The audit chain "inbox-<org>": every read of personal data and every status change, queued in
  // the database with the read or change, linked and published by the writer.
  schakel::inbox::StoreAuditQueue audit_queue(**store);
  absl::StatusOr<std::shared_ptr<const schakel::audit::SigningKey>> audit_key =
      schakel::audit::LoadSigningKey(audit_signing_key, "inbox-" + org);
  if (!audit_key.ok()) {
    spdlog::critical("{}", std::string(audit_key.status().message()));
    return 1;
  }
  schakel::audit::ChainWriterOptions audit_options;
  audit_options.signing_key = *audit_key;
  audit_options.bootstrap_servers = kafka;
  audit_options.topic_replication = network->topics.replication_factor;
  audit_options.writer = "inbox-" + org;
  schakel::audit::ChainWriter audit_writer(audit_options, audit_queue);
  audit_writer.Start();
  schakel::inbox::store::InboxStore::Subscription audit_wake =
      (*store)->OnCommit([&audit_writer] { audit_writer.Notify(); });

  schakel::inbox::InboxServiceOptions service_options;
  service_options.audit_recorded = [&audit_writer] { audit_writer.Notify(); };
  schakel::inbox::InboxService service(org, **store, *network, service_options);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*metrics)->GrpcInterceptor());
  absl::StatusOr<schakel::service::RunningServer> server = schakel::service::StartServer(
      listen, security->credentials, {&service}, std::move(interceptors));
  if (!server.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(server.status().message()));
    return 1;
  }

  schakel::kafka::ConsumerOptions consumer_options;
  consumer_options.bootstrap_servers = kafka;
  // One consumer group per database file (schakel.inbox.<org>.<instance id>): a new database reads
  // the whole topic again and so rebuilds the inbox; a restart on the same file resumes where it
  // was.
  absl::StatusOr<std::string> instance = (*store)->InstanceId();
  if (!instance.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(instance.status().message()));
    return 1;
  }
  consumer_options.group_id = topic + "." + *instance;
  // The router respects the network's capacity for this organisation from these reports.
  schakel::inbox::LoadReporter load_reporter(
      org, [&store] { return (*store)->CountOpen(); }, publisher, std::chrono::milliseconds(500),
      std::chrono::seconds(60), consumer_options.group_id);
  load_reporter.Start();
  consumer_options.topics = {topic};
  consumer_options.client_id = "inbox-" + org;
  consumer_options.on_record = [m = metrics->get()](const schakel::kafka::Record& r) {
    m->Consumed(r.topic);
  };
  consumer_options.on_lag =
      [m = metrics->get()](const std::vector<schakel::kafka::PartitionLag>& l) {
        m->SetConsumerLag(l);
      };
  absl::StatusOr<std::unique_ptr<schakel::kafka::Consumer>> kafka_consumer =
      schakel::kafka::Consumer::Create(consumer_options);
  if (!kafka_consumer.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(kafka_consumer.status().message()));
    server->server->Shutdown(std::chrono::system_clock::now());
    return 1;
  }
  // The key service is asked over TLS with this inbox's own certificate ("inbox-<org>"): it hands
  // the organisation the keys of what was offered to it.
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> key_credentials =
      schakel::service::ClientCredentials(security_flags.tls);
  if (!key_credentials.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(key_credentials.status().message()));
    server->server->Shutdown(std::chrono::system_clock::now());
    return 1;
  }
  schakel::privacy::KeyClient keys(grpc::CreateChannel(keys_address, *key_credentials));
  schakel::inbox::AssignmentIngest ingest(org, **store, schakel::inbox::SystemNow, &*network);
  ingest.UseKeys(&keys);

  // Erasures: the same group naming (a new database applies every erasure again).
  schakel::kafka::ConsumerOptions erasure_options = consumer_options;
  erasure_options.group_id = consumer_options.group_id + ".erasures";
  erasure_options.topics = {std::string(schakel::routing::kErasuresTopic)};
  // The lag gauge reports the inbox's own topic (one lag source per process: it replaces the set).
  erasure_options.on_lag = nullptr;
  absl::StatusOr<std::unique_ptr<schakel::kafka::Consumer>> erasure_consumer =
      schakel::kafka::Consumer::Create(erasure_options);
  if (!erasure_consumer.ok()) {
    spdlog::critical("inbox {}: {}", org, std::string(erasure_consumer.status().message()));
    server->server->Shutdown(std::chrono::system_clock::now());
    return 1;
  }
  schakel::inbox::ErasureConsumer erasures(org, **erasure_consumer, **store);
  erasures.Start();
  // A new database (first start, or a rebuild after losing the old one) replays the topic's
  // history.
  if (absl::StatusOr<std::int64_t> last = (*store)->LastSequence(); last.ok() && *last == 0) {
    absl::StatusOr<std::map<std::int32_t, std::int64_t>> ends =
        (*kafka_consumer)->EndOffsets(topic, std::chrono::seconds(10));
    absl::Status replay = ends.ok() ? ingest.ReplayUntil(*ends) : ends.status();
    if (!replay.ok()) {
      spdlog::critical("inbox {}: cannot rebuild from {}: {}", org, topic,
                       std::string(replay.message()));
      server->server->Shutdown(std::chrono::system_clock::now());
      return 1;
    }
  }
  std::atomic<bool> consumer_failed{false};
  schakel::inbox::InboxConsumerOptions loop_options;
  loop_options.on_fatal = [&consumer_failed](const absl::Status&) {
    // Without its topic the inbox is useless: take the ordered shutdown path.
    consumer_failed = true;
    kill(getpid(), SIGTERM);
  };
  schakel::deadletter::DeadLetters dead_letters(publisher, "inbox-" + org, "inbox-" + org);
  loop_options.dead_letters = &dead_letters;
  schakel::inbox::InboxConsumer consumer(
      std::make_unique<schakel::inbox::KafkaRecordSource>(*std::move(kafka_consumer)), ingest,
      loop_options);
  consumer.Start();

  // The address actually bound (the port differs when asked for ":0").
  const std::string bound = listen.substr(0, listen.rfind(':') + 1) + std::to_string(server->port);
  spdlog::info("inbox {} listening on {}, consuming {}{}", org, bound, topic,
               metrics_listen.empty() ? "" : ", metrics on " + metrics_listen);
  int signo = schakel::service::WaitForShutdownSignal();
  spdlog::info("inbox {}: signal {}, shutting down", org, signo);

  // Stop taking calls (ending the open watches, which would hold Shutdown up to its deadline),
  // then drain the consumer (committing what is stored), then publish what is still in the outbox
  // (bounded: what is left is published at the next start), then flush the producer. The database
  // closes last, when `store` goes out of scope after everything that uses it.
  (*metrics)->StopServing();
  schakel::service::SetServing(*server->server, false);
  service.StopWatches();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  consumer.Stop();
  erasures.Stop();
  (*erasure_consumer)->Close();
  load_reporter.Stop();
  relay.Stop();
  audit_wake.Reset();
  audit_writer.Stop();  // what it could not publish stays in the database for the next start
  if (int left = (*producer)->Close(std::chrono::seconds(5)); left > 0) {
    spdlog::warn("inbox {}: {} events not acknowledged at shutdown stay in the outbox", org, left);
  }
  schakel::inbox::IngestCounts counts = ingest.counts();
  schakel::inbox::RelayCounts relayed = relay.counts();
  spdlog::info("inbox {}: stopped; stored {}, duplicates {}, rejected {}; published {} events", org,
               counts.stored, counts.duplicates, counts.rejected, relayed.published);
  return consumer_failed ? 1 : 0;
}
