// KeyService (proto/schakel/v1/keys.proto): hands out clients' data keys to whoever may have them
// and destroys them on erasure. Intake gets a client's key to seal; an organisation gets the key of
// an assignment the router offered it (the grant comes from the router's offer on its status topic:
// GrantFollower), waiting a moment for that offer to arrive, and only when the client's sharing
// permission (which intake gave with ClientKey) names the organisation: the router's offer alone is
// not enough, so a router that offers outside the permission (a bug, a forged forward it took)
// opens nothing. An operator erases a client. Each
// hand-out of an assignment's key and each erasure is recorded in the audit chain "keys"
// (libs/audit) before the call is answered.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/audit/writer.h"
#include "libs/kafka/publisher.h"
#include "libs/routing/network.h"
#include "schakel/v1/keys.grpc.pb.h"
#include "services/keys/key_store.h"

namespace schakel::keys {

struct KeyServiceOptions {
  // How long AssignmentKey waits for an offer to reach the key service before refusing.
  std::chrono::milliseconds grant_wait{5000};
  // How often the waiting calls are checked again, besides at once when grants arrive.
  std::chrono::milliseconds recheck_every{50};
};

class KeyService final : public v1::KeyService::CallbackService {
 public:
  // `store`, `publisher` and `audit` outlive the service and every call in flight. With `audit`,
  // AssignmentKey hands a key out and EraseClient answers OK only once its audit entry is durable
  // (UNAVAILABLE otherwise); without, nothing is recorded.
  KeyService(KeyStore& store, kafka::Publisher& publisher, KeyServiceOptions options = {},
             audit::Recorder* audit = nullptr);
  // Refuses (UNAVAILABLE) the AssignmentKey calls still waiting.
  ~KeyService() override;

  grpc::ServerUnaryReactor* ClientKey(grpc::CallbackServerContext* context,
                                      const v1::ClientKeyRequest* request,
                                      v1::DataKey* response) override;
  grpc::ServerUnaryReactor* ReferralKey(grpc::CallbackServerContext* context,
                                        const v1::ReferralKeyRequest* request,
                                        v1::DataKey* response) override;
  grpc::ServerUnaryReactor* AssignmentKey(grpc::CallbackServerContext* context,
                                          const v1::AssignmentKeyRequest* request,
                                          v1::DataKey* response) override;
  grpc::ServerUnaryReactor* EraseClient(grpc::CallbackServerContext* context,
                                        const v1::EraseClientRequest* request,
                                        v1::EraseClientResponse* response) override;

  // New grants are stored (GrantFollower): the calls waiting for a grant are checked again now.
  void GrantsArrived() ABSL_LOCKS_EXCLUDED(mu_);

  // AssignmentKey calls refused because the assignment was offered to the caller outside the
  // client's recorded sharing permission (schakel_keys_refused_outside_sharing_total): each one
  // means the router offered what it must not have.
  std::uint64_t refused_outside_sharing() const { return refused_outside_sharing_.load(); }
  // Keys handed out for a referral with no sharing permission recorded (from before the key service
  // recorded them), on the offer alone (schakel_keys_sharing_unknown_total).
  std::uint64_t handed_out_sharing_unknown() const { return sharing_unknown_.load(); }

 private:
  // An AssignmentKey call waiting for its grant.
  struct Waiting {
    grpc::ServerUnaryReactor* reactor = nullptr;
    v1::DataKey* response = nullptr;
    std::string assignment_id{};
    std::string key_id{};
    std::string organisation{};
    std::chrono::system_clock::time_point give_up{};
  };
  // Answers `w` when the store decides (true), or leaves it waiting (false); refuses it when
  // `last_chance`.
  // Called under mu_, so that a grant stored meanwhile wakes the rechecker only after a call that
  // must wait is queued.
  bool TryAnswer(Waiting& w, bool last_chance) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecheckLoop() ABSL_LOCKS_EXCLUDED(mu_);

  // A ClientKey call waiting for the key writer. The writer takes every call that arrived
  // meanwhile and answers them after one transaction (KeyStore::ClientKeys): one write to disk for
  // the whole group instead of one per referral, and no gRPC thread waits for the disk.
  struct KeyCall {
    grpc::ServerUnaryReactor* reactor = nullptr;
    v1::DataKey* response = nullptr;
    KeyStore::KeyRequest request{};
  };
  void KeyWriterLoop() ABSL_LOCKS_EXCLUDED(key_mu_);

  KeyStore& store_;
  kafka::Publisher& publisher_;
  KeyServiceOptions options_;
  audit::Recorder* audit_;
  absl::Mutex mu_;
  std::list<Waiting> waiting_ ABSL_GUARDED_BY(mu_);
  bool recheck_now_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread rechecker_;
  absl::Mutex key_mu_;
  std::vector<KeyCall> key_calls_ ABSL_GUARDED_BY(key_mu_);
  bool key_writer_stopping_ ABSL_GUARDED_BY(key_mu_) = false;
  std::thread key_writer_;
  std::atomic<std::uint64_t> refused_outside_sharing_{0};
  std::atomic<std::uint64_t> sharing_unknown_{0};
};

}  // namespace schakel::keys
