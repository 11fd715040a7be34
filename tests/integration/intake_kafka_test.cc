// intake against a real broker: what it acknowledges is in Kafka exactly once; with the broker down
// it answers UNAVAILABLE and nothing it refused shows up later.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "libs/kafka/admin.h"
#include "libs/kafka/producer.h"
#include "libs/privacy/sealed.h"
#include "libs/service/server.h"
#include "libs/service/test_identity.h"
#include "libs/topology/topic_specs.h"
#include "services/intake/intake_service.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel::intake {
namespace {

using schakel::testing::ReadWholeTopic;
using schakel::testing::RunCommand;

constexpr char kKey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const std::string kNetworkFile = std::string(SCHAKEL_SOURCE_DIR) + "/deploy/local/network.yaml";

void CreateTopics(const std::string& bootstrap, const routing::Network& network) {
  const std::vector<kafka::TopicSpec> specs = topology::TopicSpecs(network);
  absl::Status s = kafka::EnsureTopics(bootstrap, specs, std::chrono::seconds(30));
  ASSERT_TRUE(s.ok()) << s;
}

// The key service behind intake's own interface: one fixed key for every client, so that the test
// can open what intake sealed.
class FixedKey final : public privacy::ClientKeySource {
 public:
  FixedKey() {
    key_.set_key_id("k-fixed");
    key_.set_key(privacy::NewDataKey());
  }
  void ClientKey(const std::string&, const std::string&, const v1::SharingPermission*,
                 std::chrono::system_clock::time_point, Done done) override {
    done(key_);
  }
  void ReferralKey(const std::string&, const std::string& key_id,
                   std::chrono::system_clock::time_point, Done done) override {
    if (key_id != key_.key_id()) return done(absl::PermissionDeniedError("not this key"));
    done(key_);
  }
  const v1::DataKey& key() const { return key_; }

 private:
  v1::DataKey key_;
};

// Whether a referral on the submitted topic carries `marker` as its first need's (sealed) details.
bool AnyReferralSays(const std::string& bootstrap, const v1::DataKey& key,
                     const std::string& marker) {
  for (const kafka::Record& record :
       schakel::testing::ReadWholeTopic(bootstrap, "schakel.referrals.submitted")) {
    v1::ReferralSubmitted event;
    if (!event.ParseFromString(record.value) || event.sealed_need_details_size() == 0) continue;
    absl::StatusOr<std::string> details =
        privacy::Open(event.sealed_need_details(0), key.key(),
                      privacy::NeedContext(event.meta().referral_id(), 0));
    if (details.ok() && *details == marker) return true;
  }
  return false;
}

// An intake service in this process, on a free port, with a real producer.
class IntakeOnKafka {
 public:
  IntakeOnKafka(const std::string& bootstrap, std::chrono::milliseconds delivery_timeout) {
    network_ = *routing::LoadNetworkFile(kNetworkFile);
    producer_ = std::move(*kafka::Producer::Create({.bootstrap_servers = bootstrap,
                                                    .client_id = "intake-test",
                                                    .delivery_timeout = delivery_timeout,
                                                    .extra = {}}));
    service_ = std::make_unique<IntakeService>(network_, pseudonymiser_, *producer_, nullptr,
                                               nullptr, &keys_);
    service::UseAuthenticator(std::make_shared<service::HeaderAuthenticatorForTests>());
    server_ = std::move(
        *service::StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {service_.get()}));
    stub_ = v1::IntakeService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_.port), grpc::InsecureChannelCredentials()));
  }
  ~IntakeOnKafka() {
    server_.server->Shutdown();
    producer_->Close(std::chrono::seconds(5));
  }

  grpc::Status Submit(const std::string& marker, v1::SubmitReferralResponse* response,
                      std::chrono::seconds deadline = std::chrono::seconds(20)) {
    v1::SubmitReferralRequest request;
    v1::Referral* r = request.mutable_referral();
    r->mutable_client()->set_bsn("111222333");
    r->add_needs()->set_code("debt");
    r->mutable_needs(0)->set_details(marker);
    r->set_urgency(v1::URGENCY_NORMAL);
    r->set_region("groningen-stad");
    r->mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
    r->mutable_sharing()->add_organisations("mjd");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    context.AddMetadata(service::kTestOrganisationHeader, "ggd");
    return stub_->SubmitReferral(&context, request, response);
  }

  const routing::Network& network() const { return network_; }
  const v1::DataKey& key() const { return keys_.key(); }

 private:
  routing::Network network_;
  FixedKey keys_;
  privacy::Pseudonymiser pseudonymiser_ = *privacy::Pseudonymiser::FromHexKey(kKey);
  std::unique_ptr<kafka::Producer> producer_;
  std::unique_ptr<IntakeService> service_;
  service::RunningServer server_;
  std::unique_ptr<v1::IntakeService::Stub> stub_;
};

std::string UniqueMarker(const std::string& what) {
  return what + "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

TEST(IntakeKafkaTest, AcknowledgedReferralIsInTheSubmittedTopicExactlyOnce) {
  const std::string kafka = schakel::testing::TestKafka();
  IntakeOnKafka intake(kafka, std::chrono::seconds(10));
  CreateTopics(kafka, intake.network());

  v1::SubmitReferralResponse response;
  const std::string marker = UniqueMarker("once");
  const grpc::Status status = intake.Submit(marker, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  int found = 0;
  for (const kafka::Record& record : ReadWholeTopic(kafka, "schakel.referrals.submitted")) {
    if (record.key != response.referral_id()) continue;
    ++found;
    v1::ReferralSubmitted event;
    ASSERT_TRUE(event.ParseFromString(record.value));
    EXPECT_EQ(event.meta().referral_id(), response.referral_id());
    EXPECT_EQ(event.referring_organisation(), "ggd");
    EXPECT_EQ(record.value.find("111222333"), std::string::npos)
        << "the BSN must never reach Kafka";
    EXPECT_EQ(record.value.find(marker), std::string::npos) << "details in clear";
    EXPECT_EQ(*privacy::Open(event.sealed_need_details(0), intake.key().key(),
                             privacy::NeedContext(event.meta().referral_id(), 0)),
              marker);
  }
  EXPECT_EQ(found, 1);
}

// A broker of its own, so that stopping it does not disturb the other tests.
class OwnBroker {
 public:
  OwnBroker() {
    dir_ =
        std::filesystem::temp_directory_path() / ("schakel-broker-" + std::to_string(::getpid()));
    port_ = schakel::testing::FreePort();
    controller_port_ = schakel::testing::FreePort();
    while (controller_port_ == port_) controller_port_ = schakel::testing::FreePort();
  }
  ~OwnBroker() {
    Run("stop");
    std::filesystem::remove_all(dir_);
  }
  bool Run(const std::string& verb) {
    std::string output;
    const int rc = RunCommand(
        {std::string(SCHAKEL_SOURCE_DIR) + "/deploy/local/kafka", verb, "--dir", dir_.string(),
         "--port", std::to_string(port_), "--controller-port", std::to_string(controller_port_),
         // The authority the tests' own clients (the admin of it) trust.
         "--pki", schakel::testing::TestPki().string()},
        &output);
    if (rc != 0) ADD_FAILURE() << "kafka " << verb << " failed: " << output;
    return rc == 0;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  int controller_port_ = 0;
};

TEST(IntakeKafkaTest, BrokerDownMeansUnavailableAndNothingRefusedAppearsLater) {
  OwnBroker broker;
  ASSERT_TRUE(broker.Run("start"));
  IntakeOnKafka intake(broker.address(), std::chrono::seconds(3));
  CreateTopics(broker.address(), intake.network());

  const std::string accepted = UniqueMarker("accepted");
  v1::SubmitReferralResponse response;
  ASSERT_TRUE(intake.Submit(accepted, &response).ok());

  ASSERT_TRUE(broker.Run("stop"));
  const std::string refused = UniqueMarker("refused");
  v1::SubmitReferralResponse refused_response;
  // UNAVAILABLE, not DEADLINE_EXCEEDED: intake answers within the call's deadline.
  const grpc::Status status = intake.Submit(refused, &refused_response, std::chrono::seconds(10));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(refused_response.referral_id().empty());

  // The broker returns: intake recovers by itself, and the refused referral is not there.
  ASSERT_TRUE(broker.Run("start"));
  grpc::Status recovered;
  for (int attempt = 0; attempt < 30; ++attempt) {
    v1::SubmitReferralResponse again;
    recovered = intake.Submit(UniqueMarker("after"), &again);
    if (recovered.ok()) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  EXPECT_TRUE(recovered.ok()) << recovered.error_message();
  EXPECT_TRUE(AnyReferralSays(broker.address(), intake.key(), accepted));
  EXPECT_FALSE(AnyReferralSays(broker.address(), intake.key(), refused));
}

}  // namespace
}  // namespace schakel::intake
