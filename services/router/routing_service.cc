#include "services/router/routing_service.h"

#include "libs/referral/validation.h"
#include "libs/service/identity.h"
#include "libs/service/status.h"

namespace schakel::router {

grpc::ServerUnaryReactor* RoutingService::ExplainRoute(grpc::CallbackServerContext* context,
                                                       const v1::ExplainRouteRequest* request,
                                                       v1::ExplainRouteResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Any organisation or operator of the network may ask (an explanation holds no personal data).
  if (service::Identify(*context).kind == service::Caller::Kind::kNobody) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                 "no client certificate or bearer token of the network"));
    return reactor;
  }
  if (!request->has_referral()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "referral: is required"));
    return reactor;
  }
  const v1::Referral& referral = request->referral();
  const std::shared_ptr<const routing::Policy> policy = policy_();
  // The same checks as intake, so an explanation never covers a referral intake would refuse.
  if (absl::Status valid = referral::ValidateReferral(referral, policy->network()); !valid.ok()) {
    reactor->Finish(service::ToGrpc(valid));
    return reactor;
  }
  routing::RouteRequest route;
  route.region = referral.region();
  route.languages.assign(referral.languages().begin(), referral.languages().end());
  for (const v1::NeedRequest& need : referral.needs()) route.need_codes.push_back(need.code());
  route.sharing_organisations.assign(referral.sharing().organisations().begin(),
                                     referral.sharing().organisations().end());
  if (load_) route.open_assignments = load_();
  route.explain = true;  // every organisation's reason, also for the needs that can be routed
  for (const routing::NeedDecision& decision : policy->Decide(route)) {
    v1::NeedRoute* out = response->add_routes();
    out->set_need_code(decision.need_code);
    out->set_organisation(decision.organisation);
    for (const routing::PassedOver& p : decision.passed_over) {
      v1::PassedOver* passed = out->add_passed_over();
      passed->set_organisation(p.organisation);
      passed->set_reason(p.reason);
    }
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace schakel::router
