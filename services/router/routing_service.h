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
  explicit RoutingService(PolicySource policy) : policy_(std::move(policy)) {}

  grpc::ServerUnaryReactor* ExplainRoute(grpc::CallbackServerContext* context,
                                         const v1::ExplainRouteRequest* request,
                                         v1::ExplainRouteResponse* response) override;

 private:
  PolicySource policy_;
};

}  // namespace schakel::router
