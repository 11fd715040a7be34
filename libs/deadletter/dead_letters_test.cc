#include "libs/deadletter/dead_letters.h"

#include <gtest/gtest.h>

#include <deque>

namespace schakel::deadletter {
namespace {

// Answers each Publish with the next outcome (OK once they run out) and keeps what was published.
class ScriptedPublisher final : public kafka::Publisher {
 public:
  void Publish(std::string_view topic, std::string_view key, std::string_view value,
               Done done) override {
    published.push_back({std::string(topic), std::string(key), std::string(value)});
    absl::Status outcome;
    if (!outcomes.empty()) {
      outcome = outcomes.front();
      outcomes.pop_front();
    }
    done(outcome);
  }
  bool Reachable() const override { return true; }

  struct Published {
    std::string topic, key, value;
  };
  std::vector<Published> published;
  std::deque<absl::Status> outcomes;
};

kafka::Record Poison() {
  return {"schakel.inbox.mjd", 2, 41, "a-1-0", std::string("\xff\xff\xff", 3)};
}

TEST(DeadLettersTest, KeepsTheRecordWhereItCameFromAndWhy) {
  ScriptedPublisher publisher;
  DeadLetters letters(publisher, "inbox-mjd", "inbox-mjd");
  ASSERT_TRUE(letters.Send(Poison(), "value is not an InboxEvent", nullptr));
  ASSERT_EQ(publisher.published.size(), 1u);
  EXPECT_EQ(publisher.published[0].topic, "schakel.deadletters.inbox-mjd");
  EXPECT_EQ(publisher.published[0].key, "schakel.inbox.mjd/2/41");
  v1::DeadLetter letter;
  ASSERT_TRUE(letter.ParseFromString(publisher.published[0].value));
  EXPECT_EQ(letter.topic(), "schakel.inbox.mjd");
  EXPECT_EQ(letter.partition(), 2);
  EXPECT_EQ(letter.offset(), 41);
  EXPECT_EQ(letter.key(), "a-1-0");
  EXPECT_EQ(letter.value(), std::string("\xff\xff\xff", 3));
  EXPECT_EQ(letter.reason(), "value is not an InboxEvent");
  EXPECT_EQ(letter.consumer(), "inbox-mjd");
  EXPECT_GT(letter.at().seconds(), 0);
}

TEST(DeadLettersTest, EachPrincipalWritesItsOwnTopicAndNamesItsConsumer) {
  ScriptedPublisher publisher;
  DeadLetters letters(publisher, "intake-view", "intake");
  EXPECT_EQ(letters.topic(), "schakel.deadletters.intake");
  ASSERT_TRUE(letters.Send(Poison(), "bad", nullptr));
  ASSERT_EQ(publisher.published.size(), 1u);
  EXPECT_EQ(publisher.published[0].topic, "schakel.deadletters.intake");
  v1::DeadLetter letter;
  ASSERT_TRUE(letter.ParseFromString(publisher.published[0].value));
  EXPECT_EQ(letter.consumer(), "intake-view");
}

TEST(DeadLettersTest, RetriesUntilKafkaAcknowledges) {
  ScriptedPublisher publisher;
  publisher.outcomes = {absl::UnavailableError("broker down"), absl::UnavailableError("still")};
  DeadLetters letters(publisher, "router", "router");
  EXPECT_TRUE(letters.Send(Poison(), "bad", [] { return false; }));
  EXPECT_EQ(publisher.published.size(), 3u);
}

TEST(DeadLettersTest, GivesUpOnlyWhenStopping) {
  ScriptedPublisher publisher;
  publisher.outcomes = {absl::UnavailableError("broker down"), absl::UnavailableError("still")};
  DeadLetters letters(publisher, "router", "router");
  EXPECT_FALSE(letters.Send(Poison(), "bad", [] { return true; }));
  EXPECT_EQ(publisher.published.size(), 1u);
}

}  // namespace
}  // namespace schakel::deadletter
