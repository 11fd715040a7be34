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
#include "libs/service/security_flags.h"

namespace schakel::service {

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
