#include "libs/service/logging.h"

#include <gtest/gtest.h>

namespace schakel::service {
namespace {

TEST(LoggingTest, JsonEscapeKeepsTheLineParseable) {
  EXPECT_EQ(JsonEscape(R"(need "debt" \ ok)"), R"(need \"debt\" \\ ok)");
  EXPECT_EQ(JsonEscape("a\nb\tc\x01"), "a\\nb\\tc\\u0001");
  EXPECT_EQ(JsonEscape("café"), "café");
}

TEST(LoggingTest, IdsInFindsReferralAndAssignmentIdsOnce) {
  const LoggedIds ids = IdsIn(
      "router: a-0123456789abcdef01234567-0 declined (alpha); offered "
      "a-0123456789abcdef01234567-0.1 to beta (r-0123456789abcdef01234567, "
      "r-0123456789abcdef01234567 again, and r-ffffffffffffffffffffffff).");
  EXPECT_EQ(ids.referral_ids,
            (std::vector<std::string>{"r-0123456789abcdef01234567", "r-ffffffffffffffffffffffff"}));
  EXPECT_EQ(ids.assignment_ids, (std::vector<std::string>{"a-0123456789abcdef01234567-0",
                                                          "a-0123456789abcdef01234567-0.1"}));
}

TEST(LoggingTest, IdsInIgnoresWhatOnlyLooksLikeAnId) {
  // Too short, too long, upper case, inside a word, an assignment id without its need index, a
  // trailing dot that ends the sentence.
  const LoggedIds ids = IdsIn(
      "r-0123 r-0123456789abcdef012345678 r-0123456789ABCDEF01234567 xr-aaaaaaaaaaaaaaaaaaaaaaaa "
      "a-0123456789abcdef01234567 a-0123456789abcdef01234567-2.");
  EXPECT_TRUE(ids.referral_ids.size() == 1 && ids.referral_ids[0] == "r-0123456789abcdef01234567")
      << ids.referral_ids.size();
  EXPECT_EQ(ids.assignment_ids, (std::vector<std::string>{"a-0123456789abcdef01234567-2"}));
}

}  // namespace
}  // namespace schakel::service
