// The process shell: stop order, a start that fails, the fatal path and the exit codes.
#include "libs/service/process.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "libs/service/logging.h"

namespace schakel::service {
namespace {

// argv for Parse, from strings that outlive it.
class Args {
 public:
  explicit Args(std::vector<std::string> args) : args_(std::move(args)) {
    for (std::string& a : args_) argv_.push_back(a.data());
  }
  int argc() const { return static_cast<int>(argv_.size()); }
  char** argv() { return argv_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> argv_;
};

// Whether something accepts connections on 127.0.0.1:`port`.
bool Accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool connected =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return connected;
}

TEST(LifecycleTest, StopsInputsFirstThenEverythingInReverseOrder) {
  std::vector<std::string> stopped;
  Lifecycle lifecycle;
  auto stop = [&stopped](std::string name) {
    return [&stopped, name] {
      stopped.push_back(name);
      return absl::OkStatus();
    };
  };
  lifecycle.OnStop(stop("producer"));
  lifecycle.OnStopInput(stop("metrics"));
  ASSERT_TRUE(lifecycle.Start([] { return absl::OkStatus(); }, stop("consumer")).ok());
  lifecycle.OnStopInput(stop("server"));
  lifecycle.OnStop(stop("follower"));

  EXPECT_EQ(lifecycle.StopAll(), kExitStopped);
  EXPECT_EQ(stopped,
            (std::vector<std::string>{"server", "metrics", "follower", "consumer", "producer"}));
  // Once: a second call (and the destructor) stops nothing again.
  EXPECT_EQ(lifecycle.StopAll(), kExitStopped);
  EXPECT_EQ(stopped.size(), 5u);
}

TEST(LifecycleTest, AFailingStartRegistersNothingAndWhatStartedStillStops) {
  std::vector<std::string> stopped;
  Lifecycle lifecycle;
  lifecycle.OnStop([&] {
    stopped.push_back("first");
    return absl::OkStatus();
  });
  ASSERT_TRUE(lifecycle
                  .Start([] { return absl::OkStatus(); },
                         [&] {
                           stopped.push_back("second");
                           return absl::OkStatus();
                         })
                  .ok());
  const absl::Status failed = lifecycle.Start([] { return absl::UnavailableError("no broker"); },
                                              [&] {
                                                stopped.push_back("never started");
                                                return absl::OkStatus();
                                              });
  EXPECT_EQ(failed, absl::UnavailableError("no broker"));

  EXPECT_EQ(lifecycle.StopAll(), kExitStopped);
  EXPECT_EQ(stopped, (std::vector<std::string>{"second", "first"}));
}

TEST(LifecycleTest, AStopThatFailsMakesTheExitCodeOneAndTheOthersStillStop) {
  std::vector<std::string> stopped;
  Lifecycle lifecycle;
  lifecycle.OnStop([&] {
    stopped.push_back("producer");
    return absl::DataLossError("3 events undelivered");
  });
  lifecycle.OnStop([&] {
    stopped.push_back("consumer");
    return absl::OkStatus();
  });
  EXPECT_EQ(lifecycle.StopAll(), kExitFatal);
  EXPECT_EQ(stopped, (std::vector<std::string>{"consumer", "producer"}));
}

TEST(LifecycleTest, AFatalErrorFromAnyThreadEndsTheWaitAndTheExitCodeIsOne) {
  std::vector<std::string> stopped;
  Lifecycle lifecycle;
  lifecycle.OnStop([&] {
    stopped.push_back("producer");
    return absl::OkStatus();
  });
  std::thread component([&] {
    lifecycle.Fatal(absl::InternalError("fenced"));
    lifecycle.Fatal(absl::InternalError("and again"));  // logged, no second shutdown
  });
  EXPECT_EQ(lifecycle.Wait(), 0);  // no signal: the fatal error
  component.join();
  EXPECT_TRUE(lifecycle.fatal());
  EXPECT_EQ(lifecycle.StopAll(), kExitFatal);
  EXPECT_EQ(stopped, (std::vector<std::string>{"producer"}));
}

TEST(LifecycleTest, ASignalEndsTheWaitWithItsNumber) {
  Lifecycle lifecycle;
  pthread_kill(pthread_self(), SIGINT);  // blocked: pending until Wait takes it
  EXPECT_EQ(lifecycle.Wait(), SIGINT);
  EXPECT_EQ(lifecycle.StopAll(), kExitStopped);
}

TEST(LifecycleDeathTest, AShutdownThatHangsAfterAFatalErrorEndsTheProcessAnyway) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SetupLogging("test", false);  // on stderr, as in a service
        Lifecycle lifecycle;
        lifecycle.set_fatal_deadline(std::chrono::milliseconds(200));
        lifecycle.OnStop([] {
          std::this_thread::sleep_for(std::chrono::minutes(1));  // a component that never stops
          return absl::OkStatus();
        });
        lifecycle.Fatal(absl::InternalError("broken invariant"));
        lifecycle.Wait();
        lifecycle.StopAll();
      },
      ::testing::ExitedWithCode(kExitFatal), "still not stopped 200 ms after the fatal error");
}

TEST(ProcessTest, AThreadWhoseBodyFailsIsFatalAndRunStopsEverything) {
  std::vector<std::string> stopped;
  Process process({.name = "test"});
  process.OnStop([&] { stopped.push_back("producer"); });
  process.OnStop([&]() -> absl::Status {
    stopped.push_back("relay");
    return absl::OkStatus();
  });
  process.Thread(
      "routing", [] { return absl::InternalError("fenced"); },
      [&] { stopped.push_back("routing"); });
  EXPECT_EQ(process.Run(), kExitFatal);
  EXPECT_EQ(stopped, (std::vector<std::string>{"routing", "relay", "producer"}));
}

TEST(ProcessTest, EveryRunsItsTaskUntilTheProcessStops) {
  Process process({.name = "test"});
  std::atomic<int> runs{0};
  process.Every(std::chrono::milliseconds(10), [&] { ++runs; });
  while (runs < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  process.Fatal(absl::InternalError("enough"));
  EXPECT_EQ(process.Run(), kExitFatal);
  const int after = runs;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(runs, after);
}

TEST(ProcessDeathTest, ABadFlagIsOneLineAndExitTwo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Process process({.name = "test", .listen = "127.0.0.1:0"});
        Args args({"test", "--no-such-flag"});
        process.Parse(args.argc(), args.argv());
      },
      ::testing::ExitedWithCode(kExitCannotStart), "test: cannot start: .*--no-such-flag");
  EXPECT_EXIT(
      {
        Process process({.name = "test", .network = NetworkFlag::kRequired});
        Args args({"test"});
        process.Parse(args.argc(), args.argv());
      },
      ::testing::ExitedWithCode(kExitCannotStart), "cannot start: --network is required");
  EXPECT_EXIT(
      {
        Process process({.name = "test"});
        Args args({"test", "--log-level", "loud"});
        process.Parse(args.argc(), args.argv());
      },
      ::testing::ExitedWithCode(kExitCannotStart), "cannot start: --log-level");
}

TEST(ProcessDeathTest, HelpExitsZero) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Process process({.name = "test"});
        Args args({"test", "--help"});
        process.Parse(args.argc(), args.argv());
      },
      ::testing::ExitedWithCode(kExitStopped), "");
}

TEST(ProcessDeathTest, WithoutTlsItCannotStart) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Process process({.name = "test"});
        Args args({"test"});
        process.Parse(args.argc(), args.argv());
      },
      ::testing::ExitedWithCode(kExitCannotStart), "test: cannot start: TLS is required");
}

TEST(ProcessDeathTest, ACommandFlagRunsInsteadOfTheServiceAndItsCodeIsTheExitCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Process process({.name = "test"});
        process.AddCommandFlag("--check", "Only check FILE", [](const std::string& file) {
          std::fprintf(stderr, "checked %s\n", file.c_str());
          return 2;
        });
        Args args({"test", "--check", "network.yaml"});  // and no TLS: not needed for it
        process.Parse(args.argc(), args.argv());
      },
      ::testing::ExitedWithCode(2), "checked network.yaml");
}

// A certificate authority and a server certificate it signed, made with openssl in a folder of
// the test's own.
class Pki {
 public:
  Pki()
      : dir_(std::filesystem::temp_directory_path() /
             ("process_test-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    const std::string make =
        "cd " + d +
        " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout ca.key -out ca.pem -subj /CN=test-ca -days 1"
        " && openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
        "-keyout server.key -out server.csr -subj /CN=test"
        " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 1";
    made_ = std::system((make + " >/dev/null 2>&1").c_str()) == 0;
  }
  ~Pki() { std::filesystem::remove_all(dir_); }
  bool made() const { return made_; }
  std::vector<std::string> Flags() const {
    return {"--tls-cert", (dir_ / "server.pem").string(),
            "--tls-key",  (dir_ / "server.key").string(),
            "--tls-ca",   (dir_ / "ca.pem").string()};
  }

 private:
  std::filesystem::path dir_;
  bool made_ = false;
};

TEST(ProcessTest, OnAFatalErrorTheServerStopsBeforeTheComponents) {
  Pki pki;
  ASSERT_TRUE(pki.made()) << "openssl could not make the test certificates";
  Process process({.name = "test", .listen = "127.0.0.1:0"});
  std::string own;
  process.app().add_option("--own", own, "A flag of the service's own");
  std::vector<std::string> args = {"test", "--own", "value", "--log-level", "warn"};
  for (const std::string& flag : pki.Flags()) args.push_back(flag);
  Args argv(args);
  process.Parse(argv.argc(), argv.argv());
  EXPECT_EQ(own, "value");
  EXPECT_EQ(process.kafka(), "127.0.0.1:9092");

  bool server_was_down = false;
  int port = 0;
  process.OnStop([&] { server_was_down = !Accepts(port); });
  port = process.Serve({});
  ASSERT_GT(port, 0);
  EXPECT_TRUE(Accepts(port));
  std::thread component([&] { process.Fatal(absl::InternalError("a broken invariant")); });
  EXPECT_EQ(process.Run(), kExitFatal);
  component.join();
  EXPECT_TRUE(server_was_down);
}

TEST(ProcessDeathTest, AFailedStartStopsWhatHadStartedAndExitsTwo) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        SetupLogging("test", false);  // on stderr, as in a service
        Process process({.name = "test"});
        process.OnStop([] { std::fprintf(stderr, "stopped the producer\n"); });
        process.Start([] { return absl::OkStatus(); },
                      [] { std::fprintf(stderr, "stopped the consumer\n"); });
        process.Must(absl::StatusOr<int>(absl::NotFoundError("keys.db cannot be opened")),
                     "key store");
      },
      ::testing::ExitedWithCode(kExitCannotStart),
      "cannot start: key store: keys.db cannot be opened.*stopped the consumer.*"
      "stopped the producer");
}

}  // namespace
}  // namespace schakel::service
