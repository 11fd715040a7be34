#include "services/intake/view_consumer.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "libs/deadletter/dead_letters.h"
#include "libs/deadletter/testing.h"
#include "libs/kafka/fakes.h"
#include "schakel/v1/events.pb.h"

namespace schakel::intake {
namespace {

using FakeSource = ::schakel::kafka::testing::FakeSource;
using ::schakel::kafka::testing::Eventually;
using ::schakel::kafka::testing::Queue;
using ::schakel::kafka::testing::RecordingPublisher;
using ::testing::ElementsAre;

kafka::Record Submitted(const std::string& referral_id, std::int64_t offset) {
  v1::ReferralSubmitted s;
  s.mutable_meta()->set_referral_id(referral_id);
  *s.mutable_meta()->mutable_occurred_at() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(1000);
  s.set_referring_organisation("terwille");
  s.add_needs()->set_code("debt");
  return {"schakel.referrals.submitted", 0, offset, referral_id, s.SerializeAsString()};
}

// What the view cannot use goes to intake's dead letters with the reason; the view is as it was,
// and the next good record is still applied.
TEST(ViewConsumerTest, AnUnusableRecordIsADeadLetterWithItsReasonAndChangesNothing) {
  const std::string path = ::testing::TempDir() + "/view-consumer-test.db";
  std::remove(path.c_str());
  absl::StatusOr<std::unique_ptr<ReferralView>> view = ReferralView::Open(path);
  ASSERT_TRUE(view.ok()) << view.status();
  auto state = std::make_shared<FakeSource::State>();
  FakeSource source(state);
  RecordingPublisher publisher;
  deadletter::DeadLetters dead_letters(publisher, "intake-view", "intake");
  ViewConsumer consumer(source, **view, &dead_letters);
  consumer.Start();

  Queue(*state, {Submitted("r-000000000000000000000001", 5)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 1; }));
  const absl::StatusOr<v1::ListReferralsResponse> before = (*view)->List("terwille", 50, "");
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->referrals_size(), 1);

  Queue(*state, {{"schakel.assignments.status", 1, 9, "r-x", "\xff\xff not an event"}});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 2; }));
  const absl::StatusOr<v1::ListReferralsResponse> after = (*view)->List("terwille", 50, "");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());
  EXPECT_THAT(deadletter::testing::Sent(publisher),
              ElementsAre("schakel.deadletters.intake schakel.assignments.status/1/9: not an "
                          "event the referral view knows (schakel.assignments.status) "
                          "(intake-view)"));

  Queue(*state, {Submitted("r-000000000000000000000002", 6)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 3; }));
  consumer.Stop();
  EXPECT_THAT(state->done, ElementsAre(5, 9, 6));
  EXPECT_EQ((*view)->List("terwille", 50, "")->referrals_size(), 2);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace schakel::intake
