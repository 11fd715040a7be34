#include "services/router/events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "libs/referral/ids.h"
#include "libs/referral/lifecycle.h"
#include "services/router/escalation.h"

namespace schakel::router {
namespace {

using ::testing::ElementsAre;

routing::Policy ExamplePolicy() {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  EXPECT_TRUE(net.ok()) << net.status();
  return routing::Policy(*net);
}

v1::ReferralSubmitted Seed() {
  v1::ReferralSubmitted s;
  s.mutable_meta()->set_schema_version(1);
  s.mutable_meta()->set_referral_id("r-000000000000000000000001");
  s.set_referring_organisation("ggd");
  s.set_client_pseudonym("p-00");
  for (const char* code : {"debt", "income", "housing"}) {
    v1::NeedRequest* need = s.add_needs();
    need->set_code(code);
    need->set_details(std::string("details for ") + code);
  }
  s.set_urgency(v1::URGENCY_NORMAL);
  s.set_region("groningen-stad");
  s.add_languages("nl");
  s.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"gemeente", "leger-des-heils", "mjd"})
    s.mutable_sharing()->add_organisations(org);
  return s;
}

TEST(RouteReferralTest, EachNeedGoesToItsOrganisationsTopicOnly) {
  absl::StatusOr<std::vector<Output>> events = RouteReferral(ExamplePolicy(), Seed());
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> topics;
  for (const Output& e : *events) topics.push_back(e.topic);
  // Each assignment on its owner's topic, followed by its first status event for the referrer and
  // ops.
  EXPECT_THAT(topics, ElementsAre("schakel.inbox.mjd", "schakel.assignments.status",
                                  "schakel.inbox.gemeente", "schakel.assignments.status",
                                  "schakel.inbox.leger-des-heils", "schakel.assignments.status"));

  v1::InboxEvent offer;
  ASSERT_TRUE(offer.ParseFromString(*(*events)[2].value));
  ASSERT_TRUE(offer.has_requested());
  const v1::AssignmentRequested& income = offer.requested();
  EXPECT_EQ((*events)[2].key, "a-000000000000000000000001-1");
  EXPECT_EQ(income.meta().assignment_id(), "a-000000000000000000000001-1");
  EXPECT_EQ(income.meta().referral_id(), "r-000000000000000000000001");
  EXPECT_EQ(income.organisation(), "gemeente");
  EXPECT_EQ(income.need_code(), "income");
  EXPECT_EQ(income.need_details(), "details for income");
  EXPECT_EQ(income.need_index(), 1u);
  EXPECT_EQ(income.referring_organisation(), "ggd");
  EXPECT_EQ(income.sharing().organisations_size(), 3);
  // The municipality's event carries nothing of the other needs.
  EXPECT_EQ((*events)[2].value->find("details for debt"), std::string::npos);
  EXPECT_EQ((*events)[2].value->find("details for housing"), std::string::npos);

  v1::AssignmentStatusChanged requested;
  ASSERT_TRUE(requested.ParseFromString(*(*events)[3].value));
  EXPECT_EQ((*events)[3].key, "r-000000000000000000000001");  // the router's state is per referral
  EXPECT_EQ(requested.meta().assignment_id(), "a-000000000000000000000001-1");
  EXPECT_EQ(requested.organisation(), "gemeente");
  EXPECT_EQ(requested.to_status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(requested.version(), 1u);
  EXPECT_EQ(requested.by(), "network");
  EXPECT_EQ(requested.need_code(), "income");
  // Status events are read widely: no personal free text in them.
  EXPECT_EQ((*events)[3].value->find("details for"), std::string::npos);
}

// The key service grants a key on each offer's REQUESTED status by the network, which the router
// writes to the status topic with the offer; nothing goes to a topic of its own.
TEST(RouteReferralTest, EachOfferHasOneRequestedStatusByTheNetworkOnTheStatusTopic) {
  absl::StatusOr<std::vector<Output>> events = RouteReferral(ExamplePolicy(), Seed());
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> offered;
  std::vector<std::string> requested;
  for (const Output& e : *events) {
    ASSERT_TRUE(e.value.has_value());
    if (e.topic.starts_with("schakel.inbox.")) {
      v1::InboxEvent offer;
      ASSERT_TRUE(offer.ParseFromString(*e.value));
      offered.push_back(offer.requested().meta().assignment_id() + "@" +
                        offer.requested().organisation());
      continue;
    }
    ASSERT_EQ(e.topic, "schakel.assignments.status");
    v1::AssignmentStatusChanged status;
    ASSERT_TRUE(status.ParseFromString(*e.value));
    EXPECT_EQ(status.to_status(), v1::ASSIGNMENT_STATUS_REQUESTED);
    EXPECT_EQ(status.by(), referral::kNetworkName);
    requested.push_back(status.meta().assignment_id() + "@" + status.organisation());
  }
  EXPECT_THAT(offered, ElementsAre("a-000000000000000000000001-0@mjd",
                                   "a-000000000000000000000001-1@gemeente",
                                   "a-000000000000000000000001-2@leger-des-heils"));
  EXPECT_EQ(requested, offered);
}

TEST(RouteReferralTest, EachOfferCarriesTheSealedClientAndOnlyItsOwnNeedsSealedDetails) {
  v1::ReferralSubmitted submitted = Seed();
  submitted.mutable_sealed_client()->set_key_id("k-1");
  submitted.mutable_sealed_client()->set_ciphertext("sealed client");
  for (const char* code : {"debt", "income", "housing"}) {
    v1::Sealed* sealed = submitted.add_sealed_need_details();
    sealed->set_key_id("k-1");
    sealed->set_ciphertext(std::string("sealed ") + code);
  }
  for (v1::NeedRequest& need : *submitted.mutable_needs()) need.clear_details();
  absl::StatusOr<std::vector<Output>> events = RouteReferral(ExamplePolicy(), submitted);
  ASSERT_TRUE(events.ok()) << events.status();
  v1::InboxEvent offer;
  ASSERT_TRUE(offer.ParseFromString(*(*events)[2].value));
  const v1::AssignmentRequested& income = offer.requested();
  EXPECT_EQ(income.need_code(), "income");
  EXPECT_EQ(income.need_details(), "");
  EXPECT_EQ(income.sealed_client().ciphertext(), "sealed client");
  EXPECT_EQ(income.sealed_need_details().key_id(), "k-1");
  EXPECT_EQ(income.sealed_need_details().ciphertext(), "sealed income");
  EXPECT_EQ((*events)[2].value->find("sealed debt"), std::string::npos);
  EXPECT_EQ((*events)[2].value->find("sealed housing"), std::string::npos);
}

TEST(RouteReferralTest, RoutingAgainGivesTheSameAssignmentIds) {
  auto first = RouteReferral(ExamplePolicy(), Seed());
  auto second = RouteReferral(ExamplePolicy(), Seed());
  ASSERT_TRUE(first.ok() && second.ok());
  for (std::size_t i = 0; i < first->size(); ++i) EXPECT_EQ((*first)[i].key, (*second)[i].key);
}

TEST(RouteReferralTest, ANeedNobodyMayTakeGoesToUnroutableWithReasons) {
  v1::ReferralSubmitted s = Seed();
  s.mutable_sharing()->clear_organisations();
  s.mutable_sharing()->add_organisations("gemeente");
  absl::StatusOr<std::vector<Output>> events = RouteReferral(ExamplePolicy(), s);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(),
            4u);  // debt, housing unroutable; income to the municipality (+ its status)
  EXPECT_EQ((*events)[0].topic, "schakel.referrals.unroutable");
  EXPECT_EQ((*events)[0].key, "r-000000000000000000000001");
  EXPECT_EQ((*events)[1].topic, "schakel.inbox.gemeente");
  EXPECT_EQ((*events)[3].topic, "schakel.referrals.unroutable");
  v1::ReferralUnroutable debt;
  ASSERT_TRUE(debt.ParseFromString(*(*events)[0].value));
  EXPECT_EQ(debt.need_code(), "debt");
  EXPECT_EQ(debt.meta().assignment_id(), "a-000000000000000000000001-0");
  EXPECT_EQ(debt.passed_over_size(), 6);
  bool mjd_reason_found = false;
  for (const v1::PassedOver& p : debt.passed_over()) {
    if (p.organisation() == "mjd") {
      EXPECT_EQ(p.reason(), "not covered by the client's sharing permission");
      mjd_reason_found = true;
    }
  }
  EXPECT_TRUE(mjd_reason_found);
  // The unroutable queue is for operators: no personal free text in it.
  EXPECT_EQ((*events)[0].value->find("details for"), std::string::npos);
}

v1::ForwardRequested Forward(const std::string& to) {
  v1::ForwardRequested f;
  f.mutable_meta()->set_schema_version(1);
  f.mutable_meta()->set_referral_id("r-000000000000000000000001");
  f.mutable_meta()->set_assignment_id("a-000000000000000000000001-2");
  f.set_from_organisation("leger-des-heils");
  f.set_to_organisation(to);
  v1::AssignmentRequested* p = f.mutable_proposed();
  p->set_need_code("shelter");
  p->set_need_details("details for shelter");
  p->set_need_index(2);
  p->set_region("groningen-stad");
  p->set_referring_organisation("ggd");
  p->mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"leger-des-heils", "terwille", "gemeente"})
    p->mutable_sharing()->add_organisations(org);
  return f;
}

TEST(RouteForwardTest, OffersANewAssignmentThatPointsBack) {
  absl::StatusOr<std::vector<Output>> events = RouteForward(ExamplePolicy(), Forward("terwille"));
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].topic, "schakel.inbox.terwille");
  EXPECT_EQ((*events)[0].key, "a-000000000000000000000001-2.1");
  v1::InboxEvent offer;
  ASSERT_TRUE(offer.ParseFromString(*(*events)[0].value));
  const v1::AssignmentRequested& offered = offer.requested();
  EXPECT_EQ(offered.organisation(), "terwille");
  EXPECT_EQ(offered.previous_assignment_id(), "a-000000000000000000000001-2");
  EXPECT_EQ(offered.meta().assignment_id(), "a-000000000000000000000001-2.1");
  EXPECT_EQ(offered.need_details(), "details for shelter");
  EXPECT_EQ((*events)[1].topic, "schakel.assignments.status");
}

struct ForwardRefusal {
  std::string name;
  std::string to;
  std::string reason;
};
void PrintTo(const ForwardRefusal& r, std::ostream* os) { *os << r.name; }

class RouteForwardRefusedTest : public ::testing::TestWithParam<ForwardRefusal> {};

TEST_P(RouteForwardRefusedTest, GoesToUnroutableWithTheReason) {
  absl::StatusOr<std::vector<Output>> events =
      RouteForward(ExamplePolicy(), Forward(GetParam().to));
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].topic, "schakel.referrals.unroutable");
  v1::ReferralUnroutable unroutable;
  ASSERT_TRUE(unroutable.ParseFromString(*(*events)[0].value));
  EXPECT_EQ(unroutable.need_code(), "shelter");
  ASSERT_EQ(unroutable.passed_over_size(), 1);
  EXPECT_EQ(unroutable.passed_over(0).reason(), GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(
    All, RouteForwardRefusedTest,
    ::testing::Values(
        ForwardRefusal{"UnknownOrganisation", "cjib",
                       "forward from 'leger-des-heils' refused: is not part of the network"},
        ForwardRefusal{"Itself", "leger-des-heils",
                       "forward from 'leger-des-heils' refused: already had this assignment"},
        ForwardRefusal{"DoesNotServe", "gemeente",
                       "forward from 'leger-des-heils' refused: does not serve need 'shelter'"},
        ForwardRefusal{
            "OutsidePermission", "overweeghuis",
            "forward from 'leger-des-heils' refused: not covered by the client's sharing "
            "permission"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(RouteReferralTest, UnknownSchemaVersionIsRefused) {
  v1::ReferralSubmitted s = Seed();
  s.mutable_meta()->set_schema_version(2);
  EXPECT_EQ(RouteReferral(ExamplePolicy(), s).status().code(), absl::StatusCode::kInvalidArgument);
  s = Seed();
  s.mutable_meta()->clear_referral_id();
  EXPECT_EQ(RouteReferral(ExamplePolicy(), s).status().code(), absl::StatusCode::kInvalidArgument);
}

v1::CancelRequested Cancel(const std::string& organisation) {
  v1::CancelRequested c;
  c.mutable_meta()->set_schema_version(1);
  c.mutable_meta()->set_event_id("e-1");
  c.mutable_meta()->set_referral_id("r-000000000000000000000001");
  c.mutable_meta()->set_assignment_id("a-000000000000000000000001-0");
  c.set_organisation(organisation);
  c.set_referring_organisation("ggd");
  c.set_reason("client moved away");
  return c;
}

TEST(RouteCancelTest, GoesToTheOwnersTopicInAnInboxEvent) {
  const routing::Policy policy = ExamplePolicy();
  absl::StatusOr<std::vector<Output>> events = RouteCancel(policy.network(), Cancel("mjd"));
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].topic, "schakel.inbox.mjd");
  EXPECT_EQ((*events)[0].key, "a-000000000000000000000001-0");
  v1::InboxEvent wrapped;
  ASSERT_TRUE(wrapped.ParseFromString(*(*events)[0].value));
  ASSERT_TRUE(wrapped.has_cancel_requested());
  EXPECT_EQ(wrapped.cancel_requested().SerializeAsString(), Cancel("mjd").SerializeAsString());
}

TEST(RouteCancelTest, UnknownOrganisationOrBadEventIsRefused) {
  const routing::Policy policy = ExamplePolicy();
  EXPECT_EQ(RouteCancel(policy.network(), Cancel("cjib")).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::CancelRequested c = Cancel("mjd");
  c.mutable_meta()->set_schema_version(2);
  EXPECT_EQ(RouteCancel(policy.network(), c).status().code(), absl::StatusCode::kInvalidArgument);
  c = Cancel("mjd");
  c.mutable_meta()->clear_assignment_id();
  EXPECT_EQ(RouteCancel(policy.network(), c).status().code(), absl::StatusCode::kInvalidArgument);
}

// Escalation hands a cancel request, stateless, to RouteCancel; what comes back is published.
TEST(CancelRecordTest, ACancelRequestOnItsTopicGoesToTheOwner) {
  Escalation escalation([] { return std::chrono::system_clock::now(); });
  kafka::Record record;
  record.topic = "schakel.assignments.cancellations";
  record.key = "a-000000000000000000000001-0";
  record.value = Cancel("gemeente").SerializeAsString();
  absl::StatusOr<std::vector<Output>> events = escalation.Handle(ExamplePolicy(), record);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].topic, "schakel.inbox.gemeente");

  record.value = Cancel("cjib").SerializeAsString();
  EXPECT_EQ(escalation.Handle(ExamplePolicy(), record).status().code(),
            absl::StatusCode::kInvalidArgument);
  record.value = "\xff\xff garbage";
  EXPECT_EQ(escalation.Handle(ExamplePolicy(), record).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RouteReferralTest, ALinkedNeedGetsNoSecondAssignment) {
  v1::ReferralSubmitted submitted = Seed();  // debt, income, housing
  v1::LinkedNeed* linked = submitted.add_linked();
  linked->set_need_index(1);
  linked->set_need_code("income");
  linked->set_assignment_id("a-0000000000000000000000bb-0");
  std::vector<v1::AssignmentRequested> offers;
  absl::StatusOr<std::vector<Output>> events = RouteReferral(ExamplePolicy(), submitted, &offers);
  ASSERT_TRUE(events.ok()) << events.status();
  std::vector<std::string> ids;
  for (const v1::AssignmentRequested& offer : offers) ids.push_back(offer.meta().assignment_id());
  EXPECT_THAT(ids, ElementsAre("a-000000000000000000000001-0", "a-000000000000000000000001-2"));
  for (const Output& e : *events) EXPECT_NE(e.topic, "schakel.referrals.unroutable");
  EXPECT_EQ(events->size(), 4u);  // two offers, each with its REQUESTED status
}

// In a large network most organisations share a reason for an unroutable need ("does not serve
// need"): the operators' event names them once with a count, so it stays small.
TEST(RouteReferralTest, AReasonSharedByManyOrganisationsIsGroupedInTheUnroutableEvent) {
  std::string yaml =
      "version: 1\nneeds: [{id: debt}, {id: housing}]\nregions: [{id: stad}, {id: dorp}]\n"
      "languages: [nl]\norganisations:\n"
      "  - {id: only-dorp, needs: [debt], regions: [dorp], languages: [nl]}\n";
  for (int i = 0; i < 29; ++i) {
    yaml += "  - {id: housing-" + std::to_string(i) +
            ", needs: [housing], regions: [stad], languages: [nl]}\n";
  }
  absl::StatusOr<routing::Network> net = routing::ParseNetwork(yaml, "large.yaml");
  ASSERT_TRUE(net.ok()) << net.status();
  v1::ReferralSubmitted s = Seed();
  s.clear_needs();
  s.add_needs()->set_code("debt");
  s.set_region("stad");
  s.clear_languages();
  s.mutable_sharing()->clear_organisations();
  s.mutable_sharing()->add_organisations("only-dorp");
  absl::StatusOr<std::vector<Output>> events = RouteReferral(routing::Policy(*net), s);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  v1::ReferralUnroutable unroutable;
  ASSERT_TRUE(unroutable.ParseFromString(*(*events)[0].value));
  std::vector<std::string> reasons;
  for (const v1::PassedOver& p : unroutable.passed_over()) {
    reasons.push_back(p.organisation() + ": " + p.reason());
  }
  EXPECT_THAT(reasons, ElementsAre("only-dorp: does not cover region 'stad'",
                                   ": does not serve need 'debt' (29 organisations)"));
}

TEST(AddPassedOverTest, TenOrFewerAreNamedOneByOne) {
  std::vector<routing::PassedOver> passed;
  for (int i = 0; i < 10; ++i) passed.push_back({"org-" + std::to_string(i), "at capacity"});
  v1::ReferralUnroutable out;
  AddPassedOver(passed, &out);
  ASSERT_EQ(out.passed_over_size(), 10);
  EXPECT_EQ(out.passed_over(9).organisation(), "org-9");
  passed.push_back({"org-10", "at capacity"});
  out.Clear();
  AddPassedOver(passed, &out);
  ASSERT_EQ(out.passed_over_size(), 1);
  EXPECT_EQ(out.passed_over(0).reason(), "at capacity (11 organisations)");
}

}  // namespace
}  // namespace schakel::router
