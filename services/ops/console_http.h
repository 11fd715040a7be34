// The operators' console over HTTP (civetweb, from Debian): the static page compiled into the
// binary (services/ops/console/), GET /api/overview (JSON) and POST /api/reassign. Meant for
// localhost: it has no login of its own yet (the privacy issue adds operator credentials), so
// deploy/local/up binds it to 127.0.0.1.
//
// POST /api/reassign takes {"referral_id": "r-…", "need_index": 1, "organisation": "mjd",
// "reason": "…"} and answers 202 {"requested": true}, or {"error": "<field>: <why>"} with 400 (bad
// input), 403 (another site's page), 404 (no such need in the queue), 409 (reassigned already, or
// one on its way), 413 (body too large), 415 (not JSON), 503 (Kafka did not acknowledge).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

class CivetServer;

namespace schakel::ops {

struct ReassignRequest {
  std::string referral_id;
  std::uint32_t need_index = 0;
  std::string organisation;
  std::string reason;
};

// Reads a reassign request body; INVALID_ARGUMENT naming the field that is missing or of the
// wrong type.
absl::StatusOr<ReassignRequest> ParseReassignRequest(const std::string& body);

// The HTTP status for a status of the reassign path.
int HttpStatusOf(const absl::Status& status);

class ConsoleServer {
 public:
  using Overview = std::function<nlohmann::json()>;
  using Reassign = std::function<absl::Status(const ReassignRequest&)>;

  static constexpr std::size_t kMaxBodyBytes = 16 * 1024;

  // `listen`: host:port. UNAVAILABLE when it cannot listen there.
  static absl::StatusOr<std::unique_ptr<ConsoleServer>> Start(const std::string& listen,
                                                              Overview overview, Reassign reassign);
  ~ConsoleServer();

  // host:port it listens on.
  std::string address() const;
  // Stops answering, at once. Safe to call twice.
  void Stop();

 private:
  class Handler;
  ConsoleServer() = default;

  Overview overview_;
  Reassign reassign_;
  std::string host_;
  int port_ = 0;
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<CivetServer> server_;
};

}  // namespace schakel::ops
