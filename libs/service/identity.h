// Who is calling. The identity comes from how the call arrived, never from the request: the TLS
// client certificate (mTLS), or a bearer token for partners that cannot do mTLS (tokens are known
// to the service only as SHA-256 hashes). A service asks Identify(context); main sets the process's
// authenticator once (UseAuthenticator), from its TLS configuration (libs/service/security.h).
//
// Certificates name their holder in the common name: "<id>.organisation.schakel" for a partner
// organisation, "<name>.operator.schakel" for an operator, "<name>.service.schakel" for one of
// Schakel's own services (deploy/local/pki makes them).
#pragma once

#include <grpcpp/server_context.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace schakel::service {

struct Caller {
  enum class Kind { kNobody, kOrganisation, kOperator, kService };
  Kind kind = Kind::kNobody;
  std::string id;  // the organisation's id, the operator's or the service's name
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  virtual Caller Identify(const grpc::ServerContextBase& context) const = 0;
};

// Sets the authenticator of this process (main, once; unit tests their fake). Without one, every
// caller is nobody: the services refuse the call (UNAUTHENTICATED).
void UseAuthenticator(std::shared_ptr<const Authenticator> authenticator);
Caller Identify(const grpc::ServerContextBase& context);
// The calling organisation's id, or empty when the caller is not an organisation.
std::string CallerOrganisation(const grpc::ServerContextBase& context);

// The holder a certificate's common name names; kNobody for any other name.
Caller CallerFromCommonName(std::string_view common_name);
// The common name of a certificate for `caller` (the inverse of CallerFromCommonName).
std::string CommonNameOf(const Caller& caller);

// Identities from the TLS connection: the verified client certificate, else a bearer token
// ("authorization: Bearer <token>") whose SHA-256 is in the tokens file.
class TlsAuthenticator final : public Authenticator {
 public:
  // The tokens file holds lines "<organisation id> <sha-256 of the token, 64 hex>"; '#' starts a
  // comment. Empty path: no tokens accepted.
  static absl::StatusOr<std::shared_ptr<TlsAuthenticator>> Create(const std::string& tokens_file);
  Caller Identify(const grpc::ServerContextBase& context) const override;

  // The hash a tokens file holds for `token` (64 hex).
  static std::string TokenHash(std::string_view token);

 private:
  struct Token {
    std::string organisation;
    std::array<unsigned char, 32> hash{};
  };
  std::vector<Token> tokens_;
};

}  // namespace schakel::service
