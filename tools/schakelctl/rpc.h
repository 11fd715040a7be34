// What the commands that call a Schakel service over gRPC share: a deadline on every call, and how
// a failed call is told (an unreachable service is named with its address).
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

namespace schakel::ctl {

// A client context whose deadline is kDeadline from now.
std::unique_ptr<grpc::ClientContext> CallContext();

// Fail for a failed call of `what` to the service at `address`.
int RpcFail(const std::string& what, const std::string& address, const grpc::Status& status);

}  // namespace schakel::ctl
