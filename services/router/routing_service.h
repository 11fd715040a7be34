// RoutingService.ExplainRoute: where a referral would go, and why not elsewhere, without submitting
// it.
#pragma once

#include "libs/routing/policy.h"
#include "schakel/v1/routing.grpc.pb.h"

namespace schakel::router {

class RoutingService final : public v1::RoutingService::CallbackService {
 public:
  explicit RoutingService(const routing::Policy& policy) : policy_(policy) {}

  grpc::ServerUnaryReactor* ExplainRoute(grpc::CallbackServerContext* context,
                                         const v1::ExplainRouteRequest* request,
                                         v1::ExplainRouteResponse* response) override;

 private:
  const routing::Policy& policy_;
};

}  // namespace schakel::router
