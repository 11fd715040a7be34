// The router's consume loop on the real broker: a record it cannot route goes to its dead-letter
// topic (schakel.deadletters.router) with the reason, inside the batch's transaction, changes
// nothing else, and the referral after it is still routed. The test's clients are the super user
// (tests/run); the organisation's name is the test's own, so that its inbox topic is too.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "libs/kafka/admin.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/referral/ids.h"
#include "libs/routing/network.h"
#include "libs/topology/topic_specs.h"
#include "schakel/v1/events.pb.h"
#include "services/router/router.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::Eventually;
using schakel::testing::ReadWholeTopic;
using schakel::testing::TestKafka;

TEST(RouterKafkaTest, AnUnusableRecordIsADeadLetterWithItsReasonAndTheNextIsRouted) {
  const std::string run = std::to_string(::getpid());
  const std::string org = "rk" + run;
  absl::StatusOr<routing::Network> network = routing::ParseNetwork(
      "version: 1\n"
      "topics: {partitions: 3, replication_factor: 1}\n"
      "sla: {urgent: 4h, normal: 3wd}\n"
      "needs:\n  - {id: debt, name: Debt help}\n"
      "regions:\n  - {id: stad, name: Stad}\n"
      "languages: [nl]\n"
      "organisations:\n  - id: " +
          org +
          "\n    name: Router Test\n    needs: [debt]\n    regions: [stad]\n"
          "    languages: [nl]\n",
      "router_kafka_test");
  ASSERT_TRUE(network.ok()) << network.status();
  ASSERT_TRUE(
      kafka::EnsureTopics(TestKafka(), topology::TopicSpecs(*network), std::chrono::seconds(30))
          .ok());
  auto policy = std::make_shared<const routing::Policy>(*network);

  absl::StatusOr<std::unique_ptr<kafka::TransactionalProducer>> producer =
      kafka::TransactionalProducer::Create({.bootstrap_servers = TestKafka(),
                                            .client_id = "router-kafka-test",
                                            .transactional_id = "schakel-router-test-" + run,
                                            .transaction_timeout = std::chrono::seconds(10),
                                            .extra = {}},
                                           std::chrono::seconds(60));
  ASSERT_TRUE(producer.ok()) << producer.status();
  // A new group's router reads the submitted topic from its beginning, so it also meets what other
  // tests left there (poison records among them): each rejection it counts must be one dead letter.
  const std::size_t letters_before =
      ReadWholeTopic(TestKafka(), topology::DeadLetterTopic("router")).size();
  router::Escalation escalation([] { return std::chrono::system_clock::now(); });
  router::Router router([policy] { return policy; }, **producer, escalation, TestKafka(),
                        std::chrono::seconds(1));
  std::atomic<bool> assigned{false};
  kafka::RebalanceListener listener = router.Listener();
  absl::StatusOr<std::unique_ptr<kafka::Consumer>> consumer = kafka::Consumer::Create(
      {.bootstrap_servers = TestKafka(),
       .group_id = "schakel.router.test-" + run,
       .topics = {std::string(topology::kSubmittedTopic)},
       .client_id = "router-kafka-test",
       .extra = {{"partition.assignment.strategy", "range"}},
       .on_rebalance = [&](bool now_assigned,
                           const std::vector<kafka::TopicPartition>& partitions) {
         listener(now_assigned, partitions);
         if (now_assigned && !partitions.empty()) assigned = true;
       }});
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::promise<absl::Status> ran;
  std::thread loop([&] { ran.set_value(router.Run(**consumer)); });
  ASSERT_TRUE(Eventually([&] { return assigned.load(); }, std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // its positions are taken

  absl::StatusOr<std::unique_ptr<kafka::Producer>> client = kafka::Producer::Create(
      {.bootstrap_servers = TestKafka(), .client_id = "router-kafka-test-client", .extra = {}});
  ASSERT_TRUE(client.ok()) << client.status();
  auto publish = [&](const std::string& key, const std::string& value) {
    std::promise<absl::Status> delivered;
    (*client)->Publish(topology::kSubmittedTopic, key, value,
                       [&](absl::Status s) { delivered.set_value(s); });
    const absl::Status s = delivered.get_future().get();
    ASSERT_TRUE(s.ok()) << s;
  };
  const std::string marker = "poison-router-" + run;
  publish(marker, "\xff\xff not an event");
  v1::ReferralSubmitted submitted;
  submitted.mutable_meta()->set_schema_version(1);
  submitted.mutable_meta()->set_referral_id(referral::NewReferralId());
  submitted.mutable_meta()->set_event_id(referral::NewEventId());
  *submitted.mutable_meta()->mutable_occurred_at() =
      google::protobuf::util::TimeUtil::GetCurrentTime();
  submitted.set_referring_organisation(org);
  submitted.set_region("stad");
  submitted.set_urgency(v1::URGENCY_NORMAL);
  submitted.add_needs()->set_code("debt");
  submitted.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  submitted.mutable_sharing()->add_organisations(org);
  publish(submitted.meta().referral_id(), submitted.SerializeAsString());

  // The poison, once, with the reason and the record intact.
  std::vector<v1::DeadLetter> letters;
  ASSERT_TRUE(Eventually(
      [&] {
        letters.clear();
        for (const kafka::Record& r :
             ReadWholeTopic(TestKafka(), topology::DeadLetterTopic("router"))) {
          v1::DeadLetter letter;
          if (letter.ParseFromString(r.value) && letter.key() == marker) letters.push_back(letter);
        }
        return !letters.empty();
      },
      std::chrono::seconds(60)));
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].topic(), topology::kSubmittedTopic);
  EXPECT_EQ(letters[0].value(), "\xff\xff not an event");
  EXPECT_EQ(letters[0].reason(), "not a ReferralSubmitted event");
  EXPECT_EQ(letters[0].consumer(), "router");

  // The referral after it is offered to the organisation, and nothing else is on its topic.
  const std::string assignment = referral::AssignmentId(submitted.meta().referral_id(), 0);
  std::vector<kafka::Record> offers;
  ASSERT_TRUE(Eventually(
      [&] {
        offers = ReadWholeTopic(TestKafka(), topology::InboxTopic(org));
        return !offers.empty();
      },
      std::chrono::seconds(60)));
  ASSERT_EQ(offers.size(), 1u);
  EXPECT_EQ(offers[0].key, assignment);
  // Its own poison and whatever other tests left there: each rejection is one dead letter.
  std::size_t letters_now = 0;
  EXPECT_TRUE(Eventually(
      [&] {
        letters_now = ReadWholeTopic(TestKafka(), topology::DeadLetterTopic("router")).size();
        return router.rejected() == letters_now - letters_before;
      },
      std::chrono::seconds(30)))
      << router.rejected() << " rejected, " << letters_now - letters_before << " dead letters";
  EXPECT_GE(router.rejected(), 1u);
  EXPECT_GE(router.routed(), 1u);

  router.Stop();
  loop.join();
  EXPECT_TRUE(ran.get_future().get().ok());
  (*consumer)->Close();
  (*client)->Close(std::chrono::seconds(5));
}

}  // namespace
}  // namespace schakel
