#include "services/ops/console_http.h"

#include <CivetServer.h>
#include <spdlog/spdlog.h>

#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/metrics/metrics.h"
#include "services/ops/console_assets.h"

namespace schakel::ops {
namespace {

std::string_view ContentType(std::string_view path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".png")) return "image/png";
  if (path.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

void Send(mg_connection* conn, int status, std::string_view content_type, std::string_view body) {
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\n"
            "Content-Type: %.*s\r\n"
            "Content-Length: %zu\r\n"
            "Cache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n"
            "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n"
            "Connection: close\r\n\r\n",
            status, mg_get_response_code_text(conn, status), static_cast<int>(content_type.size()),
            content_type.data(), body.size());
  mg_write(conn, body.data(), body.size());
}

void SendJson(mg_connection* conn, int status, const nlohmann::json& body) {
  Send(conn, status, "application/json", body.dump());
}

void SendError(mg_connection* conn, int status, std::string_view message) {
  SendJson(conn, status, {{"error", message}});
}

}  // namespace

absl::StatusOr<ReassignRequest> ParseReassignRequest(const std::string& body) {
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("body: not a JSON object");
  }
  ReassignRequest request;
  auto text = [&json](const char* field, std::string* out) -> absl::Status {
    if (!json.contains(field)) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
    if (!json[field].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ": must be a string"));
    }
    *out = json[field].get<std::string>();
    return absl::OkStatus();
  };
  if (absl::Status s = text("referral_id", &request.referral_id); !s.ok()) return s;
  if (!json.contains("need_index")) return absl::InvalidArgumentError("need_index: required");
  const nlohmann::json& index = json["need_index"];
  if (!index.is_number_unsigned() || index.get<std::uint64_t>() > 1000) {
    return absl::InvalidArgumentError("need_index: must be a whole number from 0 to 1000");
  }
  request.need_index = index.get<std::uint32_t>();
  if (absl::Status s = text("organisation", &request.organisation); !s.ok()) return s;
  if (absl::Status s = text("reason", &request.reason); !s.ok()) return s;
  return request;
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 202;
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 503;
    default:
      return 500;
  }
}

class ConsoleServer::Handler final : public CivetHandler {
 public:
  explicit Handler(ConsoleServer& owner) : owner_(owner) {}

  bool handleGet(CivetServer*, mg_connection* conn) override {
    std::string path = mg_get_request_info(conn)->local_uri;
    if (path == "/api/overview") {
      SendJson(conn, 200, owner_.overview_());
      return true;
    }
    if (path == "/") path = "/index.html";
    for (const ConsoleAsset& asset : ConsoleAssets()) {
      if (asset.path == path) {
        Send(conn, 200, ContentType(path), asset.content);
        return true;
      }
    }
    SendError(conn, 404, absl::StrCat("no ", path, " here"));
    return true;
  }

  bool handlePost(CivetServer*, mg_connection* conn) override {
    const std::string path = mg_get_request_info(conn)->local_uri;
    if (path != "/api/reassign") {
      SendError(conn, 404, absl::StrCat("no ", path, " here"));
      return true;
    }
    // Only the console's own page may ask: another site open in the operator's browser could
    // otherwise post here (a JSON body forces a CORS preflight, which this server never grants).
    const char* content_type = mg_get_header(conn, "Content-Type");
    if (content_type == nullptr ||
        !absl::StartsWith(absl::AsciiStrToLower(content_type), "application/json")) {
      SendError(conn, 415, "body: must be application/json");
      return true;
    }
    const char* origin = mg_get_header(conn, "Origin");
    const char* host = mg_get_header(conn, "Host");
    if (origin != nullptr &&
        (host == nullptr || std::string(origin) != absl::StrCat("http://", host))) {
      SendError(conn, 403, "only the console's own page may reassign");
      return true;
    }
    const long long length = mg_get_request_info(conn)->content_length;
    if (length > static_cast<long long>(kMaxBodyBytes)) {
      SendError(conn, 413, absl::StrCat("body: at most ", kMaxBodyBytes, " bytes"));
      return true;
    }
    std::string body;
    char buffer[4096];
    while (body.size() <= kMaxBodyBytes) {
      const int n = mg_read(conn, buffer, sizeof buffer);
      if (n <= 0) break;
      body.append(buffer, static_cast<std::size_t>(n));
    }
    if (body.size() > kMaxBodyBytes) {
      SendError(conn, 413, absl::StrCat("body: at most ", kMaxBodyBytes, " bytes"));
      return true;
    }
    absl::StatusOr<ReassignRequest> request = ParseReassignRequest(body);
    absl::Status status = request.ok() ? owner_.reassign_(*request) : request.status();
    if (status.ok()) {
      SendJson(conn, 202, {{"requested", true}});
    } else {
      SendError(conn, HttpStatusOf(status), std::string(status.message()));
    }
    return true;
  }

 private:
  ConsoleServer& owner_;
};

absl::StatusOr<std::unique_ptr<ConsoleServer>> ConsoleServer::Start(const std::string& listen,
                                                                    Overview overview,
                                                                    Reassign reassign) {
  std::unique_ptr<ConsoleServer> self(new ConsoleServer());
  self->overview_ = std::move(overview);
  self->reassign_ = std::move(reassign);
  const std::vector<std::string> options = {"listening_ports",    listen, "num_threads", "4",
                                            "request_timeout_ms", "10000"};
  try {
    self->server_ = std::make_unique<CivetServer>(options);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("console: cannot listen on ", listen, ": ", e.what()));
  }
  self->handler_ = std::make_unique<Handler>(*self);
  self->server_->addHandler("/", *self->handler_);
  const std::string host = listen.substr(0, listen.rfind(':'));
  self->host_ = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : host;
  const std::vector<int> ports = self->server_->getListeningPorts();
  self->port_ = ports.empty() ? 0 : ports.front();
  return self;
}

ConsoleServer::~ConsoleServer() { Stop(); }

std::string ConsoleServer::address() const { return absl::StrCat(host_, ":", port_); }

void ConsoleServer::Stop() {
  if (!server_) return;
  metrics::StopCivetweb(host_, port_, [this] {
    server_->close();
    server_.reset();
  });
}

}  // namespace schakel::ops
