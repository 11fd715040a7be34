#include "tools/schakelctl/ops_client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace schakel::ctl {
namespace {

std::string OpenSslErrors() {
  std::string text;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof buffer);
    absl::StrAppend(&text, text.empty() ? "" : "; ", buffer);
  }
  return text.empty() ? "no details" : text;
}

// A connected socket to host:port with `timeout` on every read and write; -1 when none.
int Connect(const std::string& host, const std::string& port, std::chrono::seconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const timeval tv{.tv_sec = timeout.count(), .tv_usec = 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) return fd;
    ::close(fd);
  }
  return -1;
}

}  // namespace

absl::StatusOr<OpsAnswer> PostJson(const std::string& address, const OpsTls& tls,
                                   const std::string& path, const std::string& json,
                                   std::chrono::seconds timeout) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("--ops ", address, ": expected host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = address.substr(colon + 1);

  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (!ctx) return absl::InternalError(OpenSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), tls.ca.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the network's authority ", tls.ca, " cannot be used: ", OpenSslErrors()));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("the operator's certificate ", tls.cert,
                                                   " (key ", tls.key,
                                                   ") cannot be used: ", OpenSslErrors()));
  }
  const int fd = Connect(host, port, timeout);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot reach the ops service at ", address));
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  // The server's certificate must name what was dialled, as a browser checks it.
  in6_addr ip{};
  const bool is_ip =
      ::inet_pton(AF_INET, host.c_str(), &ip) == 1 || ::inet_pton(AF_INET6, host.c_str(), &ip) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
  } else {
    SSL_set1_host(ssl.get(), host.c_str());
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
  }
  SSL_set_fd(ssl.get(), fd);
  const std::string request =
      absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: ", address,
                   "\r\nContent-Type: application/json\r\nContent-Length: ", json.size(),
                   "\r\nConnection: close\r\n\r\n", json);
  std::string response;
  absl::Status failed;
  if (SSL_connect(ssl.get()) != 1) {
    failed = absl::UnavailableError(
        absl::StrCat("no TLS connection to the ops service at ", address, ": ", OpenSslErrors()));
  } else if (SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) <= 0) {
    failed = absl::UnavailableError(absl::StrCat("cannot send to the ops service at ", address));
  } else {
    char buffer[8192];
    for (int n; (n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0;) {
      response.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ERR_clear_error();
  ssl.reset();
  ::close(fd);
  if (!failed.ok()) return failed;
  const std::size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos || response.size() < 12 || response.rfind("HTTP/1.", 0) != 0) {
    return absl::UnavailableError(
        absl::StrCat("no answer from the ops service at ", address, " in time"));
  }
  return OpsAnswer{std::atoi(response.substr(9, 3).c_str()), response.substr(end + 4)};
}

std::string ErrorOf(const OpsAnswer& answer) {
  const nlohmann::json json = nlohmann::json::parse(answer.body, nullptr, false);
  if (json.is_object() && json.contains("error") && json["error"].is_string()) {
    return json["error"].get<std::string>();
  }
  return "HTTP " + std::to_string(answer.status);
}

}  // namespace schakel::ctl
