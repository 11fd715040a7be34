#include "tools/schakelctl/ops_commands.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "schakel/v1/events.pb.h"

namespace schakel::ctl {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

void SetMeta(v1::EventMeta* meta, const std::string& referral, const std::string& assignment,
             const std::string& at) {
  meta->set_referral_id(referral);
  meta->set_assignment_id(assignment);
  ASSERT_TRUE(TimeUtil::FromString(at, meta->mutable_occurred_at()));
}

kafka::Record RecordOf(const google::protobuf::Message& message) {
  kafka::Record record;
  record.value = message.SerializeAsString();
  return record;
}

kafka::Record Status(const std::string& referral, const std::string& at, v1::AssignmentStatus from,
                     v1::AssignmentStatus to, const std::string& by, const std::string& reason) {
  v1::AssignmentStatusChanged s;
  SetMeta(s.mutable_meta(), referral, referral + "-0", at);
  s.set_need_code("housing");
  s.set_organisation("mjd");
  s.set_from_status(from);
  s.set_to_status(to);
  s.set_by(by);
  s.set_reason(reason);
  return RecordOf(s);
}

TEST(OpsCommands, AReferralsTimelineIsItsEventsOldestFirst) {
  v1::ReferralUnroutable unroutable;
  SetMeta(unroutable.mutable_meta(), "r-1", "r-1-1", "2024-05-01T10:00:05Z");
  unroutable.set_need_code("debt");
  v1::ReassignRequested reassign;
  SetMeta(reassign.mutable_meta(), "r-1", "r-1-1", "2024-05-01T10:00:07Z");
  reassign.set_to_organisation("ggd");
  reassign.set_by("operator");
  reassign.set_reason("agreed by phone");
  const std::vector<std::string> timeline =
      ReferralTimeline("r-1",
                       {Status("r-1", "2024-05-01T10:00:09Z", v1::ASSIGNMENT_STATUS_REQUESTED,
                               v1::ASSIGNMENT_STATUS_ACCEPTED, "mjd", "their own words"),
                        Status("r-2", "2024-05-01T10:00:01Z", v1::ASSIGNMENT_STATUS_REQUESTED,
                               v1::ASSIGNMENT_STATUS_ACCEPTED, "mjd", ""),
                        Status("r-1", "2024-05-01T10:00:03Z", v1::ASSIGNMENT_STATUS_ACCEPTED,
                               v1::ASSIGNMENT_STATUS_CANCELLED, "network", "no answer in time")},
                       {RecordOf(unroutable)}, {RecordOf(reassign)});
  EXPECT_THAT(
      timeline,
      ElementsAre(
          "2024-05-01T10:00:03  r-1-0  housing  mjd  ACCEPTED -> CANCELLED  by network  (no "
          "answer in time)",
          "2024-05-01T10:00:05  r-1-1  debt  UNROUTABLE (schakelctl unroutable)",
          "2024-05-01T10:00:07  r-1-1  REASSIGN to ggd by operator  (\"agreed by phone\")",
          "2024-05-01T10:00:09  r-1-0  housing  mjd  REQUESTED -> ACCEPTED  by mjd"));
}

TEST(OpsCommands, AReferralWithoutEventsHasNoTimeline) {
  EXPECT_THAT(
      ReferralTimeline("r-9",
                       {Status("r-1", "2024-05-01T10:00:00Z", v1::ASSIGNMENT_STATUS_REQUESTED,
                               v1::ASSIGNMENT_STATUS_ACCEPTED, "mjd", "")},
                       {}, {}),
      IsEmpty());
}

}  // namespace
}  // namespace schakel::ctl
