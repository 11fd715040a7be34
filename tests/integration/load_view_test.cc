// The router's LoadView on the real broker: it follows each organisation's own load topic, also the
// topic of an organisation that joins the network while it runs or whose topic appears later, and
// ignores a report on one organisation's topic that claims another (issue 18). The test's clients
// are the super user (tests/run): which principal may write which load topic is kafka_access_test's
// part.
#include "services/router/load_view.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libs/kafka/admin.h"
#include "libs/kafka/producer.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::Eventually;
using schakel::testing::TestKafka;

class LoadViewKafkaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string run = std::to_string(::getpid());
    a_ = "lva" + run;
    b_ = "lvb" + run;
    std::vector<kafka::TopicSpec> specs;
    for (const std::string& org : {a_, b_}) {
      specs.push_back({topology::LoadTopic(org), 3, 1, {{"cleanup.policy", "compact"}}});
    }
    ASSERT_TRUE(kafka::EnsureTopics(TestKafka(), specs, std::chrono::seconds(30)).ok());
    absl::StatusOr<std::unique_ptr<kafka::Producer>> producer = kafka::Producer::Create(
        {.bootstrap_servers = TestKafka(), .client_id = "load-view-test", .extra = {}});
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
  }
  void TearDown() override {
    if (producer_) producer_->Close(std::chrono::seconds(5));
  }

  // Publishes `organisation`'s report of `open` on `topic`, keyed `key`, and waits for the broker.
  void Report(const std::string& topic, const std::string& key, const std::string& organisation,
              std::int64_t open) {
    v1::InboxLoad load;
    load.set_organisation(organisation);
    load.set_open(open);
    std::promise<absl::Status> delivered;
    producer_->Publish(topic, key, load.SerializeAsString(),
                       [&](absl::Status s) { delivered.set_value(s); });
    const absl::Status s = delivered.get_future().get();
    ASSERT_TRUE(s.ok()) << s;
  }

  std::vector<std::string> Organisations() {
    std::lock_guard lock(mu_);
    return organisations_;
  }

  std::string a_, b_;
  std::unique_ptr<kafka::Producer> producer_;
  std::mutex mu_;
  std::vector<std::string> organisations_;
};

TEST_F(LoadViewKafkaTest, FollowsEachOrganisationsOwnTopicAlsoOfOneThatJoinsLater) {
  organisations_ = {a_};
  router::LoadView view;
  ASSERT_TRUE(
      view.Start(
              TestKafka(), [this] { return Organisations(); }, std::chrono::milliseconds(200))
          .ok());
  Report(topology::LoadTopic(a_), a_, a_, 4);
  ASSERT_TRUE(Eventually([&] { return view.Snapshot()(a_) == 4; }, std::chrono::seconds(30)));

  // B reports before it is in the network: not followed yet.
  Report(topology::LoadTopic(b_), b_, b_, 7);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(view.Snapshot()(b_), 0);
  // The network changes: B's topic is followed from its beginning, A's as before.
  {
    std::lock_guard lock(mu_);
    organisations_.push_back(b_);
  }
  ASSERT_TRUE(Eventually([&] { return view.Snapshot()(b_) == 7; }, std::chrono::seconds(30)))
      << "the view did not follow the load topic of an organisation that joined";
  EXPECT_EQ(view.Snapshot()(a_), 4);

  // On B's topic, a report that A is full: ignored, A stays at 4.
  Report(topology::LoadTopic(b_), a_, a_, 1 << 30);
  ASSERT_TRUE(Eventually([&] { return view.forged() == 1; }, std::chrono::seconds(30)));
  EXPECT_EQ(view.Snapshot()(a_), 4);
  EXPECT_EQ(view.Snapshot()(b_), 7);
  // A's own next report is taken.
  Report(topology::LoadTopic(a_), a_, a_, 5);
  EXPECT_TRUE(Eventually([&] { return view.Snapshot()(a_) == 5; }, std::chrono::seconds(30)));
  EXPECT_EQ(view.forged(), 1u);
  view.Stop();
}

// An organisation whose load topic is not there yet (or not readable yet: its ACLs not applied)
// does not keep the router from starting; its topic is followed once it is there.
TEST_F(LoadViewKafkaTest, AnOrganisationWhoseTopicIsNotThereYetIsFollowedOnceItIs) {
  const std::string c = "lvc" + std::to_string(::getpid());
  organisations_ = {a_, c};
  router::LoadView view;
  ASSERT_TRUE(
      view.Start(
              TestKafka(), [this] { return Organisations(); }, std::chrono::milliseconds(200))
          .ok());
  Report(topology::LoadTopic(a_), a_, a_, 3);
  ASSERT_TRUE(Eventually([&] { return view.Snapshot()(a_) == 3; }, std::chrono::seconds(30)));
  ASSERT_TRUE(kafka::EnsureTopics(TestKafka(),
                                  {{topology::LoadTopic(c), 3, 1, {{"cleanup.policy", "compact"}}}},
                                  std::chrono::seconds(30))
                  .ok());
  Report(topology::LoadTopic(c), c, c, 9);
  // Tried again every 30 s.
  EXPECT_TRUE(Eventually([&] { return view.Snapshot()(c) == 9; }, std::chrono::seconds(60)));
  EXPECT_EQ(view.Snapshot()(a_), 3);
  view.Stop();
}

}  // namespace
}  // namespace schakel
