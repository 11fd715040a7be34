// RoutingService.ExplainRoute: where a referral would go, and why not elsewhere, without submitting
// it.
#pragma once

#include <functional>
#include <memory>

#include "libs/routing/policy.h"
#include "schakel/v1/routing.grpc.pb.h"

namespace schakel::router {

class RoutingService final : public v1::RoutingService::CallbackService {
 public:
  using PolicySource = std::function<std::shared_ptr<const routing::Policy>()>;
  using LoadSource = std::function<routing::OpenAssignments()>;
  explicit RoutingService(PolicySource policy, LoadSource load = nullptr)
      : policy_(std::move(policy)), load_(std::move(load)) {}

  grpc::ServerUnaryReactor* ExplainRoute(grpc::CallbackServerContext* context,
                                         const v1::ExplainRouteRequest* request,
                                         v1::ExplainRouteResponse* response) override;

 private:
  PolicySource policy_;
  LoadSource load_;
};

}  // namespace schakel::router
