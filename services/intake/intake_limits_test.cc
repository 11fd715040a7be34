#include "services/intake/intake_limits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace schakel::intake {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::Pair;

// Two organisations with a limit, one without.
routing::Network Limited() {
  routing::Network network;
  network.organisations.resize(3);
  network.organisations[0].id = "mjd";
  network.organisations[0].intake_limit = routing::IntakeLimit{.per_second = 20, .burst = 40};
  network.organisations[1].id = "ggd";
  network.organisations[1].intake_limit = routing::IntakeLimit{.per_second = 0.5, .burst = 1};
  network.organisations[2].id = "gemeente";
  return network;
}

class IntakeLimitsTest : public ::testing::Test {
 protected:
  std::chrono::steady_clock::time_point now_ =
      std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  IntakeLimits limits_{Limited(), [this] { return now_; }};

  // How many calls in a row are allowed before the first refusal (at most `max`).
  int AllowedInARow(const std::string& organisation, int max = 1000) {
    int allowed = 0;
    while (allowed < max && !limits_.Take(organisation).has_value()) ++allowed;
    return allowed;
  }
};

TEST_F(IntakeLimitsTest, TheWholeBurstIsAllowedAndTheNextCallIsRefused) {
  EXPECT_EQ(AllowedInARow("mjd"), 40);
  std::optional<IntakeLimits::Refusal> refused = limits_.Take("mjd");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->limit.per_second, 20);
  EXPECT_EQ(refused->limit.burst, 40);
  EXPECT_EQ(refused->retry_after, milliseconds(50));  // one token at 20 per second
  EXPECT_EQ(limits_.refused("mjd"), 2u);              // AllowedInARow's last try and this one
}

TEST_F(IntakeLimitsTest, TokensComeBackAtTheRateUpToTheBurst) {
  ASSERT_EQ(AllowedInARow("mjd"), 40);
  now_ += milliseconds(49);
  EXPECT_TRUE(limits_.Take("mjd").has_value());  // not a whole token yet
  EXPECT_EQ(limits_.Take("mjd")->retry_after, milliseconds(1));
  now_ += milliseconds(1);
  EXPECT_EQ(AllowedInARow("mjd"), 1);
  now_ += milliseconds(500);  // 10 tokens
  EXPECT_EQ(AllowedInARow("mjd"), 10);
  now_ += std::chrono::hours(1);  // never more than the burst
  EXPECT_EQ(AllowedInARow("mjd"), 40);
}

TEST_F(IntakeLimitsTest, AFractionalRateSaysWhenTheNextTokenIsThere) {
  EXPECT_EQ(AllowedInARow("ggd"), 1);
  std::optional<IntakeLimits::Refusal> refused = limits_.Take("ggd");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->retry_after, milliseconds(2000));
  now_ += milliseconds(1500);
  EXPECT_EQ(limits_.Take("ggd")->retry_after, milliseconds(500));
  now_ += milliseconds(500);
  EXPECT_FALSE(limits_.Take("ggd").has_value());
}

TEST_F(IntakeLimitsTest, OrganisationsHaveTheirOwnBucketsAndOneWithoutALimitIsNeverRefused) {
  ASSERT_EQ(AllowedInARow("mjd"), 40);
  EXPECT_EQ(AllowedInARow("ggd"), 1);
  EXPECT_EQ(AllowedInARow("gemeente", 10'000), 10'000);
  EXPECT_EQ(AllowedInARow("not-in-the-network", 10), 10);
  EXPECT_EQ(limits_.refused("gemeente"), 0u);
  EXPECT_THAT(limits_.AllRefused(), ElementsAre(Pair("ggd", 1u), Pair("mjd", 1u)));
}

TEST_F(IntakeLimitsTest, TheClockGoingBackGivesNothingAway) {
  ASSERT_EQ(AllowedInARow("mjd"), 40);
  now_ -= milliseconds(1000);
  EXPECT_TRUE(limits_.Take("mjd").has_value());
  now_ += milliseconds(1050);  // 50 ms after the latest time seen: one token
  EXPECT_EQ(AllowedInARow("mjd"), 1);
}

TEST_F(IntakeLimitsTest, CallsFromManyThreadsTakeExactlyTheBurst) {
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (!limits_.Take("mjd").has_value()) ++allowed;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(allowed, 40);
  EXPECT_EQ(limits_.refused("mjd"), 360u);
}

TEST(IntakeLimitCountersTest, CountsRefusalsPerLimitedOrganisation) {
  auto limits = std::make_shared<IntakeLimits>(Limited());
  limits->Take("ggd");
  limits->Take("ggd");
  IntakeLimitCounters counters(limits);
  std::vector<prometheus::MetricFamily> families = counters.Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "schakel_intake_refused_total");
  EXPECT_EQ(families[0].type, prometheus::MetricType::Counter);
  ASSERT_EQ(families[0].metric.size(), 2u);
  EXPECT_EQ(families[0].metric[0].label[0].value, "ggd");
  EXPECT_EQ(families[0].metric[0].counter.value, 1);
  EXPECT_EQ(families[0].metric[1].label[0].value, "mjd");
  EXPECT_EQ(families[0].metric[1].counter.value, 0);
}

}  // namespace
}  // namespace schakel::intake
