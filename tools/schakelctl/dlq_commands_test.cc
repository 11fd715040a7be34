#include "tools/schakelctl/dlq_commands.h"

#include <gtest/gtest.h>

namespace schakel::ctl {
namespace {

TEST(DlqCommands, ADeadLetterIsNamedByTopicPartitionAndOffset) {
  const std::optional<DeadLetterPlace> place =
      ParseDeadLetterPlace("schakel.deadletters.inbox-mjd/2/17");
  ASSERT_TRUE(place.has_value());
  EXPECT_EQ(place->topic, "schakel.deadletters.inbox-mjd");
  EXPECT_EQ(place->partition, 2);
  EXPECT_EQ(place->offset, 17);
}

TEST(DlqCommands, WhatIsNoTopicPartitionAndOffsetIsRefused) {
  for (const std::string text : {"", "bad", "topic/1", "/1/2", "topic/x/2", "topic/1/y",
                                 "topic/-1/2", "topic/1/-2", "topic/1/", "topic//2"}) {
    EXPECT_FALSE(ParseDeadLetterPlace(text).has_value()) << text;
  }
}

}  // namespace
}  // namespace schakel::ctl
