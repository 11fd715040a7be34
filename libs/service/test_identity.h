// For unit tests only: the caller names itself in a metadata header, so that a test can call a
// service class through a plaintext in-process server as any organisation. Never used by a service
// binary (they identify callers by TLS client certificate or bearer token: identity.h).
#pragma once

#include "libs/service/identity.h"

namespace schakel::service {

inline constexpr char kTestOrganisationHeader[] = "x-schakel-test-organisation";
inline constexpr char kTestOperatorHeader[] = "x-schakel-test-operator";
inline constexpr char kTestServiceHeader[] = "x-schakel-test-service";

class HeaderAuthenticatorForTests final : public Authenticator {
 public:
  Caller Identify(const grpc::ServerContextBase& context) const override {
    const auto& metadata = context.client_metadata();
    if (auto it = metadata.find(kTestOrganisationHeader); it != metadata.end()) {
      return {Caller::Kind::kOrganisation, std::string(it->second.data(), it->second.size())};
    }
    if (auto it = metadata.find(kTestOperatorHeader); it != metadata.end()) {
      return {Caller::Kind::kOperator, std::string(it->second.data(), it->second.size())};
    }
    if (auto it = metadata.find(kTestServiceHeader); it != metadata.end()) {
      return {Caller::Kind::kService, std::string(it->second.data(), it->second.size())};
    }
    return {};
  }
};

}  // namespace schakel::service
