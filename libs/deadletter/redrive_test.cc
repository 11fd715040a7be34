#include "libs/deadletter/redrive.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace schakel::deadletter {
namespace {

using ::testing::HasSubstr;

routing::Network TwoOrganisations() {
  routing::Network network;
  for (const char* id : {"terwille", "mjd"}) {
    network.organisations.push_back(routing::Organisation{});
    network.organisations.back().id = id;
  }
  return network;
}

v1::DeadLetter Letter(const std::string& topic, const std::string& consumer) {
  v1::DeadLetter letter;
  letter.set_topic(topic);
  letter.set_partition(1);
  letter.set_offset(7);
  letter.set_key("a-1-0");
  letter.set_value("original bytes");
  letter.set_consumer(consumer);
  letter.set_reason("undecodable");
  return letter;
}

TEST(RedriveTest, EachConsumerReadsItsOwnInputs) {
  const routing::Network network = TwoOrganisations();
  EXPECT_THAT(InputsOf(network, "inbox-terwille"),
              ::testing::ElementsAre("schakel.inbox.terwille", "schakel.clients.erasures"));
  EXPECT_THAT(InputsOf(network, "intake"),
              ::testing::ElementsAre("schakel.referrals.submitted", "schakel.assignments.status",
                                     "schakel.referrals.unroutable"));
  EXPECT_THAT(InputsOf(network, "router"),
              ::testing::ElementsAre(
                  "schakel.referrals.submitted", "schakel.assignments.cancellations",
                  "schakel.operator.reassignments", "schakel.from.terwille", "schakel.from.mjd"));
  EXPECT_THAT(InputsOf(network, "keys"), ::testing::ElementsAre("schakel.assignments.status"));
  EXPECT_TRUE(InputsOf(network, "inbox-elsewhere").empty());
  EXPECT_TRUE(InputsOf(network, "operator").empty());
}

TEST(RedriveTest, ADeadLetterOfAnInputOfItsConsumerMayBeRedriven) {
  const routing::Network network = TwoOrganisations();
  EXPECT_TRUE(CheckOrigin(network, "schakel.deadletters.inbox-terwille",
                          Letter("schakel.inbox.terwille", "inbox-terwille"))
                  .ok());
  EXPECT_TRUE(
      CheckOrigin(network, "schakel.deadletters.router", Letter("schakel.from.mjd", "router"))
          .ok());
  EXPECT_TRUE(CheckOrigin(network, "schakel.deadletters.intake",
                          Letter("schakel.referrals.submitted", "intake-view"))
                  .ok());
}

// The facts (the offers the key service grants keys on among them) are the router's word: nobody
// else, ops included, writes a copy, whichever consumer set one aside.
TEST(RedriveTest, TheRoutersOwnTopicsAreNotRedriven) {
  const routing::Network network = TwoOrganisations();
  const absl::Status facts = CheckOrigin(network, "schakel.deadletters.intake",
                                         Letter("schakel.assignments.status", "intake-view"));
  EXPECT_EQ(facts.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(facts.message(),
            "refused: schakel.assignments.status is written by the router only; its records are "
            "not re-driven");
  const absl::Status offers = CheckOrigin(network, "schakel.deadletters.keys",
                                          Letter("schakel.assignments.status", "keys-grants"));
  EXPECT_EQ(offers.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(offers.message(), facts.message());
}

// Terwille may write only its own dead-letter topic, but what it writes there could name anything:
// another organisation's topic is refused, whatever the letter says its consumer was.
TEST(RedriveTest, ALetterNamingATopicItsConsumerDoesNotReadIsRefused) {
  const routing::Network network = TwoOrganisations();
  const absl::Status planted = CheckOrigin(network, "schakel.deadletters.inbox-terwille",
                                           Letter("schakel.inbox.mjd", "inbox-mjd"));
  EXPECT_EQ(planted.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(planted.message(),
            "refused: the dead letter names schakel.inbox.mjd/1/7, but schakel.inbox.mjd is not an "
            "input of inbox-terwille, whose dead-letter topic it is on (inbox-terwille reads "
            "schakel.inbox.terwille, schakel.clients.erasures); nothing was published");
  // A fake reassignment or referral from an inbox's dead letters: refused the same way.
  EXPECT_EQ(CheckOrigin(network, "schakel.deadletters.inbox-terwille",
                        Letter("schakel.operator.reassignments", "router"))
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      CheckOrigin(network, "schakel.deadletters.intake", Letter("schakel.inbox.mjd", "intake-view"))
          .code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST(RedriveTest, OnlyAConsumersDeadLetterTopicIsOne) {
  const routing::Network network = TwoOrganisations();
  for (const std::string topic :
       {"schakel.deadletters", "schakel.inbox.terwille", "schakel.deadletters.inbox-elsewhere",
        "schakel.deadletters.ops"}) {
    const absl::Status s =
        CheckOrigin(network, topic, Letter("schakel.inbox.terwille", "inbox-terwille"));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << topic;
    EXPECT_THAT(s.message(), HasSubstr("is no consumer's dead-letter topic")) << topic;
  }
}

TEST(RedriveTest, TheOriginalMustBeTheRecordTheLetterHolds) {
  const v1::DeadLetter letter = Letter("schakel.inbox.terwille", "inbox-terwille");
  kafka::Record original{"schakel.inbox.terwille", 1, 7, "a-1-0", "original bytes"};
  EXPECT_TRUE(CheckOriginal(letter, original).ok());

  kafka::Record other_value = original;
  other_value.value = "what the dead letter does not hold";
  const absl::Status forged = CheckOriginal(letter, other_value);
  EXPECT_EQ(forged.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(forged.message(),
            "refused: the dead letter's value differs from the record's at "
            "schakel.inbox.terwille/1/7 (the dead letter was planted or altered); nothing was "
            "published");
  EXPECT_THAT(forged.message(), ::testing::Not(HasSubstr("bytes")));  // no payload

  kafka::Record other_key = original;
  other_key.key = "a-2-0";
  EXPECT_THAT(CheckOriginal(letter, other_key).message(), HasSubstr("key differs"));
}

TEST(RedriveTest, PlacesAreNamedLikeDeadLetterKeys) {
  EXPECT_EQ(Name(Place{"schakel.inbox.mjd", 2, 41}), "schakel.inbox.mjd/2/41");
  EXPECT_EQ(Name(OriginalOf(Letter("schakel.inbox.mjd", "x"))), "schakel.inbox.mjd/1/7");
}

}  // namespace
}  // namespace schakel::deadletter
