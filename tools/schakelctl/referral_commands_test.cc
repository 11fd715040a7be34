#include "tools/schakelctl/referral_commands.h"

#include <gtest/gtest.h>

namespace schakel::ctl {
namespace {

TEST(ReferralCommands, AReferralIsReadFromItsJson) {
  absl::StatusOr<v1::Referral> referral = ParseReferral(
      R"({"region": "groningen-stad", "needs": [{"code": "housing"}], "languages": ["nl"]})",
      "referral.json");
  ASSERT_TRUE(referral.ok()) << referral.status();
  EXPECT_EQ(referral->region(), "groningen-stad");
  ASSERT_EQ(referral->needs_size(), 1);
  EXPECT_EQ(referral->needs(0).code(), "housing");
}

TEST(ReferralCommands, JsonThatIsNoReferralIsRefusedNamingTheFile) {
  absl::StatusOr<v1::Referral> referral = ParseReferral(R"({"regio": "x"})", "referral.json");
  ASSERT_EQ(referral.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      referral.status().message().rfind("referral.json: not a schakel.v1.Referral in JSON: ", 0),
      0u)
      << referral.status();
}

}  // namespace
}  // namespace schakel::ctl
