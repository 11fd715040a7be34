// keys: wiring only. Reads flags, opens the key store with the master key, follows the router's
// grants topic, records hand-outs and erasures in the audit chain "keys", serves
// schakel.v1.KeyService over TLS, and on SIGINT/SIGTERM stops in reverse order.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>

#include "libs/audit/writer.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/producer.h"
#include "libs/metrics/metrics.h"
#include "libs/privacy/sealed.h"
#include "libs/routing/network.h"
#include "libs/service/health.h"
#include "libs/service/logging.h"
#include "libs/service/security.h"
#include "libs/service/server.h"
#include "libs/service/shutdown.h"
#include "services/keys/grant_follower.h"
#include "services/keys/key_service.h"
#include "services/keys/key_store.h"

namespace {

// schakel_keys_refused_outside_sharing_total: keys refused because the router offered the
// assignment outside the client's sharing permission (should stay 0: each one is a router's bug or
// a forgery it took); schakel_keys_sharing_unknown_total: keys handed out on the offer alone, for
// referrals recorded before the key service kept sharing permissions.
class SharingCounters final : public prometheus::Collectable {
 public:
  explicit SharingCounters(const schakel::keys::KeyService& service) : service_(service) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return {Counter("schakel_keys_refused_outside_sharing_total",
                    "Assignment keys refused: offered by the router outside the client's sharing "
                    "permission",
                    service_.refused_outside_sharing()),
            Counter("schakel_keys_sharing_unknown_total",
                    "Assignment keys handed out on the offer alone: no sharing permission recorded "
                    "for the referral",
                    service_.handed_out_sharing_unknown())};
  }

 private:
  static prometheus::MetricFamily Counter(std::string name, std::string help, std::uint64_t value) {
    prometheus::MetricFamily family;
    family.name = std::move(name);
    family.help = std::move(help);
    family.type = prometheus::MetricType::Counter;
    prometheus::ClientMetric metric;
    metric.counter.value = static_cast<double>(value);
    family.metric.push_back(std::move(metric));
    return family;
  }
  const schakel::keys::KeyService& service_;
};

}  // namespace

int main(int argc, char** argv) {
  schakel::service::BlockShutdownSignals();
  CLI::App app{
      "Schakel keys: the clients' data keys, handed out to whoever may open personal data, and "
      "destroyed on erasure (schakel.v1.KeyService)."};
  std::string listen = "127.0.0.1:50058";
  std::string kafka = "127.0.0.1:9092";
  std::string master_key_file;
  std::string db_file = "keys.db";
  std::string group = "schakel.keys.grants";
  std::string log_level = "info";
  std::string metrics_listen;
  bool log_json = false;
  app.add_option("--listen", listen, "gRPC address to listen on")->capture_default_str();
  app.add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  app.add_option("--master-key", master_key_file,
                 "File with the 32-byte master key in hex that wraps every data key (made, mode "
                 "0600, when missing)")
      ->required();
  app.add_option("--db", db_file, "SQLite file of the keys and grants")->capture_default_str();
  app.add_option("--group", group, "Consumer group that follows the router's grants topic")
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve Prometheus metrics at http://ADDRESS/metrics (default: not served)");
  app.add_flag("--log-json", log_json, "Log one JSON object per line");
  std::string audit_signing_key;
  schakel::service::AddAuditSigningKeyFlag(app, audit_signing_key);
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  schakel::service::SecurityFlags security_flags;
  schakel::service::AddSecurityFlags(app, security_flags);
  std::string kafka_config;
  app.add_option("--kafka-config", kafka_config,
                 "librdkafka properties of this service's Kafka identity (the broker's ACLs decide "
                 "what it may do), e.g. <pki>/kafka/keys.properties; without it: no identity");
  CLI11_PARSE(app, argc, argv);
  // Every Kafka client of this process presents this identity (and nothing from the environment).
  if (absl::Status s = schakel::kafka::SetClientConfigFile(kafka_config); !s.ok()) {
    std::cerr << "keys: " << s.message() << "\n";
    return 2;
  }

  absl::StatusOr<schakel::service::ServerSecurity> security =
      schakel::service::LoadServerSecurity(security_flags);
  if (!security.ok()) {
    std::cerr << "keys: " << security.status().message() << "\n";
    return 2;
  }
  schakel::service::UseAuthenticator(security->authenticator);
  schakel::service::LimitMallocArenas();
  schakel::service::SetupLogging("keys", log_json, log_level);

  absl::StatusOr<std::string> master_key =
      schakel::privacy::ReadKeyFile(master_key_file, /*create=*/true);
  if (!master_key.ok()) {
    std::cerr << "keys: " << master_key.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::keys::KeyStore>> store =
      schakel::keys::KeyStore::Open(db_file, *master_key);
  if (!store.ok()) {
    std::cerr << "keys: " << store.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::metrics::Metrics>> metrics =
      schakel::metrics::Metrics::Start(metrics_listen);
  if (!metrics.ok()) {
    std::cerr << "keys: " << metrics.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::kafka::Producer>> producer =
      schakel::kafka::Producer::Create({.bootstrap_servers = kafka,
                                        .client_id = "schakel-keys",
                                        .delivery_timeout = std::chrono::milliseconds(10000),
                                        .extra = {}});
  if (!producer.ok()) {
    std::cerr << "keys: " << producer.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::kafka::Consumer>> consumer =
      schakel::kafka::Consumer::Create(
          {.bootstrap_servers = kafka,
           .group_id = group,
           .topics = {std::string(schakel::routing::kKeyGrantsTopic)},
           .client_id = "schakel-keys",
           .extra = {},
           .on_record = [m = metrics->get()](const auto& r) { m->Consumed(r.topic); },
           .on_lag = [m = metrics->get()](const auto& lags) { m->SetConsumerLag(lags); }});
  if (!consumer.ok()) {
    std::cerr << "keys: " << consumer.status().message() << "\n";
    return 2;
  }
  schakel::metrics::CountingPublisher publisher(**producer, **metrics);
  // The audit chain "keys": every key handed to an organisation and every erasure, committed to
  // its topic schakel.audit.keys before the call is answered.
  absl::StatusOr<std::shared_ptr<const schakel::audit::SigningKey>> audit_key =
      schakel::audit::LoadSigningKey(audit_signing_key, "keys");
  if (!audit_key.ok()) {
    spdlog::critical("{}", std::string(audit_key.status().message()));
    return 1;
  }
  schakel::audit::ChainWriterOptions audit_options;
  audit_options.signing_key = *audit_key;
  audit_options.bootstrap_servers = kafka;
  audit_options.writer = "keys";
  schakel::audit::AuditLog audit_log(audit_options);
  audit_log.Start();
  auto service = std::make_unique<schakel::keys::KeyService>(
      **store, publisher, schakel::keys::KeyServiceOptions{}, &audit_log);
  (*metrics)->AddCollectable(std::make_shared<SharingCounters>(*service));
  // Grants wake the calls waiting for them as soon as they are stored.
  schakel::keys::GrantFollower grants(**consumer, **store,
                                      [&service] { service->GrantsArrived(); });
  grants.Start();
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*metrics)->GrpcInterceptor());
  absl::StatusOr<schakel::service::RunningServer> server = schakel::service::StartServer(
      listen, security->credentials, {service.get()}, std::move(interceptors));
  if (!server.ok()) {
    std::cerr << "keys: " << server.status().message() << "\n";
    return 2;
  }
  spdlog::info("keys listening on {} (Kafka {})", listen, kafka);
  (*metrics)->SetKafkaReachableSource([&producer] { return (*producer)->Reachable(); });

  const int signal = schakel::service::WaitForShutdownSignal();
  spdlog::info("keys stopping (signal {})", signal);
  (*metrics)->StopServing();
  schakel::service::SetServing(*server->server, false);
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grants.Stop();  // before the service it wakes
  service.reset();
  // After the calls: those in flight are answered from their audit entries' commits.
  audit_log.Stop();
  (*consumer)->Close();
  const int undelivered = (*producer)->Close(std::chrono::seconds(10));
  spdlog::info("keys stopped ({} undelivered)", undelivered);
  return undelivered == 0 ? 0 : 1;
}
