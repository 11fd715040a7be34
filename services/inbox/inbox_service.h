// InboxService: serves one organisation's assignments from its own database over gRPC (callback
// API). Reads from SQLite are fast, so every reactor finishes at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "libs/store/store.h"
#include "schakel/v1/inbox.grpc.pb.h"

namespace schakel::inbox {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 500;

class InboxService final : public schakel::v1::InboxService::CallbackService {
 public:
  // `store` must outlive the service (and the server it is registered with).
  InboxService(std::string organisation, store::InboxStore& store);

  grpc::ServerUnaryReactor* ListAssignments(
      grpc::CallbackServerContext* context, const schakel::v1::ListAssignmentsRequest* request,
      schakel::v1::ListAssignmentsResponse* response) override;
  grpc::ServerUnaryReactor* GetAssignment(grpc::CallbackServerContext* context,
                                          const schakel::v1::GetAssignmentRequest* request,
                                          schakel::v1::Assignment* response) override;

  const std::string& organisation() const { return organisation_; }

 private:
  std::string organisation_;
  store::InboxStore& store_;
};

}  // namespace schakel::inbox
