#include "services/router/escalation.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_format.h"
#include "libs/referral/ids.h"
#include "libs/routing/network.h"
#include "libs/routing/policy.h"
#include "libs/topology/topics.h"
#include "services/router/events.h"

namespace schakel::router {

// Readable failures (found by argument-dependent lookup, so not in the anonymous namespace).
void PrintTo(const Output& o, std::ostream* os) {
  *os << "{" << o.topic << " " << o.key << (o.value.has_value() ? "" : " (tombstone)") << "}";
}

namespace {

using ::google::protobuf::util::TimeUtil;
using std::chrono::hours;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using TimePoint = std::chrono::system_clock::time_point;

// Housing goes to alpha, then beta, then gamma (the preference, not the file order, which is the
// other way round); nobody else serves it. Only delta serves debt. SLAs differ from the defaults,
// so that a test shows they are read from the network.
constexpr char kNetwork[] = R"(version: 1
sla: {urgent: 2h, normal: 1d}
needs: [{id: housing}, {id: debt}]
regions: [{id: stad}]
languages: [nl]
organisations:
  - {id: delta, needs: [debt], regions: [stad], languages: [nl]}
  - {id: gamma, needs: [housing], regions: [stad], languages: [nl]}
  - {id: beta, needs: [housing], regions: [stad], languages: [nl]}
  - {id: alpha, needs: [housing], regions: [stad], languages: [nl]}
preferences:
  - {need: housing, order: [alpha, beta, gamma]}
)";
constexpr auto kNormalSla = hours(24);
constexpr auto kUrgentSla = hours(2);
constexpr std::int32_t kPartition = 1;

const TimePoint kStart = TimePoint(seconds(1'800'000'000));
const std::string kReferral = "r-000000000000000000000001";
const std::string kA0 = "a-000000000000000000000001-0";
const std::string kA01 = "a-000000000000000000000001-0.1";
const std::string kA02 = "a-000000000000000000000001-0.2";
const std::string kA03 = "a-000000000000000000000001-0.3";
const std::string kA04 = "a-000000000000000000000001-0.4";
const std::string kDebt = "a-000000000000000000000001-1";
const std::string kStatusTopic(topology::kStatusTopic);
const std::string kStateTopic(topology::kRouterStateTopic);
const std::string kUnroutableTopic(topology::kUnroutableTopic);

routing::Policy TestPolicy() {
  absl::StatusOr<routing::Network> net = routing::ParseNetwork(kNetwork, "escalation.yaml");
  EXPECT_TRUE(net.ok()) << net.status();
  return routing::Policy(*net);
}

std::int64_t Seconds(TimePoint t) {
  return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
}

v1::ReferralSubmitted Submitted(v1::Urgency urgency,
                                const std::vector<std::string>& needs = {"housing"}) {
  v1::ReferralSubmitted s;
  s.mutable_meta()->set_schema_version(1);
  s.mutable_meta()->set_event_id("e-submitted");
  s.mutable_meta()->set_referral_id(kReferral);
  s.set_referring_organisation("delta");
  s.set_client_pseudonym("p-01");
  for (const std::string& code : needs) {
    v1::NeedRequest* need = s.add_needs();
    need->set_code(code);
    need->set_details("details for " + code);
  }
  s.set_urgency(urgency);
  s.set_region("stad");
  s.add_languages("nl");
  s.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"alpha", "beta", "gamma", "delta"}) {
    s.mutable_sharing()->add_organisations(org);
  }
  return s;
}

// A status change of one of the referral's assignments, as an inbox publishes it.
v1::AssignmentStatusChanged Status(const std::string& assignment_id,
                                   const std::string& organisation, v1::AssignmentStatus to,
                                   const std::string& by = "", const std::string& forward_to = "") {
  v1::AssignmentStatusChanged status;
  status.mutable_meta()->set_schema_version(1);
  status.mutable_meta()->set_event_id(referral::NewEventId());
  status.mutable_meta()->set_referral_id(kReferral);
  status.mutable_meta()->set_assignment_id(assignment_id);
  status.set_organisation(organisation);
  status.set_to_status(to);
  // version and from_status: as the owner's inbox would send them (EscalationTest::StatusChange).
  status.set_by(by.empty() ? organisation : by);
  if (to == v1::ASSIGNMENT_STATUS_REJECTED || to == v1::ASSIGNMENT_STATUS_CANCELLED) {
    status.set_reason("no room this week");
  }
  status.set_need_code("housing");
  status.set_referring_organisation("delta");
  status.set_forward_to(forward_to);
  return status;
}

// An owner's forward of `assignment_id` to `to`, built as the inbox builds it (transition.cc).
v1::ForwardRequested Forward(const std::string& assignment_id, const std::string& from,
                             const std::string& to) {
  v1::ForwardRequested forward;
  forward.mutable_meta()->set_schema_version(1);
  forward.mutable_meta()->set_event_id(referral::NewEventId());
  forward.mutable_meta()->set_referral_id(kReferral);
  forward.mutable_meta()->set_assignment_id(assignment_id);
  forward.set_from_organisation(from);
  forward.set_to_organisation(to);
  forward.set_reason("forwarded to " + to);
  v1::AssignmentRequested* proposed = forward.mutable_proposed();
  proposed->set_organisation(to);
  proposed->set_need_code("housing");
  proposed->set_need_details("details for housing");
  proposed->set_client_pseudonym("p-01");
  proposed->set_urgency(v1::URGENCY_NORMAL);
  proposed->set_region("stad");
  proposed->add_languages("nl");
  proposed->set_referring_organisation("delta");
  proposed->set_need_index(referral::NeedIndexOf(assignment_id));
  proposed->set_previous_assignment_id(assignment_id);
  proposed->mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"alpha", "beta", "gamma", "delta"}) {
    proposed->mutable_sharing()->add_organisations(org);
  }
  return forward;
}

// An operator's reassignment of the unroutable need `unroutable_id` (need `need_index`) to `to`.
v1::ReassignRequested Reassign(const std::string& unroutable_id, std::uint32_t need_index,
                               const std::string& to) {
  v1::ReassignRequested reassign;
  reassign.mutable_meta()->set_schema_version(1);
  reassign.mutable_meta()->set_event_id(referral::NewEventId());
  reassign.mutable_meta()->set_referral_id(kReferral);
  reassign.mutable_meta()->set_assignment_id(unroutable_id);
  reassign.set_need_index(need_index);
  reassign.set_to_organisation(to);
  reassign.set_reason("agreed by phone");
  reassign.set_by("schakelctl:ops-anna");
  return reassign;
}

kafka::Record Record(std::string_view topic, const google::protobuf::Message& event) {
  kafka::Record record;
  record.topic = std::string(topic);
  record.partition = kPartition;
  record.offset = 5;
  record.key = kReferral;  // everything the router reads is keyed by referral id
  record.value = event.SerializeAsString();
  return record;
}

std::vector<std::string> Topics(const std::vector<Output>& out) {
  std::vector<std::string> topics;
  for (const Output& o : out) topics.push_back(o.topic);
  return topics;
}

std::vector<std::string> Keys(const std::vector<Output>& out) {
  std::vector<std::string> keys;
  for (const Output& o : out) keys.push_back(o.key);
  return keys;
}

template <typename Message>
Message Parse(const Output& o) {
  Message m;
  if (!o.value.has_value()) {
    ADD_FAILURE() << "a tombstone on " << o.topic << " where an event was expected";
  } else if (!m.ParseFromString(*o.value)) {
    ADD_FAILURE() << "cannot parse the record on " << o.topic;
  }
  return m;
}

class EscalationTest : public ::testing::Test {
 protected:
  // The offer `assignment_id` as the router follows it; nullopt when it made no such offer.
  std::optional<v1::TrackedAssignment> Tracked(const std::string& assignment_id) {
    const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
    if (!state) return std::nullopt;
    for (const v1::TrackedAssignment& tracked : state->assignments()) {
      if (tracked.assignment_id() == assignment_id) return tracked;
    }
    return std::nullopt;
  }
  // `event` as `sender`'s inbox sends it: on its own topic schakel.from.<sender>.
  static kafka::Record FromOrganisation(const std::string& sender,
                                        const google::protobuf::Message& event) {
    v1::OrganisationEvent wrapped;
    if (const auto* status = dynamic_cast<const v1::AssignmentStatusChanged*>(&event)) {
      *wrapped.mutable_status_changed() = *status;
    } else if (const auto* forward = dynamic_cast<const v1::ForwardRequested*>(&event)) {
      *wrapped.mutable_forward_requested() = *forward;
    } else {
      ADD_FAILURE() << "not an event an organisation sends";
    }
    return Record(topology::FromTopic(sender), wrapped);
  }
  // Handles a record of one of the router's shared input topics.
  std::vector<Output> Handle(std::string_view topic, const google::protobuf::Message& event) {
    absl::StatusOr<std::vector<Output>> out = escalation_.Handle(policy_, Record(topic, event));
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : std::vector<Output>{};
  }
  // An owner's status change, from its own topic, as its inbox makes it (when the test leaves them
  // unset): the next version, from the status the router knows. The router publishes the fact
  // first; returned is what follows from it.
  std::vector<Output> StatusChange(v1::AssignmentStatusChanged status) {
    if (status.version() == 0) {
      const std::optional<v1::TrackedAssignment> tracked = Tracked(status.meta().assignment_id());
      EXPECT_TRUE(tracked.has_value()) << status.meta().assignment_id() << " is not tracked";
      if (tracked) {
        status.set_version(tracked->version() + 1);
        status.set_from_status(tracked->status());
      }
    }
    absl::StatusOr<std::vector<Output>> out =
        escalation_.Handle(policy_, FromOrganisation(status.organisation(), status));
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok() || out->empty()) return {};
    const Output fact = out->front();
    EXPECT_EQ(fact.topic, kStatusTopic);
    EXPECT_EQ(Parse<v1::AssignmentStatusChanged>(fact).meta().assignment_id(),
              status.meta().assignment_id());
    out->erase(out->begin());
    return *std::move(out);
  }
  // An owner's forward request, from its own topic.
  std::vector<Output> SendForward(const v1::ForwardRequested& forward) {
    absl::StatusOr<std::vector<Output>> out =
        escalation_.Handle(policy_, FromOrganisation(forward.from_organisation(), forward));
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : std::vector<Output>{};
  }
  // What Handle answers for `event` sent as it is on `sender`'s own topic; nothing may come of it.
  absl::Status Refused(const std::string& sender, const google::protobuf::Message& event) {
    absl::StatusOr<std::vector<Output>> out =
        escalation_.Handle(policy_, FromOrganisation(sender, event));
    if (out.ok()) {
      EXPECT_THAT(Topics(*out), IsEmpty());
      return absl::OkStatus();
    }
    return out.status();
  }
  std::vector<Output> Submit(v1::Urgency urgency = v1::URGENCY_NORMAL,
                             const std::vector<std::string>& needs = {"housing"}) {
    return Handle(topology::kSubmittedTopic, Submitted(urgency, needs));
  }
  // The one state record the changes so far gave.
  Output TakeOneStateChange() {
    std::vector<Output> changes = escalation_.TakeStateChanges();
    EXPECT_EQ(changes.size(), 1u);
    if (changes.empty()) return {};
    EXPECT_EQ(changes[0].topic, kStateTopic);
    EXPECT_EQ(changes[0].key, kReferral);
    return changes[0];
  }

  TimePoint now_ = kStart;
  routing::Policy policy_ = TestPolicy();
  Escalation escalation_{[this] { return now_; }};
};

// --- A submitted referral ---

struct SlaCase {
  std::string name;
  v1::Urgency urgency;
  std::chrono::seconds sla;
};
void PrintTo(const SlaCase& c, std::ostream* os) { *os << c.name; }

class SubmittedTest : public EscalationTest, public ::testing::WithParamInterface<SlaCase> {};

TEST_P(SubmittedTest, OffersTheNeedAndRemembersItsDeadline) {
  std::vector<Output> out = Submit(GetParam().urgency);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.alpha", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA0, kReferral));
  v1::InboxEvent offer = Parse<v1::InboxEvent>(out[0]);
  ASSERT_TRUE(offer.has_requested());
  EXPECT_EQ(offer.requested().organisation(), "alpha");
  EXPECT_EQ(offer.requested().meta().assignment_id(), kA0);
  EXPECT_EQ(offer.requested().urgency(), GetParam().urgency);
  EXPECT_EQ(Parse<v1::AssignmentStatusChanged>(out[1]).to_status(),
            v1::ASSIGNMENT_STATUS_REQUESTED);

  Output state_record = TakeOneStateChange();
  const v1::RouterReferralState state = Parse<v1::RouterReferralState>(state_record);
  EXPECT_EQ(state.referral_id(), kReferral);
  ASSERT_EQ(state.needs_size(), 1);
  const v1::RouterNeedState& need = state.needs(0);
  EXPECT_EQ(need.need_index(), 0u);
  EXPECT_EQ(need.need_code(), "housing");
  EXPECT_EQ(need.current().meta().assignment_id(), kA0);
  EXPECT_EQ(need.current().organisation(), "alpha");
  EXPECT_EQ(need.current().need_details(), "details for housing");
  EXPECT_EQ(need.status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_FALSE(need.settled());
  EXPECT_FALSE(need.forwarding());
  EXPECT_THAT(need.earlier(), IsEmpty());
  ASSERT_TRUE(need.has_accept_by());
  EXPECT_EQ(TimeUtil::TimestampToSeconds(need.accept_by()), Seconds(kStart + GetParam().sla));
  EXPECT_EQ(escalation_.waiting(), 1u);
  // Taken once: nothing changed since.
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Sla, SubmittedTest,
                         ::testing::Values(SlaCase{"Normal", v1::URGENCY_NORMAL, kNormalSla},
                                           SlaCase{"Urgent", v1::URGENCY_URGENT, kUrgentSla}),
                         [](const ::testing::TestParamInfo<SlaCase>& param_info) {
                           return param_info.param.name;
                         });

TEST(AcceptByTest, FollowsTheExampleNetworksSla) {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(AcceptBy(*net, v1::URGENCY_URGENT, kStart), kStart + hours(4));
  // Normal: three working days. kStart is a Friday (15 January 2027, 08:00 UTC): the next
  // Wednesday.
  EXPECT_EQ(AcceptBy(*net, v1::URGENCY_NORMAL, kStart), kStart + hours(5 * 24));
  // An urgency the referrer did not give is treated as normal.
  EXPECT_EQ(AcceptBy(*net, v1::URGENCY_UNSPECIFIED, kStart), kStart + hours(5 * 24));
}

TEST_F(EscalationTest, ARedeliveredSubmissionOffersNothingAgain) {
  ASSERT_EQ(Submit().size(), 2u);
  EXPECT_THAT(Submit(), IsEmpty());
  EXPECT_EQ(escalation_.waiting(), 1u);
}

TEST_F(EscalationTest, ANeedNobodyCanTakeIsRememberedForAnOperator) {
  v1::ReferralSubmitted s = Submitted(v1::URGENCY_NORMAL);
  s.mutable_sharing()->clear_organisations();
  s.mutable_sharing()->add_organisations("delta");
  std::vector<Output> out = Handle(topology::kSubmittedTopic, s);
  EXPECT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  EXPECT_THAT(Parse<v1::ReferralUnroutable>(out[0]).sharing().organisations(),
              ElementsAre("delta"));
  const v1::RouterReferralState state = Parse<v1::RouterReferralState>(TakeOneStateChange());
  ASSERT_EQ(state.needs_size(), 1);
  EXPECT_TRUE(state.needs(0).settled());
  EXPECT_TRUE(state.needs(0).unroutable());
  EXPECT_EQ(state.needs(0).unroutable_id(), kA0);
  EXPECT_EQ(state.needs(0).current().organisation(), "");
  EXPECT_EQ(state.needs(0).current().need_details(), "details for housing");
  EXPECT_FALSE(state.needs(0).has_accept_by());
  EXPECT_EQ(escalation_.waiting(), 0u);
  // A redelivered submission does not put it in the queue twice.
  EXPECT_THAT(Handle(topology::kSubmittedTopic, s), IsEmpty());
}

// --- Deadlines ---

TEST_F(EscalationTest, AnOfferNotAcceptedInTimeIsWithdrawnAndOfferedToTheNext) {
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();

  now_ = kStart + kNormalSla - seconds(1);
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  EXPECT_EQ(escalation_.escalated(), 0u);

  now_ = kStart + kNormalSla + seconds(1);
  std::vector<Output> out = escalation_.Tick(policy_);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.alpha", "schakel.inbox.beta", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA0, kA01, kReferral));

  const v1::InboxEvent withdrawn = Parse<v1::InboxEvent>(out[0]);
  ASSERT_TRUE(withdrawn.has_withdrawn());
  EXPECT_EQ(withdrawn.withdrawn().meta().assignment_id(), kA0);
  EXPECT_EQ(withdrawn.withdrawn().meta().referral_id(), kReferral);
  EXPECT_EQ(withdrawn.withdrawn().meta().schema_version(), 1u);
  EXPECT_EQ(withdrawn.withdrawn().organisation(), "alpha");
  EXPECT_EQ(withdrawn.withdrawn().reason(), "not accepted in time");
  EXPECT_EQ(withdrawn.withdrawn().next_assignment_id(), kA01);

  const v1::InboxEvent offer = Parse<v1::InboxEvent>(out[1]);
  ASSERT_TRUE(offer.has_requested());
  EXPECT_EQ(offer.requested().meta().assignment_id(), kA01);
  EXPECT_EQ(offer.requested().organisation(), "beta");
  EXPECT_EQ(offer.requested().previous_assignment_id(), kA0);
  EXPECT_EQ(offer.requested().need_code(), "housing");
  EXPECT_EQ(offer.requested().need_details(), "details for housing");
  EXPECT_EQ(offer.requested().need_index(), 0u);
  EXPECT_EQ(offer.requested().referring_organisation(), "delta");

  const v1::AssignmentStatusChanged requested = Parse<v1::AssignmentStatusChanged>(out[2]);
  EXPECT_EQ(requested.meta().assignment_id(), kA01);
  EXPECT_EQ(requested.organisation(), "beta");
  EXPECT_EQ(requested.to_status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(requested.by(), "network");
  EXPECT_EQ(requested.reason(), "continues " + kA0 + " (alpha: not accepted in time)");
  EXPECT_EQ(escalation_.escalated(), 1u);

  const v1::RouterReferralState state = Parse<v1::RouterReferralState>(TakeOneStateChange());
  ASSERT_EQ(state.needs_size(), 1);
  EXPECT_EQ(state.needs(0).current().meta().assignment_id(), kA01);
  EXPECT_EQ(state.needs(0).current().organisation(), "beta");
  EXPECT_EQ(TimeUtil::TimestampToSeconds(state.needs(0).accept_by()), Seconds(now_ + kNormalSla));
  ASSERT_EQ(state.needs(0).earlier_size(), 1);
  EXPECT_EQ(state.needs(0).earlier(0).assignment_id(), kA0);
  EXPECT_EQ(state.needs(0).earlier(0).organisation(), "alpha");
  EXPECT_EQ(state.needs(0).earlier(0).ended(), "not accepted in time");

  // A deadline fires once.
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  EXPECT_EQ(escalation_.escalated(), 1u);
}

TEST_F(EscalationTest, TheNextOfferHasItsOwnDeadlineAndNobodyGetsItTwice) {
  ASSERT_EQ(Submit(v1::URGENCY_URGENT).size(), 2u);
  now_ = kStart + kUrgentSla;  // the deadline itself counts as passed
  ASSERT_EQ(escalation_.Tick(policy_).size(), 3u);
  const TimePoint second_offer = now_;

  now_ = second_offer + kUrgentSla - seconds(1);
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
  now_ = second_offer + kUrgentSla;
  std::vector<Output> out = escalation_.Tick(policy_);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.beta", "schakel.inbox.gamma", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA01, kA02, kReferral));
  EXPECT_EQ(Parse<v1::InboxEvent>(out[0]).withdrawn().next_assignment_id(), kA02);

  // Nobody is left: the last offer is withdrawn and the need goes to the operators.
  now_ += kUrgentSla;
  out = escalation_.Tick(policy_);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.gamma", kUnroutableTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA02, kReferral));
  const v1::Withdrawal last = Parse<v1::InboxEvent>(out[0]).withdrawn();
  EXPECT_EQ(last.reason(), "not accepted in time");
  EXPECT_EQ(last.next_assignment_id(), "") << "nothing continues the need elsewhere";
  const v1::ReferralUnroutable unroutable = Parse<v1::ReferralUnroutable>(out[1]);
  ASSERT_GE(unroutable.passed_over_size(), 3);
  EXPECT_EQ(unroutable.passed_over(0).reason(), "offered (" + kA0 + "): not accepted in time");
  EXPECT_EQ(unroutable.passed_over(1).reason(), "offered (" + kA01 + "): not accepted in time");
  EXPECT_EQ(unroutable.passed_over(2).reason(), "offered (" + kA02 + "): not accepted in time");
  EXPECT_EQ(unroutable.urgency(), v1::URGENCY_URGENT);
  EXPECT_EQ(escalation_.escalated(), 3u);
}

TEST_F(EscalationTest, AReceivedOfferIsStillWaitingForAcceptance) {
  ASSERT_EQ(Submit().size(), 2u);
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_RECEIVED)), IsEmpty());
  EXPECT_EQ(escalation_.waiting(), 1u);
  now_ = kStart + kNormalSla + seconds(1);
  std::vector<Output> out = escalation_.Tick(policy_);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.alpha", "schakel.inbox.beta", kStatusTopic));
}

// --- Declines ---

TEST_F(EscalationTest, DeclinedOffersGoDownTheChainThenToUnroutable) {
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();

  std::vector<Output> out = StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED));
  // The decliner knows: no withdrawal, just the next offer.
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.beta", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA01, kReferral));
  EXPECT_EQ(Parse<v1::InboxEvent>(out[0]).requested().previous_assignment_id(), kA0);
  EXPECT_EQ(Parse<v1::AssignmentStatusChanged>(out[1]).reason(),
            "continues " + kA0 + " (alpha: declined)");
  const v1::RouterReferralState after_alpha = Parse<v1::RouterReferralState>(TakeOneStateChange());
  ASSERT_EQ(after_alpha.needs(0).earlier_size(), 1);
  // The organisation's own reason stays in its inbox.
  EXPECT_EQ(after_alpha.needs(0).earlier(0).ended(), "declined");

  // Redelivered (the same version): taken already, and the chain has moved on.
  v1::AssignmentStatusChanged again = Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED);
  again.set_version(2);
  again.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_THAT(StatusChange(again), IsEmpty());
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());

  out = StatusChange(Status(kA01, "beta", v1::ASSIGNMENT_STATUS_REJECTED));
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.gamma", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA02, kReferral));
  Parse<v1::RouterReferralState>(TakeOneStateChange());

  out = StatusChange(Status(kA02, "gamma", v1::ASSIGNMENT_STATUS_REJECTED));
  EXPECT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kReferral));
  const v1::ReferralUnroutable unroutable = Parse<v1::ReferralUnroutable>(out[0]);
  EXPECT_EQ(unroutable.meta().referral_id(), kReferral);
  EXPECT_EQ(unroutable.meta().assignment_id(), kA03);
  EXPECT_EQ(unroutable.need_code(), "housing");
  EXPECT_EQ(unroutable.need_index(), 0u);
  EXPECT_EQ(unroutable.region(), "stad");
  EXPECT_EQ(unroutable.referring_organisation(), "delta");
  std::vector<std::string> passed_over;
  for (const v1::PassedOver& p : unroutable.passed_over()) {
    passed_over.push_back(p.organisation() + ": " + p.reason());
  }
  // The chain first, oldest offer first; then everyone else, each once.
  EXPECT_THAT(passed_over, ElementsAre("alpha: offered (" + kA0 + "): declined",
                                       "beta: offered (" + kA01 + "): declined",
                                       "gamma: offered (" + kA02 + "): declined",
                                       "delta: does not serve need 'housing'"));
  // In the unroutable queue: remembered for an operator, but nothing waits or escalates.
  const v1::RouterReferralState queued = Parse<v1::RouterReferralState>(TakeOneStateChange());
  EXPECT_TRUE(queued.needs(0).unroutable());
  EXPECT_EQ(queued.needs(0).unroutable_id(), kA03);
  EXPECT_EQ(escalation_.waiting(), 0u);
  now_ += 10 * kNormalSla;
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
}

TEST_F(EscalationTest, ADeclineAfterADeadlineNeverGoesBackToAnOrganisationTried) {
  ASSERT_EQ(Submit().size(), 2u);
  now_ = kStart + kNormalSla;
  ASSERT_EQ(escalation_.Tick(policy_).size(), 3u);  // alpha withdrawn, beta offered
  std::vector<Output> out = StatusChange(Status(kA01, "beta", v1::ASSIGNMENT_STATUS_REJECTED));
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.gamma", kStatusTopic));
  EXPECT_EQ(Parse<v1::InboxEvent>(out[0]).requested().organisation(), "gamma");
  out = StatusChange(Status(kA02, "gamma", v1::ASSIGNMENT_STATUS_REJECTED));
  ASSERT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  const v1::ReferralUnroutable unroutable = Parse<v1::ReferralUnroutable>(out[0]);
  ASSERT_EQ(unroutable.passed_over_size(), 4);
  EXPECT_EQ(unroutable.passed_over(0).organisation(), "alpha");
  EXPECT_EQ(unroutable.passed_over(0).reason(), "offered (" + kA0 + "): not accepted in time");
  EXPECT_EQ(unroutable.passed_over(1).reason(), "offered (" + kA01 + "): declined");
  EXPECT_EQ(unroutable.passed_over(2).reason(), "offered (" + kA02 + "): declined");
}

TEST_F(EscalationTest, TheStateGoesOnlyWhenEveryNeedIsSettled) {
  ASSERT_EQ(Submit(v1::URGENCY_NORMAL, {"housing", "debt"}).size(), 4u);
  const Output both = TakeOneStateChange();
  ASSERT_EQ(Parse<v1::RouterReferralState>(both).needs_size(), 2);

  // Debt: delta declines and nobody else serves it.
  v1::AssignmentStatusChanged declined = Status(kDebt, "delta", v1::ASSIGNMENT_STATUS_REJECTED);
  declined.set_need_code("debt");
  std::vector<Output> out = StatusChange(declined);
  EXPECT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  EXPECT_EQ(Parse<v1::ReferralUnroutable>(out[0]).need_index(), 1u);
  const v1::RouterReferralState one_left = Parse<v1::RouterReferralState>(TakeOneStateChange());
  ASSERT_EQ(one_left.needs_size(), 2);
  EXPECT_FALSE(one_left.needs(0).settled());
  EXPECT_TRUE(one_left.needs(1).settled());
  EXPECT_FALSE(one_left.needs(1).has_accept_by());
  EXPECT_EQ(escalation_.waiting(), 1u);

  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED)), IsEmpty());
  // Housing is settled; debt waits in the unroutable queue for an operator: the state stays.
  const v1::RouterReferralState accepted = Parse<v1::RouterReferralState>(TakeOneStateChange());
  EXPECT_TRUE(accepted.needs(0).settled());
  EXPECT_TRUE(accepted.needs(1).unroutable());

  // An operator hands debt to beta (who does not serve it: an agreement by phone); once beta
  // accepts, every need is settled and none is in the queue. The state stays while an accepted
  // offer's lifecycle goes on (the router takes its owner's changes only while it knows whose it
  // is), and goes when the last one ends.
  ASSERT_EQ(Handle(topology::kReassignTopic, Reassign(kDebt + ".1", 1, "beta")).size(), 2u);
  EXPECT_TRUE(TakeOneStateChange().value.has_value());
  v1::AssignmentStatusChanged debt_accepted =
      Status(kDebt + ".2", "beta", v1::ASSIGNMENT_STATUS_ACCEPTED);
  debt_accepted.set_need_code("debt");
  EXPECT_THAT(StatusChange(debt_accepted), IsEmpty());
  EXPECT_TRUE(TakeOneStateChange().value.has_value());
  for (const auto& [id, owner] : {std::pair{kA0, "alpha"}, std::pair{kDebt + ".2", "beta"}}) {
    EXPECT_THAT(StatusChange(Status(id, owner, v1::ASSIGNMENT_STATUS_IN_PROGRESS)), IsEmpty());
    EXPECT_TRUE(TakeOneStateChange().value.has_value());
  }
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_COMPLETED)), IsEmpty());
  EXPECT_TRUE(TakeOneStateChange().value.has_value());
  EXPECT_THAT(StatusChange(Status(kDebt + ".2", "beta", v1::ASSIGNMENT_STATUS_FAILED)), IsEmpty());
  EXPECT_FALSE(TakeOneStateChange().value.has_value());
  EXPECT_FALSE(escalation_.Find(kReferral).has_value());
}

// --- Acceptance ---

TEST_F(EscalationTest, AnAcceptedOfferIsSettled) {
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED)), IsEmpty());
  const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(state->needs(0).settled());
  EXPECT_EQ(state->needs(0).status(), v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(escalation_.waiting(), 0u);

  // Remembered while its work goes on, nothing to escalate; forgotten when it ends.
  EXPECT_TRUE(TakeOneStateChange().value.has_value());
  now_ = kStart + 10 * kNormalSla;
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
  EXPECT_EQ(escalation_.escalated(), 0u);
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_IN_PROGRESS)), IsEmpty());
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_COMPLETED)), IsEmpty());
  const Output tombstone = TakeOneStateChange();
  EXPECT_FALSE(tombstone.value.has_value());
  EXPECT_FALSE(escalation_.Find(kReferral).has_value());
}

TEST_F(EscalationTest, ALateAcceptanceOfAWithdrawnOfferStandsAndTheCurrentOneIsWithdrawn) {
  ASSERT_EQ(Submit().size(), 2u);
  now_ = kStart + kNormalSla;
  ASSERT_EQ(escalation_.Tick(policy_).size(), 3u);  // alpha withdrawn, beta offered
  escalation_.TakeStateChanges();

  // Alpha accepted before our withdrawal reached its inbox.
  now_ += hours(1);
  std::vector<Output> out = StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED));
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.beta"));
  EXPECT_THAT(Keys(out), ElementsAre(kA01));
  const v1::InboxEvent withdrawn = Parse<v1::InboxEvent>(out[0]);
  ASSERT_TRUE(withdrawn.has_withdrawn());
  EXPECT_EQ(withdrawn.withdrawn().meta().assignment_id(), kA01);
  EXPECT_EQ(withdrawn.withdrawn().organisation(), "beta");
  EXPECT_EQ(withdrawn.withdrawn().reason(), "accepted by alpha first");
  EXPECT_EQ(withdrawn.withdrawn().next_assignment_id(), "");

  const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(state->needs(0).settled());
  ASSERT_EQ(state->needs(0).earlier_size(), 2);
  EXPECT_EQ(state->needs(0).earlier(1).assignment_id(), kA01);
  EXPECT_EQ(state->needs(0).earlier(1).ended(), "withdrawn: alpha accepted first");
  EXPECT_TRUE(TakeOneStateChange().value.has_value());  // alpha's work goes on

  // Beta's deadline never fires, and its answer to the withdrawal escalates nothing.
  now_ += 10 * kNormalSla;
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
  EXPECT_THAT(StatusChange(Status(kA01, "beta", v1::ASSIGNMENT_STATUS_CANCELLED, "network")),
              IsEmpty());
  EXPECT_EQ(Tracked(kA01)->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(escalation_.escalated(), 1u);
  EXPECT_EQ(escalation_.waiting(), 0u);
}

// --- Forwarding ---

TEST_F(EscalationTest, AForwardWaitsForItsRequestThenTheNewOfferHasADeadline) {
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();

  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "gamma")),
              IsEmpty());
  const v1::RouterReferralState forwarding = Parse<v1::RouterReferralState>(TakeOneStateChange());
  EXPECT_TRUE(forwarding.needs(0).forwarding());
  EXPECT_FALSE(forwarding.needs(0).has_accept_by());
  EXPECT_EQ(escalation_.waiting(), 0u);
  // No escalation while the forward is on its way.
  now_ = kStart + 2 * kNormalSla;
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());

  std::vector<Output> out = SendForward(Forward(kA0, "alpha", "gamma"));
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.gamma", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA01, kReferral));
  const v1::InboxEvent offer = Parse<v1::InboxEvent>(out[0]);
  EXPECT_EQ(offer.requested().meta().assignment_id(), referral::NextAssignmentId(kA0));
  EXPECT_EQ(offer.requested().organisation(), "gamma");
  EXPECT_EQ(offer.requested().previous_assignment_id(), kA0);
  const v1::RouterReferralState waiting = Parse<v1::RouterReferralState>(TakeOneStateChange());
  const v1::RouterNeedState& need = waiting.needs(0);
  EXPECT_FALSE(need.forwarding());
  EXPECT_EQ(need.current().meta().assignment_id(), kA01);
  EXPECT_EQ(TimeUtil::TimestampToSeconds(need.accept_by()), Seconds(now_ + kNormalSla));
  ASSERT_EQ(need.earlier_size(), 1);
  EXPECT_EQ(need.earlier(0).organisation(), "alpha");
  EXPECT_EQ(need.earlier(0).ended(), "forwarded to gamma");

  // Redelivered: the offer is made already.
  EXPECT_THAT(SendForward(Forward(kA0, "alpha", "gamma")), IsEmpty());

  // Gamma does not accept in time: the next one is beta (alpha had it already).
  now_ += kNormalSla;
  out = escalation_.Tick(policy_);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.gamma", "schakel.inbox.beta", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA01, kA02, kReferral));
  EXPECT_EQ(Parse<v1::InboxEvent>(out[0]).withdrawn().reason(), "not accepted in time");
}

TEST_F(EscalationTest, AForwardedOfferCarriesThePersonalDataAsTheRouterOfferedIt) {
  v1::ReferralSubmitted submitted = Submitted(v1::URGENCY_NORMAL);
  submitted.mutable_needs(0)->clear_details();
  submitted.mutable_sealed_client()->set_key_id("k-1");
  submitted.mutable_sealed_client()->set_ciphertext("sealed client");
  submitted.add_sealed_need_details()->set_key_id("k-1");
  submitted.mutable_sealed_need_details(0)->set_ciphertext("sealed housing");
  ASSERT_EQ(Handle(topology::kSubmittedTopic, submitted).size(), 2u);
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "gamma")),
              IsEmpty());
  // The owner's proposal carries other data (an inbox cannot put words in the next offer).
  v1::ForwardRequested forward = Forward(kA0, "alpha", "gamma");
  forward.mutable_proposed()->set_need_details("made up by alpha");
  forward.mutable_proposed()->mutable_sealed_client()->set_ciphertext("forged");
  std::vector<Output> out = SendForward(forward);
  ASSERT_THAT(Topics(out), ElementsAre("schakel.inbox.gamma", kStatusTopic));
  const v1::AssignmentRequested offer = Parse<v1::InboxEvent>(out[0]).requested();
  EXPECT_EQ(offer.need_details(), "");
  EXPECT_EQ(offer.sealed_client().ciphertext(), "sealed client");
  EXPECT_EQ(offer.sealed_need_details().ciphertext(), "sealed housing");
}

TEST_F(EscalationTest, AForwardThatArrivesBeforeItsStatusChangeMakesTheOfferOnce) {
  ASSERT_EQ(Submit().size(), 2u);
  ASSERT_EQ(SendForward(Forward(kA0, "alpha", "gamma")).size(), 2u);
  // The REJECTED that came with it is about an offer that has moved on.
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "gamma")),
              IsEmpty());
  const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
  ASSERT_TRUE(state.has_value());
  EXPECT_FALSE(state->needs(0).forwarding());
  EXPECT_EQ(state->needs(0).current().organisation(), "gamma");
  EXPECT_EQ(escalation_.waiting(), 1u);
}

TEST_F(EscalationTest, ARefusedForwardSettlesTheNeedInTheUnroutableQueue) {
  ASSERT_EQ(Submit().size(), 2u);
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "delta")),
              IsEmpty());
  std::vector<Output> out = SendForward(Forward(kA0, "alpha", "delta"));
  EXPECT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  EXPECT_EQ(Parse<v1::ReferralUnroutable>(out[0]).passed_over(0).reason(),
            "forward from 'alpha' refused: does not serve need 'housing'");
  const v1::RouterReferralState state = Parse<v1::RouterReferralState>(TakeOneStateChange());
  EXPECT_TRUE(state.needs(0).settled());
  EXPECT_TRUE(state.needs(0).unroutable());
  EXPECT_EQ(state.needs(0).unroutable_id(), kA01);
  EXPECT_EQ(escalation_.waiting(), 0u);
}

// --- An operator reassigns an unroutable need ---

// Everybody declines housing: it is in the unroutable queue as a-…-0.3.
class ReassignTest : public EscalationTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(Submit().size(), 2u);
    ASSERT_EQ(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED)).size(), 2u);
    ASSERT_EQ(StatusChange(Status(kA01, "beta", v1::ASSIGNMENT_STATUS_REJECTED)).size(), 2u);
    ASSERT_THAT(Topics(StatusChange(Status(kA02, "gamma", v1::ASSIGNMENT_STATUS_REJECTED))),
                ElementsAre(kUnroutableTopic));
    escalation_.TakeStateChanges();
  }
};

TEST_F(ReassignTest, OffersTheNeedToTheOrganisationTheOperatorChose) {
  now_ = kStart + hours(1);
  std::vector<Output> out = Handle(topology::kReassignTopic, Reassign(kA03, 0, "beta"));
  ASSERT_THAT(Topics(out), ElementsAre("schakel.inbox.beta", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA04, kReferral));
  const v1::AssignmentRequested offer = Parse<v1::InboxEvent>(out[0]).requested();
  EXPECT_EQ(offer.meta().assignment_id(), kA04);
  EXPECT_EQ(offer.organisation(), "beta");
  EXPECT_EQ(offer.previous_assignment_id(), kA03);
  EXPECT_EQ(offer.need_details(), "details for housing");
  EXPECT_EQ(offer.client_pseudonym(), "p-01");
  const v1::AssignmentStatusChanged requested = Parse<v1::AssignmentStatusChanged>(out[1]);
  EXPECT_EQ(requested.to_status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(requested.reason(),
            "continues " + kA03 + " (unroutable; reassigned by schakelctl:ops-anna)");
  // The operator's own words stay on the reassignments topic.
  EXPECT_EQ(requested.reason().find("agreed by phone"), std::string::npos);

  const v1::RouterReferralState state = Parse<v1::RouterReferralState>(TakeOneStateChange());
  const v1::RouterNeedState& need = state.needs(0);
  EXPECT_FALSE(need.unroutable());
  EXPECT_FALSE(need.settled());
  EXPECT_EQ(need.current().meta().assignment_id(), kA04);
  ASSERT_TRUE(need.has_accept_by());
  EXPECT_EQ(TimeUtil::TimestampToSeconds(need.accept_by()), Seconds(now_ + kNormalSla));
  ASSERT_EQ(need.earlier_size(), 4);
  EXPECT_EQ(need.earlier(3).assignment_id(), kA03);
  EXPECT_EQ(need.earlier(3).ended(), "unroutable; reassigned to beta by schakelctl:ops-anna");
  EXPECT_EQ(escalation_.waiting(), 1u);

  // Redelivered, or clicked twice: one offer.
  EXPECT_THAT(Handle(topology::kReassignTopic, Reassign(kA03, 0, "beta")), IsEmpty());
  EXPECT_THAT(Handle(topology::kReassignTopic, Reassign(kA03, 0, "gamma")), IsEmpty());

  // From here on it is an offer like any other: not accepted in time, nobody is left (every
  // organisation that serves housing was tried), so it is unroutable again, under a new id.
  now_ += kNormalSla + seconds(1);
  out = escalation_.Tick(policy_);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.beta", kUnroutableTopic));
  EXPECT_EQ(Parse<v1::ReferralUnroutable>(out[1]).meta().assignment_id(),
            referral::NextAssignmentId(kA04));
}

TEST_F(ReassignTest, OutsideTheSharingPermissionTheNeedStaysInTheQueueWithTheReason) {
  v1::ReassignRequested reassign = Reassign(kA03, 0, "delta");
  // The client allowed alpha, beta and gamma only.
  const std::optional<v1::RouterReferralState> before = escalation_.Find(kReferral);
  ASSERT_TRUE(before.has_value());
  v1::RouterReferralState restricted = *before;
  restricted.mutable_needs(0)->mutable_current()->mutable_sharing()->clear_organisations();
  for (const char* org : {"alpha", "beta", "gamma"}) {
    restricted.mutable_needs(0)->mutable_current()->mutable_sharing()->add_organisations(org);
  }
  ASSERT_TRUE(escalation_.Restore(kPartition, kReferral, restricted.SerializeAsString()).ok());

  std::vector<Output> out = Handle(topology::kReassignTopic, reassign);
  ASSERT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  const v1::ReferralUnroutable again = Parse<v1::ReferralUnroutable>(out[0]);
  EXPECT_EQ(again.meta().assignment_id(), kA03);
  EXPECT_EQ(again.need_index(), 0u);
  ASSERT_EQ(again.passed_over_size(), 1);
  EXPECT_EQ(again.passed_over(0).organisation(), "delta");
  EXPECT_EQ(again.passed_over(0).reason(),
            "reassign by schakelctl:ops-anna refused: not covered by the client's sharing "
            "permission");
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  EXPECT_TRUE(escalation_.Find(kReferral)->needs(0).unroutable());

  // An organisation outside the network: the same.
  out = Handle(topology::kReassignTopic, Reassign(kA03, 0, "nobody"));
  ASSERT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  EXPECT_EQ(Parse<v1::ReferralUnroutable>(out[0]).passed_over(0).reason(),
            "reassign by schakelctl:ops-anna refused: is not part of the network");
  // Then a good choice still works.
  EXPECT_EQ(Handle(topology::kReassignTopic, Reassign(kA03, 0, "gamma")).size(), 2u);
}

TEST_F(ReassignTest, AnOldUnroutableIdOrAnUnknownReferralChangesNothing) {
  EXPECT_THAT(Handle(topology::kReassignTopic, Reassign(kA02, 0, "beta")), IsEmpty());
  EXPECT_THAT(Handle(topology::kReassignTopic, Reassign(kA03, 7, "beta")), IsEmpty());
  v1::ReassignRequested elsewhere = Reassign(kA03, 0, "beta");
  elsewhere.mutable_meta()->set_referral_id("r-000000000000000000000099");
  EXPECT_THAT(Handle(topology::kReassignTopic, elsewhere), IsEmpty());
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  EXPECT_TRUE(escalation_.Find(kReferral)->needs(0).unroutable());
}

TEST_F(ReassignTest, SurvivesARestoreOnAnotherInstance) {
  const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
  ASSERT_TRUE(state.has_value());
  Escalation other([this] { return now_; });
  ASSERT_TRUE(other.Restore(kPartition, kReferral, state->SerializeAsString()).ok());
  absl::StatusOr<std::vector<Output>> out =
      other.Handle(policy_, Record(topology::kReassignTopic, Reassign(kA03, 0, "alpha")));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Topics(*out), ElementsAre("schakel.inbox.alpha", kStatusTopic));
}

TEST_F(EscalationTest, AForwardOfAnOfferWithdrawnMeanwhileIsIgnored) {
  ASSERT_EQ(Submit().size(), 2u);
  now_ = kStart + kNormalSla;
  ASSERT_EQ(escalation_.Tick(policy_).size(), 3u);  // a-0 (alpha) withdrawn; a-0.1 to beta
  ASSERT_EQ(StatusChange(Status(kA01, "beta", v1::ASSIGNMENT_STATUS_REJECTED)).size(),
            2u);  // a-0.2 to gamma
  escalation_.TakeStateChanges();

  // Alpha forwarded a-0 just before our withdrawal reached it; its request arrives late. The need
  // lives on as a-0.2 at gamma: no second live offer, and no second a-0.1.
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "beta")),
              IsEmpty());
  EXPECT_THAT(SendForward(Forward(kA0, "alpha", "beta")), IsEmpty());
  const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->needs(0).current().meta().assignment_id(), kA02);
  EXPECT_EQ(state->needs(0).current().organisation(), "gamma");
  EXPECT_EQ(state->needs(0).earlier_size(), 2);
  // Only alpha's own offer moved (to rejected): no new offer, nothing else in the state.
  EXPECT_EQ(Tracked(kA0)->status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(Tracked(kA02)->status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(state->assignments_size(), 3);
}

TEST_F(EscalationTest, AForwardOfANeedAcceptedElsewhereMeanwhileIsIgnored) {
  // Two needs; debt stays open (its owner forwards it; that request is still on its way), so the
  // referral's state outlives the housing need's settling.
  ASSERT_EQ(Submit(v1::URGENCY_NORMAL, {"housing", "debt"}).size(), 4u);
  v1::AssignmentStatusChanged debt_forwarded =
      Status(kDebt, "delta", v1::ASSIGNMENT_STATUS_REJECTED, "", "gamma");
  debt_forwarded.set_need_code("debt");
  ASSERT_THAT(StatusChange(debt_forwarded), IsEmpty());

  now_ = kStart + kNormalSla;
  ASSERT_EQ(escalation_.Tick(policy_).size(), 3u);  // a-0 (alpha) withdrawn; a-0.1 to beta
  // Beta forwards a-0.1 to gamma, but alpha's acceptance of a-0 arrives first: it stands.
  EXPECT_THAT(StatusChange(Status(kA01, "beta", v1::ASSIGNMENT_STATUS_REJECTED, "", "gamma")),
              IsEmpty());
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED)), IsEmpty());
  const v1::RouterReferralState state = Parse<v1::RouterReferralState>(TakeOneStateChange());
  ASSERT_EQ(state.needs_size(), 2);
  EXPECT_TRUE(state.needs(0).settled());
  EXPECT_FALSE(state.needs(1).settled());

  // Beta's request arrives in a later batch: the need goes nowhere else.
  EXPECT_THAT(SendForward(Forward(kA01, "beta", "gamma")), IsEmpty());
  ASSERT_TRUE(escalation_.Find(kReferral).has_value());
  EXPECT_TRUE(escalation_.Find(kReferral)->needs(0).settled());
  EXPECT_EQ(escalation_.Find(kReferral)->needs(0).current().meta().assignment_id(), kA01);
  EXPECT_EQ(escalation_.waiting(), 0u);
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  now_ += 10 * kNormalSla;
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
}

// --- Authorship: only an assignment's owner, from its own topic, changes it ---

// Delta holds the debt need; from its own topic (the only one the broker lets it write) it forges
// alpha's decline, forward or acceptance of the housing need to take it.
class AuthorshipTest : public EscalationTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(Submit(v1::URGENCY_NORMAL, {"housing", "debt"}).size(), 4u);
    escalation_.TakeStateChanges();
    before_ = *escalation_.Find(kReferral);
  }
  // Nothing the forgery could have changed did change.
  void ExpectUnchanged() {
    EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
    const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
    ASSERT_TRUE(state.has_value());
    EXPECT_EQ(state->SerializeAsString(), before_.SerializeAsString());
    EXPECT_EQ(escalation_.waiting(), 2u);
    EXPECT_EQ(escalation_.escalated(), 0u);
  }
  // A change of `id` as its real owner's inbox would make it (the next version).
  v1::AssignmentStatusChanged AsOwnerWould(v1::AssignmentStatusChanged status) {
    const std::optional<v1::TrackedAssignment> tracked = Tracked(status.meta().assignment_id());
    EXPECT_TRUE(tracked.has_value());
    if (tracked) {
      status.set_version(tracked->version() + 1);
      status.set_from_status(tracked->status());
    }
    return status;
  }
  v1::RouterReferralState before_;
};

TEST_F(AuthorshipTest, ADeclineOfAnotherOrganisationsAssignmentChangesNothingAndOffersNothing) {
  // Delta says it is alpha: the topic says otherwise.
  const absl::Status as_alpha = Refused(
      "delta", AsOwnerWould(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "delta")));
  EXPECT_EQ(as_alpha.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(as_alpha.message(), "organisation: says 'alpha' on schakel.from.delta");
  // Delta says it is delta: the assignment is not delta's.
  const absl::Status as_itself = Refused(
      "delta", AsOwnerWould(Status(kA0, "delta", v1::ASSIGNMENT_STATUS_REJECTED, "", "delta")));
  EXPECT_EQ(as_itself.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(as_itself.message(),
            "assignment " + kA0 + " is not offered to delta: only its owner changes it");
  EXPECT_EQ(escalation_.unauthorised(), 2u);
  ExpectUnchanged();
}

TEST_F(AuthorshipTest, AForwardOfAnotherOrganisationsAssignmentChangesNothing) {
  for (const v1::ForwardRequested& forward :
       {Forward(kA0, "alpha", "delta"), Forward(kA0, "delta", "delta")}) {
    EXPECT_EQ(Refused("delta", forward).code(), absl::StatusCode::kPermissionDenied);
  }
  EXPECT_EQ(escalation_.unauthorised(), 2u);
  ExpectUnchanged();
  EXPECT_FALSE(escalation_.Find(kReferral)->needs(0).forwarding());
}

TEST_F(AuthorshipTest, AForgedAcceptanceReceiptOrCancellationSettlesNothing) {
  for (const v1::AssignmentStatusChanged& forged :
       {Status(kA0, "delta", v1::ASSIGNMENT_STATUS_ACCEPTED),
        Status(kA0, "delta", v1::ASSIGNMENT_STATUS_CANCELLED, "delta"),
        Status(kA0, "delta", v1::ASSIGNMENT_STATUS_RECEIVED)}) {
    EXPECT_EQ(Refused("delta", AsOwnerWould(forged)).code(), absl::StatusCode::kPermissionDenied);
  }
  ExpectUnchanged();
}

TEST_F(AuthorshipTest, AnAssignmentTheRouterNeverOfferedIsRefused) {
  const std::string made_up = "a-000000000000000000000001-7";
  v1::AssignmentStatusChanged status = Status(made_up, "delta", v1::ASSIGNMENT_STATUS_ACCEPTED);
  status.set_version(2);
  status.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  const absl::Status refused = Refused("delta", status);
  EXPECT_EQ(refused.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(refused.message(), "assignment " + made_up + ": the router has no open offer of it");
  ExpectUnchanged();
}

TEST_F(AuthorshipTest, TheOwnersDeclineIsActedOnAndPublishedAsAFact) {
  absl::StatusOr<std::vector<Output>> out = escalation_.Handle(
      policy_, FromOrganisation(
                   "alpha", AsOwnerWould(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED))));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Topics(*out), ElementsAre(kStatusTopic, "schakel.inbox.beta", kStatusTopic));
  // The fact names what the router knows, whatever the inbox said besides.
  const v1::AssignmentStatusChanged fact = Parse<v1::AssignmentStatusChanged>(out->front());
  EXPECT_EQ(fact.organisation(), "alpha");
  EXPECT_EQ(fact.referring_organisation(), "delta");
  EXPECT_EQ(fact.need_code(), "housing");
  EXPECT_EQ(fact.to_status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(escalation_.unauthorised(), 0u);
  EXPECT_EQ(escalation_.escalated(), 1u);
}

TEST_F(AuthorshipTest, AStepTheLifecycleDoesNotAllowIsRefused) {
  // Completed straight from requested; and a change that does not start where the assignment is.
  v1::AssignmentStatusChanged completed =
      AsOwnerWould(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_COMPLETED));
  const absl::Status skipped = Refused("alpha", completed);
  EXPECT_EQ(skipped.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(skipped.message(), "cannot go from requested to completed");
  v1::AssignmentStatusChanged started =
      AsOwnerWould(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_IN_PROGRESS));
  started.set_from_status(v1::ASSIGNMENT_STATUS_ACCEPTED);
  const absl::Status elsewhere = Refused("alpha", started);
  EXPECT_EQ(elsewhere.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(elsewhere.message(), "from_status: accepted, but " + kA0 + " is requested");
  // The owner may not cancel "by network" an offer the router did not withdraw.
  const absl::Status network = Refused(
      "alpha", AsOwnerWould(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_CANCELLED, "network")));
  EXPECT_EQ(network.code(), absl::StatusCode::kFailedPrecondition);
  // Nor act as someone who is neither owner, referrer nor network.
  EXPECT_EQ(
      Refused("alpha", AsOwnerWould(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED, "gamma")))
          .code(),
      absl::StatusCode::kInvalidArgument);
  ExpectUnchanged();
}

TEST_F(AuthorshipTest, ARedeliveredChangeIsTakenOnce) {
  const v1::AssignmentStatusChanged accepted =
      AsOwnerWould(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED));
  ASSERT_TRUE(escalation_.Handle(policy_, FromOrganisation("alpha", accepted)).ok());
  absl::StatusOr<std::vector<Output>> again =
      escalation_.Handle(policy_, FromOrganisation("alpha", accepted));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(*again, IsEmpty());
  EXPECT_EQ(Tracked(kA0)->status(), v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(Tracked(kA0)->version(), 2u);
}

TEST_F(AuthorshipTest, AForgedAcceptanceOfAnEarlierOfferWithdrawsNothing) {
  now_ = kStart + kNormalSla;
  ASSERT_EQ(escalation_.Tick(policy_).size(), 5u);  // housing to beta, debt unroutable
  escalation_.TakeStateChanges();
  // Alpha's old offer, accepted "late" by delta: refused; beta's offer stays.
  EXPECT_EQ(
      Refused("delta", AsOwnerWould(Status(kA0, "delta", v1::ASSIGNMENT_STATUS_ACCEPTED))).code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  EXPECT_FALSE(escalation_.Find(kReferral)->needs(0).settled());
  // Alpha itself still can: the router follows its withdrawn offer until alpha answers.
  EXPECT_THAT(Topics(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED))),
              ElementsAre("schakel.inbox.beta"));
}

TEST_F(AuthorshipTest, TheForwardedOfferIsTheRoutersOwnNotTheProposal) {
  ASSERT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "gamma")),
              IsEmpty());
  // Alpha proposes another sharing permission, region and client: the router takes only the
  // target from it.
  v1::ForwardRequested forward = Forward(kA0, "alpha", "gamma");
  v1::AssignmentRequested* proposed = forward.mutable_proposed();
  proposed->mutable_sharing()->clear_organisations();
  proposed->mutable_sharing()->add_organisations("gamma");
  proposed->set_region("elders");
  proposed->set_client_pseudonym("p-someone-else");
  proposed->set_need_details("made up");
  std::vector<Output> out = SendForward(forward);
  ASSERT_THAT(Topics(out), ElementsAre("schakel.inbox.gamma", kStatusTopic));
  const v1::AssignmentRequested offer = Parse<v1::InboxEvent>(out[0]).requested();
  const v1::AssignmentRequested& original = before_.needs(0).current();
  EXPECT_EQ(offer.organisation(), "gamma");
  EXPECT_EQ(offer.region(), original.region());
  EXPECT_EQ(offer.client_pseudonym(), original.client_pseudonym());
  EXPECT_EQ(offer.need_details(), original.need_details());
  EXPECT_EQ(offer.sharing().SerializeAsString(), original.sharing().SerializeAsString());
}

TEST_F(AuthorshipTest, AForwardOutsideTheClientsPermissionIsRefusedWhateverTheProposalSays) {
  // The client allowed alpha, beta and delta only; alpha proposes gamma "with permission".
  v1::RouterReferralState narrowed = before_;
  for (v1::RouterNeedState& need : *narrowed.mutable_needs()) {
    need.mutable_current()->mutable_sharing()->clear_organisations();
    for (const char* org : {"alpha", "beta", "delta"}) {
      need.mutable_current()->mutable_sharing()->add_organisations(org);
    }
  }
  ASSERT_TRUE(escalation_.Restore(kPartition, kReferral, narrowed.SerializeAsString()).ok());
  ASSERT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED, "", "gamma")),
              IsEmpty());
  v1::ForwardRequested forward = Forward(kA0, "alpha", "gamma");  // its proposal names gamma
  std::vector<Output> out = SendForward(forward);
  ASSERT_THAT(Topics(out), ElementsAre(kUnroutableTopic));
  const v1::ReferralUnroutable unroutable = Parse<v1::ReferralUnroutable>(out[0]);
  ASSERT_EQ(unroutable.passed_over_size(), 1);
  EXPECT_EQ(unroutable.passed_over(0).reason(),
            "forward from 'alpha' refused: not covered by the client's sharing permission");
}

TEST_F(AuthorshipTest, AStateFromARouterBeforeTrackingFollowsItsWaitingOffers) {
  v1::RouterReferralState old = before_;
  old.clear_assignments();
  ASSERT_TRUE(escalation_.Restore(kPartition, kReferral, old.SerializeAsString()).ok());
  ASSERT_TRUE(Tracked(kA0).has_value());
  EXPECT_EQ(Tracked(kA0)->organisation(), "alpha");
  EXPECT_EQ(Tracked(kA0)->version(), 0u);
  // Its owner's next change is taken, whatever version its inbox is at; another's is not.
  v1::AssignmentStatusChanged received = Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_RECEIVED);
  received.set_version(4);
  received.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(Refused("delta", Status(kA0, "delta", v1::ASSIGNMENT_STATUS_REJECTED)).code(),
            absl::StatusCode::kPermissionDenied);
  absl::StatusOr<std::vector<Output>> out =
      escalation_.Handle(policy_, FromOrganisation("alpha", received));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(Topics(*out), ElementsAre(kStatusTopic));
}

TEST_F(EscalationTest, AForwardOfAnAssignmentTheRouterHasNoOfferOfIsRefused) {
  // The referral is not (or no longer) in the state: nobody owns the assignment.
  EXPECT_EQ(Refused("alpha", Forward(kA0, "alpha", "gamma")).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(escalation_.Find(kReferral).has_value());
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
}

// --- Cancellation ---

TEST_F(EscalationTest, TheReferrersCancellationSettles) {
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_CANCELLED, "delta")),
              IsEmpty());
  const std::optional<v1::RouterReferralState> state = escalation_.Find(kReferral);
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(state->needs(0).settled());
  EXPECT_EQ(state->needs(0).status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_FALSE(TakeOneStateChange().value.has_value());
  now_ = kStart + 10 * kNormalSla;
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
}

TEST_F(EscalationTest, ACancellationByTheNetworkIsOnlyTheAnswerToAWithdrawal) {
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();
  // Not withdrawn: the owner cannot end its offer in the network's name (it declines instead).
  v1::AssignmentStatusChanged early =
      Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_CANCELLED, "network");
  early.set_version(2);
  early.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(Refused("alpha", early).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  ASSERT_TRUE(escalation_.Find(kReferral).has_value());
  EXPECT_FALSE(escalation_.Find(kReferral)->needs(0).settled());
  EXPECT_EQ(escalation_.waiting(), 1u);

  now_ = kStart + kNormalSla;
  ASSERT_EQ(escalation_.Tick(policy_).size(), 3u);
  escalation_.TakeStateChanges();
  // The owner's answer to that withdrawal, for the offer that has moved on: a fact, nothing more.
  EXPECT_THAT(StatusChange(Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_CANCELLED, "network")),
              IsEmpty());
  EXPECT_EQ(Tracked(kA0)->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(escalation_.Find(kReferral)->needs(0).current().meta().assignment_id(), kA01);
  EXPECT_EQ(escalation_.waiting(), 1u);
}

TEST_F(EscalationTest, ACancelRequestIsHandedToTheOwnersInbox) {
  v1::CancelRequested cancel;
  cancel.mutable_meta()->set_schema_version(1);
  cancel.mutable_meta()->set_referral_id(kReferral);
  cancel.mutable_meta()->set_assignment_id(kA0);
  cancel.set_organisation("alpha");
  cancel.set_referring_organisation("delta");
  cancel.set_reason("client moved away");
  std::vector<Output> out = Handle(topology::kCancellationsTopic, cancel);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.alpha"));
  EXPECT_THAT(Keys(out), ElementsAre(kA0));
  EXPECT_TRUE(Parse<v1::InboxEvent>(out[0]).has_cancel_requested());
}

// --- Restarts ---

TEST_F(EscalationTest, TheRestoredStateFiresTheSameDeadlineElsewhere) {
  ASSERT_EQ(Submit().size(), 2u);
  const Output state = TakeOneStateChange();
  ASSERT_TRUE(state.value.has_value());

  Escalation restarted([this] { return now_; });
  ASSERT_TRUE(restarted.Restore(kPartition, state.key, state.value).ok());
  EXPECT_EQ(restarted.waiting(), 1u);
  EXPECT_THAT(restarted.TakeStateChanges(), IsEmpty()) << "restoring changes nothing";
  ASSERT_TRUE(restarted.Find(kReferral).has_value());

  now_ = kStart + kNormalSla - seconds(1);
  EXPECT_THAT(restarted.Tick(policy_), IsEmpty());
  now_ = kStart + kNormalSla + seconds(1);
  std::vector<Output> out = restarted.Tick(policy_);
  EXPECT_THAT(Topics(out), ElementsAre("schakel.inbox.alpha", "schakel.inbox.beta", kStatusTopic));
  EXPECT_THAT(Keys(out), ElementsAre(kA0, kA01, kReferral));
  EXPECT_EQ(Parse<v1::InboxEvent>(out[0]).withdrawn().reason(), "not accepted in time");
  EXPECT_THAT(restarted.Tick(policy_), IsEmpty());

  // What the restarted instance remembers is what it writes next.
  const std::vector<Output> changes = restarted.TakeStateChanges();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(Parse<v1::RouterReferralState>(changes[0]).needs(0).current().organisation(), "beta");
}

TEST_F(EscalationTest, ForgettingAPartitionDropsItsReferralsOnly) {
  ASSERT_EQ(Submit().size(), 2u);
  const Output state = TakeOneStateChange();
  Escalation restarted([this] { return now_; });
  ASSERT_TRUE(restarted.Restore(kPartition, state.key, state.value).ok());

  restarted.Forget(kPartition + 1);
  EXPECT_TRUE(restarted.Find(kReferral).has_value());
  restarted.Forget(kPartition);
  EXPECT_FALSE(restarted.Find(kReferral).has_value());
  EXPECT_EQ(restarted.waiting(), 0u);
  now_ = kStart + 10 * kNormalSla;
  EXPECT_THAT(restarted.Tick(policy_), IsEmpty());

  // The instance that got the referral first may forget it too (a rebalance took it away).
  escalation_.Forget(kPartition);
  EXPECT_FALSE(escalation_.Find(kReferral).has_value());
  escalation_.ForgetAll();
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
}

TEST_F(EscalationTest, ATombstoneInTheStateTopicRemovesTheReferral) {
  ASSERT_EQ(Submit().size(), 2u);
  const Output state = TakeOneStateChange();
  Escalation restarted([this] { return now_; });
  ASSERT_TRUE(restarted.Restore(kPartition, state.key, state.value).ok());
  ASSERT_TRUE(restarted.Restore(kPartition, kReferral, std::nullopt).ok());
  EXPECT_FALSE(restarted.Find(kReferral).has_value());
  now_ = kStart + 10 * kNormalSla;
  EXPECT_THAT(restarted.Tick(policy_), IsEmpty());
}

TEST_F(EscalationTest, AStateRecordThatCannotBeReadIsRefused) {
  ASSERT_EQ(Submit().size(), 2u);
  const Output state = TakeOneStateChange();
  Escalation restarted([this] { return now_; });
  EXPECT_EQ(restarted.Restore(kPartition, kReferral, std::string("\xff\xff\xff")).code(),
            absl::StatusCode::kInvalidArgument);
  // Under another referral's key.
  EXPECT_EQ(restarted.Restore(kPartition, "r-000000000000000000000002", state.value).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(restarted.Find(kReferral).has_value());
  EXPECT_FALSE(restarted.Find("r-000000000000000000000002").has_value());
  EXPECT_EQ(restarted.waiting(), 0u);
}

// --- What does not concern us ---

TEST_F(EscalationTest, AStatusChangeOfAnUnknownReferralIsRefusedAndChangesNothing) {
  v1::AssignmentStatusChanged status = Status(kA0, "alpha", v1::ASSIGNMENT_STATUS_REJECTED);
  status.set_version(2);
  status.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(Refused("alpha", status).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  EXPECT_FALSE(escalation_.Find(kReferral).has_value());
  // Nor one of another need of a referral it knows.
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();
  v1::AssignmentStatusChanged debt = Status(kDebt, "delta", v1::ASSIGNMENT_STATUS_REJECTED);
  debt.set_version(2);
  debt.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(Refused("delta", debt).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
}

class GarbageTest : public EscalationTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(GarbageTest, IsRefusedAndChangesNothing) {
  ASSERT_EQ(Submit().size(), 2u);
  escalation_.TakeStateChanges();
  kafka::Record record;
  record.topic = GetParam();
  record.partition = kPartition;
  record.key = kReferral;
  record.value = "\xff\xff\xff";
  absl::StatusOr<std::vector<Output>> out = escalation_.Handle(policy_, record);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
  EXPECT_EQ(escalation_.waiting(), 1u);
}

INSTANTIATE_TEST_SUITE_P(EveryInput, GarbageTest,
                         ::testing::Values(std::string(topology::kSubmittedTopic),
                                           std::string("schakel.from.alpha"),
                                           std::string(topology::kCancellationsTopic),
                                           std::string(topology::kReassignTopic),
                                           std::string("schakel.inbox.alpha")),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                           std::string name;
                           // "schakel.from.alpha" -> "fromalpha"
                           for (char c : param_info.param.substr(param_info.param.find('.') + 1)) {
                             if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                           }
                           return name;
                         });

TEST_F(EscalationTest, ASubmissionItCannotRouteIsRefused) {
  v1::ReferralSubmitted s = Submitted(v1::URGENCY_NORMAL);
  s.mutable_meta()->set_schema_version(2);
  EXPECT_EQ(escalation_.Handle(policy_, Record(topology::kSubmittedTopic, s)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(escalation_.Find(kReferral).has_value());
  EXPECT_THAT(escalation_.TakeStateChanges(), IsEmpty());
}

}  // namespace
}  // namespace schakel::router

namespace schakel::router {
namespace {

// Found by fuzz/event_decoding_fuzz: a state record with a deadline system_clock cannot hold (it
// counts nanoseconds, 1677 to 2262) overflowed on conversion (undefined behaviour; in practice a
// deadline in 2500 wrapped round to one in the past and fired at once).
TEST_F(EscalationTest, ADeadlineOutsideTheClocksRangeIsClampedNotWrapped) {
  ASSERT_EQ(Submit().size(), 2u);
  const Output state = TakeOneStateChange();
  ASSERT_TRUE(state.value.has_value());
  v1::RouterReferralState far = Parse<v1::RouterReferralState>(state);
  ASSERT_EQ(far.needs_size(), 1);

  far.mutable_needs(0)->mutable_accept_by()->set_seconds(16'725'225'600);  // 2500-01-01
  Escalation later([this] { return now_; });
  ASSERT_TRUE(later.Restore(kPartition, kReferral, far.SerializeAsString()).ok());
  EXPECT_THAT(later.Tick(policy_), IsEmpty());

  far.mutable_needs(0)->mutable_accept_by()->set_seconds(-30'610'224'000);  // 1000-01-01
  Escalation earlier([this] { return now_; });
  ASSERT_TRUE(earlier.Restore(kPartition, kReferral, far.SerializeAsString()).ok());
  EXPECT_THAT(Topics(earlier.Tick(policy_)),
              ElementsAre("schakel.inbox.alpha", "schakel.inbox.beta", kStatusTopic));
}

// --- Memory (issue 20) ---

// Open referrals are not kept in memory: once their state is taken, it is in the store, and the
// clock's check reads back only those that are due, at most kMaxDuePerTick at a time.
TEST_F(EscalationTest, OpenReferralsLiveInTheStoreAndTheClockReadsBackWhatIsDue) {
  const std::size_t n = Escalation::kMaxDuePerTick + 200;
  auto id = [](std::size_t i) { return absl::StrFormat("r-%024d", i + 100); };
  for (std::size_t i = 0; i < n; ++i) {
    v1::ReferralSubmitted submitted = Submitted(v1::URGENCY_NORMAL);
    submitted.mutable_meta()->set_referral_id(id(i));
    ASSERT_EQ(Handle(topology::kSubmittedTopic, submitted).size(), 2u);
  }
  EXPECT_EQ(escalation_.in_memory(), n);
  EXPECT_EQ(escalation_.TakeStateChanges().size(), n);
  EXPECT_EQ(escalation_.in_memory(), 0u);
  EXPECT_EQ(escalation_.waiting(), n);

  now_ = kStart + kNormalSla - seconds(1);
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty());
  EXPECT_EQ(escalation_.in_memory(), 0u) << "nothing due, nothing read";

  now_ = kStart + kNormalSla + seconds(1);
  // Each escalation: the withdrawal, the offer to beta and its REQUESTED.
  EXPECT_EQ(escalation_.Tick(policy_).size(), 3 * Escalation::kMaxDuePerTick);
  EXPECT_EQ(escalation_.TakeStateChanges().size(), Escalation::kMaxDuePerTick);
  EXPECT_EQ(escalation_.Tick(policy_).size(), 3 * (n - Escalation::kMaxDuePerTick));
  EXPECT_EQ(escalation_.TakeStateChanges().size(), n - Escalation::kMaxDuePerTick);
  EXPECT_THAT(escalation_.Tick(policy_), IsEmpty()) << "each deadline fires once";
  EXPECT_EQ(escalation_.escalated(), n);
  EXPECT_EQ(escalation_.waiting(), n);
  for (std::size_t i : {std::size_t{0}, n / 2, n - 1}) {
    const std::optional<v1::RouterReferralState> state = escalation_.Find(id(i));
    ASSERT_TRUE(state.has_value()) << id(i);
    EXPECT_EQ(state->needs(0).current().organisation(), "beta") << id(i);
  }
}

}  // namespace
}  // namespace schakel::router
