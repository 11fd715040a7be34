#include "services/ops/console_http.h"

#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "libs/service/identity.h"
#include "services/ops/console_assets.h"

namespace schakel::ops {
namespace {

constexpr char kNoCertificate[] =
    "an operator's client certificate (<name>.operator.schakel, from the network's certificate "
    "authority) is required";
constexpr char kNotAnOperator[] = "only operators may use the console";
// How long one connection may take, from accepting it to the end of its request.
constexpr auto kRequestTime = std::chrono::seconds(10);

std::string_view ContentType(std::string_view path) {
  if (path.ends_with(".html")) return "text/html; charset=utf-8";
  if (path.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (path.ends_with(".css")) return "text/css; charset=utf-8";
  if (path.ends_with(".png")) return "image/png";
  if (path.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

HttpResponseOut Json(int status, const nlohmann::json& body) {
  return {status, "application/json", body.dump()};
}

HttpResponseOut Error(int status, std::string_view message) {
  return Json(status, {{"error", message}});
}

std::string ResponseText(const HttpResponseOut& r) {
  return absl::StrCat("HTTP/1.1 ", r.status, " ", std::string(ReasonPhrase(r.status)),
                      "\r\n"
                      "Content-Type: ",
                      r.content_type, "\r\nContent-Length: ", r.body.size(),
                      "\r\n"
                      "Cache-Control: no-store\r\n"
                      "X-Content-Type-Options: nosniff\r\n"
                      "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n"
                      "Strict-Transport-Security: max-age=31536000\r\n"
                      "Referrer-Policy: no-referrer\r\n"
                      "Connection: close\r\n\r\n",
                      r.body);
}

// The holder the verified client certificate of the connection names; kNobody without one. The
// handshake has already refused a certificate our authority did not sign (SSL_VERIFY_PEER).
service::Caller CallerOf(SSL* ssl) {
  // Signed by our authority but naming nobody we know: someone, never an operator.
  const service::Caller someone{service::Caller::Kind::kService, ""};
  std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(ssl), X509_free);
  if (!cert) return {};
  if (SSL_get_verify_result(ssl) != X509_V_OK) return {};
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (subject == nullptr) return someone;
  // Exactly one common name: a certificate naming two holders names none.
  const int first = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (first < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, first) >= 0) return someone;
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, first));
  unsigned char* utf8 = nullptr;
  const int length = ASN1_STRING_to_UTF8(&utf8, data);
  if (length < 0) return someone;
  const std::string common_name(reinterpret_cast<const char*>(utf8),
                                static_cast<std::size_t>(length));
  OPENSSL_free(utf8);
  service::Caller caller = service::CallerFromCommonName(common_name);
  return caller.kind == service::Caller::Kind::kNobody ? someone : caller;
}

std::string OpenSslErrors() {
  std::string text;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof buffer);
    absl::StrAppend(&text, text.empty() ? "" : "; ", buffer);
  }
  return text.empty() ? "unknown error" : text;
}

// Readable and PEM, or NOT_FOUND / INVALID_ARGUMENT naming the flag and the file.
absl::Status CheckPem(const std::string& path, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(flag, " ", path, " cannot be read"));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, " is not PEM"));
  }
  return absl::OkStatus();
}

// The server's TLS context: its certificate, and client certificates asked for and verified
// against the network's authority (not required: without one the request is answered 401, which
// tells the operator what is missing).
absl::StatusOr<SSL_CTX*> NewTlsContext(const ConsoleTls& tls) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError(OpenSslErrors());
  auto fail = [ctx](const std::string& what) {
    const std::string why = OpenSslErrors();
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(absl::StrCat("console: ", what, ": ", why));
  };
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return fail("TLS 1.2");
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert.c_str()) != 1) {
    return fail(absl::StrCat("--tls-cert ", tls.cert));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    return fail(absl::StrCat("--tls-key ", tls.key, " (is it --tls-cert's key?)"));
  }
  if (SSL_CTX_load_verify_locations(ctx, tls.ca.c_str(), nullptr) != 1) {
    return fail(absl::StrCat("--tls-ca ", tls.ca));
  }
  // The authorities whose certificates a browser should offer (it picks the operator's).
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.ca.c_str());
  if (names == nullptr) return fail(absl::StrCat("--tls-ca ", tls.ca));
  SSL_CTX_set_client_CA_list(ctx, names);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  // A resumed session keeps its verified client certificate; OpenSSL needs a context id for it.
  static constexpr unsigned char kSessionContext[] = "schakel-console";
  if (SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1) != 1) {
    return fail("session context");
  }
  return ctx;
}

// Reads one request (headers, then a Content-Length body) before `deadline`; an error response
// when it is not one we take.
std::variant<HttpRequestIn, HttpResponseOut> ReadRequest(
    SSL* ssl, std::chrono::steady_clock::time_point deadline) {
  std::string data;
  char buffer[4096];
  auto more = [&]() -> bool {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    const int n = SSL_read(ssl, buffer, sizeof buffer);
    if (n <= 0) return false;
    data.append(buffer, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t end;
  while ((end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > ConsoleServer::kMaxHeaderBytes) {
      return Error(431,
                   absl::StrCat("headers: at most ", ConsoleServer::kMaxHeaderBytes, " bytes"));
    }
    if (!more()) return Error(408, "the request did not arrive in time");
  }
  if (end > ConsoleServer::kMaxHeaderBytes) {
    return Error(431, absl::StrCat("headers: at most ", ConsoleServer::kMaxHeaderBytes, " bytes"));
  }
  HttpRequestIn request;
  const std::string_view head(data.data(), end);
  std::size_t line_end = head.find("\r\n");
  const std::string_view request_line = head.substr(0, line_end);
  const std::size_t first_space = request_line.find(' ');
  const std::size_t last_space = request_line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space) {
    return Error(400, "not an HTTP request");
  }
  const std::string_view version = request_line.substr(last_space + 1);
  if (version != "HTTP/1.0" && version != "HTTP/1.1") return Error(400, "not an HTTP request");
  request.method = std::string(request_line.substr(0, first_space));
  const std::string_view target =
      request_line.substr(first_space + 1, last_space - first_space - 1);
  if (target.empty() || target.front() != '/') return Error(400, "not an HTTP request");
  request.path = std::string(target.substr(0, target.find('?')));
  while (line_end != std::string_view::npos && line_end < head.size()) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line =
        head.substr(start, line_end == std::string_view::npos ? head.npos : line_end - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 || line.front() == ' ' ||
        line.front() == '\t') {
      return Error(400, "a header line is malformed");
    }
    std::string name = absl::AsciiStrToLower(std::string(line.substr(0, colon)));
    if (name == "content-length" && request.headers.contains(name)) {
      return Error(400, "Content-Length: given twice");
    }
    // Of a header given twice, the first counts.
    request.headers.emplace(
        std::move(name), std::string(absl::StripAsciiWhitespace(
                             absl::string_view(line.data() + colon + 1, line.size() - colon - 1))));
  }
  if (request.headers.contains("transfer-encoding")) {
    return Error(411, "body: only with a Content-Length");
  }
  std::size_t length = 0;
  if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
    if (it->second.empty() || it->second.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(it->second, &length)) {
      return Error(400, "Content-Length: not a number");
    }
  }
  if (length > ConsoleServer::kMaxBodyBytes) {
    return Error(413, absl::StrCat("body: at most ", ConsoleServer::kMaxBodyBytes, " bytes"));
  }
  data.erase(0, end + 4);
  while (data.size() < length) {
    if (!more()) return Error(408, "the request did not arrive in time");
  }
  data.resize(length);
  request.body = std::move(data);
  return request;
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

absl::StatusOr<RedriveRequest> ParseRedriveRequest(const std::string& body) {
  const nlohmann::json json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("body: not a JSON object");
  }
  RedriveRequest request;
  if (!json.contains("dead_letter_topic")) {
    return absl::InvalidArgumentError("dead_letter_topic: required");
  }
  if (!json["dead_letter_topic"].is_string()) {
    return absl::InvalidArgumentError("dead_letter_topic: must be a string");
  }
  request.dead_letter_topic = json["dead_letter_topic"].get<std::string>();
  if (!json.contains("partition")) return absl::InvalidArgumentError("partition: required");
  if (!json["partition"].is_number_unsigned() ||
      json["partition"].get<std::uint64_t>() > 1'000'000) {
    return absl::InvalidArgumentError("partition: must be a whole number from 0");
  }
  request.partition = json["partition"].get<std::int32_t>();
  if (!json.contains("offset")) return absl::InvalidArgumentError("offset: required");
  if (!json["offset"].is_number_unsigned() ||
      json["offset"].get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    return absl::InvalidArgumentError("offset: must be a whole number from 0");
  }
  request.offset = json["offset"].get<std::int64_t>();
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

HttpResponseOut ConsoleServer::Handle(const HttpRequestIn& request,
                                      const std::string& operator_name) {
  if (request.method == "GET") {
    if (request.path == "/api/overview") {
      nlohmann::json overview = overview_();
      overview["operator"] = operator_name;
      return Json(200, overview);
    }
    const std::string path = request.path == "/" ? "/index.html" : request.path;
    for (const ConsoleAsset& asset : ConsoleAssets()) {
      if (asset.path == path) {
        return {200, std::string(ContentType(path)), std::string(asset.content)};
      }
    }
    return Error(404, absl::StrCat("no ", request.path, " here"));
  }
  if (request.method != "POST") return Error(405, "only GET and POST");
  if (request.path != "/api/reassign" && (request.path != "/api/redrive" || !redrive_)) {
    return Error(404, absl::StrCat("no ", request.path, " here"));
  }
  // Only the console's own page may ask. The browser presents the operator's certificate to
  // whichever page makes it connect here, so another site open in the same browser could
  // otherwise post here: a JSON body forces a CORS preflight (which this server never grants),
  // and the browser names the page that asks (Origin, Sec-Fetch-Site), which must be this one.
  auto header = [&request](const std::string& name) -> const std::string* {
    auto it = request.headers.find(name);
    return it == request.headers.end() ? nullptr : &it->second;
  };
  const std::string* content_type = header("content-type");
  if (content_type == nullptr ||
      !absl::StartsWith(absl::AsciiStrToLower(*content_type), "application/json")) {
    return Error(415, "body: must be application/json");
  }
  const std::string* origin = header("origin");
  const std::string* host = header("host");
  const std::string* fetch_site = header("sec-fetch-site");
  if ((origin != nullptr && (host == nullptr || *origin != absl::StrCat("https://", *host))) ||
      (fetch_site != nullptr && *fetch_site != "same-origin")) {
    return Error(403, absl::StrCat("only the console's own page may ",
                                   request.path == "/api/redrive" ? "redrive" : "reassign"));
  }
  if (request.path == "/api/redrive") {
    absl::StatusOr<RedriveRequest> parsed = ParseRedriveRequest(request.body);
    if (!parsed.ok()) return Error(400, std::string(parsed.status().message()));
    parsed->by = absl::StrCat("console:", operator_name);
    absl::StatusOr<nlohmann::json> done = redrive_(*parsed);
    if (!done.ok()) {
      return Error(HttpStatusOf(done.status()), std::string(done.status().message()));
    }
    return Json(200, {{"redriven", *done}});
  }
  absl::StatusOr<ReassignRequest> parsed = ParseReassignRequest(request.body);
  if (parsed.ok()) parsed->by = absl::StrCat("console:", operator_name);
  const absl::Status status = parsed.ok() ? reassign_(*parsed) : parsed.status();
  if (status.ok()) return Json(202, {{"requested", true}});
  return Error(HttpStatusOf(status), std::string(status.message()));
}

void ConsoleServer::Serve(int fd) {
  const auto deadline = std::chrono::steady_clock::now() + kRequestTime;
  // Every blocking read and write gives up after the request's time (a slow or silent client).
  const timeval timeout{.tv_sec = std::chrono::seconds(kRequestTime).count(), .tv_usec = 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx_.get()), SSL_free);
  if (ssl && SSL_set_fd(ssl.get(), fd) == 1 && SSL_accept(ssl.get()) == 1) {
    // Who calls comes first: a caller who may not come in learns nothing, not even which paths
    // exist.
    const service::Caller caller = CallerOf(ssl.get());
    std::variant<HttpRequestIn, HttpResponseOut> read = ReadRequest(ssl.get(), deadline);
    HttpResponseOut response;
    if (caller.kind == service::Caller::Kind::kNobody) {
      response = Error(401, kNoCertificate);
    } else if (caller.kind != service::Caller::Kind::kOperator) {
      spdlog::warn("console: refused {} (not an operator)",
                   caller.id.empty() ? std::string("a certificate naming no holder")
                                     : service::CommonNameOf(caller));
      response = Error(403, kNotAnOperator);
    } else if (auto* request = std::get_if<HttpRequestIn>(&read)) {
      response = Handle(*request, caller.id);
    } else {
      response = std::get<HttpResponseOut>(read);
    }
    const std::string text = ResponseText(response);
    if (SSL_write(ssl.get(), text.data(), static_cast<int>(text.size())) > 0) {
      SSL_shutdown(ssl.get());
    }
  }
  ERR_clear_error();
  ssl.reset();
  // What the client still sends (a body we did not read) would turn the close into a reset that
  // can destroy the answer before it is read: stop writing, and read a little until it is done.
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  std::size_t drained = 0;
  for (pollfd p{fd, POLLIN, 0}; drained < 64 * 1024 && ::poll(&p, 1, 1000) > 0;) {
    const ssize_t n = ::read(fd, sink, sizeof sink);
    if (n <= 0) break;
    drained += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

void ConsoleServer::AcceptLoop() {
  // A client gone while we write to it must cost an EPIPE, not the process (SIGPIPE); the
  // connections' threads inherit this.
  sigset_t sigpipe;
  sigemptyset(&sigpipe);
  sigaddset(&sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &sigpipe, nullptr);
  while (!stopping_.load()) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) break;
      spdlog::warn("console: accept: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    bool admitted = false;
    {
      absl::MutexLock lock(&mu_);
      admitted = !stopping_.load() && open_.size() < static_cast<std::size_t>(kMaxConnections);
      if (admitted) open_.insert(fd);
    }
    if (!admitted) {
      ::close(fd);
      continue;
    }
    std::thread([this, fd] {
      Serve(fd);
      absl::MutexLock done(&mu_);
      open_.erase(fd);  // the last one wakes Stop as the lock is released
    }).detach();
  }
}

absl::StatusOr<std::unique_ptr<ConsoleServer>> ConsoleServer::Start(const std::string& listen,
                                                                    const ConsoleTls& tls,
                                                                    Overview overview,
                                                                    Reassign reassign,
                                                                    Redrive redrive) {
  if (tls.cert.empty() || tls.key.empty() || tls.ca.empty()) {
    return absl::InvalidArgumentError(
        "console: TLS is required: --tls-cert, --tls-key and --tls-ca");
  }
  for (const auto& [path, flag] :
       {std::pair{tls.cert, "--tls-cert"}, std::pair{tls.key, "--tls-key"},
        std::pair{tls.ca, "--tls-ca"}}) {
    if (absl::Status s = CheckPem(path, flag); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("console: ", s.message()));
    }
  }
  std::unique_ptr<ConsoleServer> self(new ConsoleServer());
  self->overview_ = std::move(overview);
  self->reassign_ = std::move(reassign);
  self->redrive_ = std::move(redrive);
  absl::StatusOr<SSL_CTX*> ctx = NewTlsContext(tls);
  if (!ctx.ok()) return ctx.status();
  self->ctx_ = {*ctx, SSL_CTX_free};

  const std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("console: ", listen, ": expected host:port"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int e =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      e != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("console: cannot listen on ", listen, ": ", ::gai_strerror(e)));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int yes = 1;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) != 0 ||
      ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return absl::UnavailableError(absl::StrCat("console: cannot listen on ", listen, ": ", why));
  }
  self->listen_fd_ = fd;
  sockaddr_storage bound{};
  socklen_t bound_size = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_size);
  self->port_ =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  self->host_ = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : host;
  self->acceptor_ = std::thread([raw = self.get()] { raw->AcceptLoop(); });
  return self;
}

ConsoleServer::~ConsoleServer() { Stop(); }

std::string ConsoleServer::address() const {
  return host_.find(':') != std::string::npos ? absl::StrCat("[", host_, "]:", port_)
                                              : absl::StrCat(host_, ":", port_);
}

void ConsoleServer::Stop() {
  if (listen_fd_ < 0) return;
  stopping_.store(true);
  // Wakes accept() (it fails on a socket shut down), then cuts the connections still open.
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  listen_fd_ = -1;
  absl::MutexLock lock(&mu_);
  for (const int fd : open_) ::shutdown(fd, SHUT_RDWR);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_.empty(); };
  mu_.Await(absl::Condition(&idle));
}

}  // namespace schakel::ops
