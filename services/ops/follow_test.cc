#include "services/ops/follow.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "libs/deadletter/dead_letters.h"
#include "libs/deadletter/testing.h"
#include "libs/kafka/fakes.h"
#include "schakel/v1/events.pb.h"

namespace schakel::ops {
namespace {

using FakeSource = ::schakel::kafka::testing::FakeSource;
using ::schakel::kafka::testing::Eventually;
using ::schakel::kafka::testing::Queue;
using ::schakel::kafka::testing::RecordingPublisher;
using ::testing::ElementsAre;

const auto kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

routing::Network Network() {
  routing::Network network;
  routing::Organisation alpha;
  alpha.id = "alpha";
  alpha.name = "Alpha Zorg";
  network.organisations.push_back(alpha);
  network.topics.partitions = 1;
  return network;
}

kafka::Record Unroutable(const std::string& referral_id, std::int64_t offset) {
  v1::ReferralUnroutable unroutable;
  unroutable.mutable_meta()->set_referral_id(referral_id);
  unroutable.mutable_meta()->set_assignment_id("a-" + referral_id + "-0");
  unroutable.set_need_code("debt");
  unroutable.set_referring_organisation("alpha");
  return {"schakel.referrals.unroutable", 0, offset, referral_id, unroutable.SerializeAsString()};
}

// What ops cannot read goes to ops' own dead-letter topic with the reason (it used to be only
// counted); the view is as it was, and the next good record is still shown. One set aside at an
// earlier start (ops reads everything again) is not sent twice.
TEST(ViewFollowerTest, AnUnusableRecordIsADeadLetterWithItsReasonAndChangesNothing) {
  OpsView view(Network());
  auto state = std::make_shared<FakeSource::State>();
  FakeSource source(state);
  RecordingPublisher publisher;
  deadletter::DeadLetters dead_letters(publisher, "ops", "ops");
  ViewFollower follower(source, view, dead_letters,
                        {"schakel.assignments.status/0/2"});  // set aside before
  follower.Start();

  Queue(*state, {Unroutable("r-1", 1)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 1; }));
  const nlohmann::json before = view.Overview(kNow, true, "");
  ASSERT_EQ(before["unroutable"].size(), 1u);

  Queue(*state, {{"schakel.assignments.status", 0, 2, "r-1", "\xff\xff not an event"},
                 {"schakel.referrals.unroutable", 0, 3, "r-2", "\xff\xff not an event"}});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 3; }));
  EXPECT_EQ(view.Overview(kNow, true, ""), before);
  EXPECT_EQ(view.unreadable(), 2u);
  // The one set aside before is not sent again.
  EXPECT_THAT(deadletter::testing::Sent(publisher),
              ElementsAre("schakel.deadletters.ops schakel.referrals.unroutable/0/3: not a "
                          "ReferralUnroutable event (ops)"));

  Queue(*state, {Unroutable("r-3", 4)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 4; }));
  follower.Stop();
  EXPECT_EQ(view.Overview(kNow, true, "")["unroutable"].size(), 2u);
}

}  // namespace
}  // namespace schakel::ops
