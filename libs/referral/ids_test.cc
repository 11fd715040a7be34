#include "libs/referral/ids.h"

#include <gtest/gtest.h>

#include <regex>

namespace schakel::referral {
namespace {

TEST(IdsTest, ReferralIdsAreRandomAndWellFormed) {
  const std::string a = NewReferralId();
  const std::string b = NewReferralId();
  EXPECT_NE(a, b);
  EXPECT_TRUE(std::regex_match(a, std::regex("^r-[0-9a-f]{24}$"))) << a;
  EXPECT_TRUE(std::regex_match(NewEventId(), std::regex("^e-[0-9a-f]{32}$")));
}

TEST(IdsTest, AssignmentIdIsStable) {
  EXPECT_EQ(AssignmentId("r-0123456789abcdef01234567", 2), "a-0123456789abcdef01234567-2");
  EXPECT_EQ(AssignmentId("r-x", 0), AssignmentId("r-x", 0));
}

TEST(IdsTest, NextAssignmentIdCountsTheChain) {
  EXPECT_EQ(NextAssignmentId("a-0123456789abcdef01234567-2"), "a-0123456789abcdef01234567-2.1");
  EXPECT_EQ(NextAssignmentId("a-0123456789abcdef01234567-2.1"), "a-0123456789abcdef01234567-2.2");
  EXPECT_EQ(NextAssignmentId("a-0123456789abcdef01234567-2.9"), "a-0123456789abcdef01234567-2.10");
}

TEST(IdsTest, ChainStepOfAndNeedIndexOfReadTheId) {
  EXPECT_EQ(ChainStepOf("a-0123456789abcdef01234567-2"), 0);
  EXPECT_EQ(ChainStepOf("a-0123456789abcdef01234567-2.3"), 3);
  EXPECT_EQ(ChainStepOf("a-0123456789abcdef01234567-2.10"), 10);
  EXPECT_EQ(NeedIndexOf("a-0123456789abcdef01234567-2.10"), 2u);
}

}  // namespace
}  // namespace schakel::referral
