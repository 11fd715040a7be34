#include "tools/schakelctl/rpc.h"

#include <chrono>

#include "tools/schakelctl/common.h"

namespace schakel::ctl {

std::unique_ptr<grpc::ClientContext> CallContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + kDeadline);
  return context;
}

int RpcFail(const std::string& what, const std::string& address, const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(what + ": cannot reach the service at " + address + " (" + status.error_message() +
                ")");
  }
  return Fail(what + ": " + status.error_message());
}

}  // namespace schakel::ctl
