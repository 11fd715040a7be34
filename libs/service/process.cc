#include "libs/service/process.h"

#include <grpcpp/create_channel.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "absl/time/time.h"
#include "libs/kafka/client_config.h"
#include "libs/metrics/metrics.h"
#include "libs/service/health.h"
#include "libs/service/logging.h"
#include "libs/service/security.h"
#include "libs/service/server.h"
#include "libs/service/shutdown.h"

namespace schakel::service {
namespace {

// The message of a status, for fmt (abseil's string_view is not std::string_view here).
std::string Text(const absl::Status& status) { return std::string(status.message()); }

}  // namespace

// ---- Lifecycle ---------------------------------------------------------------------------------

Lifecycle::Lifecycle() : owner_(pthread_self()) { BlockShutdownSignals(); }

Lifecycle::~Lifecycle() { StopAll(); }

absl::Status Lifecycle::Start(const std::function<absl::Status()>& start, StopFn stop) {
  if (absl::Status started = start(); !started.ok()) return started;
  OnStop(std::move(stop));
  return absl::OkStatus();
}

void Lifecycle::OnStop(StopFn stop) {
  absl::MutexLock lock(&mu_);
  registered_.push_back({std::move(stop), false});
}

void Lifecycle::OnStopInput(StopFn stop) {
  absl::MutexLock lock(&mu_);
  registered_.push_back({std::move(stop), true});
}

void Lifecycle::Fatal(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (fatal_) {
    spdlog::error("also fatal: {}", Text(status));
    return;
  }
  fatal_ = true;
  spdlog::critical("fatal: {}; stopping", Text(status));
  if (!stopped_) watchdog_ = std::thread([this] { Watchdog(); });
  // To the thread in Wait (which has SIGTERM blocked, as every thread): sigwait takes it.
  pthread_kill(owner_, SIGTERM);
}

void Lifecycle::set_fatal_deadline(std::chrono::milliseconds deadline) {
  absl::MutexLock lock(&mu_);
  fatal_deadline_ = deadline;
}

bool Lifecycle::fatal() const {
  absl::MutexLock lock(&mu_);
  return fatal_;
}

int Lifecycle::Wait() {
  const int signal = WaitForShutdownSignal();
  return fatal() ? 0 : signal;
}

int Lifecycle::StopAll() {
  std::vector<Registered> registered;
  {
    absl::MutexLock lock(&mu_);
    registered.swap(registered_);
  }
  bool failed = false;
  // What takes requests from outside first, then the rest; each group in reverse order.
  for (const bool inputs : {true, false}) {
    for (auto it = registered.rbegin(); it != registered.rend(); ++it) {
      if (it->input != inputs) continue;
      if (absl::Status stopped = it->stop(); !stopped.ok()) {
        spdlog::error("not stopped cleanly: {}", Text(stopped));
        failed = true;
      }
    }
  }
  std::thread watchdog;
  int code = kExitStopped;
  {
    absl::MutexLock lock(&mu_);
    stop_failed_ = stop_failed_ || failed;
    stopped_ = true;
    watchdog_cancelled_ = true;  // wakes the watchdog as the lock is released
    watchdog.swap(watchdog_);
    code = fatal_ || stop_failed_ ? kExitFatal : kExitStopped;
  }
  if (watchdog.joinable()) watchdog.join();
  return code;
}

void Lifecycle::Watchdog() {
  absl::MutexLock lock(&mu_);
  if (mu_.AwaitWithTimeout(absl::Condition(&watchdog_cancelled_),
                           absl::FromChrono(fatal_deadline_))) {
    return;
  }
  spdlog::critical("still not stopped {} ms after the fatal error: ending now",
                   fatal_deadline_.count());
  spdlog::default_logger()->flush();
  std::_Exit(kExitFatal);
}

// ---- Process -----------------------------------------------------------------------------------

Process::Process(ProcessOptions options)
    : options_(std::move(options)), app_(std::make_unique<CLI::App>(options_.description)) {
  CLI::App& app = *app_;
  if (options_.network != NetworkFlag::kNone) {
    CLI::Option* network = app.add_option("--network", network_file_, options_.network_help);
    if (options_.network == NetworkFlag::kRequired) {
      network->required();
    } else {
      network_file_ = "deploy/local/network.yaml";
      network->capture_default_str();
    }
  }
  listen_ = options_.listen;
  app.add_option("--listen", listen_, options_.listen_help)->capture_default_str();
  app.add_option("--kafka", kafka_, "Kafka bootstrap servers")->capture_default_str();
  const std::string principal =
      options_.kafka_principal.empty() ? options_.name : options_.kafka_principal;
  app.add_option("--kafka-config", kafka_config_,
                 "librdkafka properties of this service's Kafka identity (the broker's ACLs decide "
                 "what it may do), e.g. <pki>/kafka/" +
                     principal + ".properties; without it: no identity");
  app.add_option(
      "--metrics-listen", metrics_listen_,
      "Serve Prometheus metrics at http://ADDRESS/metrics" +
          (options_.metrics_example.empty() ? "" : ", e.g. " + options_.metrics_example) +
          " (default: not served)");
  app.add_flag("--log-json", log_json_, "Log one JSON object per line");
  app.add_option("--log-level", log_level_, "trace, debug, info, warn or error")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  AddSecurityFlags(app, security_flags_);
  if (options_.audit_signing_key) AddAuditSigningKeyFlag(app, audit_signing_key_);
}

Process::~Process() = default;

void Process::AddCommandFlag(const std::string& flag, const std::string& help,
                             std::function<int(const std::string&)> command) {
  commands_.push_back(std::make_unique<Command>(Command{"", std::move(command)}));
  app_->add_option(flag, commands_.back()->value, help);
}

void Process::Parse(int argc, char** argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) Exit(app_->exit(e));  // --help
    SetupLogging(options_.name, log_json_, "info");
    spdlog::critical("cannot start: {} (see --help)", e.what());
    Exit(kExitCannotStart);
  }
  SetupLogging(options_.log_name ? options_.log_name() : options_.name, log_json_, log_level_);
  for (const std::unique_ptr<Command>& command : commands_) {
    if (!command->value.empty()) Exit(command->run(command->value));
  }
  // Every Kafka client of this process presents this identity (and nothing from the environment).
  Must(kafka::SetClientConfigFile(kafka_config_));
  // TLS for every call; the caller's identity from its certificate or token, never the request.
  security_ = std::make_shared<ServerSecurity>(Must(LoadServerSecurity(security_flags_)));
  UseAuthenticator(security_->authenticator);
  // Before the metrics, the servers and the Kafka clients start their threads.
  LimitMallocArenas();
  metrics_ = Must(metrics::Metrics::Start(metrics_listen_));
  // First to stop: the figures' sources go away after it.
  lifecycle_.OnStopInput([this] {
    metrics_->StopServing();
    return absl::OkStatus();
  });
}

std::shared_ptr<grpc::Channel> Process::Channel(const std::string& address) {
  return grpc::CreateChannel(address, Must(ClientCredentials(security_flags_.tls)));
}

void Process::Fail(const absl::Status& status, std::string_view context) {
  spdlog::critical("cannot start: {}{}", context.empty() ? "" : std::string(context) + ": ",
                   Text(status));
  lifecycle_.StopAll();
  Exit(kExitCannotStart);
}

void Process::Start(const std::function<absl::Status()>& start, std::function<void()> stop) {
  Must(lifecycle_.Start(start, [stop = std::move(stop)] {
    stop();
    return absl::OkStatus();
  }));
}

void Process::Thread(std::string what, std::function<absl::Status()> body,
                     std::function<void()> stop) {
  auto thread =
      std::make_shared<std::thread>([this, what = std::move(what), body = std::move(body)] {
        if (absl::Status done = body(); !done.ok()) {
          Fatal(absl::Status(done.code(), what + ": " + Text(done)));
        }
      });
  OnStop([thread, stop = std::move(stop)] {
    stop();
    thread->join();
  });
}

void Process::Every(std::chrono::milliseconds period, std::function<void()> task) {
  struct Stopping {
    // Waits at most `wait` for the stop; whether it came.
    bool Within(absl::Duration wait) ABSL_LOCKS_EXCLUDED(mu) {
      absl::MutexLock lock(&mu);
      return mu.AwaitWithTimeout(absl::Condition(&stop), wait);
    }
    absl::Mutex mu;
    bool stop ABSL_GUARDED_BY(mu) = false;
  };
  auto stopping = std::make_shared<Stopping>();
  Thread(
      "",
      [stopping, period, task = std::move(task)] {
        while (!stopping->Within(absl::FromChrono(period))) task();
        return absl::OkStatus();
      },
      [stopping] {
        absl::MutexLock lock(&stopping->mu);
        stopping->stop = true;  // wakes Within as the lock is released
      });
}

int Process::Serve(const std::vector<grpc::Service*>& services, ServeOptions options) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(metrics_->GrpcInterceptor());
  RunningServer running =
      Must(StartServer(listen_, security_->credentials, services, std::move(interceptors)));
  server_ = std::move(running.server);
  StartHealth();
  lifecycle_.OnStopInput([this, options = std::move(options)] {
    health_.reset();
    SetServing(*server_, false);
    if (options.before_drain) options.before_drain();
    server_->Shutdown(std::chrono::system_clock::now() + options.drain);
    server_.reset();
    return absl::OkStatus();
  });
  return running.port;
}

void Process::FollowKafka(std::function<bool()> reachable, bool health) {
  metrics_->SetKafkaReachableSource(reachable);
  if (health) {
    health_source_ = std::move(reachable);
    StartHealth();
  }
}

void Process::StartHealth() {
  if (server_ != nullptr && health_source_ && health_ == nullptr) {
    health_ = std::make_unique<HealthFollower>(*server_, "Kafka", health_source_);
  }
}

int Process::Run() {
  if (const int signal = lifecycle_.Wait(); signal != 0) {
    spdlog::info("stopping (signal {})", signal);
  }
  return lifecycle_.StopAll();
}

void Process::Exit(int code) {
  if (std::shared_ptr<spdlog::logger> logger = spdlog::default_logger()) logger->flush();
  std::fflush(nullptr);
  // Not std::exit: threads of what had started may still run, and static destructors would race
  // them.
  std::_Exit(code);
}

}  // namespace schakel::service
