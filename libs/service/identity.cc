#include "libs/service/identity.h"

namespace schakel::service {

std::string CallerOrganisation(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(kOrganisationHeader);
  if (it == metadata.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

}  // namespace schakel::service
