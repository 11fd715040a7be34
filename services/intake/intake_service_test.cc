#include "services/intake/intake_service.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/privacy/sealed.h"
#include "libs/referral/ids.h"
#include "libs/service/server.h"
#include "libs/service/test_identity.h"
#include "libs/topology/topics.h"
#include "tests/support/fake_recorder.h"

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
      absl::MutexLock lock(&mu_);
      published_.push_back({std::string(topic), std::string(key), std::string(value)});
      if (hold_) {
        held_.push_back(std::move(done));
        return;
      }
    }
    done(outcome_);
  }
  // Answers the deliveries held back (hold_) with `outcome`.
  void Release(const absl::Status& outcome) {
    std::vector<Done> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (Done& done : held) done(outcome);
  }
  bool Reachable() const override { return reachable_; }

  std::vector<Published> published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }

  bool reachable_ = true;
  absl::Status outcome_;
  bool hold_ = false;  // a broker that does not answer (paused): deliveries wait for Release()

 private:
  absl::Mutex mu_;
  std::vector<Published> published_ ABSL_GUARDED_BY(mu_);
  std::vector<Done> held_ ABSL_GUARDED_BY(mu_);
};

// The key service behind our own interface: one fixed key, or a failure.
class FakeKeys final : public privacy::ClientKeySource {
 public:
  void ClientKey(const std::string& client_pseudonym, const std::string& referral_id,
                 const v1::SharingPermission* sharing,
                 std::chrono::system_clock::time_point /*deadline*/, Done done) override {
    {
      absl::MutexLock lock(&mu_);
      asked_.push_back(client_pseudonym + " " + referral_id);
      sharing_.push_back(sharing == nullptr ? std::nullopt : std::optional(*sharing));
    }
    if (!available_) return done(absl::UnavailableError("key service: connection refused"));
    if (hold_) {
      absl::MutexLock lock(&mu_);
      held_.push_back(std::move(done));
      return;
    }
    done(key_);
  }
  // The key `key_id` of the referral's client: the one key when it is that key (FAILED_PRECONDITION
  // when `erased_`), PERMISSION_DENIED for any other key id.
  void ReferralKey(const std::string& referral_id, const std::string& key_id,
                   std::chrono::system_clock::time_point /*deadline*/, Done done) override {
    {
      absl::MutexLock lock(&mu_);
      referral_asked_.push_back(referral_id + " " + key_id);
    }
    if (!available_) return done(absl::UnavailableError("key service: connection refused"));
    if (key_id != key_.key_id()) return done(absl::PermissionDeniedError("key service: no"));
    if (erased_) return done(absl::FailedPreconditionError("key service: erased"));
    done(key_);
  }
  std::vector<std::string> referral_asked() {
    absl::MutexLock lock(&mu_);
    return referral_asked_;
  }
  // Answers the calls held back (hold_) with the key.
  void Release() {
    std::vector<Done> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (Done& done : held) done(key_);
  }
  std::vector<std::string> asked() {
    absl::MutexLock lock(&mu_);
    return asked_;
  }
  // The sharing permission each ClientKey call carried (nullopt: none), in the order of asked().
  std::vector<std::optional<v1::SharingPermission>> sharing() {
    absl::MutexLock lock(&mu_);
    return sharing_;
  }
  v1::DataKey key_ = [] {
    v1::DataKey k;
    k.set_key_id("k-test");
    k.set_key(privacy::NewDataKey());
    return k;
  }();
  bool available_ = true;
  bool erased_ = false;  // the client has been erased (ReferralKey)
  bool hold_ = false;    // a slow key service: answers wait for Release()

 private:
  absl::Mutex mu_;
  std::vector<std::string> asked_ ABSL_GUARDED_BY(mu_);
  std::vector<std::optional<v1::SharingPermission>> sharing_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> referral_asked_ ABSL_GUARDED_BY(mu_);
  std::vector<Done> held_ ABSL_GUARDED_BY(mu_);
};

using schakel::testing::FakeRecorder;

constexpr char kKey[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

class IntakeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
    ASSERT_TRUE(net.ok()) << net.status();
    network_ = *net;
    ConfigureNetwork(network_);
    limits_ = std::make_unique<IntakeLimits>(network_, [this] { return now_; });
    service_ = std::make_unique<IntakeService>(network_, pseudonymiser_, publisher_, view_.get(),
                                               limits_.get(), &keys_, &recorder_);
    service::UseAuthenticator(std::make_shared<service::HeaderAuthenticatorForTests>());
    absl::StatusOr<service::RunningServer> server =
        service::StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::IntakeService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_.port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_.server->Shutdown(); }
  // For a fixture that needs another network than the example (e.g. with intake limits).
  virtual void ConfigureNetwork(routing::Network& /*network*/) {}

  grpc::Status Submit(const v1::Referral& referral, v1::SubmitReferralResponse* response,
                      const std::string& organisation = "mjd",
                      std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    if (!organisation.empty()) context.AddMetadata(service::kTestOrganisationHeader, organisation);
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
  FakeKeys keys_;
  FakeRecorder recorder_;
  std::unique_ptr<ReferralView> view_;  // none unless a derived fixture opens one
  // The limits' clock: moved on by the test.
  std::chrono::steady_clock::time_point now_ =
      std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  std::unique_ptr<IntakeLimits> limits_;
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
  // No name, no contact, no details: the client's (empty) details are sealed all the same, so that
  // every offer names the client's key.
  EXPECT_EQ(keys_.asked(), std::vector<std::string>{pseudonymiser_.ForBsn("111222333") + " " +
                                                    response.referral_id()});
  // The key service is told the client's sharing permission with the key (its second line against
  // an offer outside it), as the referral gave it.
  ASSERT_EQ(keys_.sharing().size(), 1u);
  ASSERT_TRUE(keys_.sharing()[0].has_value()) << "ClientKey without the sharing permission";
  EXPECT_EQ(keys_.sharing()[0]->basis(), v1::SHARING_BASIS_CONSENT);
  EXPECT_THAT(keys_.sharing()[0]->organisations(),
              ::testing::ElementsAre("gemeente", "leger-des-heils", "mjd"));
  EXPECT_EQ(event.sealed_client().key_id(), "k-test");
  absl::StatusOr<std::string> opened = privacy::Open(
      event.sealed_client(), keys_.key_.key(), privacy::ClientContext(response.referral_id()));
  ASSERT_TRUE(opened.ok()) << opened.status();
  v1::ClientDetails details;
  ASSERT_TRUE(details.ParseFromString(*opened));
  EXPECT_EQ(details.name(), "");
  EXPECT_EQ(details.contact(), "");
}

TEST_F(IntakeServiceTest, WithoutAKeyServiceEveryReferralIsRefused) {
  IntakeService no_keys(network_, pseudonymiser_, publisher_);
  absl::StatusOr<service::RunningServer> server =
      service::StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {&no_keys});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::IntakeService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server->port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.AddMetadata(service::kTestOrganisationHeader, "mjd");
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = Seed();
  v1::SubmitReferralResponse response;
  grpc::Status status = stub->SubmitReferral(&context, request, &response);
  server->server->Shutdown();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_TRUE(publisher_.published().empty());
}

TEST_F(IntakeServiceTest, PersonalDataIsSealedWithTheClientsKeyAndNeverPublishedInClear) {
  v1::Referral referral = Seed();
  referral.mutable_client()->set_name("Marker Annabel");
  referral.mutable_client()->set_contact("06-98765432");
  referral.mutable_needs(0)->set_details("schuld bij MARKERBANK");
  referral.mutable_needs(2)->set_details("slaapt bij een vriendin");
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(referral, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(keys_.asked(), std::vector<std::string>{pseudonymiser_.ForBsn("111222333") + " " +
                                                    response.referral_id()});
  ASSERT_EQ(publisher_.published().size(), 1u);
  const std::string value = publisher_.published()[0].value;
  for (const char* clear : {"Annabel", "06-98765432", "MARKERBANK", "vriendin", "111222333"}) {
    EXPECT_EQ(value.find(clear), std::string::npos) << clear << " published in clear";
  }
  v1::ReferralSubmitted event;
  ASSERT_TRUE(event.ParseFromString(value));
  const std::string& id = event.meta().referral_id();
  for (const v1::NeedRequest& need : event.needs()) EXPECT_EQ(need.details(), "");
  ASSERT_EQ(event.sealed_need_details_size(), 3);
  EXPECT_EQ(event.sealed_need_details(0).key_id(), "k-test");
  EXPECT_EQ(
      *privacy::Open(event.sealed_need_details(0), keys_.key_.key(), privacy::NeedContext(id, 0)),
      "schuld bij MARKERBANK");
  EXPECT_EQ(event.sealed_need_details(1).key_id(), "") << "a need without details";
  EXPECT_EQ(
      *privacy::Open(event.sealed_need_details(2), keys_.key_.key(), privacy::NeedContext(id, 2)),
      "slaapt bij een vriendin");
  v1::ClientDetails client;
  ASSERT_TRUE(client.ParseFromString(
      *privacy::Open(event.sealed_client(), keys_.key_.key(), privacy::ClientContext(id))));
  EXPECT_EQ(client.name(), "Marker Annabel");
  EXPECT_EQ(client.contact(), "06-98765432");
}

TEST_F(IntakeServiceTest, AKeyArrivingAfterTheCallWasAnsweredStillSealsTheReferralItWasFor) {
  keys_.hold_ = true;
  v1::Referral referral = Seed();
  referral.mutable_client()->set_name("Marker Annabel");
  referral.mutable_needs(0)->set_details("schuld bij MARKERBANK");
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(referral, &response, "mjd", std::chrono::milliseconds(1000));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  ASSERT_EQ(keys_.asked().size(), 1u);
  // The call is over (its request freed); the key arrives now, and the referral is published as
  // the caller was told it might be (retry with the same idempotency_key finds it).
  keys_.Release();
  ASSERT_EQ(publisher_.published().size(), 1u);
  v1::ReferralSubmitted event;
  ASSERT_TRUE(event.ParseFromString(publisher_.published()[0].value));
  const std::string& id = event.meta().referral_id();
  EXPECT_EQ(
      *privacy::Open(event.sealed_need_details(0), keys_.key_.key(), privacy::NeedContext(id, 0)),
      "schuld bij MARKERBANK");
  v1::ClientDetails client;
  ASSERT_TRUE(client.ParseFromString(
      *privacy::Open(event.sealed_client(), keys_.key_.key(), privacy::ClientContext(id))));
  EXPECT_EQ(client.name(), "Marker Annabel");
}

// The same late key, but the service is being shut down: gRPC's shutdown does not wait for a call
// that was answered, so the service itself waits for the key's callback, which uses it.
TEST_F(IntakeServiceTest, TheServiceGoesOnlyAfterAKeyStillComingHasArrived) {
  keys_.hold_ = true;
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(Seed(), &response, "mjd", std::chrono::milliseconds(1000));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  ASSERT_EQ(keys_.asked().size(), 1u);
  server_.server->Shutdown();  // returns: no call is open any more
  std::atomic<bool> gone{false};
  std::thread shutdown([&] {
    service_.reset();
    gone = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(gone.load()) << "the service went while a key it asked for was still coming";
  keys_.Release();  // the callback runs on a service still there, and publishes the referral
  shutdown.join();
  EXPECT_TRUE(gone.load());
  EXPECT_EQ(publisher_.published().size(), 1u);
}

TEST_F(IntakeServiceTest, WithoutTheClientsKeyNothingIsPublished) {
  keys_.available_ = false;
  v1::Referral referral = Seed();
  referral.mutable_client()->set_name("Marker Annabel");
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(referral, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the client's key could not be had, the referral was not submitted; try again (key "
            "service: connection refused)");
  EXPECT_TRUE(publisher_.published().empty());
  // Without personal data the key is needed too (every offer names it): refused the same way.
  status = Submit(Seed(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(publisher_.published().empty());
  EXPECT_EQ(keys_.asked().size(), 2u);
}

// mjd may submit 2 referrals per second in bursts of 3; gemeente is not limited.
class IntakeLimitTest : public IntakeServiceTest {
 protected:
  void ConfigureNetwork(routing::Network& network) override {
    for (routing::Organisation& org : network.organisations) {
      if (org.id == "mjd") org.intake_limit = routing::IntakeLimit{.per_second = 2, .burst = 3};
    }
  }
};

TEST_F(IntakeLimitTest, BeyondItsBurstAnOrganisationIsRefusedWithWhenToRetryAndNothingHappens) {
  for (int i = 0; i < 3; ++i) {
    v1::SubmitReferralResponse response;
    grpc::Status status = Submit(Seed(), &response);
    ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
  }
  ASSERT_EQ(publisher_.published().size(), 3u);

  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata(service::kTestOrganisationHeader, "mjd");
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = Seed();
  v1::SubmitReferralResponse response;
  grpc::Status refused = stub_->SubmitReferral(&context, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "intake_limit of organisation mjd (2 referrals per second, bursts of 3) reached: the "
            "referral was not submitted; try again in 500 ms (trailing metadata retry-after-ms)");
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto retry = trailers.find("retry-after-ms");
  ASSERT_NE(retry, trailers.end());
  EXPECT_EQ(std::string(retry->second.data(), retry->second.size()), "500");
  EXPECT_EQ(response.referral_id(), "");
  EXPECT_EQ(publisher_.published().size(), 3u);  // nothing published
  EXPECT_EQ(limits_->refused("mjd"), 1u);

  // Checked before validation: even an invalid request only costs the refusal.
  v1::Referral invalid = Seed();
  invalid.clear_needs();
  EXPECT_EQ(Submit(invalid, &response).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Another organisation is not affected.
  v1::Referral from_gemeente = Seed();
  EXPECT_TRUE(Submit(from_gemeente, &response, "gemeente").ok());

  // Half a second later one token is back: one more call, not two.
  now_ += std::chrono::milliseconds(500);
  EXPECT_TRUE(Submit(Seed(), &response).ok());
  EXPECT_EQ(Submit(Seed(), &response).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(limits_->refused("mjd"), 3u);
  EXPECT_EQ(limits_->refused("gemeente"), 0u);
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

TEST_F(IntakeServiceTest, KafkaNotAnsweringBeforeTheDeadlineIsUnavailableNotDeadlineExceeded) {
  publisher_.hold_ = true;
  v1::SubmitReferralResponse response;
  const auto asked = std::chrono::steady_clock::now();
  grpc::Status status = Submit(Seed(), &response, "mjd", std::chrono::milliseconds(1500));
  const auto took = std::chrono::steady_clock::now() - asked;
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_NE(status.error_message().find("before the call's deadline"), std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("retry with the same idempotency_key"), std::string::npos);
  EXPECT_LT(took, std::chrono::milliseconds(1500));
  EXPECT_TRUE(response.referral_id().empty());
  // Kafka's late answer changes nothing for the caller (and does not crash the server).
  publisher_.Release(absl::OkStatus());
  ASSERT_EQ(publisher_.published().size(), 1u);

  // Without hold, the same server answers normally afterwards.
  publisher_.hold_ = false;
  v1::SubmitReferralResponse next;
  EXPECT_TRUE(Submit(Seed(), &next, "mjd", std::chrono::milliseconds(1500)).ok());
  EXPECT_FALSE(next.referral_id().empty());
}

TEST_F(IntakeServiceTest, BeyondMaxInFlightACallIsRefusedAtOnceAndNothingIsPublished) {
  service_->Admit({.target_wait = std::chrono::milliseconds(500), .floor = 2, .ceiling = 2});
  publisher_.hold_ = true;  // Kafka takes its time: the first two calls wait for it
  std::vector<grpc::Status> waited(2);
  std::vector<std::thread> callers;
  for (int i = 0; i < 2; ++i) {
    callers.emplace_back([this, i, &waited] {
      v1::SubmitReferralResponse response;
      waited[i] = Submit(Seed(), &response);
    });
  }
  for (int i = 0; i < 500 && publisher_.published().size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(publisher_.published().size(), 2u) << "both calls wait for Kafka";
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata(service::kTestOrganisationHeader, "mjd");
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = Seed();
  v1::SubmitReferralResponse refused;
  const auto asked = std::chrono::steady_clock::now();
  grpc::Status busy = stub_->SubmitReferral(&context, request, &refused);
  EXPECT_LT(std::chrono::steady_clock::now() - asked, std::chrono::seconds(5))
      << "refused at once, not at its deadline";
  EXPECT_EQ(busy.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Nothing answered yet, so no rate: the longest wait it names.
  EXPECT_EQ(busy.error_message(),
            "intake is busy: 2 referrals are being submitted already (--max-in-flight); the "
            "referral was not submitted, try again in 10000 ms (trailing metadata "
            "retry-after-ms)");
  const auto& trailers = context.GetServerTrailingMetadata();
  const auto retry = trailers.find("retry-after-ms");
  ASSERT_NE(retry, trailers.end());
  EXPECT_EQ(std::string(retry->second.data(), retry->second.size()), "10000");
  EXPECT_TRUE(refused.referral_id().empty());
  EXPECT_EQ(publisher_.published().size(), 2u) << "the refused referral was not published";

  publisher_.hold_ = false;
  publisher_.Release(absl::OkStatus());
  for (std::thread& t : callers) t.join();
  EXPECT_TRUE(waited[0].ok()) << waited[0].error_message();
  EXPECT_TRUE(waited[1].ok()) << waited[1].error_message();
  // Once gRPC is done with them there is room again.
  for (int i = 0; i < 500 && service_->in_flight() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(service_->in_flight(), 0u);
  v1::SubmitReferralResponse next;
  EXPECT_TRUE(Submit(Seed(), &next).ok());
  EXPECT_FALSE(next.referral_id().empty());
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

// CancelAssignment against a real referral view in a temporary file, fed with the events a
// referral of "mjd" leaves on Kafka: need 0 (debt) accepted by gemeente, need 1 (income) declined
// by gemeente and forwarded to leger-des-heils, who started work, need 2 (housing) completed.
class CancelAssignmentTest : public IntakeServiceTest {
 protected:
  static constexpr char kReferral[] = "r-0000000000000000000000aa";
  static constexpr char kDebt[] = "a-0000000000000000000000aa-0";
  static constexpr char kIncomeFirst[] = "a-0000000000000000000000aa-1";
  static constexpr char kIncome[] = "a-0000000000000000000000aa-1.1";
  static constexpr char kHousing[] = "a-0000000000000000000000aa-2";

  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "intake_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    absl::StatusOr<std::unique_ptr<ReferralView>> view =
        ReferralView::Open((dir_ / "view.db").string());
    ASSERT_TRUE(view.ok()) << view.status();
    view_ = *std::move(view);

    v1::ReferralSubmitted submitted;
    submitted.mutable_meta()->set_schema_version(1);
    submitted.mutable_meta()->set_referral_id(kReferral);
    submitted.mutable_meta()->mutable_occurred_at()->set_seconds(1000);
    submitted.set_referring_organisation("mjd");
    submitted.set_client_pseudonym("p-client");
    *submitted.mutable_sealed_client() =
        *privacy::Seal(keys_.key_.key_id(), keys_.key_.key(), privacy::ClientContext(kReferral),
                       v1::ClientDetails().SerializeAsString());
    for (const char* code : {"debt", "income", "housing"}) submitted.add_needs()->set_code(code);
    Feed(std::string(topology::kSubmittedTopic), submitted.SerializeAsString());
    Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_REQUESTED, 1);
    Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_RECEIVED, 2);
    Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_ACCEPTED, 3);
    Status(kIncomeFirst, "income", "gemeente", v1::ASSIGNMENT_STATUS_REQUESTED, 1);
    Status(kIncomeFirst, "income", "gemeente", v1::ASSIGNMENT_STATUS_REJECTED, 2);
    Status(kIncome, "income", "leger-des-heils", v1::ASSIGNMENT_STATUS_REQUESTED, 1);
    Status(kIncome, "income", "leger-des-heils", v1::ASSIGNMENT_STATUS_IN_PROGRESS, 2);
    Status(kHousing, "housing", "mjd", v1::ASSIGNMENT_STATUS_REQUESTED, 1);
    Status(kHousing, "housing", "mjd", v1::ASSIGNMENT_STATUS_COMPLETED, 2);
    IntakeServiceTest::SetUp();
  }
  void TearDown() override {
    IntakeServiceTest::TearDown();
    service_.reset();
    view_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Feed(const std::string& topic, const std::string& value) {
    absl::Status applied = view_->ApplyRecord(topic, value);
    ASSERT_TRUE(applied.ok()) << applied;
  }
  // A change by `org` whose reason and outcome its people typed: sealed with the client's key.
  void Status(const std::string& assignment, const std::string& need, const std::string& org,
              v1::AssignmentStatus to, std::uint64_t version, const std::string& sealed_reason,
              const std::string& sealed_outcome = "") {
    v1::AssignmentStatusChanged e = Change(assignment, need, org, to, version);
    e.set_by(org);
    const v1::DataKey& key = keys_.key_;
    if (!sealed_reason.empty()) {
      *e.mutable_sealed_reason() = *privacy::Seal(
          key.key_id(), key.key(), privacy::StatusReasonContext(kReferral, assignment, version),
          sealed_reason);
    }
    if (!sealed_outcome.empty()) {
      *e.mutable_sealed_outcome() = *privacy::Seal(
          key.key_id(), key.key(), privacy::StatusOutcomeContext(kReferral, assignment, version),
          sealed_outcome);
    }
    Feed(std::string(topology::kStatusTopic), e.SerializeAsString());
  }
  void Status(const std::string& assignment, const std::string& need, const std::string& org,
              v1::AssignmentStatus to, std::uint64_t version) {
    Feed(std::string(topology::kStatusTopic),
         Change(assignment, need, org, to, version).SerializeAsString());
  }
  v1::AssignmentStatusChanged Change(const std::string& assignment, const std::string& need,
                                     const std::string& org, v1::AssignmentStatus to,
                                     std::uint64_t version) {
    v1::AssignmentStatusChanged e;
    e.mutable_meta()->set_schema_version(1);
    e.mutable_meta()->set_referral_id(kReferral);
    e.mutable_meta()->set_assignment_id(assignment);
    e.mutable_meta()->mutable_occurred_at()->set_seconds(1000 +
                                                         static_cast<std::int64_t>(++clock_));
    e.set_organisation(org);
    e.set_need_code(need);
    e.set_to_status(to);
    e.set_version(version);
    e.set_by(version == 1 ? "network" : org);
    e.set_referring_organisation("mjd");
    if (to == v1::ASSIGNMENT_STATUS_REJECTED) e.set_forward_to("leger-des-heils");
    return e;
  }
  grpc::Status Get(const std::string& organisation, v1::ReferralStatus* referral) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context.AddMetadata(service::kTestOrganisationHeader, organisation);
    v1::GetReferralRequest request;
    request.set_referral_id(kReferral);
    return stub_->GetReferral(&context, request, referral);
  }

  grpc::Status Cancel(const std::string& assignment_id, const std::string& reason,
                      v1::CancelAssignmentResponse* response = nullptr,
                      const std::string& organisation = "mjd") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!organisation.empty()) context.AddMetadata(service::kTestOrganisationHeader, organisation);
    v1::CancelAssignmentRequest request;
    request.set_assignment_id(assignment_id);
    request.set_reason(reason);
    v1::CancelAssignmentResponse ignored;
    return stub_->CancelAssignment(&context, request, response ? response : &ignored);
  }

  std::filesystem::path dir_;
  int clock_ = 0;
};

TEST_F(CancelAssignmentTest, WatchReferralsStreamsOnlyTheCallersChanges) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata(service::kTestOrganisationHeader, "mjd");
  std::unique_ptr<grpc::ClientReader<v1::ReferralStatus>> reader =
      stub_->WatchReferrals(&context, v1::WatchReferralsRequest());
  reader->WaitForInitialMetadata();  // the watch is live

  // Another organisation's referral changes: not for mjd's stream.
  v1::ReferralSubmitted other;
  other.mutable_meta()->set_referral_id("r-0000000000000000000000bb");
  other.mutable_meta()->mutable_occurred_at()->set_seconds(2000);
  other.set_referring_organisation("ggd");
  other.add_needs()->set_code("health");
  Feed(std::string(topology::kSubmittedTopic), other.SerializeAsString());
  // mjd's own referral changes.
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_IN_PROGRESS, 4);

  v1::ReferralStatus changed;
  ASSERT_TRUE(reader->Read(&changed));
  EXPECT_EQ(changed.referral_id(), kReferral);
  ASSERT_EQ(changed.needs_size(), 3);
  EXPECT_EQ(changed.needs(0).need_code(), "debt");
  EXPECT_EQ(changed.needs(0).status(), v1::ASSIGNMENT_STATUS_IN_PROGRESS);
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(CancelAssignmentTest, WatchReferralsNeedsAnOrganisation) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  std::unique_ptr<grpc::ClientReader<v1::ReferralStatus>> reader =
      stub_->WatchReferrals(&context, v1::WatchReferralsRequest());
  v1::ReferralStatus nothing;
  EXPECT_FALSE(reader->Read(&nothing));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(CancelAssignmentTest, PublishesCancelRequestedForTheOwnerAfterDelivery) {
  v1::CancelAssignmentResponse response;
  grpc::Status status = Cancel(kDebt, "client found help elsewhere", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.assignment_id(), kDebt);
  ASSERT_EQ(publisher_.published().size(), 1u);
  const FakePublisher::Published p = publisher_.published()[0];
  EXPECT_EQ(p.topic, "schakel.assignments.cancellations");
  EXPECT_EQ(p.key, kReferral);  // the router keeps its state per referral
  v1::CancelRequested event;
  ASSERT_TRUE(event.ParseFromString(p.value));
  EXPECT_EQ(event.meta().schema_version(), 1u);
  EXPECT_EQ(event.meta().referral_id(), kReferral);
  EXPECT_EQ(event.meta().assignment_id(), kDebt);
  EXPECT_TRUE(event.meta().event_id().starts_with("e-"));
  EXPECT_GT(event.meta().occurred_at().seconds(), 0);
  EXPECT_EQ(event.organisation(), "gemeente");
  EXPECT_EQ(event.referring_organisation(), "mjd");
  // The reason travels sealed with the key the referral was sealed with, for the owner only.
  EXPECT_EQ(keys_.referral_asked(), std::vector<std::string>{std::string(kReferral) + " k-test"});
  EXPECT_EQ(event.reason(), "");
  EXPECT_EQ(p.value.find("help elsewhere"), std::string::npos) << "the reason in clear";
  EXPECT_EQ(event.sealed_reason().key_id(), "k-test");
  absl::StatusOr<std::string> reason = privacy::Open(
      event.sealed_reason(), keys_.key_.key(), privacy::CancelReasonContext(kReferral, kDebt));
  ASSERT_TRUE(reason.ok()) << reason.status();
  EXPECT_EQ(*reason, "client found help elsewhere");
  // Moved to another assignment, it does not open.
  EXPECT_FALSE(privacy::Open(event.sealed_reason(), keys_.key_.key(),
                             privacy::CancelReasonContext(kReferral, kIncome))
                   .ok());
}

TEST_F(CancelAssignmentTest, WithoutTheClientsKeyNoCancellationIsSent) {
  keys_.available_ = false;
  grpc::Status status = Cancel(kDebt, "client found help elsewhere");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the client's key could not be had, the cancellation was not sent; try again (key "
            "service: connection refused)");
  EXPECT_TRUE(publisher_.published().empty());
  keys_.available_ = true;
  keys_.erased_ = true;
  status = Cancel(kDebt, "client found help elsewhere");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(status.error_message().starts_with("erased: ")) << status.error_message();
  EXPECT_TRUE(publisher_.published().empty());
}

// The owners' sealed reasons and outcomes: stored sealed, opened only for the referrer, when it
// asks, and each such read recorded first.
TEST_F(CancelAssignmentTest, SealedTextsAreStoredSealedAndOpenedForTheReferrerWhenItAsks) {
  v1::ReferralStatus before;
  ASSERT_TRUE(Get("mjd", &before).ok());
  EXPECT_TRUE(recorder_.entries("referral.read").empty()) << "nothing sealed, nothing recorded";
  EXPECT_TRUE(keys_.referral_asked().empty());

  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_ON_HOLD, 4, "MARKER wacht op papieren");
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_IN_PROGRESS, 5);
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_COMPLETED, 6, "",
         "MARKER schuldhulp geregeld");
  // Neither the view's memory nor its file holds the texts.
  absl::StatusOr<v1::ReferralStatus> stored = view_->Get("mjd", kReferral);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->DebugString().find("MARKER"), std::string::npos);
  const v1::ReferralEvent& held = stored->needs(0).history(stored->needs(0).history_size() - 3);
  EXPECT_EQ(held.version(), 4u);
  EXPECT_EQ(held.reason(), "");
  EXPECT_EQ(held.sealed_reason().key_id(), "k-test");
  for (const char* file : {"view.db", "view.db-wal"}) {
    std::ifstream in(dir_ / file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find("MARKER"), std::string::npos) << file;
  }
  ASSERT_TRUE(std::filesystem::exists(dir_ / "view.db"));

  // Another organisation: as for a referral that does not exist; no key is asked for it.
  v1::ReferralStatus not_mine;
  EXPECT_EQ(Get("gemeente", &not_mine).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(keys_.referral_asked().empty());
  EXPECT_TRUE(recorder_.entries("referral.read").empty());

  v1::ReferralStatus shown;
  grpc::Status status = Get("mjd", &shown);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::NeedStatus& debt = shown.needs(0);
  ASSERT_GE(debt.history_size(), 6);
  const v1::ReferralEvent& on_hold = debt.history(debt.history_size() - 3);
  EXPECT_EQ(on_hold.to_status(), v1::ASSIGNMENT_STATUS_ON_HOLD);
  EXPECT_EQ(on_hold.reason(), "MARKER wacht op papieren");
  EXPECT_EQ(on_hold.text(), v1::SEALED_TEXT_OPENED);
  EXPECT_FALSE(on_hold.has_sealed_reason()) << "no ciphertext in an answer";
  const v1::ReferralEvent& resumed = debt.history(debt.history_size() - 2);
  EXPECT_EQ(resumed.text(), v1::SEALED_TEXT_UNSPECIFIED);
  const v1::ReferralEvent& completed = debt.history(debt.history_size() - 1);
  EXPECT_EQ(completed.outcome(), "MARKER schuldhulp geregeld");
  EXPECT_EQ(debt.status(), v1::ASSIGNMENT_STATUS_COMPLETED);
  EXPECT_EQ(debt.outcome(), "MARKER schuldhulp geregeld");
  EXPECT_EQ(debt.outcome_text(), v1::SEALED_TEXT_OPENED);
  // The one key, asked once (kept for the next answers).
  EXPECT_EQ(keys_.referral_asked(), std::vector<std::string>{std::string(kReferral) + " k-test"});

  // Recorded before the answer: who read which referral's texts, about which assignments.
  std::vector<v1::AuditEntry> reads = recorder_.entries("referral.read");
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].actor().id(), "mjd");
  EXPECT_EQ(reads[0].actor().kind(), v1::AuditActor::ORGANISATION);
  EXPECT_EQ(reads[0].subject().referral_id(), kReferral);
  EXPECT_EQ(std::vector<std::string>(reads[0].subject().assignment_ids().begin(),
                                     reads[0].subject().assignment_ids().end()),
            std::vector<std::string>{kDebt});
  EXPECT_EQ(reads[0].reason(), "GetReferral");
  EXPECT_EQ(reads[0].DebugString().find("MARKER"), std::string::npos);

  // ListReferrals opens them the same way, and records its read.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata(service::kTestOrganisationHeader, "mjd");
  v1::ListReferralsResponse page;
  ASSERT_TRUE(stub_->ListReferrals(&context, v1::ListReferralsRequest(), &page).ok());
  ASSERT_EQ(page.referrals_size(), 1);
  EXPECT_EQ(page.referrals(0).needs(0).outcome(), "MARKER schuldhulp geregeld");
  reads = recorder_.entries("referral.read");
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[1].reason(), "ListReferrals");
}

TEST_F(CancelAssignmentTest, AReadThatCannotBeRecordedShowsNothing) {
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_ON_HOLD, 4, "MARKER wacht op papieren");
  recorder_.outcome_ = absl::UnavailableError("audit: Kafka unreachable");
  v1::ReferralStatus shown;
  grpc::Status status = Get("mjd", &shown);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the read of the owners' texts could not be recorded in the audit stream; nothing was "
            "shown, try again");
  EXPECT_EQ(shown.referral_id(), "");
}

TEST_F(CancelAssignmentTest, AnErasedClientsTextsReadErasedAndTheCallStillAnswers) {
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_ON_HOLD, 4, "MARKER wacht op papieren");
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_CANCELLED, 5, "MARKER verhuisd",
         "MARKER niets meer nodig");
  keys_.erased_ = true;
  v1::ReferralStatus shown;
  grpc::Status status = Get("mjd", &shown);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(shown.DebugString().find("MARKER"), std::string::npos);
  const v1::NeedStatus& debt = shown.needs(0);
  const v1::ReferralEvent& on_hold = debt.history(debt.history_size() - 2);
  EXPECT_EQ(on_hold.reason(), "(erased)");
  EXPECT_EQ(on_hold.text(), v1::SEALED_TEXT_ERASED);
  EXPECT_EQ(debt.history(debt.history_size() - 1).outcome(), "(erased)");
  EXPECT_EQ(debt.outcome(), "(erased)");
  EXPECT_EQ(debt.outcome_text(), v1::SEALED_TEXT_ERASED);
  // The clear history stays as it was; nothing opened, nothing recorded.
  EXPECT_EQ(debt.history(0).text(), v1::SEALED_TEXT_UNSPECIFIED);
  EXPECT_TRUE(recorder_.entries("referral.read").empty());
}

TEST_F(CancelAssignmentTest, AnUnreachableKeyServiceMarksTheTextsAndTheCallStillAnswers) {
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_ON_HOLD, 4, "MARKER wacht op papieren");
  keys_.available_ = false;
  v1::ReferralStatus shown;
  grpc::Status status = Get("mjd", &shown);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::ReferralEvent& on_hold = shown.needs(0).history(shown.needs(0).history_size() - 1);
  EXPECT_EQ(on_hold.reason(), "(not available now)");
  EXPECT_EQ(on_hold.text(), v1::SEALED_TEXT_UNAVAILABLE);
  EXPECT_TRUE(recorder_.entries("referral.read").empty());
  // Once the key service is back, the text is there (an unavailable answer is not kept).
  keys_.available_ = true;
  ASSERT_TRUE(Get("mjd", &shown).ok());
  EXPECT_EQ(shown.needs(0).history(shown.needs(0).history_size() - 1).reason(),
            "MARKER wacht op papieren");
}

TEST_F(CancelAssignmentTest, WatchReferralsOpensTheSealedTextsAfterRecordingTheRead) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata(service::kTestOrganisationHeader, "mjd");
  std::unique_ptr<grpc::ClientReader<v1::ReferralStatus>> reader =
      stub_->WatchReferrals(&context, v1::WatchReferralsRequest());
  reader->WaitForInitialMetadata();
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_ON_HOLD, 4, "MARKER wacht op papieren");
  Status(kDebt, "debt", "gemeente", v1::ASSIGNMENT_STATUS_IN_PROGRESS, 5);
  v1::ReferralStatus changed;
  ASSERT_TRUE(reader->Read(&changed));
  const v1::NeedStatus* debt = &changed.needs(0);
  EXPECT_EQ(debt->status(), v1::ASSIGNMENT_STATUS_ON_HOLD);
  EXPECT_EQ(debt->history(debt->history_size() - 1).reason(), "MARKER wacht op papieren");
  ASSERT_TRUE(reader->Read(&changed));  // in order
  debt = &changed.needs(0);
  EXPECT_EQ(debt->status(), v1::ASSIGNMENT_STATUS_IN_PROGRESS);
  EXPECT_EQ(debt->history(debt->history_size() - 2).reason(), "MARKER wacht op papieren");
  const std::vector<v1::AuditEntry> reads = recorder_.entries("referral.read");
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(reads[0].reason(), "WatchReferrals");
  EXPECT_EQ(reads[0].actor().id(), "mjd");
  context.TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(CancelAssignmentTest, AfterWorkStartedTheRequestStillGoesToTheOwner) {
  ASSERT_TRUE(Cancel(kIncome, "client moved away").ok());
  ASSERT_EQ(publisher_.published().size(), 1u);
  v1::CancelRequested event;
  ASSERT_TRUE(event.ParseFromString(publisher_.published()[0].value));
  EXPECT_EQ(event.organisation(), "leger-des-heils");
}

TEST_F(CancelAssignmentTest, AnotherOrganisationsOrUnknownAssignmentIsNotFound) {
  for (const auto& [id, caller] :
       std::vector<std::pair<std::string, std::string>>{{kDebt, "ggd"},
                                                        {kDebt, "gemeente"},
                                                        {"a-0000000000000000000000aa-7", "mjd"},
                                                        {"a-0000000000000000000000bb-0", "mjd"},
                                                        {"nonsense", "mjd"}}) {
    grpc::Status status = Cancel(id, "no longer needed", nullptr, caller);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << id << " by " << caller;
    EXPECT_EQ(status.error_message(), "assignment not found");
  }
  EXPECT_TRUE(publisher_.published().empty());
}

TEST_F(CancelAssignmentTest, NoLongerCurrentOrFinalIsFailedPrecondition) {
  grpc::Status replaced = Cancel(kIncomeFirst, "no longer needed");
  EXPECT_EQ(replaced.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(replaced.error_message(),
            "assignment a-0000000000000000000000aa-1 no longer carries the need: it continues as "
            "a-0000000000000000000000aa-1.1");
  grpc::Status done = Cancel(kHousing, "no longer needed");
  EXPECT_EQ(done.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(done.error_message(), "assignment a-0000000000000000000000aa-2 is already completed");
  EXPECT_TRUE(publisher_.published().empty());
}

TEST_F(CancelAssignmentTest, AssignmentAndReasonAreRequired) {
  grpc::Status no_id = Cancel("", "no longer needed");
  EXPECT_EQ(no_id.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(no_id.error_message(), "assignment_id: is required");
  grpc::Status no_reason = Cancel(kDebt, "  ");
  EXPECT_EQ(no_reason.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(no_reason.error_message(), "reason: is required");
  grpc::Status long_reason = Cancel(kDebt, std::string(501, 'x'));
  EXPECT_EQ(long_reason.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(long_reason.error_message(), "reason: at most 500 characters");
  EXPECT_EQ(Cancel(kDebt, "no longer needed", nullptr, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(publisher_.published().empty());
}

TEST_F(CancelAssignmentTest, UnreachableOrFailedKafkaIsUnavailable) {
  publisher_.reachable_ = false;
  EXPECT_EQ(Cancel(kDebt, "no longer needed").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(publisher_.published().empty());
  publisher_.reachable_ = true;
  publisher_.outcome_ = absl::UnavailableError("Kafka did not acknowledge the event");
  v1::CancelAssignmentResponse response;
  grpc::Status status = Cancel(kDebt, "no longer needed", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the cancellation was not sent: Kafka did not acknowledge the event");
  EXPECT_TRUE(response.assignment_id().empty());
}

// Duplicate intake: the client of Seed() (BSN 111222333) already has an open debt assignment at ggd
// from another referrer's referral, and a completed housing one. A new referral links its debt need
// to the open one instead of offering it again; ggd is not in the new referral's sharing
// permission, so the referrer is not told where the client is helped.
TEST_F(CancelAssignmentTest, ANeedAlreadyOpenForTheClientIsLinkedNotOfferedAgain) {
  constexpr char kEarlier[] = "r-0000000000000000000000bb";
  v1::ReferralSubmitted earlier;
  earlier.mutable_meta()->set_schema_version(1);
  earlier.mutable_meta()->set_referral_id(kEarlier);
  earlier.set_referring_organisation("terwille");
  earlier.set_client_pseudonym(pseudonymiser_.ForBsn("111222333"));
  for (const char* code : {"debt", "housing"}) earlier.add_needs()->set_code(code);
  Feed(std::string(topology::kSubmittedTopic), earlier.SerializeAsString());
  auto status = [&](const std::string& assignment, const std::string& need, const std::string& org,
                    v1::AssignmentStatus to, std::uint64_t version) {
    v1::AssignmentStatusChanged e;
    e.mutable_meta()->set_schema_version(1);
    e.mutable_meta()->set_referral_id(kEarlier);
    e.mutable_meta()->set_assignment_id(assignment);
    e.mutable_meta()->mutable_occurred_at()->set_seconds(2000 + static_cast<std::int64_t>(version));
    e.set_organisation(org);
    e.set_need_code(need);
    e.set_to_status(to);
    e.set_version(version);
    e.set_referring_organisation("terwille");
    Feed(std::string(topology::kStatusTopic), e.SerializeAsString());
  };
  status("a-0000000000000000000000bb-0", "debt", "ggd", v1::ASSIGNMENT_STATUS_REQUESTED, 1);
  status("a-0000000000000000000000bb-0", "debt", "ggd", v1::ASSIGNMENT_STATUS_ACCEPTED, 2);
  status("a-0000000000000000000000bb-1", "housing", "leger-des-heils",
         v1::ASSIGNMENT_STATUS_REQUESTED, 1);
  status("a-0000000000000000000000bb-1", "housing", "leger-des-heils",
         v1::ASSIGNMENT_STATUS_COMPLETED, 2);

  v1::SubmitReferralResponse response;
  grpc::Status submitted = Submit(Seed(), &response);  // debt, income, housing; as mjd
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  ASSERT_EQ(response.linked_size(), 1);
  EXPECT_EQ(response.linked(0).need_index(), 0u);
  EXPECT_EQ(response.linked(0).need_code(), "debt");
  EXPECT_EQ(response.linked(0).assignment_id(), "a-0000000000000000000000bb-0");
  EXPECT_EQ(response.linked(0).organisation(), "") << "ggd is outside the sharing permission";

  ASSERT_EQ(publisher_.published().size(), 1u);
  v1::ReferralSubmitted event;
  ASSERT_TRUE(event.ParseFromString(publisher_.published()[0].value));
  ASSERT_EQ(event.linked_size(), 1);
  EXPECT_EQ(event.linked(0).need_index(), 0u);
  EXPECT_EQ(event.linked(0).assignment_id(), "a-0000000000000000000000bb-0");

  // Another client's referral links nothing.
  v1::Referral other = Seed();
  other.mutable_client()->set_bsn("123456782");
  v1::SubmitReferralResponse unlinked;
  ASSERT_TRUE(Submit(other, &unlinked).ok());
  EXPECT_EQ(unlinked.linked_size(), 0);
}

// Idempotency keys: a retry with the same key gets the first referral back; the key cannot be
// reused for another referral.
class IdempotencyTest : public CancelAssignmentTest {
 protected:
  grpc::Status SubmitWithKey(const v1::Referral& referral, const std::string& key,
                             v1::SubmitReferralResponse* response,
                             const std::string& organisation = "mjd") {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context.AddMetadata(service::kTestOrganisationHeader, organisation);
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = referral;
    request.set_idempotency_key(key);
    return stub_->SubmitReferral(&context, request, response);
  }
  // What intake's view learns from Kafka: the published submission.
  void FeedPublished(std::size_t index) {
    Feed(std::string(topology::kSubmittedTopic), publisher_.published()[index].value);
  }
};

TEST_F(IdempotencyTest, ARetryWithTheSameKeyGetsTheFirstReferralAndPublishesNothing) {
  v1::SubmitReferralResponse first;
  ASSERT_TRUE(SubmitWithKey(Seed(), "mjd-intake-2026-0042", &first).ok());
  ASSERT_EQ(publisher_.published().size(), 1u);
  FeedPublished(0);

  v1::SubmitReferralResponse retry;
  grpc::Status status = SubmitWithKey(Seed(), "mjd-intake-2026-0042", &retry);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(retry.referral_id(), first.referral_id());
  EXPECT_EQ(std::vector<std::string>(retry.assignment_ids().begin(), retry.assignment_ids().end()),
            std::vector<std::string>(first.assignment_ids().begin(), first.assignment_ids().end()));
  EXPECT_EQ(retry.accepted_at().seconds(), first.accepted_at().seconds());
  EXPECT_EQ(publisher_.published().size(), 1u) << "a retry publishes nothing";
}

TEST_F(IdempotencyTest, TheSameKeyForAnotherReferralIsRefused) {
  v1::SubmitReferralResponse first;
  ASSERT_TRUE(SubmitWithKey(Seed(), "k-1", &first).ok());
  FeedPublished(0);
  v1::Referral other = Seed();
  other.mutable_needs()->RemoveLast();
  v1::SubmitReferralResponse refused;
  grpc::Status status = SubmitWithKey(other, "k-1", &refused);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(status.error_message(),
            "idempotency_key: already used for a different referral (" + first.referral_id() + ")");
  EXPECT_EQ(publisher_.published().size(), 1u);
}

TEST_F(IdempotencyTest, TheKeyIsPerOrganisationAndStableBeforeTheViewKnowsIt) {
  v1::SubmitReferralResponse first;
  v1::SubmitReferralResponse again;
  v1::SubmitReferralResponse other_org;
  ASSERT_TRUE(SubmitWithKey(Seed(), "k-2", &first).ok());
  // Not fed to the view yet (Kafka is a moment behind): published again under the same id, which
  // the router and the view take once.
  ASSERT_TRUE(SubmitWithKey(Seed(), "k-2", &again).ok());
  EXPECT_EQ(again.referral_id(), first.referral_id());
  ASSERT_EQ(publisher_.published().size(), 2u);
  EXPECT_EQ(publisher_.published()[1].key, first.referral_id());
  ASSERT_TRUE(SubmitWithKey(Seed(), "k-2", &other_org, "gemeente").ok());
  EXPECT_NE(other_org.referral_id(), first.referral_id());
  // Without a key every submission is a new referral.
  v1::SubmitReferralResponse plain1;
  v1::SubmitReferralResponse plain2;
  ASSERT_TRUE(Submit(Seed(), &plain1).ok());
  ASSERT_TRUE(Submit(Seed(), &plain2).ok());
  EXPECT_NE(plain1.referral_id(), plain2.referral_id());
}

TEST_F(IdempotencyTest, AKeyThatIsTooLongOrHasOtherCharactersIsRefused) {
  v1::SubmitReferralResponse response;
  for (const std::string& key :
       {std::string(129, 'k'), std::string("with space"), std::string("name:Jan\xc3\xa9")}) {
    grpc::Status status = SubmitWithKey(Seed(), key, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << key;
    EXPECT_EQ(status.error_message(),
              "idempotency_key: at most 128 characters of A-Z a-z 0-9 . _ : -");
  }
  EXPECT_TRUE(publisher_.published().empty());
}

}  // namespace
}  // namespace schakel::intake
