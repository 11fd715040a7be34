#include "libs/referral/lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace schakel::referral {
namespace {

using v1::AssignmentStatus;
using Step = std::pair<AssignmentStatus, AssignmentStatus>;

constexpr AssignmentStatus kRequested = v1::ASSIGNMENT_STATUS_REQUESTED;
constexpr AssignmentStatus kReceived = v1::ASSIGNMENT_STATUS_RECEIVED;
constexpr AssignmentStatus kAccepted = v1::ASSIGNMENT_STATUS_ACCEPTED;
constexpr AssignmentStatus kRejected = v1::ASSIGNMENT_STATUS_REJECTED;
constexpr AssignmentStatus kInProgress = v1::ASSIGNMENT_STATUS_IN_PROGRESS;
constexpr AssignmentStatus kOnHold = v1::ASSIGNMENT_STATUS_ON_HOLD;
constexpr AssignmentStatus kCompleted = v1::ASSIGNMENT_STATUS_COMPLETED;
constexpr AssignmentStatus kFailed = v1::ASSIGNMENT_STATUS_FAILED;
constexpr AssignmentStatus kCancelled = v1::ASSIGNMENT_STATUS_CANCELLED;

struct Named {
  AssignmentStatus status;
  const char* name;  // for test names: letters only
};
constexpr Named kStatuses[] = {
    {kRequested, "Requested"}, {kReceived, "Received"},     {kAccepted, "Accepted"},
    {kRejected, "Rejected"},   {kInProgress, "InProgress"}, {kOnHold, "OnHold"},
    {kCompleted, "Completed"}, {kFailed, "Failed"},         {kCancelled, "Cancelled"},
};

// The expected verdicts, written out from the rules in ARCHITECTURE.md and the lifecycle brief,
// independently of lifecycle.cc. Every (from, to) pair not listed for an actor is refused.
const std::set<Step>& OwnerMay() {
  static const std::set<Step> steps = {
      {kRequested, kReceived}, {kRequested, kAccepted},   {kReceived, kAccepted},
      {kRequested, kRejected}, {kReceived, kRejected},    {kAccepted, kInProgress},
      {kInProgress, kOnHold},  {kOnHold, kInProgress},    {kInProgress, kCompleted},
      {kOnHold, kCompleted},   {kInProgress, kFailed},    {kOnHold, kFailed},
      {kAccepted, kCancelled}, {kInProgress, kCancelled}, {kOnHold, kCancelled},
  };
  return steps;
}
const std::set<Step>& ReferrerMay() {
  static const std::set<Step> steps = {
      {kRequested, kCancelled},
      {kReceived, kCancelled},
      {kAccepted, kCancelled},
  };
  return steps;
}
const std::set<Step>& NetworkMay() {
  static const std::set<Step> steps = {
      {kRequested, kCancelled},
      {kReceived, kCancelled},
      {kRequested, kRejected},
      {kReceived, kRejected},
  };
  return steps;
}

struct ActorCase {
  Actor actor;
  const char* name;
  const std::set<Step>* may;
};

struct PairCase {
  std::string name;
  Actor actor;
  AssignmentStatus from;
  AssignmentStatus to;
  bool allowed;
};
void PrintTo(const PairCase& c, std::ostream* os) { *os << c.name; }

std::vector<PairCase> AllPairs() {
  const ActorCase actors[] = {
      {Actor::kOwner, "Owner", &OwnerMay()},
      {Actor::kReferrer, "Referrer", &ReferrerMay()},
      {Actor::kNetwork, "Network", &NetworkMay()},
  };
  std::vector<PairCase> cases;
  for (const ActorCase& a : actors) {
    for (const Named& from : kStatuses) {
      for (const Named& to : kStatuses) {
        cases.push_back({std::string(a.name) + "From" + from.name + "To" + to.name, a.actor,
                         from.status, to.status, a.may->count({from.status, to.status}) > 0});
      }
    }
  }
  return cases;
}

// With a reason and an outcome always supplied, the verdict depends only on the lifecycle.
Transition Full(AssignmentStatus to, Actor actor) {
  return Transition{to, actor, "client moved to another region", "debt plan agreed"};
}

class TransitionTableTest : public ::testing::TestWithParam<PairCase> {};

TEST_P(TransitionTableTest, FollowsTheRules) {
  const PairCase& c = GetParam();
  const absl::Status s = CheckTransition(c.from, Full(c.to, c.actor));
  if (c.allowed) {
    EXPECT_TRUE(s.ok()) << s;
  } else {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  }
}

INSTANTIATE_TEST_SUITE_P(AllActorsAllPairs, TransitionTableTest, ::testing::ValuesIn(AllPairs()),
                         [](const auto& param_info) { return param_info.param.name; });

TEST(TransitionTableDataTest, CoversEveryPairForEveryActor) {
  EXPECT_EQ(AllPairs().size(), 243u);
  EXPECT_EQ(OwnerMay().size() + ReferrerMay().size() + NetworkMay().size(), 22u);
}

// Exact messages.

void ExpectError(const absl::Status& s, absl::StatusCode code, const std::string& message) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_EQ(std::string(s.message()), message);
}

TEST(CheckTransitionTest, GenericRefusalNamesBothStatuses) {
  ExpectError(CheckTransition(kAccepted, Full(kRequested, Actor::kOwner)),
              absl::StatusCode::kFailedPrecondition, "cannot go from accepted to requested");
  ExpectError(CheckTransition(kCompleted, Full(kInProgress, Actor::kOwner)),
              absl::StatusCode::kFailedPrecondition, "cannot go from completed to in-progress");
  ExpectError(CheckTransition(kRequested, Full(kOnHold, Actor::kNetwork)),
              absl::StatusCode::kFailedPrecondition, "cannot go from requested to on-hold");
}

TEST(CheckTransitionTest, SameStatusIsAlready) {
  ExpectError(CheckTransition(kInProgress, Full(kInProgress, Actor::kOwner)),
              absl::StatusCode::kFailedPrecondition, "already in-progress");
  ExpectError(CheckTransition(kCancelled, Full(kCancelled, Actor::kReferrer)),
              absl::StatusCode::kFailedPrecondition, "already cancelled");
}

TEST(CheckTransitionTest, ReferrerCannotCancelOnceWorkHasStarted) {
  for (AssignmentStatus from : {kInProgress, kOnHold}) {
    ExpectError(CheckTransition(from, Full(kCancelled, Actor::kReferrer)),
                absl::StatusCode::kFailedPrecondition,
                "work has started: ask the owner organisation to cancel");
  }
  // Told about the lifecycle first, even without a reason: supplying one would not help.
  ExpectError(CheckTransition(kInProgress, Transition{kCancelled, Actor::kReferrer, "", ""}),
              absl::StatusCode::kFailedPrecondition,
              "work has started: ask the owner organisation to cancel");
}

TEST(CheckTransitionTest, RefusalNamesWhoMay) {
  ExpectError(CheckTransition(kReceived, Full(kAccepted, Actor::kReferrer)),
              absl::StatusCode::kFailedPrecondition,
              "only the owner organisation can go from received to accepted");
  ExpectError(CheckTransition(kRequested, Full(kRejected, Actor::kReferrer)),
              absl::StatusCode::kFailedPrecondition,
              "only the owner organisation or the router can go from requested to rejected");
  ExpectError(CheckTransition(kRequested, Full(kCancelled, Actor::kOwner)),
              absl::StatusCode::kFailedPrecondition,
              "only the referring organisation or the router can go from requested to cancelled");
  ExpectError(CheckTransition(kAccepted, Full(kCancelled, Actor::kNetwork)),
              absl::StatusCode::kFailedPrecondition,
              "only the owner organisation or the referring organisation can go from accepted to "
              "cancelled");
  ExpectError(CheckTransition(kInProgress, Full(kCancelled, Actor::kNetwork)),
              absl::StatusCode::kFailedPrecondition,
              "only the owner organisation can go from in-progress to cancelled");
}

struct MissingCase {
  std::string name;
  AssignmentStatus from;
  Transition transition;
  std::string message;
};
void PrintTo(const MissingCase& c, std::ostream* os) { *os << c.name; }

class MissingTextTest : public ::testing::TestWithParam<MissingCase> {};

TEST_P(MissingTextTest, IsInvalidArgument) {
  ExpectError(CheckTransition(GetParam().from, GetParam().transition),
              absl::StatusCode::kInvalidArgument, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    All, MissingTextTest,
    ::testing::Values(MissingCase{"RejectedWithoutReason",
                                  kReceived,
                                  {kRejected, Actor::kOwner, "", ""},
                                  "reason: is required to go to rejected"},
                      MissingCase{"ForwardedWithoutReason",
                                  kRequested,
                                  {kRejected, Actor::kNetwork, "", ""},
                                  "reason: is required to go to rejected"},
                      MissingCase{"CancelledWithoutReason",
                                  kAccepted,
                                  {kCancelled, Actor::kReferrer, "", ""},
                                  "reason: is required to go to cancelled"},
                      MissingCase{"CancelledWithBlankReason",
                                  kInProgress,
                                  {kCancelled, Actor::kOwner, " \t\n", ""},
                                  "reason: is required to go to cancelled"},
                      MissingCase{"OnHoldWithoutReason",
                                  kInProgress,
                                  {kOnHold, Actor::kOwner, "", ""},
                                  "reason: is required to go to on-hold"},
                      MissingCase{"FailedWithoutReason",
                                  kOnHold,
                                  {kFailed, Actor::kOwner, "", "none"},
                                  "reason: is required to go to failed"},
                      MissingCase{"CompletedWithoutOutcome",
                                  kInProgress,
                                  {kCompleted, Actor::kOwner, "done", ""},
                                  "outcome: is required to complete"},
                      MissingCase{"ReasonTooLong",
                                  kRequested,
                                  {kRejected, Actor::kOwner, std::string(501, 'x'), ""},
                                  "reason: at most 500 characters"},
                      MissingCase{"ReasonTooLongWhereOptional",
                                  kRequested,
                                  {kAccepted, Actor::kOwner, std::string(501, 'x'), ""},
                                  "reason: at most 500 characters"},
                      MissingCase{"OutcomeTooLong",
                                  kOnHold,
                                  {kCompleted, Actor::kOwner, "", std::string(501, 'x')},
                                  "outcome: at most 500 characters"},
                      MissingCase{"UnspecifiedStatus",
                                  kRequested,
                                  {v1::ASSIGNMENT_STATUS_UNSPECIFIED, Actor::kOwner, "r", "o"},
                                  "to: unknown status"},
                      MissingCase{"OutOfRangeStatus",
                                  kRequested,
                                  {static_cast<AssignmentStatus>(42), Actor::kOwner, "r", "o"},
                                  "to: unknown status"},
                      // An unknown target is reported before anything about the current status.
                      MissingCase{"UnknownStatusFromFinal",
                                  kCompleted,
                                  {static_cast<AssignmentStatus>(-1), Actor::kReferrer, "", ""},
                                  "to: unknown status"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(CheckTransitionTest, LengthCountsCharactersNotBytes) {
  std::string reason;
  for (int i = 0; i < 500; ++i) reason += "é";  // 1000 bytes, 500 characters
  EXPECT_TRUE(CheckTransition(kRequested, {kRejected, Actor::kOwner, reason, ""}).ok());
  EXPECT_TRUE(
      CheckTransition(kInProgress, {kCompleted, Actor::kOwner, "", std::string(500, 'x')}).ok());
  reason += "é";
  ExpectError(CheckTransition(kRequested, {kRejected, Actor::kOwner, reason, ""}),
              absl::StatusCode::kInvalidArgument, "reason: at most 500 characters");
}

TEST(CheckTransitionTest, ReasonIsOptionalWhereNotRequired) {
  EXPECT_TRUE(CheckTransition(kRequested, {kReceived, Actor::kOwner, "", ""}).ok());
  EXPECT_TRUE(CheckTransition(kOnHold, {kInProgress, Actor::kOwner, "", ""}).ok());
  EXPECT_TRUE(CheckTransition(kInProgress, {kCompleted, Actor::kOwner, "", "housed"}).ok());
}

TEST(CheckTransitionTest, MessagesNeverEchoTheReason) {
  const std::string secret = "Anna de Vries left her partner";
  const absl::Status s =
      CheckTransition(kInProgress, {kCancelled, Actor::kReferrer, secret, secret});
  EXPECT_THAT(std::string(s.message()), ::testing::Not(::testing::HasSubstr("Anna")));
}

TEST(StatusNameTest, ReadableNames) {
  EXPECT_EQ(StatusName(kRequested), "requested");
  EXPECT_EQ(StatusName(kReceived), "received");
  EXPECT_EQ(StatusName(kAccepted), "accepted");
  EXPECT_EQ(StatusName(kRejected), "rejected");
  EXPECT_EQ(StatusName(kInProgress), "in-progress");
  EXPECT_EQ(StatusName(kOnHold), "on-hold");
  EXPECT_EQ(StatusName(kCompleted), "completed");
  EXPECT_EQ(StatusName(kFailed), "failed");
  EXPECT_EQ(StatusName(kCancelled), "cancelled");
  EXPECT_EQ(StatusName(v1::ASSIGNMENT_STATUS_UNSPECIFIED), "unspecified");
  EXPECT_EQ(StatusName(static_cast<AssignmentStatus>(42)), "unknown");
}

TEST(StatusKindTest, FinalAndWorkStarted) {
  const std::set<AssignmentStatus> finals = {kRejected, kCancelled, kCompleted, kFailed};
  const std::set<AssignmentStatus> started = {kInProgress, kOnHold};
  for (const Named& s : kStatuses) {
    EXPECT_EQ(IsFinal(s.status), finals.count(s.status) > 0) << s.name;
    EXPECT_EQ(WorkStarted(s.status), started.count(s.status) > 0) << s.name;
  }
  EXPECT_FALSE(IsFinal(v1::ASSIGNMENT_STATUS_UNSPECIFIED));
  EXPECT_FALSE(WorkStarted(v1::ASSIGNMENT_STATUS_UNSPECIFIED));
}

}  // namespace
}  // namespace schakel::referral
