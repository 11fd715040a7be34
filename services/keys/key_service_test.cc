#include "services/keys/key_service.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/service/server.h"
#include "libs/service/test_identity.h"
#include "schakel/v1/events.pb.h"
#include "tests/support/fake_recorder.h"

namespace schakel::keys {
namespace {

// Kafka behind our own Publisher interface: records what was published.
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
    }
    done(outcome_);
  }
  bool Reachable() const override { return reachable_; }
  std::vector<Published> published() {
    absl::MutexLock lock(&mu_);
    return published_;
  }
  bool reachable_ = true;
  absl::Status outcome_;

 private:
  absl::Mutex mu_;
  std::vector<Published> published_ ABSL_GUARDED_BY(mu_);
};

using schakel::testing::FakeRecorder;

class KeyServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = *KeyStore::Open(db_path_, std::string(32, 'm'));
    service_ = std::make_unique<KeyService>(*store_, publisher_, options_, &recorder_);
    service::UseAuthenticator(std::make_shared<service::HeaderAuthenticatorForTests>());
    absl::StatusOr<service::RunningServer> server =
        service::StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::KeyService::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(server_.port),
                                                        grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_.server->Shutdown();
    service_.reset();
  }

  // `as`: "org:<id>", "service:<name>", "operator:<name>" or "" (nobody).
  static void As(grpc::ClientContext& context, const std::string& as) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    const auto colon = as.find(':');
    if (colon == std::string::npos) return;
    const std::string kind = as.substr(0, colon), id = as.substr(colon + 1);
    context.AddMetadata(kind == "org"       ? service::kTestOrganisationHeader
                        : kind == "service" ? service::kTestServiceHeader
                                            : service::kTestOperatorHeader,
                        id);
  }
  // A sharing permission on the ground of consent, for `organisations`.
  static v1::SharingPermission Consent(const std::vector<std::string>& organisations) {
    v1::SharingPermission sharing;
    sharing.set_basis(v1::SHARING_BASIS_CONSENT);
    for (const std::string& org : organisations) sharing.add_organisations(org);
    return sharing;
  }
  // As intake asks: with the referral's sharing permission (unless a test says otherwise, the GGD
  // and MJD).
  grpc::Status ClientKey(const std::string& as, const std::string& pseudonym,
                         const std::string& referral, v1::DataKey* key) {
    return ClientKey(as, pseudonym, referral, Consent({"ggd", "mjd"}), key);
  }
  grpc::Status ClientKey(const std::string& as, const std::string& pseudonym,
                         const std::string& referral,
                         const std::optional<v1::SharingPermission>& sharing, v1::DataKey* key) {
    grpc::ClientContext context;
    As(context, as);
    v1::ClientKeyRequest request;
    request.set_client_pseudonym(pseudonym);
    request.set_referral_id(referral);
    if (sharing) *request.mutable_sharing() = *sharing;
    return stub_->ClientKey(&context, request, key);
  }
  grpc::Status AssignmentKey(const std::string& as, const std::string& assignment,
                             const std::string& key_id, v1::DataKey* key) {
    grpc::ClientContext context;
    As(context, as);
    v1::AssignmentKeyRequest request;
    request.set_assignment_id(assignment);
    request.set_key_id(key_id);
    return stub_->AssignmentKey(&context, request, key);
  }
  grpc::Status ReferralKey(const std::string& as, const std::string& referral,
                           const std::string& key_id, v1::DataKey* key) {
    grpc::ClientContext context;
    As(context, as);
    v1::ReferralKeyRequest request;
    request.set_referral_id(referral);
    request.set_key_id(key_id);
    return stub_->ReferralKey(&context, request, key);
  }
  grpc::Status Erase(const std::string& as, const std::string& referral, const std::string& reason,
                     v1::EraseClientResponse* response) {
    grpc::ClientContext context;
    As(context, as);
    v1::EraseClientRequest request;
    request.set_referral_id(referral);
    request.set_reason(reason);
    return stub_->EraseClient(&context, request, response);
  }

  std::string db_path_ = ":memory:";
  KeyServiceOptions options_{.grant_wait = std::chrono::milliseconds(1500),
                             .recheck_every = std::chrono::milliseconds(20)};
  FakePublisher publisher_;
  FakeRecorder recorder_;
  std::unique_ptr<KeyStore> store_;
  std::unique_ptr<KeyService> service_;
  service::RunningServer server_;
  std::unique_ptr<v1::KeyService::Stub> stub_;
};

TEST_F(KeyServiceTest, OnlyIntakeGetsAClientsKey) {
  v1::DataKey key;
  EXPECT_EQ(ClientKey("", "p-anna", "r-1", &key).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ClientKey("org:mjd", "p-anna", "r-1", &key).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ClientKey("service:router", "p-anna", "r-1", &key).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ClientKey("operator:op", "p-anna", "r-1", &key).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status bad = ClientKey("service:intake", "anna", "r-1", &key);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "client_pseudonym: a pseudonym (p-...) is required");
  EXPECT_EQ(ClientKey("service:intake", "p-anna", "", &key).error_message(),
            "referral_id: is required");
  EXPECT_EQ(*store_->CountKeys(), 0);
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  EXPECT_EQ(key.key().size(), 32u);
}

TEST_F(KeyServiceTest, ANewReferralsKeyNeedsAWellFormedSharingPermission) {
  v1::DataKey key;
  const auto refused = [&](const std::optional<v1::SharingPermission>& sharing) {
    return ClientKey("service:intake", "p-anna", "r-1", sharing, &key);
  };
  grpc::Status status = refused(std::nullopt);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "sharing: is required for a referral the key service has not recorded");
  v1::SharingPermission no_basis = Consent({"mjd"});
  no_basis.clear_basis();
  status = refused(no_basis);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "sharing.basis: must be CONSENT, LEGAL_OBLIGATION or VITAL_INTEREST");
  v1::SharingPermission odd_basis = Consent({"mjd"});
  odd_basis.set_basis(static_cast<v1::SharingBasis>(77));
  EXPECT_EQ(refused(odd_basis).error_message(),
            "sharing.basis: must be CONSENT, LEGAL_OBLIGATION or VITAL_INTEREST");
  EXPECT_EQ(refused(Consent({})).error_message(),
            "sharing.organisations: must name at least one organisation");
  for (const char* bad : {"", "MJD", "mjd ggd", "-mjd", "mjd\n"}) {
    status = refused(Consent({"ggd", bad}));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(status.error_message(), "sharing.organisations[1]: not an organisation id") << bad;
  }
  EXPECT_EQ(refused(Consent({std::string(64, 'a')})).error_message(),
            "sharing.organisations[0]: not an organisation id");
  EXPECT_EQ(refused(Consent(std::vector<std::string>(51, "mjd"))).error_message(),
            "sharing.organisations: at most 50 organisations");
  EXPECT_EQ(*store_->CountKeys(), 0) << "a refused request makes no key";

  ASSERT_TRUE(
      ClientKey("service:intake", "p-anna", "r-1", Consent({"mjd", "gemeente"}), &key).ok());
  EXPECT_EQ(*store_->SharingOf("r-1"), (std::vector<std::string>{"gemeente", "mjd"}));
  // Intake asking again for a referral the key service has (an old one, whose permission it no
  // longer holds): answered, and what was recorded stands.
  v1::DataKey again;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", std::nullopt, &again).ok());
  EXPECT_EQ(again.key_id(), key.key_id());
  EXPECT_EQ(*store_->SharingOf("r-1"), (std::vector<std::string>{"gemeente", "mjd"}));
}

// The second line: the router offered the assignment to the GGD (a bug, or a forged
// forward it took), but the client's sharing permission, which intake gave the key service, names
// only MJD. The GGD is refused as if nothing had been offered to it: the same answer, after the
// same wait, and nothing is recorded as handed out.
TEST_F(KeyServiceTest, AnOfferOutsideTheClientsSharingPermissionOpensNothing) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", Consent({"mjd"}), &key).ok());
  ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}, {"r-1.1", "r-1", "ggd"}}).ok());

  v1::DataKey got;
  auto start = std::chrono::steady_clock::now();
  const grpc::Status outside = AssignmentKey("service:inbox-ggd", "r-1.1", key.key_id(), &got);
  const auto outside_took = std::chrono::steady_clock::now() - start;
  start = std::chrono::steady_clock::now();
  const grpc::Status never_offered = AssignmentKey("org:ggd", "r-7.0", key.key_id(), &got);
  const auto never_took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(outside.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(outside.error_message(), never_offered.error_message());
  EXPECT_EQ(never_offered.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Both only once the wait for an offer is over (not a speed figure: a refusal at once would
  // tell the caller that the assignment exists).
  EXPECT_GE(outside_took, options_.grant_wait);
  EXPECT_GE(never_took, options_.grant_wait);
  EXPECT_EQ(got.key(), "");
  EXPECT_EQ(got.key_id(), "");
  EXPECT_TRUE(recorder_.entries().empty()) << "nothing recorded as handed out";
  EXPECT_EQ(service_->refused_outside_sharing(), 1u) << "counted, the never-offered one not";

  // MJD, inside the permission, gets it, recorded as usual.
  ASSERT_TRUE(AssignmentKey("org:mjd", "r-1.0", key.key_id(), &got).ok());
  EXPECT_EQ(got.key(), key.key());
  ASSERT_EQ(recorder_.entries().size(), 1u);
  EXPECT_EQ(recorder_.entries()[0].actor().id(), "mjd");
  EXPECT_EQ(recorder_.entries()[0].reason(), "open offered assignment");
  EXPECT_EQ(service_->handed_out_sharing_unknown(), 0u);

  // After an erasure the GGD learns nothing either: no "erased", just the same refusal.
  v1::EraseClientResponse erased;
  ASSERT_TRUE(Erase("operator:op", "r-1", "client asked", &erased).ok());
  const grpc::Status after = AssignmentKey("org:ggd", "r-1.1", key.key_id(), &got);
  EXPECT_EQ(after.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(after.error_message(), never_offered.error_message());
  EXPECT_EQ(service_->refused_outside_sharing(), 2u);
}

// A store on disk, shared with the test: referrals recorded before the key service kept sharing
// permissions can be made by deleting theirs.
class KeyServiceOnDiskTest : public KeyServiceTest {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("key_service_test_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    db_path_ = (dir_ / "keys.db").string();
    KeyServiceTest::SetUp();
  }
  void TearDown() override {
    KeyServiceTest::TearDown();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Forgets `referral_id`'s sharing permission, as if recorded by an earlier key service.
  void ForgetSharing(const std::string& referral_id) {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db_path_.c_str(), &raw), SQLITE_OK);
    const std::string sql =
        "DELETE FROM referral_sharing WHERE referral_id = '" + referral_id + "'";
    EXPECT_EQ(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
  }
  std::filesystem::path dir_;
};

// A referral from before: the offer alone decides, as it did; the hand-out is logged, counted and
// recorded as one that was not checked against a sharing permission.
TEST_F(KeyServiceOnDiskTest, AnOldReferralWithoutARecordedPermissionFallsBackToTheOffer) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", Consent({"mjd"}), &key).ok());
  ASSERT_TRUE(store_->AddGrants({{"r-1.1", "r-1", "ggd"}}).ok());
  ForgetSharing("r-1");
  v1::DataKey got;
  const grpc::Status status = AssignmentKey("org:ggd", "r-1.1", key.key_id(), &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.key(), key.key());
  EXPECT_EQ(service_->handed_out_sharing_unknown(), 1u);
  EXPECT_EQ(service_->refused_outside_sharing(), 0u);
  ASSERT_EQ(recorder_.entries().size(), 1u);
  EXPECT_EQ(recorder_.entries()[0].reason(),
            "open offered assignment (no sharing permission recorded: the offer alone decided)");
}

TEST_F(KeyServiceTest, AnOrganisationGetsTheKeyOfWhatWasOfferedToItOnceTheOfferArrives) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  // The grant arrives while the inbox waits for it.
  std::thread later([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());
  });
  v1::DataKey got;
  grpc::Status status = AssignmentKey("service:inbox-mjd", "r-1.0", key.key_id(), &got);
  later.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.key(), key.key());
  // The organisation itself (a partner reading its topic directly) too.
  ASSERT_TRUE(AssignmentKey("org:mjd", "r-1.0", key.key_id(), &got).ok());
  EXPECT_EQ(got.key(), key.key());
}

TEST_F(KeyServiceTest, OnlyIntakeGetsTheKeyOfAReferralItTookIn) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());
  v1::DataKey got;
  grpc::Status status = ReferralKey("service:intake", "r-1", key.key_id(), &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(got.key_id(), key.key_id());
  EXPECT_EQ(got.key(), key.key());
  // Nobody else: not the owner (it has AssignmentKey), not an inbox, not an operator.
  EXPECT_EQ(ReferralKey("", "r-1", key.key_id(), &got).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  for (const char* as : {"org:mjd", "service:inbox-mjd", "service:router", "operator:op"}) {
    status = ReferralKey(as, "r-1", key.key_id(), &got);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << as;
    EXPECT_EQ(status.error_message(), "only the intake service asks for a referral's key") << as;
  }
  EXPECT_EQ(ReferralKey("service:intake", "", key.key_id(), &got).error_message(),
            "referral_id: is required");
  EXPECT_EQ(ReferralKey("service:intake", "r-1", "", &got).error_message(), "key_id: is required");
  // No key recorded for nobody's asking.
  EXPECT_EQ(*store_->CountKeys(), 1);
}

TEST_F(KeyServiceTest, AReferralKeyIsRefusedTheSameWayForAnotherClientOrAnUnknownReferralOrKey) {
  v1::DataKey anna, bert;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &anna).ok());
  ASSERT_TRUE(ClientKey("service:intake", "p-bert", "r-2", &bert).ok());
  ASSERT_NE(anna.key_id(), bert.key_id());
  v1::DataKey got;
  // Bert's key through Anna's referral, Anna's key through a referral nobody made, and a key id
  // nobody made: one answer, no key made.
  const grpc::Status other = ReferralKey("service:intake", "r-1", bert.key_id(), &got);
  const grpc::Status unknown_referral = ReferralKey("service:intake", "r-9", anna.key_id(), &got);
  const grpc::Status unknown_key = ReferralKey("service:intake", "r-1", "k-nobody", &got);
  for (const grpc::Status& s : {other, unknown_referral, unknown_key}) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(s.error_message(), "no such key for this referral");
  }
  EXPECT_EQ(got.key(), "");
  EXPECT_EQ(*store_->CountKeys(), 2);
  // A second referral of the same client opens with the client's key.
  v1::DataKey again;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-3", &again).ok());
  ASSERT_EQ(again.key_id(), anna.key_id());
  ASSERT_TRUE(ReferralKey("service:intake", "r-3", anna.key_id(), &got).ok());
  EXPECT_EQ(got.key(), anna.key());
}

TEST_F(KeyServiceTest, AnErasedClientsReferralKeyIsFailedPreconditionErased) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  v1::EraseClientResponse erased;
  ASSERT_TRUE(Erase("operator:op", "r-1", "client asked", &erased).ok());
  v1::DataKey got;
  const grpc::Status status = ReferralKey("service:intake", "r-1", key.key_id(), &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "erased: the client of r-1 has been erased");
  EXPECT_EQ(got.key(), "");
  // The client's new key (a later referral) does not reopen the erased one, nor is made here.
  v1::DataKey fresh;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-2", &fresh).ok());
  EXPECT_EQ(ReferralKey("service:intake", "r-2", key.key_id(), &got).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReferralKey("service:intake", "r-1", fresh.key_id(), &got).error_code(),
            grpc::StatusCode::OK)
      << "r-1's client is the same person: its current key is the client's";
  EXPECT_EQ(*store_->CountKeys(), 1);
}

// Checking again only every hour: a waiting call is answered because the stored grant wakes it.
class KeyServiceWakeTest : public KeyServiceTest {
 protected:
  void SetUp() override {
    options_ = {.grant_wait = std::chrono::seconds(5), .recheck_every = std::chrono::hours(1)};
    KeyServiceTest::SetUp();
  }
};

TEST_F(KeyServiceWakeTest, AStoredGrantAnswersTheCallsWaitingForItAtOnce) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  std::thread later([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());
    service_->GrantsArrived();
  });
  v1::DataKey got;
  grpc::Status status = AssignmentKey("service:inbox-mjd", "r-1.0", key.key_id(), &got);
  later.join();
  ASSERT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  EXPECT_EQ(got.key(), key.key());
}

TEST_F(KeyServiceTest, OthersAreRefusedTheSameWayWhetherOrNotTheAssignmentExists) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());
  v1::DataKey got;
  const grpc::Status other = AssignmentKey("org:ggd", "r-1.0", key.key_id(), &got);
  const grpc::Status none = AssignmentKey("org:ggd", "r-7.0", key.key_id(), &got);
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(other.error_message(), none.error_message());
  EXPECT_EQ(got.key(), "");
  EXPECT_EQ(AssignmentKey("service:inbox-ggd", "r-1.0", key.key_id(), &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(AssignmentKey("operator:op", "r-1.0", key.key_id(), &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(AssignmentKey("service:intake", "r-1.0", key.key_id(), &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(AssignmentKey("", "r-1.0", key.key_id(), &got).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(AssignmentKey("org:mjd", "", key.key_id(), &got).error_message(),
            "assignment_id: is required");
  EXPECT_EQ(AssignmentKey("org:mjd", "r-1.0", "", &got).error_message(), "key_id: is required");
  // A key this service never made: no grant can change that.
  grpc::Status unknown = AssignmentKey("org:mjd", "r-1.0", "k-elsewhere", &got);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(unknown.error_message(), "key k-elsewhere is not known here");
}

TEST_F(KeyServiceTest, EraseClientDestroysTheKeysAndTellsTheInboxes) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());
  v1::EraseClientResponse response;
  EXPECT_EQ(Erase("org:mjd", "r-1", "asked", &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Erase("operator:op", "r-1", " ", &response).error_message(), "reason: is required");
  EXPECT_EQ(Erase("operator:op", "r-1", std::string(501, 'x'), &response).error_message(),
            "reason: at most 500 characters");
  EXPECT_EQ(Erase("operator:op", "r-9", "asked", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  publisher_.reachable_ = false;
  EXPECT_EQ(Erase("operator:op", "r-1", "asked", &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(*store_->CountKeys(), 1) << "refused calls change nothing";
  EXPECT_TRUE(publisher_.published().empty());
  publisher_.reachable_ = true;

  ASSERT_TRUE(Erase("operator:op", "r-1", "request of the client", &response).ok());
  EXPECT_EQ(response.client_pseudonym(), "p-anna");
  EXPECT_EQ(response.keys_destroyed(), 1u);
  EXPECT_EQ(*store_->CountKeys(), 0);
  ASSERT_EQ(publisher_.published().size(), 1u);
  const FakePublisher::Published p = publisher_.published()[0];
  EXPECT_EQ(p.topic, "schakel.clients.erasures");
  EXPECT_EQ(p.key, "p-anna");
  v1::ClientErased erased;
  ASSERT_TRUE(erased.ParseFromString(p.value));
  EXPECT_EQ(erased.client_pseudonym(), "p-anna");
  ASSERT_EQ(erased.key_ids_size(), 1);
  EXPECT_EQ(erased.key_ids(0), key.key_id());
  EXPECT_EQ(erased.by(), "op");
  EXPECT_EQ(erased.reason(), "request of the client");
  EXPECT_EQ(erased.meta().referral_id(), "r-1");

  v1::DataKey got;
  grpc::Status gone = AssignmentKey("org:mjd", "r-1.0", key.key_id(), &got);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(gone.error_message(), "erased: the client of r-1.0 has been erased");
  // Again: nothing left to destroy, the inboxes are told again.
  ASSERT_TRUE(Erase("operator:op", "r-1", "again", &response).ok());
  EXPECT_EQ(response.keys_destroyed(), 0u);
  EXPECT_EQ(publisher_.published().size(), 2u);
}

TEST_F(KeyServiceTest, AKafkaFailureAfterTheKeysAreGoneSaysSo) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  publisher_.outcome_ = absl::UnavailableError("timed out");
  v1::EraseClientResponse response;
  grpc::Status status = Erase("operator:op", "r-1", "asked", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the client's keys are destroyed, but the inboxes were not told to purge yet: erase "
            "again");
  EXPECT_EQ(*store_->CountKeys(), 0);
}

TEST_F(KeyServiceTest, EveryKeyHandedToAnOrganisationIsRecorded) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}, {"r-1.1", "r-1", "ggd"}}).ok());
  // Refused calls hand nothing out and record nothing; neither does intake's own key.
  v1::DataKey got;
  ASSERT_EQ(AssignmentKey("org:terwille", "r-1.0", key.key_id(), &got).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_EQ(AssignmentKey("org:mjd", "r-1.0", "k-elsewhere", &got).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(recorder_.entries().empty());

  const std::int64_t before = google::protobuf::util::TimeUtil::GetCurrentTime().seconds();
  ASSERT_TRUE(AssignmentKey("service:inbox-mjd", "r-1.0", key.key_id(), &got).ok());
  ASSERT_TRUE(AssignmentKey("org:ggd", "r-1.1", key.key_id(), &got).ok());
  const std::int64_t after = google::protobuf::util::TimeUtil::GetCurrentTime().seconds();

  const std::vector<v1::AuditEntry> entries = recorder_.entries();
  ASSERT_EQ(entries.size(), 2u);
  // The inbox service asks for its organisation: the key went to the organisation.
  const v1::AuditEntry& mjd = entries[0];
  EXPECT_EQ(mjd.actor().kind(), v1::AuditActor::ORGANISATION);
  EXPECT_EQ(mjd.actor().id(), "mjd");
  EXPECT_EQ(mjd.action(), "key.granted");
  EXPECT_EQ(mjd.subject().referral_id(), "r-1");
  EXPECT_THAT(mjd.subject().assignment_ids(), ::testing::ElementsAre("r-1.0"));
  EXPECT_EQ(mjd.subject().client_pseudonym(), "p-anna");
  EXPECT_EQ(mjd.subject().organisation(), "");
  EXPECT_EQ(mjd.reason(), "open offered assignment");
  EXPECT_GE(mjd.at().seconds(), before);
  EXPECT_LE(mjd.at().seconds(), after);
  // Not linked yet: the chain writer does that when it publishes.
  EXPECT_EQ(mjd.writer(), "");
  EXPECT_EQ(mjd.hash(), "");
  const v1::AuditEntry& ggd = entries[1];
  EXPECT_EQ(ggd.actor().kind(), v1::AuditActor::ORGANISATION);
  EXPECT_EQ(ggd.actor().id(), "ggd");
  EXPECT_EQ(ggd.action(), "key.granted");
  EXPECT_THAT(ggd.subject().assignment_ids(), ::testing::ElementsAre("r-1.1"));
  EXPECT_EQ(ggd.subject().client_pseudonym(), "p-anna");
  EXPECT_EQ(ggd.reason(), "open offered assignment");
}

TEST_F(KeyServiceTest, AKeyWhoseHandOutCannotBeRecordedIsNotHandedOut) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  ASSERT_TRUE(store_->AddGrants({{"r-1.0", "r-1", "mjd"}}).ok());
  recorder_.outcome_ = absl::UnavailableError("the audit log cannot take more entries");
  v1::DataKey got;
  const grpc::Status status = AssignmentKey("org:mjd", "r-1.0", key.key_id(), &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the hand-out of the key could not be recorded in the audit stream; no key was handed "
            "out, try again");
  EXPECT_EQ(got.key(), "");
  EXPECT_EQ(got.key_id(), "");
}

TEST_F(KeyServiceTest, AnErasureIsRecordedWithTheOperatorAndWhereItsReasonIs) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  v1::EraseClientResponse response;
  // Refused: nothing erased, nothing recorded.
  ASSERT_EQ(Erase("org:mjd", "r-1", "asked", &response).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_EQ(Erase("operator:op", "r-9", "asked", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(recorder_.entries().empty());

  const std::int64_t before = google::protobuf::util::TimeUtil::GetCurrentTime().seconds();
  ASSERT_TRUE(Erase("operator:op", "r-1", "request of the client", &response).ok());
  const std::int64_t after = google::protobuf::util::TimeUtil::GetCurrentTime().seconds();
  ASSERT_EQ(publisher_.published().size(), 1u);
  v1::ClientErased event;
  ASSERT_TRUE(event.ParseFromString(publisher_.published()[0].value));
  const std::vector<v1::AuditEntry> entries = recorder_.entries();
  ASSERT_EQ(entries.size(), 1u);
  const v1::AuditEntry& erased = entries[0];
  EXPECT_EQ(erased.actor().kind(), v1::AuditActor::OPERATOR);
  EXPECT_EQ(erased.actor().id(), "op");
  EXPECT_EQ(erased.action(), "client.erased");
  EXPECT_EQ(erased.subject().referral_id(), "r-1");
  EXPECT_EQ(erased.subject().client_pseudonym(), "p-anna");
  EXPECT_TRUE(erased.subject().assignment_ids().empty());
  // The operator's words stay on the erasures topic (the audit stream is never erased); the
  // entry names the event that carries them.
  EXPECT_EQ(erased.reason(), "EraseClient (reason: ClientErased " + event.meta().event_id() + ")");
  EXPECT_EQ(event.reason(), "request of the client");
  EXPECT_EQ(erased.reason().find("request of the client"), std::string::npos);
  EXPECT_GE(erased.at().seconds(), before);
  EXPECT_LE(erased.at().seconds(), after);
}

TEST_F(KeyServiceTest, AnErasureThatCannotBeRecordedSaysSo) {
  v1::DataKey key;
  ASSERT_TRUE(ClientKey("service:intake", "p-anna", "r-1", &key).ok());
  recorder_.outcome_ = absl::UnavailableError("the audit log stopped");
  v1::EraseClientResponse response;
  const grpc::Status status = Erase("operator:op", "r-1", "asked", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(),
            "the client's keys are destroyed and the inboxes told, but the erasure was not "
            "recorded in the audit stream: erase again");
  EXPECT_EQ(*store_->CountKeys(), 0);
  // Again, once the audit stream takes it: recorded (nothing left to destroy).
  recorder_.outcome_ = absl::OkStatus();
  ASSERT_TRUE(Erase("operator:op", "r-1", "asked", &response).ok());
  EXPECT_EQ(response.keys_destroyed(), 0u);
  ASSERT_EQ(recorder_.entries().size(), 1u);
  EXPECT_EQ(recorder_.entries()[0].action(), "client.erased");
}

}  // namespace
}  // namespace schakel::keys
