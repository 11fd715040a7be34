#include "libs/referral/ids.h"

#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <thread>

#include "libs/referral/clock.h"

namespace schakel::referral {
namespace {

TEST(IdsTest, ReferralIdsAreRandomAndWellFormed) {
  const std::string a = NewReferralId();
  const std::string b = NewReferralId();
  EXPECT_NE(a, b);
  EXPECT_TRUE(std::regex_match(a, std::regex("^r-[0-9a-f]{24}$"))) << a;
  EXPECT_TRUE(std::regex_match(NewEventId(), std::regex("^e-[0-9a-f]{32}$")));
}

// Event times order and time what happens within one second (TimeUtil::GetCurrentTime gave whole
// seconds here: a referral's offer and its acceptance a moment later had the same time).
TEST(NowTest, EventTimesCountMicroseconds) {
  const google::protobuf::Timestamp first = Now();
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  const google::protobuf::Timestamp later = Now();
  const std::int64_t elapsed_us =
      (later.seconds() - first.seconds()) * 1'000'000 + (later.nanos() - first.nanos()) / 1'000;
  EXPECT_GE(elapsed_us, 3'000);
  EXPECT_LT(elapsed_us, 1'000'000);
  EXPECT_EQ(first.nanos() % 1'000, 0);
  EXPECT_TRUE(first.nanos() != 0 || later.nanos() != 0);
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
