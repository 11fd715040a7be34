// Identity and access at the gRPC edge, on the real binaries with real certificates
// (deploy/local/pki): every service speaks TLS only; a caller is an organisation by its client
// certificate (mTLS) or its bearer token, an operator by an operator certificate; without either,
// or with a certificate of another authority, nothing is answered. An organisation reads only its
// own inbox and the referrals it submitted, and a refusal never tells whether the thing asked for
// exists.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "schakel/v1/routing.grpc.pb.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::TestChannel;
using schakel::testing::TestNetwork;

const std::string kSource = SCHAKEL_SOURCE_DIR;
const std::string kNetworkFile = kSource + "/deploy/local/network.yaml";

v1::Referral Seed(const std::string& client_code) {
  v1::Referral referral = schakel::testing::SeedReferral();
  referral.mutable_client()->set_client_code(client_code);
  return referral;
}

void Deadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
}

class SecurityE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    net_ = new TestNetwork("security", kNetworkFile);
    ASSERT_TRUE(net_->Prepare());
    net_->AddInboxes();
    net_->AddRouter("security-1");
    net_->AddIntake();
    ASSERT_TRUE(net_->StartAll());
  }
  static void TearDownTestSuite() { delete net_; }

  static std::string Address(const std::string& service) { return net_->Find(service).address; }

  static grpc::Status List(const std::shared_ptr<grpc::Channel>& channel,
                           const std::string& token = "") {
    grpc::ClientContext context;
    Deadline(context);
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::ListAssignmentsRequest request;
    v1::ListAssignmentsResponse response;
    const grpc::Status status =
        v1::InboxService::NewStub(channel)->ListAssignments(&context, request, &response);
    if (!status.ok()) {
      EXPECT_EQ(response.assignments_size(), 0);
    }
    return status;
  }

  static grpc::Status Submit(const std::shared_ptr<grpc::Channel>& channel,
                             v1::SubmitReferralResponse* response, const std::string& token = "") {
    grpc::ClientContext context;
    Deadline(context);
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = Seed("TW-SEC-" + std::to_string(++submitted_));
    return v1::IntakeService::NewStub(channel)->SubmitReferral(&context, request, response);
  }

  static inline TestNetwork* net_ = nullptr;
  static inline int submitted_ = 0;
};

TEST_F(SecurityE2eTest, AnOrganisationIsKnownByItsCertificateOrItsToken) {
  // mTLS: MJD's certificate opens MJD's inbox.
  EXPECT_TRUE(List(TestChannel(Address("inbox-mjd"), "mjd")).ok());
  // A bearer token over TLS (no client certificate) does too.
  EXPECT_TRUE(List(TestChannel(Address("inbox-mjd")), schakel::testing::TestToken("mjd")).ok());
  // Terwille submits with its certificate, and with its token.
  v1::SubmitReferralResponse response;
  EXPECT_TRUE(Submit(TestChannel(Address("intake"), "terwille"), &response).ok());
  EXPECT_TRUE(
      Submit(TestChannel(Address("intake")), &response, schakel::testing::TestToken("terwille"))
          .ok());
}

TEST_F(SecurityE2eTest, NoOrBadCredentialsAreUnauthenticated) {
  const auto anonymous = [](const std::string& service) { return TestChannel(Address(service)); };
  grpc::Status status = List(anonymous("inbox-mjd"));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  EXPECT_EQ(status.error_message(),
            "no client certificate or bearer token of an organisation of the network");
  EXPECT_EQ(List(anonymous("inbox-mjd"), "not-a-token").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A token of another organisation's length and shape, but not issued: still nobody.
  EXPECT_EQ(List(anonymous("inbox-mjd"), std::string(64, 'a')).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::SubmitReferralResponse response;
  EXPECT_EQ(Submit(anonymous("intake"), &response).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(response.referral_id().empty());

  grpc::ClientContext context;
  Deadline(context);
  v1::ExplainRouteRequest explain;
  *explain.mutable_referral() = Seed("TW-SEC-X");
  v1::ExplainRouteResponse explained;
  EXPECT_EQ(v1::RoutingService::NewStub(anonymous("router-security-1"))
                ->ExplainRoute(&context, explain, &explained)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityE2eTest, PlaintextAndForeignCertificatesGetNoConnection) {
  // Plaintext: the TLS-only server does not speak it.
  grpc::Status status =
      List(grpc::CreateChannel(Address("inbox-mjd"), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();

  // A certificate that names MJD but is signed by another authority: the handshake fails.
  const std::filesystem::path dir = net_->dir() / "foreign";
  std::filesystem::create_directories(dir);
  std::string output;
  ASSERT_EQ(
      schakel::testing::RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                                    "/CN=mjd.organisation.schakel", "-keyout",
                                    (dir / "mjd.key").string(), "-out", (dir / "mjd.pem").string()},
                                   &output),
      0)
      << output;
  auto read = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = read(schakel::testing::TestPki() / "ca.pem");
  options.pem_cert_chain = read(dir / "mjd.pem");
  options.pem_private_key = read(dir / "mjd.key");
  status = List(grpc::CreateChannel(Address("inbox-mjd"), grpc::SslCredentials(options)));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(SecurityE2eTest, AnotherOrganisationsInboxIsDeniedWithoutSayingWhatIsInIt) {
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(TestChannel(Address("intake"), "terwille"), &submitted).ok());
  ASSERT_EQ(submitted.assignment_ids_size(), 3);
  // The debt need is MJD's. The municipality asks MJD's inbox for it, and for one that does not
  // exist: the same refusal.
  const auto get = [](const std::string& assignment_id) {
    grpc::ClientContext context;
    Deadline(context);
    v1::GetAssignmentRequest request;
    request.set_assignment_id(assignment_id);
    v1::Assignment assignment;
    const grpc::Status status =
        v1::InboxService::NewStub(TestChannel(Address("inbox-mjd"), "gemeente"))
            ->GetAssignment(&context, request, &assignment);
    EXPECT_TRUE(assignment.need_details().empty());
    return status;
  };
  const grpc::Status existing = get(submitted.assignment_ids(0));
  const grpc::Status missing = get("a-000000000000000000000000-0");
  EXPECT_EQ(existing.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(existing.error_code(), missing.error_code());
  EXPECT_EQ(existing.error_message(), missing.error_message());
  EXPECT_EQ(List(TestChannel(Address("inbox-mjd"), "gemeente")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  // An operator is not an organisation: no inbox reads either.
  EXPECT_EQ(List(TestChannel(Address("inbox-mjd"), "operator:operator")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(SecurityE2eTest, AReferralIsVisibleOnlyToWhoSubmittedIt) {
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(TestChannel(Address("intake"), "terwille"), &submitted).ok());
  const auto get = [](const std::string& as, const std::string& referral_id) {
    grpc::ClientContext context;
    Deadline(context);
    v1::GetReferralRequest request;
    request.set_referral_id(referral_id);
    v1::ReferralStatus status;
    const grpc::Status result = v1::IntakeService::NewStub(TestChannel(Address("intake"), as))
                                    ->GetReferral(&context, request, &status);
    if (!result.ok()) {
      EXPECT_EQ(status.needs_size(), 0);
    }
    return result;
  };
  ASSERT_TRUE(schakel::testing::Eventually(
      [&] { return get("terwille", submitted.referral_id()).ok(); }, std::chrono::seconds(30)));
  const grpc::Status foreign = get("mjd", submitted.referral_id());
  const grpc::Status missing = get("mjd", "r-000000000000000000000000");
  EXPECT_EQ(foreign.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(foreign.error_code(), missing.error_code());
  EXPECT_EQ(foreign.error_message(), missing.error_message());
}

TEST_F(SecurityE2eTest, AnOperatorMayAskWhereAReferralWouldGo) {
  grpc::ClientContext context;
  Deadline(context);
  v1::ExplainRouteRequest request;
  *request.mutable_referral() = Seed("TW-SEC-OP");
  v1::ExplainRouteResponse response;
  const grpc::Status status =
      v1::RoutingService::NewStub(TestChannel(Address("router-security-1"), "operator:operator"))
          ->ExplainRoute(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.routes_size(), 3);
}

}  // namespace
}  // namespace schakel
