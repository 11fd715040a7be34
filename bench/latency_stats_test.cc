#include "bench/latency_stats.h"

#include <gtest/gtest.h>

#include <vector>

namespace schakel::bench {
namespace {

TEST(PercentileTest, NearestRankOfOneToHundred) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 99.9), 100);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile(v, 0.5), 1);
}

TEST(PercentileTest, EmptyAndSingle) {
  EXPECT_EQ(Percentile({}, 99), 0);
  EXPECT_EQ(Percentile({7.5}, 50), 7.5);
  EXPECT_EQ(Percentile({7.5}, 99.9), 7.5);
}

TEST(PercentileTest, SummariseSortsAndTakesTheTail) {
  std::vector<double> v = {5, 1, 4, 2, 3, 1000, 6, 7, 8, 9};
  const Summary s = Summarise(v);
  EXPECT_EQ(s.count, 10u);
  EXPECT_EQ(s.p50, 5);
  EXPECT_EQ(s.p90, 9);
  EXPECT_EQ(s.p99, 1000);  // the one slow sample is not averaged away
  EXPECT_EQ(s.max, 1000);
  EXPECT_DOUBLE_EQ(s.mean, 104.5);
}

TEST(PercentileTest, Json) {
  std::vector<double> v = {2, 1};
  EXPECT_EQ(ToJson(Summarise(v)),
            "{\"count\":2,\"p50\":1.0000,\"p90\":2.0000,\"p99\":2.0000,\"p999\":2.0000,"
            "\"max\":2.0000,\"mean\":1.5000}");
}

}  // namespace
}  // namespace schakel::bench
