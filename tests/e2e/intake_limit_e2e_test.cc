// Per-organisation rate limits on intake, on the real binaries: an organisation's burst beyond its
// intake_limit (tests/e2e/data/intake-limit-network.yaml) is refused with RESOURCE_EXHAUSTED and a
// retry-after-ms trailer, and publishes nothing; another organisation is not affected.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::ReadWholeTopic;
using schakel::testing::TestChannel;
using schakel::testing::TestNetwork;

const std::string kNetworkFile =
    std::string(SCHAKEL_SOURCE_DIR) + "/tests/e2e/data/intake-limit-network.yaml";

v1::Referral Debt(const std::string& client_code) {
  v1::Referral referral;
  referral.mutable_client()->set_client_code(client_code);
  referral.add_needs()->set_code("debt");
  referral.set_urgency(v1::URGENCY_NORMAL);
  referral.set_region("stad");
  referral.add_languages("nl");
  referral.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  referral.mutable_sharing()->add_organisations("limited");
  referral.mutable_sharing()->add_organisations("unlimited");
  return referral;
}

struct Answer {
  grpc::Status status;
  std::string referral_id;
  std::string retry_after_ms;  // the trailer, when there is one
};

Answer Submit(v1::IntakeService::Stub& stub, const std::string& client_code) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = Debt(client_code);
  v1::SubmitReferralResponse response;
  Answer answer;
  answer.status = stub.SubmitReferral(&context, request, &response);
  answer.referral_id = response.referral_id();
  const auto& trailers = context.GetServerTrailingMetadata();
  if (const auto it = trailers.find("retry-after-ms"); it != trailers.end()) {
    answer.retry_after_ms = std::string(it->second.data(), it->second.size());
  }
  return answer;
}

TEST(IntakeLimitE2eTest, ABurstBeyondTheLimitIsRefusedForThatOrganisationOnly) {
  TestNetwork net("intake-limit", kNetworkFile);
  ASSERT_TRUE(net.Prepare());
  net.AddIntake();
  ASSERT_TRUE(net.StartAll());
  const std::string intake = net.Find("intake").address;
  auto limited = v1::IntakeService::NewStub(TestChannel(intake, "limited"));
  auto unlimited = v1::IntakeService::NewStub(TestChannel(intake, "unlimited"));

  // A burst of 6 from each, one after the other (a token comes back only every 10 s).
  std::vector<Answer> from_limited;
  std::vector<Answer> from_unlimited;
  for (int i = 0; i < 6; ++i) {
    from_limited.push_back(Submit(*limited, "L-" + std::to_string(i)));
    from_unlimited.push_back(Submit(*unlimited, "U-" + std::to_string(i)));
  }
  std::set<std::string> accepted;
  for (int i = 0; i < 6; ++i) {
    const Answer& a = from_limited[i];
    if (i < 3) {
      EXPECT_TRUE(a.status.ok()) << i << ": " << a.status.error_message();
      EXPECT_EQ(a.retry_after_ms, "") << i;
      accepted.insert(a.referral_id);
    } else {
      EXPECT_EQ(a.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << i;
      EXPECT_NE(a.status.error_message().find("intake_limit of organisation limited (0.1 "
                                              "referrals per second, bursts of 3) reached"),
                std::string::npos)
          << a.status.error_message();
      const int retry_ms = std::atoi(a.retry_after_ms.c_str());
      EXPECT_GT(retry_ms, 0) << i;
      EXPECT_LE(retry_ms, 10'000) << i;
      EXPECT_EQ(a.referral_id, "") << i;
    }
    EXPECT_TRUE(from_unlimited[i].status.ok())
        << i << ": " << from_unlimited[i].status.error_message();
    accepted.insert(from_unlimited[i].referral_id);
  }

  // Exactly the accepted referrals were published: the refused calls changed nothing.
  std::set<std::string> published;
  for (const kafka::Record& r :
       ReadWholeTopic(net.kafka(), std::string(topology::kSubmittedTopic))) {
    v1::ReferralSubmitted event;
    if (!event.ParseFromString(r.value)) continue;
    if (event.referring_organisation() == "limited" ||
        event.referring_organisation() == "unlimited") {
      published.insert(event.meta().referral_id());
    }
  }
  EXPECT_EQ(published, accepted);
  EXPECT_EQ(published.size(), 9u);
}

}  // namespace
}  // namespace schakel
