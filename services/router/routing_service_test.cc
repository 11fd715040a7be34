#include "services/router/routing_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "libs/service/server.h"
#include "libs/service/test_identity.h"

namespace schakel::router {
namespace {

class RoutingServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
    ASSERT_TRUE(net.ok()) << net.status();
    policy_ = std::make_shared<const routing::Policy>(*net);
    service_ = std::make_unique<RoutingService>([this] { return policy_; });
    service::UseAuthenticator(std::make_shared<service::HeaderAuthenticatorForTests>());
    absl::StatusOr<service::RunningServer> server =
        service::StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::RoutingService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_.port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_.server->Shutdown(); }

  grpc::Status Explain(const v1::Referral& referral, v1::ExplainRouteResponse* response,
                       const std::string& as = "terwille") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!as.empty()) context.AddMetadata(service::kTestOrganisationHeader, as);
    v1::ExplainRouteRequest request;
    *request.mutable_referral() = referral;
    return stub_->ExplainRoute(&context, request, response);
  }

  std::shared_ptr<const routing::Policy> policy_;
  std::unique_ptr<RoutingService> service_;
  service::RunningServer server_;
  std::unique_ptr<v1::RoutingService::Stub> stub_;
};

v1::Referral Referral() {
  v1::Referral r;
  r.mutable_client()->set_client_code("C-1");
  r.add_needs()->set_code("shelter");
  r.add_needs()->set_code("income");
  r.set_urgency(v1::URGENCY_URGENT);
  r.set_region("groningen-ommeland");
  r.mutable_sharing()->set_basis(v1::SHARING_BASIS_VITAL_INTEREST);
  for (const char* org : {"gemeente", "terwille"}) r.mutable_sharing()->add_organisations(org);
  return r;
}

TEST_F(RoutingServiceTest, ExplainsEachNeed) {
  v1::ExplainRouteResponse response;
  ASSERT_TRUE(Explain(Referral(), &response).ok());
  ASSERT_EQ(response.routes_size(), 2);
  // Leger des Heils comes first for shelter but is outside the permission; Terwille takes it.
  EXPECT_EQ(response.routes(0).need_code(), "shelter");
  EXPECT_EQ(response.routes(0).organisation(), "terwille");
  // Income: only the municipality serves it, and not outside the city.
  EXPECT_EQ(response.routes(1).organisation(), "");
  bool explained = false;
  for (const v1::PassedOver& p : response.routes(1).passed_over()) {
    if (p.organisation() == "gemeente") {
      EXPECT_EQ(p.reason(), "does not cover region 'groningen-ommeland'");
      explained = true;
    }
  }
  EXPECT_TRUE(explained);
}

TEST_F(RoutingServiceTest, InvalidReferralIsRefusedLikeIntakeDoes) {
  v1::Referral r = Referral();
  r.set_region("utrecht");
  v1::ExplainRouteResponse response;
  grpc::Status status = Explain(r, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "referral.region: unknown region 'utrecht'");
}

TEST_F(RoutingServiceTest, NobodyUnknownGetsAnExplanation) {
  v1::ExplainRouteResponse response;
  const grpc::Status status = Explain(Referral(), &response, /*as=*/"");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status.error_message(), "no client certificate or bearer token of the network");
  EXPECT_EQ(response.routes_size(), 0);
}

}  // namespace
}  // namespace schakel::router
