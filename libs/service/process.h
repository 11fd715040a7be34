// The process shell every Schakel service runs in: the command-line flags they all have, logging,
// the Kafka client identity, TLS, malloc arenas and the Prometheus endpoint, set up once; the
// components a service starts, each registered with how to stop it; and the one way a service
// ends. A service's main.cc only adds its own flags, builds its objects and registers them:
//
//   service::Process process({.name = "keys", .listen = "127.0.0.1:50058"});
//   process.app().add_option("--db", db_file, "...");
//   process.Parse(argc, argv);                          // bad flag or file: exits 2
//   auto store = process.Must(KeyStore::Open(db_file));   // cannot start: exits 2
//   process.Start(follower);                            // Start() now, Stop() on the way down
//   process.Serve({&service});                          // the gRPC server, stopped first
//   return process.Run();                               // until SIGTERM or a fatal error
//
// Exit codes (the same for every service; scripts and tests rely on them):
//   0  stopped on SIGINT/SIGTERM, every component stopped cleanly (also --help).
//   1  a fatal error at run time (Fatal: a broken invariant, a fatal Kafka error), or a component
//      that could not finish its work on the way down (e.g. events left undelivered); the ordered
//      shutdown has run either way. A supervisor restarts the service.
//   2  it could not start: a bad flag, an unreadable or invalid file, Kafka or a port not usable.
//      Nothing is served; what had started is stopped again. Restarting the same way fails again.
// Each failure is one log line (spdlog, on stderr; the logger's name is the service's) saying what
// failed.
//
// The ordered lifecycle (CONVENTIONS.md): on SIGINT, SIGTERM or Fatal, what takes requests from
// outside stops first (the gRPC server after a NOT_SERVING health status and its drain, /metrics),
// then every registered component in the reverse order of registration, so that consumers are
// drained before the producers they feed are flushed, as long as they were registered after them.
#pragma once

#include <pthread.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/service/security_flags.h"

namespace CLI {
class App;
}
namespace grpc {
class Channel;
class Server;
class Service;
}  // namespace grpc
namespace schakel::metrics {
class Metrics;
}

namespace schakel::service {

class HealthFollower;
struct ServerSecurity;

inline constexpr int kExitStopped = 0;
inline constexpr int kExitFatal = 1;
inline constexpr int kExitCannotStart = 2;

// The components of a process, each with how to stop it, and the one way the process ends. Process
// owns one; on its own for tests. Not copyable; construct it on the thread that will call Wait
// (main), before any other thread starts: it blocks SIGINT and SIGTERM in that thread, so that
// threads started later inherit the mask and only Wait receives them.
class Lifecycle {
 public:
  using StopFn = std::function<absl::Status()>;

  Lifecycle();
  // Stops what still runs (as StopAll).
  ~Lifecycle();
  Lifecycle(const Lifecycle&) = delete;
  Lifecycle& operator=(const Lifecycle&) = delete;

  // Runs `start`; when it succeeds, registers `stop`. A failing start registers nothing and
  // returns its error (the caller then stops what had started: StopAll).
  absl::Status Start(const std::function<absl::Status()>& start, StopFn stop);
  // Registers how to stop something already running.
  void OnStop(StopFn stop) ABSL_LOCKS_EXCLUDED(mu_);
  // Registers how to stop something that takes requests from outside (a server): all of those
  // stop before any other component, also in reverse order of registration.
  void OnStopInput(StopFn stop) ABSL_LOCKS_EXCLUDED(mu_);

  // A fatal error at run time: logs it and makes Wait return. From any thread, any number of times
  // (the first is logged as the cause). Should the ordered shutdown not end within `fatal_deadline`
  // after it, the process ends there (exit 1): a fatal error never leaves a process limping on.
  void Fatal(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  bool fatal() const ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until SIGINT or SIGTERM arrives or Fatal is called; the signal's number, 0 after Fatal.
  int Wait();
  // Stops the inputs, then every other component, each in reverse order of registration; the exit
  // code: kExitStopped, or kExitFatal after Fatal or when a stop returned an error (each is
  // logged). A second call stops nothing more and returns the same.
  int StopAll() ABSL_LOCKS_EXCLUDED(mu_);

  void set_fatal_deadline(std::chrono::milliseconds deadline) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Registered {
    StopFn stop;
    bool input = false;
  };
  void Watchdog() ABSL_LOCKS_EXCLUDED(mu_);

  pthread_t owner_;
  mutable absl::Mutex mu_;
  std::vector<Registered> registered_ ABSL_GUARDED_BY(mu_);
  bool fatal_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_failed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::chrono::milliseconds fatal_deadline_ ABSL_GUARDED_BY(mu_){60000};
  std::thread watchdog_ ABSL_GUARDED_BY(mu_);
  bool watchdog_cancelled_ ABSL_GUARDED_BY(mu_) = false;  // wakes the watchdog
};

enum class NetworkFlag {
  kNone,      // no --network
  kOptional,  // --network, default deploy/local/network.yaml
  kRequired,  // --network, required
};

struct ProcessOptions {
  // The service ("intake"): its logger's name unless log_name says otherwise.
  std::string name{};
  // What --help says first.
  std::string description{};
  // --listen: the gRPC address's default and help.
  std::string listen{};
  std::string listen_help = "gRPC address to listen on";
  // --metrics-listen's example address in its help ("127.0.0.1:9451"); empty: none.
  std::string metrics_example{};
  // --kafka-config's example in its help: <pki>/kafka/<kafka_principal>.properties (default: name).
  std::string kafka_principal{};
  NetworkFlag network = NetworkFlag::kNone;
  std::string network_help = "The network file";
  // --audit-signing-key (the service writes an audit chain).
  bool audit_signing_key = false;
  // The logger's name, asked once the flags are parsed (e.g. "inbox-" + --org); empty: name.
  std::function<std::string()> log_name{};
};

// How the gRPC server stops.
struct ServeOptions {
  // How long calls in flight may take to finish once the server takes no new ones.
  std::chrono::milliseconds drain{5000};
  // Runs once the health status is NOT_SERVING, before the drain (e.g. ends long-lived watches,
  // which would otherwise hold the drain up to its end).
  std::function<void()> before_drain{};
};

class Process {
 public:
  // First thing in main: before any thread starts (see Lifecycle). Declares the common flags.
  explicit Process(ProcessOptions options);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // For the service's own flags, before Parse.
  CLI::App& app() { return *app_; }
  // A flag that makes the binary a one-shot command instead of a service (the router's --check
  // FILE): when given, Parse runs `command` with its value once logging is set up, and the process
  // exits with the code it returns; nothing else is set up.
  void AddCommandFlag(const std::string& flag, const std::string& help,
                      std::function<int(const std::string&)> command);

  // Parses the command line (--help: prints it and exits 0; a bad flag: exits 2), then sets up
  // logging, this process's Kafka client identity (--kafka-config), TLS for servers and the
  // authenticator of callers, fewer malloc arenas, and /metrics (--metrics-listen). Any failure:
  // as Fail.
  void Parse(int argc, char** argv);

  // After Parse:
  const std::string& kafka() const { return kafka_; }
  const std::string& listen() const { return listen_; }
  const std::string& metrics_listen() const { return metrics_listen_; }
  const std::string& network_file() const { return network_file_; }
  const std::string& audit_signing_key() const { return audit_signing_key_; }
  const TlsFiles& tls() const { return security_flags_.tls; }
  metrics::Metrics& metrics() { return *metrics_; }
  // A channel to another service over TLS with this service's own certificate (it verifies the
  // other's against --tls-ca). A failure: as Fail.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address);

  // Start-up: the value, or the process cannot start (as Fail; `context` goes before the error).
  template <typename T>
  T Must(absl::StatusOr<T> value, std::string_view context = {}) {
    if (!value.ok()) Fail(value.status(), context);
    return *std::move(value);
  }
  void Must(const absl::Status& status, std::string_view context = {}) {
    if (!status.ok()) Fail(status, context);
  }
  // The process cannot start: logs "cannot start: <context>: <error>", stops what has started
  // (in reverse order) and exits 2.
  [[noreturn]] void Fail(const absl::Status& status, std::string_view context = {});

  // Starts `component` (its Start(), returning nothing or an absl::Status; a failure: as Fail) and
  // registers its Stop().
  template <typename Component>
  void Start(Component& component) {
    if constexpr (std::is_void_v<decltype(component.Start())>) {
      component.Start();
    } else {
      Must(component.Start());
    }
    OnStop([&component] { component.Stop(); });
  }
  // The same with functions: `start` (a failure: as Fail), then `stop` on the way down.
  void Start(const std::function<absl::Status()>& start, std::function<void()> stop);
  // Registers how to stop something already running: returning nothing, or an absl::Status (an
  // error is logged and makes the exit code 1, e.g. events that could not be delivered).
  template <typename Fn>
  void OnStop(Fn stop) {
    if constexpr (std::is_same_v<std::invoke_result_t<Fn&>, absl::Status>) {
      lifecycle_.OnStop(std::move(stop));
    } else {
      lifecycle_.OnStop([stop = std::move(stop)]() mutable {
        stop();
        return absl::OkStatus();
      });
    }
  }
  // Registers how to stop something else that takes requests from outside (e.g. an HTTP server):
  // with the gRPC server and /metrics, before every component.
  void OnStopInput(std::function<void()> stop) {
    lifecycle_.OnStopInput([stop = std::move(stop)] {
      stop();
      return absl::OkStatus();
    });
  }
  // A thread running `body` until `stop` makes it return; an error from `body` is Fatal (with
  // `what` before it). On the way down: `stop`, then the thread is joined.
  void Thread(std::string what, std::function<absl::Status()> body, std::function<void()> stop);
  // `task` every `period` on a thread of its own, until the process stops.
  void Every(std::chrono::milliseconds period, std::function<void()> task);

  // Starts the gRPC server on --listen with TLS, `services`, health checking, reflection and the
  // metrics' interceptor; it stops before every component. The port bound (":0" picks one). A
  // failure: as Fail.
  int Serve(const std::vector<grpc::Service*>& services, ServeOptions options = {});
  // Where schakel_kafka_reachable comes from (e.g. the producer's Reachable). With `health`, the
  // server's health status follows it too: NOT_SERVING while no broker answers (then calls go
  // elsewhere). Before or after Serve.
  void FollowKafka(std::function<bool()> reachable, bool health = false);

  // A fatal error at run time, from any thread: logged, and the ordered shutdown starts; Run then
  // returns 1.
  void Fatal(const absl::Status& status) { lifecycle_.Fatal(status); }
  // For components that report a fatal error through a callback.
  std::function<void(const absl::Status&)> FatalHandler() {
    return [this](const absl::Status& status) { Fatal(status); };
  }

  // Waits for SIGINT/SIGTERM or a fatal error, then stops everything (see the top of this file);
  // main's return value.
  int Run();

 private:
  [[noreturn]] static void Exit(int code);
  void StartHealth();

  ProcessOptions options_;
  Lifecycle lifecycle_;
  std::unique_ptr<CLI::App> app_;
  struct Command {
    std::string value;
    std::function<int(const std::string&)> run;
  };
  std::vector<std::unique_ptr<Command>> commands_;
  std::string listen_;
  std::string kafka_ = "127.0.0.1:9092";
  std::string kafka_config_;
  std::string metrics_listen_;
  std::string network_file_;
  std::string audit_signing_key_;
  std::string log_level_ = "info";
  bool log_json_ = false;
  SecurityFlags security_flags_;
  std::shared_ptr<ServerSecurity> security_;
  std::unique_ptr<metrics::Metrics> metrics_;
  std::unique_ptr<grpc::Server> server_;
  std::function<bool()> health_source_;
  std::unique_ptr<HealthFollower> health_;
};

}  // namespace schakel::service
