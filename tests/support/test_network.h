// A whole Schakel network for end-to-end tests: the real intake, router(s) and inbox binaries on
// free ports against the broker tests/run started, with helpers for the gRPC calls the tests make.
// Each TestNetwork has its own directory (databases, logs, pseudonym key); set SCHAKEL_E2E_KEEP to
// keep it after the test.
//
// Every service speaks TLS with certificates from deploy/local/pki, made once per test process
// (TestPki()). A test calls as an organisation with PrepareCall(context, "<org>"), which sends that
// organisation's bearer token over a TLS channel (TestChannel); TestChannel(address, "<org>")
// presents the organisation's client certificate instead (mTLS).
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "libs/routing/network.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "tests/support/process.h"

namespace schakel::testing {

// The certificates and tokens of this test process (a folder made by deploy/local/pki); each
// network file's organisations are added by TestNetwork::Prepare (or EnsureTestPki).
const std::filesystem::path& TestPki();
// The librdkafka properties of a Kafka principal in TestPki() ("admin", "intake",
// "inbox-<org>"...).
std::string TestKafkaConfig(const std::string& principal);

// The demo's seed referral (deploy/local/demo/seed-referral.json).
v1::Referral SeedReferral();
::testing::AssertionResult EnsureTestPki(const std::string& network_file);
// A TLS channel that trusts TestPki()'s authority; with `client_certificate_of` (an organisation
// id, or "operator:<name>"), it presents that holder's client certificate.
std::shared_ptr<grpc::Channel> TestChannel(const std::string& address,
                                           const std::string& client_certificate_of = "");
std::shared_ptr<grpc::ChannelCredentials> TestCredentials(
    const std::string& client_certificate_of = "");
// The bearer token of an organisation (TestPki()).
std::string TestToken(const std::string& organisation);

// Calls `probe` every 200 ms until it returns true or `timeout` has passed; true when it did.
bool Eventually(const std::function<bool()>& probe,
                std::chrono::seconds timeout = std::chrono::seconds(90));

struct Service {
  std::string name;
  std::string binary;
  std::vector<std::string> args;  // without --listen: every start gets a free port
  std::string address;
  std::unique_ptr<ChildProcess> process;
  int starts = 0;
  std::string
      metrics_address{};  // where it serves /metrics (a free port, chosen at the first start)
  std::string console_address{};  // ops only: where it serves the console (chosen when added)
  bool keep_address{false};       // listens where it was added (others name it: the key service)
};

// GET http://address/metrics: the Prometheus text, or empty when nothing answers.
std::string ScrapeMetrics(const std::string& address);

// One plain HTTP/1.0 request to host:port; status 0 when nothing answered.
struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};
HttpResponse HttpRequest(const std::string& address, const std::string& method,
                         const std::string& path, const std::string& body = "");
// The request exactly as given (request line, headers, blank line, body).
HttpResponse HttpExchange(const std::string& address, const std::string& request);

// HTTPS: the server verified against `ca` (its certificate must name the address's IP); with `cert`
// and `key` (both or neither) the client presents that certificate. Status 0 when nothing answered,
// or the TLS handshake failed.
struct TlsClientFiles {
  std::string ca;
  std::string cert{};
  std::string key{};
};
// TestPki()'s authority; with `client_certificate_of` (an organisation id, or "operator:<name>")
// that holder's certificate.
TlsClientFiles TestTlsClient(const std::string& client_certificate_of = "");
HttpResponse HttpsRequest(const std::string& address, const TlsClientFiles& tls,
                          const std::string& method, const std::string& path,
                          const std::string& body = "");
HttpResponse HttpsExchange(const std::string& address, const TlsClientFiles& tls,
                           const std::string& request);

// The overall health of the server at `address` (grpc.health.v1.Health/Check, empty service name):
// 1 SERVING, 2 NOT_SERVING, 0 UNKNOWN; -1 when the call fails.
int HealthStatus(const std::string& address);  // over TLS (TestChannel)
int HealthStatus(const std::shared_ptr<grpc::Channel>& channel);

class TestNetwork {
 public:
  // `name` names the directory and the intake's view group; `network_file` is the network;
  // `kafka` the brokers (default: the one tests/run started).
  TestNetwork(const std::string& name, const std::string& network_file,
              const std::string& kafka = "");
  ~TestNetwork();  // stops what still runs (SIGTERM)

  const std::string& kafka() const { return kafka_; }
  const routing::Network& network() const { return network_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Every service started from now on logs one JSON object per line (--log-json).
  void LogJson() { log_json_ = true; }
  // Creates the topics of the network and a pseudonym key.
  ::testing::AssertionResult Prepare();
  // Adds (does not start) one inbox per organisation, a router and intake. Intake and the inboxes
  // bring the key service (services/keys, added once, first) with them.
  void AddInboxes();
  Service& AddRouter(const std::string& instance, std::vector<std::string> extra_args = {});
  void AddIntake();
  // The ops service, its console on a free port (Service::console_address); it asks for the
  // inboxes' committed offsets every 500 ms.
  Service& AddOps();
  // Starts every added service that does not run, and waits until each answers.
  ::testing::AssertionResult StartAll();

  // Starts the service (again) on a free port; each start logs to its own file.
  void Launch(Service& s, const std::vector<std::string>& extra_env = {});
  // Starts the service again on the address it had (clients keep their channels), and waits until
  // it answers.
  ::testing::AssertionResult Restart(Service& s);
  ::testing::AssertionResult WaitUntilServing(Service& s);
  Service& Find(const std::string& name);
  // The key service's address (adds it when it is not there yet).
  const std::string& keys_address();

  std::unique_ptr<v1::InboxService::Stub> Inbox(const std::string& org);
  std::unique_ptr<v1::IntakeService::Stub> Intake();

  grpc::Status Submit(const v1::Referral& referral, const std::string& as,
                      v1::SubmitReferralResponse* response);
  grpc::Status Get(const std::string& org, const std::string& assignment_id,
                   v1::Assignment* assignment);
  // The assignment once it is in `org`'s inbox with `status`; nullopt after the wait.
  std::optional<v1::Assignment> WaitForStatus(const std::string& org,
                                              const std::string& assignment_id,
                                              v1::AssignmentStatus status);
  grpc::Status Decline(const std::string& org, const v1::Assignment& current,
                       const std::string& reason, v1::Assignment* changed);
  grpc::Status Accept(const std::string& org, const v1::Assignment& current,
                      v1::Assignment* changed);
  // The referrer's view of the referral once it satisfies `ready`; nullopt after the wait.
  std::optional<v1::ReferralStatus> WaitForReferral(
      const std::string& as, const std::string& referral_id,
      const std::function<bool(const v1::ReferralStatus&)>& ready);

 private:
  void Spawn(Service& s, const std::vector<std::string>& extra_env);

  std::string name_;
  std::string network_file_;
  std::string kafka_;
  routing::Network network_;
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<Service>> services_;
  std::string keys_address_;
  bool log_json_ = false;
};

// Sets a deadline and, unless `as` is empty, that organisation's bearer token.
void PrepareCall(grpc::ClientContext& context, const std::string& as,
                 std::chrono::seconds timeout = std::chrono::seconds(10));

}  // namespace schakel::testing
