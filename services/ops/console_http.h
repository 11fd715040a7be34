// The operators' console over HTTPS: the static page compiled into the binary
// (services/ops/console/), GET /api/overview (JSON), POST /api/reassign and POST /api/redrive. It
// is also the operators' API: `schakelctl unroutable reassign` and `schakelctl dlq redrive` call it
// with the operator's certificate, as the page does, so every operator action is ops', recorded in
// its audit chain with the operator's name (operators may write no Kafka topic themselves).
//
// Only operators get in, known as the gRPC services know them: by a TLS client certificate signed
// by the network's authority whose common name is "<name>.operator.schakel" (mTLS; the server
// presents the ops service's own certificate). Without a certificate: 401; with anyone else's (an
// organisation's, a service's): 403; the same answer for the page, its files and every API path,
// before the path is even looked at. A certificate the authority did not sign gets no connection
// (the TLS handshake fails), as on the gRPC ports. There is no cookie and no session: the browser
// presents the certificate on every connection, so the page holds no secret and there is nothing
// to log out of (close the browser, or remove the certificate from it).
//
// The server is our own small one on OpenSSL, not civetweb: Debian 12's civetweb 1.15 loads
// OpenSSL at run time by its 1.1 names and crashes on the first TLS connection under OpenSSL 3
// (it calls SSL_get_peer_certificate, which OpenSSL 3 no longer exports). It answers one request
// per connection (Connection: close), HTTP/1.0 and 1.1, GET and POST with a Content-Length body of
// at most kMaxBodyBytes, headers of at most kMaxHeaderBytes, each request within 10 s, at most
// kMaxConnections at once.
//
// POST /api/reassign takes {"referral_id": "r-…", "need_index": 1, "organisation": "mjd",
// "reason": "…"} and answers 202 {"requested": true}, or {"error": "<field>: <why>"} with 400 (bad
// input), 403 (another site's page: an Origin or Sec-Fetch-Site that is not the console's own), 404
// (no such need in the queue), 409 (reassigned already, or one on its way), 413 (body too large),
// 415 (not JSON), 503 (Kafka did not acknowledge).
//
// POST /api/redrive takes {"dead_letter_topic": "schakel.deadletters.inbox-mjd", "partition": 0,
// "offset": 12} (where the dead letter itself is) and answers 200 {"redriven": {...}} once the
// original record is published again and the redrive is in the audit chain, or {"error": "…"} with
// 400 (bad input), 404 (no dead letter there, or its original is gone), 409 (refused: re-driven
// already, a record its consumer does not read, or a copy that differs from the original), 503.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace schakel::ops {

struct ReassignRequest {
  std::string referral_id;
  std::uint32_t need_index = 0;
  std::string organisation;
  std::string reason;
  // Who asks: "console:<operator name>", from the client certificate, never from the body.
  std::string by{};
};

// Reads a reassign request body; INVALID_ARGUMENT naming the field that is missing or of the
// wrong type.
absl::StatusOr<ReassignRequest> ParseReassignRequest(const std::string& body);

// An operator's redrive of the dead letter at dead_letter_topic/partition/offset.
struct RedriveRequest {
  std::string dead_letter_topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  // Who asks: "console:<operator name>", from the client certificate, never from the body.
  std::string by{};
};
absl::StatusOr<RedriveRequest> ParseRedriveRequest(const std::string& body);

// The HTTP status for a status of the reassign path.
int HttpStatusOf(const absl::Status& status);

// The console's TLS files (PEM paths): the ops service's certificate and key, and the authority
// that signs operators' client certificates.
struct ConsoleTls {
  std::string cert;
  std::string key;
  std::string ca;
};

// One request as read from the connection.
struct HttpRequestIn {
  std::string method;
  std::string path;                            // without the query
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
};

struct HttpResponseOut {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class ConsoleServer {
 public:
  using Overview = std::function<nlohmann::json()>;
  using Reassign = std::function<absl::Status(const ReassignRequest&)>;
  // The answer's "redriven" object.
  using Redrive = std::function<absl::StatusOr<nlohmann::json>(const RedriveRequest&)>;

  static constexpr std::size_t kMaxBodyBytes = 16 * 1024;
  static constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr int kMaxConnections = 32;

  // `listen`: host:port, served over HTTPS with `tls`. INVALID_ARGUMENT / NOT_FOUND naming a TLS
  // file that is missing or unusable; UNAVAILABLE when it cannot listen there.
  static absl::StatusOr<std::unique_ptr<ConsoleServer>> Start(const std::string& listen,
                                                              const ConsoleTls& tls,
                                                              Overview overview, Reassign reassign,
                                                              Redrive redrive = nullptr);
  ~ConsoleServer();

  // host:port it listens on.
  std::string address() const;
  // Stops answering, at once: no new connection, and those open are cut. Safe to call twice.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  ConsoleServer() = default;
  void AcceptLoop() ABSL_LOCKS_EXCLUDED(mu_);
  void Serve(int fd);
  // The answer to an operator's request (the caller is checked before).
  HttpResponseOut Handle(const HttpRequestIn& request, const std::string& operator_name);

  Overview overview_;
  Reassign reassign_;
  Redrive redrive_;
  std::string host_;
  int port_ = 0;
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx_{nullptr, nullptr};
  int listen_fd_ = -1;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  std::set<int> open_ ABSL_GUARDED_BY(mu_);  // connections being served
};

}  // namespace schakel::ops
