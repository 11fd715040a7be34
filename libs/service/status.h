// Errors are absl::Status values inside Schakel; at the gRPC edge they become grpc::Status with the
// same canonical code and message.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace schakel::service {

grpc::Status ToGrpc(const absl::Status& status);

}  // namespace schakel::service
