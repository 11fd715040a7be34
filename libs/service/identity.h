// Who is calling. For now an organisation names itself in the `x-schakel-organisation` metadata
// header; the privacy issue replaces this with identities from TLS client certificates or bearer
// tokens, behind this same function, so that services never read identity from a request field.
#pragma once

#include <grpcpp/server_context.h>

#include <string>

namespace schakel::service {

inline constexpr char kOrganisationHeader[] = "x-schakel-organisation";

// The calling organisation's id, or empty when the call carries none.
std::string CallerOrganisation(const grpc::ServerContextBase& context);

}  // namespace schakel::service
