// intake: wiring only. Reads flags, loads the network and key, starts the producer and the gRPC
// server, and on SIGINT/SIGTERM stops in reverse order: stop taking calls, then flush the producer.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <memory>

#include "libs/audit/writer.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/privacy/key_client.h"
#include "libs/privacy/pseudonym.h"
#include "libs/routing/network.h"
#include "libs/service/health.h"
#include "libs/service/logging.h"
#include "libs/service/security.h"
#include "libs/service/server.h"
#include "libs/service/shutdown.h"
#include "services/intake/intake_limits.h"
#include "services/intake/intake_service.h"
#include "services/intake/referral_view.h"
#include "services/intake/view_consumer.h"

int main(int argc, char** argv) {
  schakel::service::BlockShutdownSignals();
  CLI::App app{"Schakel intake: partner systems submit referrals here (schakel.v1.IntakeService)."};
  std::string network_file = "deploy/local/network.yaml";
  std::string listen = "127.0.0.1:50051";
  std::string kafka = "127.0.0.1:9092";
  std::string key_file;
  std::string keys_address;
  std::string db_file = "intake-view.db";
  std::string view_group = "schakel.intake.view";
  std::string log_level = "info";
  int delivery_timeout_ms = 10000;
  bool log_json = false;
  std::string metrics_listen;
  app.add_option("--network", network_file, "The network file")->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve Prometheus metrics at http://ADDRESS/metrics, e.g. 127.0.0.1:9451 "
                 "(default: not served)");
  app.add_option("--listen", listen, "gRPC address to listen on")->capture_default_str();
  app.add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  app.add_option("--pseudonym-key", key_file, "File with the 32-byte pseudonym key in hex")
      ->required();
  app.add_option("--keys", keys_address,
                 "Address of the key service (services/keys): personal data is sealed with the "
                 "client's key from there")
      ->required();
  app.add_option("--delivery-timeout-ms", delivery_timeout_ms,
                 "How long a referral may wait for Kafka before the caller hears UNAVAILABLE")
      ->capture_default_str();
  app.add_option("--db", db_file, "SQLite file for the referrers' view of their referrals")
      ->capture_default_str();
  app.add_option(
         "--view-group", view_group,
         "Consumer group of the referral view (one per intake instance, each with its own --db)")
      ->capture_default_str();
  std::size_t max_in_flight = 1024;
  app.add_option(
         "--max-in-flight", max_in_flight,
         "SubmitReferral calls waiting for Kafka at most; beyond, a call is refused at once "
         "(RESOURCE_EXHAUSTED) so that memory stays bounded under a flood (0: no bound)")
      ->capture_default_str();
  std::string audit_signing_key;
  schakel::service::AddAuditSigningKeyFlag(app, audit_signing_key);
  std::string audit_writer = "intake";
  app.add_option(
         "--audit-writer", audit_writer,
         "This instance's audit chain, in topic schakel.audit.<writer> (instances sharing one "
         "take turns); "
         "starts with \"intake\", e.g. intake-1: the broker lets intake keep only those "
         "chains (transactional ids schakel-audit-intake*)")
      ->capture_default_str()
      ->check([](const std::string& writer) {
        return writer.rfind("intake", 0) == 0 ? std::string()
                                              : std::string("must start with \"intake\"");
      });
  app.add_flag("--log-json", log_json, "Log one JSON object per line");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  schakel::service::SecurityFlags security_flags;
  schakel::service::AddSecurityFlags(app, security_flags);
  std::string kafka_config;
  app.add_option("--kafka-config", kafka_config,
                 "librdkafka properties of this service's Kafka identity (the broker's ACLs decide "
                 "what it may do), e.g. <pki>/kafka/intake.properties; without it: no identity");
  CLI11_PARSE(app, argc, argv);
  // Every Kafka client of this process presents this identity (and nothing from the environment).
  if (absl::Status s = schakel::kafka::SetClientConfigFile(kafka_config); !s.ok()) {
    std::cerr << "intake: " << s.message() << "\n";
    return 2;
  }

  // TLS for every call; the caller's identity from its certificate or token, never the request.
  absl::StatusOr<schakel::service::ServerSecurity> security =
      schakel::service::LoadServerSecurity(security_flags);
  if (!security.ok()) {
    std::cerr << "intake: " << security.status().message() << "\n";
    return 2;
  }
  schakel::service::UseAuthenticator(security->authenticator);

  schakel::service::LimitMallocArenas();
  schakel::service::SetupLogging("intake", log_json, log_level);
  absl::StatusOr<schakel::routing::Network> network =
      schakel::routing::LoadNetworkFile(network_file);
  if (!network.ok()) {
    std::cerr << "intake: " << network.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<schakel::privacy::Pseudonymiser> pseudonymiser =
      schakel::privacy::Pseudonymiser::FromKeyFile(key_file);
  if (!pseudonymiser.ok()) {
    std::cerr << "intake: " << pseudonymiser.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::metrics::Metrics>> metrics =
      schakel::metrics::Metrics::Start(metrics_listen);
  if (!metrics.ok()) {
    std::cerr << "intake: " << metrics.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::kafka::Producer>> producer =
      schakel::kafka::Producer::Create(
          {.bootstrap_servers = kafka,
           .client_id = "schakel-intake",
           .delivery_timeout = std::chrono::milliseconds(delivery_timeout_ms),
           .extra = {}});
  if (!producer.ok()) {
    std::cerr << "intake: " << producer.status().message() << "\n";
    return 2;
  }

  absl::StatusOr<std::unique_ptr<schakel::intake::ReferralView>> view =
      schakel::intake::ReferralView::Open(db_file);
  if (!view.ok()) {
    std::cerr << "intake: " << view.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::kafka::Consumer>> consumer =
      schakel::kafka::Consumer::Create(
          {.bootstrap_servers = kafka,
           .group_id = view_group,
           .topics = {std::string(schakel::routing::kSubmittedTopic),
                      std::string(schakel::routing::kStatusTopic),
                      std::string(schakel::routing::kUnroutableTopic)},
           .client_id = "schakel-intake",
           .extra = {},
           .on_record = [m = metrics->get()](const auto& r) { m->Consumed(r.topic); },
           .on_lag = [m = metrics->get()](const auto& lags) { m->SetConsumerLag(lags); }});
  if (!consumer.ok()) {
    std::cerr << "intake: " << consumer.status().message() << "\n";
    return 2;
  }
  schakel::metrics::CountingPublisher publisher(**producer, **metrics);
  schakel::deadletter::DeadLetters dead_letters(publisher, "intake-view", "intake");
  schakel::intake::ViewConsumer view_consumer(**consumer, **view, &dead_letters);
  view_consumer.Start();

  // The key service is called over TLS with this service's own certificate ("intake").
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> key_credentials =
      schakel::service::ClientCredentials(security_flags.tls);
  if (!key_credentials.ok()) {
    std::cerr << "intake: " << key_credentials.status().message() << "\n";
    return 2;
  }
  schakel::privacy::KeyClient keys(grpc::CreateChannel(keys_address, *key_credentials));
  // The organisations' intake_limit from the network file (none configured: nobody is limited).
  auto limits = std::make_shared<schakel::intake::IntakeLimits>(*network);
  (*metrics)->AddCollectable(std::make_shared<schakel::intake::IntakeLimitCounters>(limits));
  for (const schakel::routing::Organisation& org : network->organisations) {
    if (org.intake_limit.has_value()) {
      spdlog::info("intake limit of {}: {} referrals per second, bursts of {}", org.id,
                   org.intake_limit->per_second, org.intake_limit->burst);
    }
  }
  // The audit chain: every referral received (the personal data of a client) is recorded, and
  // SubmitReferral answers only once its entry is in Kafka too.
  absl::StatusOr<std::shared_ptr<const schakel::audit::SigningKey>> audit_key =
      schakel::audit::LoadSigningKey(audit_signing_key, audit_writer);
  if (!audit_key.ok()) {
    spdlog::critical("{}", std::string(audit_key.status().message()));
    return 1;
  }
  schakel::audit::ChainWriterOptions audit_options;
  audit_options.signing_key = *audit_key;
  audit_options.bootstrap_servers = kafka;
  audit_options.topic_replication = network->topics.replication_factor;
  audit_options.writer = audit_writer;
  schakel::audit::AuditLog audit_log(audit_options);
  audit_log.Start();
  schakel::intake::IntakeService service(*network, *pseudonymiser, publisher, view->get(),
                                         limits.get(), &keys, &audit_log);
  service.LimitInFlight(max_in_flight);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*metrics)->GrpcInterceptor());
  absl::StatusOr<schakel::service::RunningServer> server = schakel::service::StartServer(
      listen, security->credentials, {&service}, std::move(interceptors));
  if (!server.ok()) {
    std::cerr << "intake: " << server.status().message() << "\n";
    return 2;
  }
  spdlog::info("intake listening on {} (Kafka {}{})", listen, kafka,
               metrics_listen.empty() ? "" : ", metrics on " + metrics_listen);
  // NOT_SERVING while no broker answers: a referral could not be acknowledged.
  auto health = std::make_unique<schakel::service::HealthFollower>(
      *server->server, "Kafka", [&producer] { return (*producer)->Reachable(); });
  (*metrics)->SetKafkaReachableSource([&producer] { return (*producer)->Reachable(); });

  const int signal = schakel::service::WaitForShutdownSignal();
  spdlog::info("intake stopping (signal {})", signal);
  health.reset();
  (*metrics)->StopServing();
  schakel::service::SetServing(*server->server, false);
  // Calls in flight finish from delivery reports, so the producer keeps running until the server is
  // down.
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(15));
  audit_log.Stop();
  view_consumer.Stop();
  (*consumer)->Close();
  const int undelivered = (*producer)->Close(std::chrono::seconds(10));
  spdlog::info("intake stopped ({} undelivered)", undelivered);
  return undelivered == 0 ? 0 : 1;
}
