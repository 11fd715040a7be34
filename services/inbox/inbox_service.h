// InboxService: serves one organisation's assignments from its own database over gRPC (callback
// API), and lets that organisation work them through their lifecycle. SQLite is fast, so every
// unary reactor finishes at once; each change is stored with its event in one transaction (the
// outbox relay publishes it). WatchAssignments streams the store's changes feed without a thread
// per stream: it writes one change at a time and, once caught up, waits for the store to say that
// something was committed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "libs/referral/lifecycle.h"
#include "libs/routing/network.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "services/inbox/store/inbox_store.h"
#include "services/inbox/transition.h"

namespace schakel::inbox {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 500;

struct InboxServiceOptions {
  Clock clock = SystemNow;
  // How many changes a watch reads from the store at a time.
  int watch_batch = 100;
  // Called after a read was recorded in the store's audit queue (e.g. to wake the audit writer).
  std::function<void()> audit_recorded = nullptr;
};

class InboxService final : public schakel::v1::InboxService::CallbackService {
 public:
  // `store` and `network` must outlive the service (and the server it is registered with).
  InboxService(std::string organisation, store::InboxStore& store, const routing::Network& network,
               InboxServiceOptions options = {});
  // Stops listening to the store. The server must be shut down first: every watch has ended.
  ~InboxService() override;

  InboxService(const InboxService&) = delete;
  InboxService& operator=(const InboxService&) = delete;

  grpc::ServerUnaryReactor* ListAssignments(
      grpc::CallbackServerContext* context, const schakel::v1::ListAssignmentsRequest* request,
      schakel::v1::ListAssignmentsResponse* response) override;
  grpc::ServerUnaryReactor* GetAssignment(grpc::CallbackServerContext* context,
                                          const schakel::v1::GetAssignmentRequest* request,
                                          schakel::v1::Assignment* response) override;

  // The owner's lifecycle actions. Only this inbox's organisation may call them (UNAUTHENTICATED
  // without an identity, PERMISSION_DENIED for another organisation, before anything is looked
  // up). INVALID_ARGUMENT without assignment_id or expected_version, NOT_FOUND, ABORTED when the
  // assignment changed since expected_version, FAILED_PRECONDITION for a step the lifecycle does
  // not allow. The answer is the assignment as stored.
  grpc::ServerUnaryReactor* Accept(grpc::CallbackServerContext* context,
                                   const schakel::v1::ChangeAssignmentRequest* request,
                                   schakel::v1::Assignment* response) override;
  grpc::ServerUnaryReactor* Decline(grpc::CallbackServerContext* context,
                                    const schakel::v1::ChangeAssignmentRequest* request,
                                    schakel::v1::Assignment* response) override;
  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* context,
                                  const schakel::v1::ChangeAssignmentRequest* request,
                                  schakel::v1::Assignment* response) override;
  grpc::ServerUnaryReactor* PutOnHold(grpc::CallbackServerContext* context,
                                      const schakel::v1::ChangeAssignmentRequest* request,
                                      schakel::v1::Assignment* response) override;
  grpc::ServerUnaryReactor* Resume(grpc::CallbackServerContext* context,
                                   const schakel::v1::ChangeAssignmentRequest* request,
                                   schakel::v1::Assignment* response) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* context,
                                     const schakel::v1::ChangeAssignmentRequest* request,
                                     schakel::v1::Assignment* response) override;
  grpc::ServerUnaryReactor* Fail(grpc::CallbackServerContext* context,
                                 const schakel::v1::ChangeAssignmentRequest* request,
                                 schakel::v1::Assignment* response) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* context,
                                   const schakel::v1::ChangeAssignmentRequest* request,
                                   schakel::v1::Assignment* response) override;
  // Also FAILED_PRECONDITION when the target is unknown, this organisation, does not serve the
  // need, does not cover the region or is outside the client's sharing permission.
  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* context,
                                    const schakel::v1::ForwardAssignmentRequest* request,
                                    schakel::v1::Assignment* response) override;

  // Same identity rule as the actions: the stream carries the assignments' contents.
  grpc::ServerWriteReactor<schakel::v1::AssignmentChange>* WatchAssignments(
      grpc::CallbackServerContext* context,
      const schakel::v1::WatchAssignmentsRequest* request) override;

  // Ends every open watch with UNAVAILABLE (the client resumes elsewhere or later from its last
  // sequence) and refuses new ones. Call before Server::Shutdown, which would otherwise wait for
  // the watches until its deadline.
  void StopWatches() ABSL_LOCKS_EXCLUDED(watches_mu_);

  const std::string& organisation() const { return organisation_; }

 private:
  class WatchReactor;

  // PERMISSION_DENIED / UNAUTHENTICATED unless the caller is this inbox's organisation.
  absl::Status CheckCaller(const grpc::CallbackServerContext& context) const;
  // Records a read of personal data in the audit queue (durable before the answer goes out);
  // UNAVAILABLE when it cannot be recorded: nothing is read unrecorded.
  absl::Status RecordRead(const grpc::CallbackServerContext& context, std::string_view action,
                          std::string_view method,
                          const google::protobuf::RepeatedPtrField<schakel::v1::Assignment>& read);
  absl::Status RecordRead(const std::string& organisation, std::string_view action,
                          std::string_view method,
                          std::vector<const schakel::v1::Assignment*> read);
  grpc::ServerUnaryReactor* ChangeStatus(grpc::CallbackServerContext* context,
                                         std::string_view method,
                                         const schakel::v1::ChangeAssignmentRequest& request,
                                         schakel::v1::AssignmentStatus to,
                                         schakel::v1::Assignment* response);
  // Applies `step` (its `at` filled in here) to the assignment and answers with the result.
  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* context, std::string_view method,
                                  const std::string& assignment_id, std::uint64_t expected_version,
                                  Step step, schakel::v1::Assignment* response);

  void NotifyWatches() ABSL_LOCKS_EXCLUDED(watches_mu_);
  // From a reactor's OnDone: it is about to be deleted.
  void Forget(WatchReactor* reactor) ABSL_LOCKS_EXCLUDED(watches_mu_);

  std::string organisation_;
  store::InboxStore& store_;
  const routing::Network& network_;
  InboxServiceOptions options_;

  // Guards the set of open watches: a reactor is notified only while it is in the set, and leaves
  // it (under this mutex) before it is deleted.
  absl::Mutex watches_mu_;
  std::set<WatchReactor*> watches_ ABSL_GUARDED_BY(watches_mu_);
  bool watches_stopped_ ABSL_GUARDED_BY(watches_mu_) = false;
  // Last, so that it is unsubscribed first on destruction.
  store::InboxStore::Subscription subscription_;
};

}  // namespace schakel::inbox
