#include <gtest/gtest.h>

#include "libs/kafka/consumer.h"

namespace schakel::kafka {
namespace {

// The parts of a librdkafka 2.0 statistics document that the lag is read from.
TEST(ConsumerLagTest, EachKnownPartitionLagIsRead) {
  const std::string stats = R"({
    "name": "inbox-mjd#consumer-1", "type": "consumer",
    "topics": {
      "schakel.inbox.mjd": {"topic": "schakel.inbox.mjd", "partitions": {
        "0": {"partition": 0, "consumer_lag": 3, "committed_offset": 10, "ls_offset": 13},
        "1": {"partition": 1, "consumer_lag": 0},
        "2": {"partition": 2, "consumer_lag": -1},
        "-1": {"partition": -1, "consumer_lag": -1}
      }},
      "schakel.assignments.status": {"partitions": {"2": {"partition": 2, "consumer_lag": 42}}}
    }
  })";
  std::vector<std::string> seen;
  for (const PartitionLag& l : ConsumerLagFromStatistics(stats)) {
    seen.push_back(l.topic + "/" + std::to_string(l.partition) + "=" + std::to_string(l.lag));
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"schakel.assignments.status/2=42",
                                            "schakel.inbox.mjd/0=3", "schakel.inbox.mjd/1=0"}));
}

TEST(ConsumerLagTest, ADocumentWithoutTopicsOrNotJsonGivesNothing) {
  EXPECT_TRUE(ConsumerLagFromStatistics("{}").empty());
  EXPECT_TRUE(ConsumerLagFromStatistics("not json").empty());
  EXPECT_TRUE(ConsumerLagFromStatistics(R"({"topics": {"t": {"partitions": 7}}})").empty());
}

}  // namespace
}  // namespace schakel::kafka
