#include "services/intake/intake_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <mutex>

#include "libs/referral/ids.h"
#include "libs/service/server.h"

namespace schakel::intake {
namespace {

// Stands in for Kafka behind our own Publisher interface: records what was published and answers
// with a chosen delivery outcome.
class FakePublisher final : public kafka::Publisher {
 public:
  struct Published {
    std::string topic, key, value;
  };

  void Publish(std::string_view topic, std::string_view key, std::string_view value,
               Done done) override {
    {
      std::lock_guard lock(mu_);
      published_.push_back({std::string(topic), std::string(key), std::string(value)});
    }
    done(outcome_);
  }
  bool Reachable() const override { return reachable_; }

  std::vector<Published> published() {
    std::lock_guard lock(mu_);
    return published_;
  }

  bool reachable_ = true;
  absl::Status outcome_;

 private:
  std::mutex mu_;
  std::vector<Published> published_;
};

constexpr char kKey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

class IntakeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
    ASSERT_TRUE(net.ok()) << net.status();
    network_ = *net;
    service_ = std::make_unique<IntakeService>(network_, pseudonymiser_, publisher_);
    absl::StatusOr<service::RunningServer> server =
        service::StartServer("127.0.0.1:0", {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::IntakeService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_.port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_.server->Shutdown(); }

  grpc::Status Submit(const v1::Referral& referral, v1::SubmitReferralResponse* response,
                      const std::string& organisation = "mjd") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!organisation.empty()) context.AddMetadata("x-schakel-organisation", organisation);
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = referral;
    return stub_->SubmitReferral(&context, request, response);
  }

  static v1::Referral Seed() {
    v1::Referral r;
    r.mutable_client()->set_bsn("111222333");
    r.add_needs()->set_code("debt");
    r.add_needs()->set_code("income");
    r.add_needs()->set_code("housing");
    r.set_urgency(v1::URGENCY_NORMAL);
    r.set_region("groningen-stad");
    r.add_languages("nl");
    r.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
    for (const char* org : {"gemeente", "leger-des-heils", "mjd"})
      r.mutable_sharing()->add_organisations(org);
    return r;
  }

  routing::Network network_;
  privacy::Pseudonymiser pseudonymiser_ = *privacy::Pseudonymiser::FromHexKey(kKey);
  FakePublisher publisher_;
  std::unique_ptr<IntakeService> service_;
  service::RunningServer server_;
  std::unique_ptr<v1::IntakeService::Stub> stub_;
};

TEST_F(IntakeServiceTest, PublishesOnePseudonymisedEventAndAnswersWithIds) {
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(Seed(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(publisher_.published().size(), 1u);
  const FakePublisher::Published p = publisher_.published()[0];
  EXPECT_EQ(p.topic, "schakel.referrals.submitted");
  EXPECT_EQ(p.key, response.referral_id());
  EXPECT_EQ(p.value.find("111222333"), std::string::npos) << "the BSN must not leave intake";

  v1::ReferralSubmitted event;
  ASSERT_TRUE(event.ParseFromString(p.value));
  EXPECT_EQ(event.meta().schema_version(), 1u);
  EXPECT_EQ(event.meta().referral_id(), response.referral_id());
  EXPECT_EQ(event.referring_organisation(), "mjd");
  EXPECT_EQ(event.client_pseudonym(), pseudonymiser_.ForBsn("111222333"));
  ASSERT_EQ(event.needs_size(), 3);
  EXPECT_EQ(event.needs(2).code(), "housing");
  ASSERT_EQ(response.assignment_ids_size(), 3);
  EXPECT_EQ(response.assignment_ids(1), referral::AssignmentId(response.referral_id(), 1));
}

TEST_F(IntakeServiceTest, InvalidReferralIsRefusedAndNothingPublished) {
  v1::Referral r = Seed();
  r.mutable_needs(1)->set_code("yoga");
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(r, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "referral.needs[1].code: unknown need 'yoga'");
  EXPECT_TRUE(publisher_.published().empty());
}

TEST_F(IntakeServiceTest, NoSharingPermissionIsRefused) {
  v1::Referral r = Seed();
  r.clear_sharing();
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(r, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "referral.sharing: the client's sharing permission is required");
  EXPECT_TRUE(publisher_.published().empty());
}

TEST_F(IntakeServiceTest, CallerMustNameAKnownOrganisation) {
  v1::SubmitReferralResponse response;
  EXPECT_EQ(Submit(Seed(), &response, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Submit(Seed(), &response, "cjib").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(publisher_.published().empty());
}

TEST_F(IntakeServiceTest, UnreachableKafkaIsUnavailableAndNothingIsQueued) {
  publisher_.reachable_ = false;
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(Seed(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(publisher_.published().empty());
  EXPECT_TRUE(response.referral_id().empty());
}

TEST_F(IntakeServiceTest, FailedDeliveryIsUnavailableWithoutAnId) {
  publisher_.outcome_ =
      absl::UnavailableError("Kafka did not acknowledge the event: Local: Message timed out");
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(Seed(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the referral was not submitted: Kafka did not acknowledge the event: Local: Message "
            "timed out");
  EXPECT_TRUE(response.referral_id().empty());
}

TEST_F(IntakeServiceTest, ClientCodeIsPseudonymisedPerReferrer) {
  v1::Referral r = Seed();
  r.mutable_client()->clear_bsn();
  r.mutable_client()->set_client_code("TW-0413");
  v1::SubmitReferralResponse response;
  ASSERT_TRUE(Submit(r, &response, "ggd").ok());
  v1::ReferralSubmitted event;
  ASSERT_TRUE(event.ParseFromString(publisher_.published().at(0).value));
  EXPECT_EQ(event.client_pseudonym(), pseudonymiser_.ForClientCode("ggd", "TW-0413"));
  EXPECT_EQ(publisher_.published()[0].value.find("TW-0413"), std::string::npos);
}

}  // namespace
}  // namespace schakel::intake
