#include "libs/privacy/key_client.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"

namespace schakel::privacy {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat("key service: ", status.error_message());
  switch (status.error_code()) {
    case grpc::StatusCode::FAILED_PRECONDITION:
      return absl::FailedPreconditionError(message);
    case grpc::StatusCode::PERMISSION_DENIED:
    case grpc::StatusCode::UNAUTHENTICATED:
      return absl::PermissionDeniedError(message);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return absl::InvalidArgumentError(message);
    case grpc::StatusCode::NOT_FOUND:
      return absl::NotFoundError(message);
    default:
      return absl::UnavailableError(message);
  }
}

}  // namespace

namespace {

// One asynchronous call that answers a DataKey; `call_method` starts it on the stub's async API.
// The call lives until its callback has run.
template <typename Request, typename CallMethod>
void CallForKey(Request request, std::chrono::system_clock::time_point deadline,
                KeyClient::Done done, CallMethod call_method) {
  struct Call {
    grpc::ClientContext context;
    Request request;
    v1::DataKey response;
    KeyClient::Done done;
  };
  auto* call = new Call();
  call->context.set_deadline(deadline);
  call->request = std::move(request);
  call->done = std::move(done);
  call_method(&call->context, &call->request, &call->response, [call](grpc::Status status) {
    std::unique_ptr<Call> owned(call);
    if (!status.ok()) {
      owned->done(FromGrpc(status));
    } else {
      owned->done(std::move(owned->response));
    }
  });
}

}  // namespace

void KeyClient::ClientKey(const std::string& client_pseudonym, const std::string& referral_id,
                          const v1::SharingPermission* sharing,
                          std::chrono::system_clock::time_point deadline, Done done) {
  v1::ClientKeyRequest request;
  request.set_client_pseudonym(client_pseudonym);
  request.set_referral_id(referral_id);
  if (sharing != nullptr) *request.mutable_sharing() = *sharing;
  CallForKey(std::move(request), deadline, std::move(done), [this](auto&&... args) {
    stub_->async()->ClientKey(std::forward<decltype(args)>(args)...);
  });
}

void KeyClient::ReferralKey(const std::string& referral_id, const std::string& key_id,
                            std::chrono::system_clock::time_point deadline, Done done) {
  v1::ReferralKeyRequest request;
  request.set_referral_id(referral_id);
  request.set_key_id(key_id);
  CallForKey(std::move(request), deadline, std::move(done), [this](auto&&... args) {
    stub_->async()->ReferralKey(std::forward<decltype(args)>(args)...);
  });
}

absl::StatusOr<v1::DataKey> KeyClient::AssignmentKey(const std::string& assignment_id,
                                                     const std::string& key_id) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout_);
  v1::AssignmentKeyRequest request;
  request.set_assignment_id(assignment_id);
  request.set_key_id(key_id);
  v1::DataKey key;
  const grpc::Status status = stub_->AssignmentKey(&context, request, &key);
  if (!status.ok()) return FromGrpc(status);
  return key;
}

std::vector<absl::StatusOr<v1::DataKey>> AssignmentKeySource::AssignmentKeys(
    std::span<const AssignmentKeyAsk> asks) {
  std::vector<absl::StatusOr<v1::DataKey>> keys;
  keys.reserve(asks.size());
  for (const AssignmentKeyAsk& ask : asks)
    keys.push_back(AssignmentKey(ask.assignment_id, ask.key_id));
  return keys;
}

std::vector<absl::StatusOr<v1::DataKey>> KeyClient::AssignmentKeys(
    std::span<const AssignmentKeyAsk> asks) {
  struct Call {
    grpc::ClientContext context;
    v1::AssignmentKeyRequest request;
    v1::DataKey response;
    grpc::Status status;
  };
  std::vector<Call> calls(asks.size());
  // Each callback writes its own Call only, then counts down; Wait makes those writes visible here.
  absl::BlockingCounter left(static_cast<int>(asks.size()));
  const auto deadline = std::chrono::system_clock::now() + timeout_;
  for (std::size_t i = 0; i < asks.size(); ++i) {
    Call& call = calls[i];
    call.context.set_deadline(deadline);
    call.request.set_assignment_id(asks[i].assignment_id);
    call.request.set_key_id(asks[i].key_id);
    stub_->async()->AssignmentKey(&call.context, &call.request, &call.response,
                                  [&call, &left](grpc::Status status) {
                                    call.status = std::move(status);
                                    left.DecrementCount();
                                  });
  }
  // Every callback runs exactly once (at the latest at the deadline), so this wait ends.
  left.Wait();
  std::vector<absl::StatusOr<v1::DataKey>> keys;
  keys.reserve(asks.size());
  for (Call& call : calls) {
    if (call.status.ok()) {
      keys.push_back(std::move(call.response));
    } else {
      keys.push_back(FromGrpc(call.status));
    }
  }
  return keys;
}

}  // namespace schakel::privacy
