// schakelctl's client of the ops service's API (services/ops/console_http.h): one HTTPS request
// with the operator's client certificate, which is how ops knows who acts. Operators write no Kafka
// topic themselves; what they do goes through here.
#pragma once

#include <chrono>
#include <string>

#include "absl/status/statusor.h"

namespace schakel::ctl {

struct OpsTls {
  std::string ca;    // the network's authority (the ops service's certificate must be signed by it)
  std::string cert;  // the operator's client certificate
  std::string key;
};

struct OpsAnswer {
  int status = 0;
  std::string body;
};

// POSTs `json` to https://<address><path> (address: host:port; the server's certificate must name
// the host or IP) and returns the HTTP status and body. UNAVAILABLE, naming the address, when no
// connection, no TLS handshake or no answer within `timeout`; INVALID_ARGUMENT when a TLS file
// cannot be used.
absl::StatusOr<OpsAnswer> PostJson(const std::string& address, const OpsTls& tls,
                                   const std::string& path, const std::string& json,
                                   std::chrono::seconds timeout);

// Why ops refused: the "error" of its JSON answer, else "HTTP <status>".
std::string ErrorOf(const OpsAnswer& answer);

}  // namespace schakel::ctl
