// Asking the key service (services/keys) for a client's data key: intake to seal, an inbox to open.
// Services depend on the two small interfaces, so unit tests can give them a fake; KeyClient is the
// real one, over a TLS channel that presents the calling service's certificate.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "schakel/v1/keys.grpc.pb.h"

namespace schakel::privacy {

class ClientKeySource {
 public:
  using Done = std::function<void(absl::StatusOr<v1::DataKey>)>;
  virtual ~ClientKeySource() = default;
  // The client's current key (made on first use) for sealing `referral_id`'s personal data. With
  // `sharing`, the referral's sharing permission: the key service records it and hands the key to
  // no organisation outside it. Required for a new referral; nullptr only when asking again for a
  // referral the key service already has (INVALID_ARGUMENT otherwise). Calls `done` exactly once,
  // on any thread; UNAVAILABLE when the key service does not answer by `deadline`.
  virtual void ClientKey(const std::string& client_pseudonym, const std::string& referral_id,
                         const v1::SharingPermission* sharing,
                         std::chrono::system_clock::time_point deadline, Done done) = 0;
  // The key `key_id` of the client of `referral_id` (to open, for the referring organisation, what
  // the owners wrote sealed about its assignments). Calls `done` exactly once, on any thread:
  // FAILED_PRECONDITION when the client was erased; PERMISSION_DENIED when `key_id` is not that
  // client's; UNAVAILABLE when the key service does not answer by `deadline`.
  virtual void ReferralKey(const std::string& referral_id, const std::string& key_id,
                           std::chrono::system_clock::time_point deadline, Done done) = 0;
};

// One key an organisation asks for: the key `key_id` of its assignment `assignment_id`.
struct AssignmentKeyAsk {
  std::string assignment_id;
  std::string key_id;
};

class AssignmentKeySource {
 public:
  virtual ~AssignmentKeySource() = default;
  // The key `key_id` of an assignment offered to the caller. FAILED_PRECONDITION when the client
  // was erased; PERMISSION_DENIED when it is not the caller's; NOT_FOUND when the key service never
  // made that key; UNAVAILABLE when the key service does not answer (try again later).
  virtual absl::StatusOr<v1::DataKey> AssignmentKey(const std::string& assignment_id,
                                                    const std::string& key_id) = 0;
  // The keys of several assignments, one answer per ask, in order, each as AssignmentKey answers.
  // Asks one at a time here; KeyClient asks for all of them at once (the key service records every
  // hand-out in its audit chain before answering, and answers what arrives together after one
  // audit commit: an inbox opening a batch of offers waits for about one commit, not one each).
  virtual std::vector<absl::StatusOr<v1::DataKey>> AssignmentKeys(
      std::span<const AssignmentKeyAsk> asks);
};

class KeyClient final : public ClientKeySource, public AssignmentKeySource {
 public:
  explicit KeyClient(const std::shared_ptr<grpc::Channel>& channel,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : stub_(v1::KeyService::NewStub(channel)), timeout_(timeout) {}

  void ClientKey(const std::string& client_pseudonym, const std::string& referral_id,
                 const v1::SharingPermission* sharing,
                 std::chrono::system_clock::time_point deadline, Done done) override;
  void ReferralKey(const std::string& referral_id, const std::string& key_id,
                   std::chrono::system_clock::time_point deadline, Done done) override;
  absl::StatusOr<v1::DataKey> AssignmentKey(const std::string& assignment_id,
                                            const std::string& key_id) override;
  // Every ask as its own call, all in flight at once (each with the client's timeout).
  std::vector<absl::StatusOr<v1::DataKey>> AssignmentKeys(
      std::span<const AssignmentKeyAsk> asks) override;

 private:
  std::unique_ptr<v1::KeyService::Stub> stub_;
  std::chrono::milliseconds timeout_;
};

}  // namespace schakel::privacy
