// Asking the key service (services/keys) for a client's data key: intake to seal, an inbox to open.
// Services depend on the two small interfaces, so unit tests can give them a fake; KeyClient is the
// real one, over a TLS channel that presents the calling service's certificate.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "schakel/v1/keys.grpc.pb.h"

namespace schakel::privacy {

class ClientKeySource {
 public:
  using Done = std::function<void(absl::StatusOr<v1::DataKey>)>;
  virtual ~ClientKeySource() = default;
  // The client's current key (made on first use) for sealing `referral_id`'s personal data. Calls
  // `done` exactly once, on any thread; UNAVAILABLE when the key service does not answer by
  // `deadline`.
  virtual void ClientKey(const std::string& client_pseudonym, const std::string& referral_id,
                         std::chrono::system_clock::time_point deadline, Done done) = 0;
};

class AssignmentKeySource {
 public:
  virtual ~AssignmentKeySource() = default;
  // The key `key_id` of an assignment offered to the caller. FAILED_PRECONDITION when the client
  // was erased; PERMISSION_DENIED when it is not the caller's; UNAVAILABLE when the key service
  // does not answer (try again later).
  virtual absl::StatusOr<v1::DataKey> AssignmentKey(const std::string& assignment_id,
                                                    const std::string& key_id) = 0;
};

class KeyClient final : public ClientKeySource, public AssignmentKeySource {
 public:
  explicit KeyClient(const std::shared_ptr<grpc::Channel>& channel,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : stub_(v1::KeyService::NewStub(channel)), timeout_(timeout) {}

  void ClientKey(const std::string& client_pseudonym, const std::string& referral_id,
                 std::chrono::system_clock::time_point deadline, Done done) override;
  absl::StatusOr<v1::DataKey> AssignmentKey(const std::string& assignment_id,
                                            const std::string& key_id) override;

 private:
  std::unique_ptr<v1::KeyService::Stub> stub_;
  std::chrono::milliseconds timeout_;
};

}  // namespace schakel::privacy
