// The ops service: follows the network's events on Kafka and shows operators what waits where — the
// console (a web page over HTTPS, for operators' client certificates only), Prometheus gauges per
// organisation and need — and does what operators ask through its API (the page and schakelctl):
// reassignments of unroutable needs and redrives of dead letters, each recorded in its audit chain
// with the operator's name. It owns no state: a restart reads the topics (and its chain) again.
#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libs/audit/entry.h"
#include "libs/audit/writer.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/follower.h"
#include "libs/kafka/probe.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/metrics/metrics.h"
#include "libs/routing/network.h"
#include "libs/service/health.h"
#include "libs/service/logging.h"
#include "libs/service/security.h"
#include "libs/service/server.h"
#include "libs/service/shutdown.h"
#include "services/ops/console_http.h"
#include "services/ops/ops_view.h"
#include "services/ops/redrive.h"

namespace {

// Every `every`, asks Kafka what each inbox's consumer group has committed (for its lag).
void PollCommitted(const std::string& kafka, const schakel::routing::Network& network,
                   schakel::ops::OpsView& view) {
  std::vector<std::int32_t> partitions;
  for (int p = 0; p < network.topics.partitions; ++p) partitions.push_back(p);
  for (const auto& [org, group] : view.ConsumerGroups()) {
    absl::StatusOr<std::map<std::int32_t, std::int64_t>> committed =
        schakel::kafka::CommittedOffsets(kafka, group, schakel::routing::InboxTopic(org),
                                         partitions, std::chrono::seconds(5));
    if (committed.ok()) {
      view.SetCommitted(org, *std::move(committed));
    } else {
      spdlog::warn("ops: lag of {}: {}", org, std::string(committed.status().message()));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  schakel::service::BlockShutdownSignals();
  CLI::App app{
      "Schakel ops: the operators' console (a web page: queues per organisation, the unroutable "
      "queue with reassignment, the dead letters), and their figures as Prometheus gauges, "
      "followed live from Kafka."};
  std::string network_file = "deploy/local/network.yaml";
  std::string listen = "127.0.0.1:50059";
  std::string console_listen = "127.0.0.1:8080";
  std::string metrics_listen;
  std::string kafka = "127.0.0.1:9092";
  std::string log_level = "info";
  bool log_json = false;
  int lag_every_ms = 5000;
  app.add_option("--network", network_file, "The network file")->capture_default_str();
  app.add_option("--listen", listen, "gRPC address (health checking, reflection, channelz)")
      ->capture_default_str();
  app.add_option("--console-listen", console_listen,
                 "Serve the console at https://ADDRESS/ with --tls-cert, to operators only: their "
                 "client certificate (<name>.operator.schakel) from --tls-ca's authority")
      ->capture_default_str();
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve Prometheus metrics at http://ADDRESS/metrics (default: not served)");
  app.add_option("--kafka", kafka, "Kafka bootstrap servers")->capture_default_str();
  app.add_option("--lag-every-ms", lag_every_ms,
                 "How often the inboxes' committed offsets are asked for (their lag)")
      ->capture_default_str()
      ->check(CLI::Range(100, 600000));
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
                 "what it may do), e.g. <pki>/kafka/ops.properties; without it: no identity");
  CLI11_PARSE(app, argc, argv);
  // Every Kafka client of this process presents this identity (and nothing from the environment).
  if (absl::Status s = schakel::kafka::SetClientConfigFile(kafka_config); !s.ok()) {
    std::cerr << "ops: " << s.message() << "\n";
    return 2;
  }
  schakel::service::LimitMallocArenas();
  schakel::service::SetupLogging("ops", log_json, log_level);

  // TLS for every call; the caller's identity from its certificate or token, never the request.
  absl::StatusOr<schakel::service::ServerSecurity> security =
      schakel::service::LoadServerSecurity(security_flags);
  if (!security.ok()) {
    std::cerr << "ops: " << security.status().message() << "\n";
    return 2;
  }
  schakel::service::UseAuthenticator(security->authenticator);

  absl::StatusOr<schakel::routing::Network> network =
      schakel::routing::LoadNetworkFile(network_file);
  if (!network.ok()) {
    std::cerr << "ops: " << network.status().message() << "\n";
    return 2;
  }
  schakel::ops::OpsView view(*network);
  absl::StatusOr<std::unique_ptr<schakel::kafka::Follower>> follower =
      schakel::kafka::Follower::Create(kafka, view.Topics(), std::chrono::seconds(15));
  if (!follower.ok()) {
    std::cerr << "ops: Kafka at " << kafka << ": " << follower.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::kafka::Producer>> producer =
      schakel::kafka::Producer::Create(
          {.bootstrap_servers = kafka, .client_id = "schakel-ops", .extra = {}});
  if (!producer.ok()) {
    std::cerr << "ops: Kafka at " << kafka << ": " << producer.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::kafka::ReachabilityProbe>> probe =
      schakel::kafka::ReachabilityProbe::Start(kafka);
  if (!probe.ok()) {
    std::cerr << "ops: " << probe.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<schakel::metrics::Metrics>> metrics =
      schakel::metrics::Metrics::Start(metrics_listen);
  if (!metrics.ok()) {
    std::cerr << "ops: " << metrics.status().message() << "\n";
    return 2;
  }
  (*metrics)->AddCollectable(std::make_shared<schakel::ops::OpsGauges>(view));
  (*metrics)->SetKafkaReachableSource([&probe] { return (*probe)->Reachable(); });

  // The audit chain "ops": every reassignment and redrive operators make through ops.
  absl::StatusOr<std::shared_ptr<const schakel::audit::SigningKey>> audit_key =
      schakel::audit::LoadSigningKey(audit_signing_key, "ops");
  if (!audit_key.ok()) {
    spdlog::critical("{}", std::string(audit_key.status().message()));
    return 1;
  }
  schakel::audit::ChainWriterOptions audit_options;
  audit_options.signing_key = *audit_key;
  audit_options.bootstrap_servers = kafka;
  audit_options.topic_replication = network->topics.replication_factor;
  audit_options.writer = "ops";
  schakel::audit::AuditLog audit_log(audit_options);
  audit_log.Start();

  // An operator's reassignment: checked against what the view knows, then on Kafka (the router
  // acts on it); answered once Kafka acknowledged it and its audit entry.
  auto reassign = [&](const schakel::ops::ReassignRequest& r) -> absl::Status {
    absl::StatusOr<schakel::v1::ReassignRequested> event =
        view.PrepareReassign(r.referral_id, r.need_index, r.organisation, r.reason, r.by);
    if (!event.ok()) return event.status();
    auto acknowledged = std::make_shared<std::promise<absl::Status>>();
    std::future<absl::Status> outcome = acknowledged->get_future();
    (*producer)->Publish(schakel::routing::kReassignTopic, event->meta().referral_id(),
                         event->SerializeAsString(),
                         [acknowledged](absl::Status s) { acknowledged->set_value(std::move(s)); });
    if (outcome.wait_for(std::chrono::seconds(15)) != std::future_status::ready) {
      return absl::UnavailableError("Kafka did not acknowledge the reassignment in time");
    }
    absl::Status status = outcome.get();
    if (!status.ok()) {
      return absl::UnavailableError(
          absl::StrCat("Kafka did not take the reassignment: ", status.message()));
    }
    view.Reassigned(*event);
    spdlog::info("ops: reassignment of {} (need {}) to {} sent, by {}",
                 event->meta().assignment_id(), event->need_index(), event->to_organisation(),
                 r.by);
    // The operator's own words stay on the reassignment topic: the audit entry carries ids only.
    schakel::v1::AuditSubject subject;
    subject.set_referral_id(event->meta().referral_id());
    subject.add_assignment_ids(event->meta().assignment_id());
    subject.set_organisation(event->to_organisation());
    if (absl::Status audited = audit_log.RecordAndWait(
            schakel::audit::NewEntry(schakel::audit::OperatorActor(r.by),
                                     schakel::audit::kUnroutableReassigned, subject,
                                     "console: reassign an unroutable need"),
            std::chrono::seconds(15));
        !audited.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "the reassignment was sent, but its audit entry was not recorded: ", audited.message()));
    }
    return absl::OkStatus();
  };
  // An operator's redrive of a dead letter (services/ops/redrive.h), with the real Kafka and the
  // audit chain "ops" behind it.
  auto iso_now = [] {
    return google::protobuf::util::TimeUtil::ToString(
               google::protobuf::util::TimeUtil::GetCurrentTime())
               .substr(0, 19) +
           "Z";
  };
  schakel::ops::Redriver::Io redrive_io{
      .read =
          [&](const schakel::deadletter::Place& at) {
            return schakel::kafka::ReadAt(kafka, at.topic, at.partition, at.offset,
                                          std::chrono::seconds(15));
          },
      .publish = [&](const std::string& topic, const std::string& key,
                     const std::string& value) -> absl::Status {
        auto acknowledged = std::make_shared<std::promise<absl::Status>>();
        std::future<absl::Status> outcome = acknowledged->get_future();
        (*producer)->Publish(topic, key, value, [acknowledged](absl::Status s) {
          acknowledged->set_value(std::move(s));
        });
        if (outcome.wait_for(std::chrono::seconds(15)) != std::future_status::ready) {
          return absl::UnavailableError("not acknowledged in time");
        }
        return outcome.get();
      },
      // Earlier redrives are in the chain "ops" (one partition; read to its end each time: a
      // redrive is rare, and the chain is the record that survives a restart).
      .find = [&](const std::string& dead_letter)
          -> absl::StatusOr<std::optional<schakel::ops::PastRedrive>> {
        std::optional<schakel::ops::PastRedrive> past;
        const std::string reason = schakel::ops::RedriveReason(dead_letter);
        absl::Status read = schakel::kafka::ReadToEnd(
            kafka, schakel::routing::AuditTopic("ops"), {0}, std::chrono::seconds(30),
            [&](const schakel::kafka::Record& record, bool tombstone) {
              schakel::v1::AuditEntry entry;
              if (tombstone || !entry.ParseFromString(record.value)) return;
              if (entry.action() == schakel::audit::kDeadLetterRedriven &&
                  entry.reason() == reason && !past) {
                past = schakel::ops::PastRedrive{
                    google::protobuf::util::TimeUtil::ToString(entry.at()).substr(0, 19) + "Z",
                    entry.actor().id()};
              }
            });
        if (!read.ok()) return read;
        return past;
      },
      .record = [&](const std::string& dead_letter, const schakel::v1::DeadLetter&,
                    const std::string& by) -> absl::Status {
        // Ids only: the dead letter's place (why), and the organisation whose inbox set it aside.
        schakel::v1::AuditSubject subject;
        const std::string principal = schakel::routing::DeadLetterPrincipalOf(
            *network, dead_letter.substr(0, dead_letter.find('/')));
        if (principal.rfind("inbox-", 0) == 0) subject.set_organisation(principal.substr(6));
        return audit_log.RecordAndWait(
            schakel::audit::NewEntry(schakel::audit::OperatorActor(by),
                                     schakel::audit::kDeadLetterRedriven, subject,
                                     schakel::ops::RedriveReason(dead_letter)),
            std::chrono::seconds(15));
      },
      .now = iso_now};
  schakel::ops::Redriver redriver(*network, std::move(redrive_io));
  auto redrive = [&](const schakel::ops::RedriveRequest& r) { return redriver.Redrive(r); };
  auto overview = [&] {
    return view.Overview(std::chrono::system_clock::now(), (*probe)->Reachable(), kafka);
  };
  absl::StatusOr<std::unique_ptr<schakel::ops::ConsoleServer>> console =
      schakel::ops::ConsoleServer::Start(console_listen,
                                         {.cert = security_flags.tls.cert,
                                          .key = security_flags.tls.key,
                                          .ca = security_flags.tls.ca},
                                         overview, reassign, redrive);
  if (!console.ok()) {
    std::cerr << "ops: " << console.status().message() << "\n";
    return 2;
  }

  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*metrics)->GrpcInterceptor());
  absl::StatusOr<schakel::service::RunningServer> server =
      schakel::service::StartServer(listen, security->credentials, {}, std::move(interceptors));
  if (!server.ok()) {
    std::cerr << "ops: " << server.status().message() << "\n";
    return 2;
  }
  auto health = std::make_unique<schakel::service::HealthFollower>(
      *server->server, "Kafka", [&probe] { return (*probe)->Reachable(); });

  std::atomic<bool> stopping{false};
  std::thread follow([&] {
    while (!stopping.load()) {
      std::optional<schakel::kafka::Record> record =
          (*follower)->Poll(std::chrono::milliseconds(200));
      if (record) view.Apply(*record);
    }
  });
  std::mutex lag_mu;
  std::condition_variable lag_cv;
  std::thread lag([&] {
    std::unique_lock lock(lag_mu);
    while (!lag_cv.wait_for(lock, std::chrono::milliseconds(lag_every_ms),
                            [&] { return stopping.load(); })) {
      lock.unlock();
      PollCommitted(kafka, *network, view);
      lock.lock();
    }
  });
  spdlog::info("ops listening on {} (gRPC), console at https://{}/, following {} topics (Kafka {})",
               listen, (*console)->address(), view.Topics().size(), kafka);

  const int signal = schakel::service::WaitForShutdownSignal();
  spdlog::info("ops stopping (signal {})", signal);
  health.reset();
  (*console)->Stop();
  (*metrics)->StopServing();
  schakel::service::SetServing(*server->server, false);
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  {
    std::lock_guard lock(lag_mu);
    stopping.store(true);
  }
  lag_cv.notify_all();
  lag.join();
  follow.join();
  audit_log.Stop();
  (*producer)->Close(std::chrono::seconds(5));
  spdlog::info("ops stopped: {} records read, {} unreadable, {} forged load reports ignored",
               view.records(), view.unreadable(), view.forged());
  return 0;
}
