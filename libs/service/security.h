// TLS for every gRPC server and client of Schakel. A server presents its certificate, asks the
// client for one and verifies it against the network's certificate authority when given (mTLS);
// a client without one may still call with a bearer token. Plaintext only where a test builds its
// own in-process server.
//
//   --tls-cert FILE --tls-key FILE   this service's certificate and key (PEM)
//   --tls-ca FILE                    the certificate authority that signs clients' certificates
//   --tokens FILE                    organisations' bearer tokens, as SHA-256 hashes (optional)
#pragma once

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "libs/service/identity.h"

namespace CLI {
class App;
}

namespace schakel::service {

struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
};

struct SecurityFlags {
  TlsFiles tls;
  std::string tokens;
};
// Adds --tls-cert, --tls-key, --tls-ca and --tokens to a service's command line (LoadServerSecurity
// requires the first three).
void AddSecurityFlags(CLI::App& app, SecurityFlags& flags);

// Adds --audit-signing-key: the Ed25519 private key (PEM) a service signs its audit chain's
// entries with (audit::LoadSigningKey reads it). Optional: without it the entries go unsigned.
void AddAuditSigningKeyFlag(CLI::App& app, std::string& path);

struct ServerSecurity {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::shared_ptr<TlsAuthenticator> authenticator;
};
// Reads the files; INVALID_ARGUMENT / NOT_FOUND naming the file that is wrong.
absl::StatusOr<ServerSecurity> LoadServerSecurity(const SecurityFlags& flags);

// For clients: verifies servers against `files.ca`; presents `files.cert`/`files.key` when given
// (both or neither).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const TlsFiles& files);

// The whole file, or NOT_FOUND naming it.
absl::StatusOr<std::string> ReadPem(const std::string& path, const std::string& what);

}  // namespace schakel::service
