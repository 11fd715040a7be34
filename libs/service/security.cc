#include "libs/service/security.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace schakel::service {

void AddSecurityFlags(CLI::App& app, SecurityFlags& flags) {
  app.add_option("--tls-cert", flags.tls.cert, "This service's TLS certificate (PEM; required)");
  app.add_option("--tls-key", flags.tls.key, "The key of --tls-cert (PEM; required)");
  app.add_option("--tls-ca", flags.tls.ca,
                 "The certificate authority that signs callers' client certificates (PEM; "
                 "required)");
  app.add_option("--tokens", flags.tokens,
                 "Bearer tokens of organisations that cannot use a client certificate: lines "
                 "\"<organisation id> <sha-256 of the token>\" (default: none accepted)");
}

void AddAuditSigningKeyFlag(CLI::App& app, std::string& path) {
  app.add_option(
      "--audit-signing-key", path,
      "The Ed25519 private key (PEM, from openssl genpkey -algorithm ed25519) this "
      "service signs its audit entries with; the verifier trusts its public key for this "
      "writer only. Without it the entries go unsigned and `schakelctl audit verify` "
      "reports them");
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " ", path, " cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not PEM"));
  }
  return text.str();
}

absl::StatusOr<ServerSecurity> LoadServerSecurity(const SecurityFlags& flags) {
  if (flags.tls.cert.empty() || flags.tls.key.empty() || flags.tls.ca.empty()) {
    return absl::InvalidArgumentError(
        "TLS is required: --tls-cert, --tls-key and --tls-ca (deploy/local/pki makes local ones)");
  }
  absl::StatusOr<std::string> cert = ReadPem(flags.tls.cert, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(flags.tls.key, "--tls-key");
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> ca = ReadPem(flags.tls.ca, "--tls-ca");
  if (!ca.ok()) return ca.status();
  grpc::SslServerCredentialsOptions options(
      // A certificate, when the client presents one, must be signed by our authority; a client
      // without one (a token user, a health probe) still gets a TLS connection.
      GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = *ca;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  absl::StatusOr<std::shared_ptr<TlsAuthenticator>> authenticator =
      TlsAuthenticator::Create(flags.tokens);
  if (!authenticator.ok()) return authenticator.status();
  return ServerSecurity{grpc::SslServerCredentials(options), *authenticator};
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const TlsFiles& files) {
  grpc::SslCredentialsOptions options;
  absl::StatusOr<std::string> ca = ReadPem(files.ca, "CA certificate");
  if (!ca.ok()) return ca.status();
  options.pem_root_certs = *ca;
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError(
        "a client certificate needs its key (and the other way round)");
  }
  if (!files.cert.empty()) {
    absl::StatusOr<std::string> cert = ReadPem(files.cert, "client certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(files.key, "client key");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

}  // namespace schakel::service
