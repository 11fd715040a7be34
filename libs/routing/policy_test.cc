#include "libs/routing/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace schakel::routing {

// Readable failures (found by argument-dependent lookup, so not in the anonymous namespace).
void PrintTo(const PassedOver& p, std::ostream* os) {
  *os << "{" << p.organisation << ": " << p.reason << "}";
}

namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;

Network Example() {
  absl::StatusOr<Network> net = LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

const std::vector<std::string> kEveryone = {
    "gemeente", "leger-des-heils", "terwille", "overweeghuis", "ggd", "mjd"};

TEST(PolicyTest, SeedScenarioGoesToTheResponsibleOrganisations) {
  Policy policy(Example());
  std::vector<NeedDecision> d = policy.Decide({.region = "groningen-stad",
                                               .need_codes = {"debt", "income", "housing"},
                                               .sharing_organisations = kEveryone,
                                               .explain = true});
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].organisation, "mjd");
  EXPECT_EQ(d[1].organisation, "gemeente");
  EXPECT_EQ(d[2].organisation, "leger-des-heils");
  // Everyone else is passed over with a reason.
  EXPECT_EQ(d[0].passed_over.size(), 5u);
}

TEST(PolicyTest, NeverRoutesOutsideTheSharingPermission) {
  Policy policy(Example());
  std::vector<NeedDecision> d = policy.Decide(
      {.region = "groningen-stad", .need_codes = {"debt"}, .sharing_organisations = {"gemeente"}});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_FALSE(d[0].routable());
  EXPECT_THAT(d[0].passed_over,
              testing::Contains(AllOf(
                  Field(&PassedOver::organisation, "mjd"),
                  Field(&PassedOver::reason, "not covered by the client's sharing permission"))));
}

TEST(PolicyTest, RegionMustBeCovered) {
  Policy policy(Example());
  // Only the municipality serves income, and only in the city.
  std::vector<NeedDecision> d = policy.Decide({.region = "groningen-ommeland",
                                               .need_codes = {"income"},
                                               .sharing_organisations = kEveryone});
  EXPECT_FALSE(d[0].routable());
  EXPECT_THAT(d[0].passed_over,
              testing::Contains(
                  AllOf(Field(&PassedOver::organisation, "gemeente"),
                        Field(&PassedOver::reason, "does not cover region 'groningen-ommeland'"))));
}

TEST(PolicyTest, TieGoesToTheFirstInTheNetworkFileAndTheOthersAreTold) {
  Policy policy(Example());
  std::vector<NeedDecision> d = policy.Decide({.region = "groningen-stad",
                                               .need_codes = {"exit-programme"},
                                               .sharing_organisations = kEveryone,
                                               .explain = true});
  EXPECT_EQ(d[0].organisation, "terwille");
  EXPECT_THAT(
      d[0].passed_over,
      testing::Contains(AllOf(
          Field(&PassedOver::organisation, "overweeghuis"),
          Field(&PassedOver::reason, "eligible, but 'terwille' comes first in the network"))));
  // Without Terwille in the permission, Het Overweeghuis takes it.
  d = policy.Decide({.region = "groningen-stad",
                     .need_codes = {"exit-programme"},
                     .sharing_organisations = {"overweeghuis"}});
  EXPECT_EQ(d[0].organisation, "overweeghuis");
}

TEST(PolicyTest, NoNeedsNoDecisions) {
  Policy policy(Example());
  EXPECT_THAT(
      policy.Decide({.region = "groningen-stad", .need_codes = {}, .sharing_organisations = {}}),
      IsEmpty());
}

TEST(PolicyTest, EveryOrganisationIsAccountedFor) {
  Policy policy(Example());
  for (const char* need : {"debt", "shelter", "health", "registration"}) {
    std::vector<NeedDecision> d = policy.Decide({.region = "groningen-stad",
                                                 .need_codes = {need},
                                                 .sharing_organisations = kEveryone,
                                                 .explain = true});
    ASSERT_TRUE(d[0].routable()) << need;
    EXPECT_EQ(d[0].passed_over.size() + 1, kEveryone.size()) << need;
  }
}

TEST(PolicyTest, TheExampleNetworksPreferencesAndInterpreters) {
  Policy policy(Example());
  // Shelter: the Salvation Army in the city, Terwille first in the Ommelanden.
  EXPECT_EQ(policy
                .Decide({.region = "groningen-stad",
                         .need_codes = {"shelter"},
                         .sharing_organisations = kEveryone})[0]
                .organisation,
            "leger-des-heils");
  EXPECT_EQ(policy
                .Decide({.region = "groningen-ommeland",
                         .need_codes = {"shelter"},
                         .sharing_organisations = kEveryone})[0]
                .organisation,
            "terwille");
  // A client who speaks Romanian only: the municipality has an interpreter; MJD does not, and
  // nobody else serves debt.
  std::vector<NeedDecision> d = policy.Decide({.region = "groningen-stad",
                                               .need_codes = {"income", "debt"},
                                               .sharing_organisations = kEveryone,
                                               .languages = {"ro"}});
  EXPECT_EQ(d[0].organisation, "gemeente");
  EXPECT_FALSE(d[1].routable());
  EXPECT_THAT(d[1].passed_over,
              testing::Contains(
                  AllOf(Field(&PassedOver::organisation, "mjd"),
                        Field(&PassedOver::reason, "speaks none of the client's languages"))));
}

// A small network that exercises every rule: "papers" needs no contact; alpha has a capacity;
// gamma works with an interpreter; shelter has a preference, and another one in the village.
constexpr char kRules[] = R"(version: 1
needs: [{id: debt}, {id: papers, contact: false}, {id: shelter}]
regions: [{id: stad}, {id: dorp}]
languages: [nl, en, pl, ro]
organisations:
  - {id: alpha, needs: [debt, papers, shelter], regions: [stad], languages: [nl], capacity: 2}
  - {id: beta, needs: [debt, shelter], regions: [stad, dorp], languages: [en]}
  - {id: gamma, needs: [debt, papers], regions: [stad, dorp], languages: [pl], interpreter: true}
  - {id: delta, needs: [shelter], regions: [stad, dorp], languages: [nl, en]}
  - {id: eps, needs: [shelter], regions: [stad, dorp], languages: [nl]}
preferences:
  - {need: shelter, order: [delta, beta]}
  - {need: shelter, region: dorp, order: [eps]}
)";
const std::vector<std::string> kAll = {"alpha", "beta", "gamma", "delta", "eps"};

Network Rules() {
  absl::StatusOr<Network> net = ParseNetwork(kRules, "rules.yaml");
  EXPECT_TRUE(net.ok()) << net.status();
  return *net;
}

OpenAssignments LoadsOf(std::map<std::string, int, std::less<>> loads) {
  return [loads = std::move(loads)](std::string_view org) {
    const auto it = loads.find(org);
    return it == loads.end() ? 0 : it->second;
  };
}

struct RuleCase {
  std::string name;
  std::string need;
  std::string region;
  std::vector<std::string> languages;
  std::vector<std::string> sharing;
  std::vector<std::string> excluded;
  std::map<std::string, int, std::less<>> loads;
  std::string chosen;       // empty: unroutable
  std::string passed_over;  // this organisation ...
  std::string reason;       // ... is passed over for this reason
};
void PrintTo(const RuleCase& c, std::ostream* os) { *os << c.name; }

class RuleTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(RuleTest, ChoosesAndExplains) {
  const RuleCase& c = GetParam();
  Policy policy(Rules());
  std::vector<NeedDecision> d = policy.Decide({.region = c.region,
                                               .need_codes = {c.need},
                                               .sharing_organisations = c.sharing,
                                               .languages = c.languages,
                                               .excluded_organisations = c.excluded,
                                               .open_assignments = LoadsOf(c.loads),
                                               .explain = true});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].need_code, c.need);
  EXPECT_EQ(d[0].organisation, c.chosen);
  EXPECT_EQ(d[0].passed_over.size(), c.chosen.empty() ? kAll.size() : kAll.size() - 1);
  EXPECT_THAT(d[0].passed_over,
              testing::Contains(AllOf(Field(&PassedOver::organisation, c.passed_over),
                                      Field(&PassedOver::reason, c.reason))));
}

INSTANTIATE_TEST_SUITE_P(
    Eligibility, RuleTest,
    ::testing::Values(RuleCase{.name = "ServesTheNeed",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "alpha",
                               .passed_over = "delta",
                               .reason = "does not serve need 'debt'"},
                      RuleCase{.name = "UnknownNeedIsServedByNobody",
                               .need = "astrology",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "",
                               .passed_over = "alpha",
                               .reason = "does not serve need 'astrology'"},
                      RuleCase{.name = "CoversTheRegion",
                               .need = "debt",
                               .region = "dorp",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "does not cover region 'dorp'"},
                      RuleCase{.name = "UnknownRegionIsCoveredByNobody",
                               .need = "debt",
                               .region = "utrecht",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "",
                               .passed_over = "beta",
                               .reason = "does not cover region 'utrecht'"},
                      RuleCase{.name = "SpeaksOneOfTheClientsLanguages",
                               .need = "debt",
                               .region = "stad",
                               .languages = {"ro", "en"},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "speaks none of the client's languages"},
                      RuleCase{.name = "AnInterpreterServesAnyLanguage",
                               .need = "debt",
                               .region = "stad",
                               .languages = {"ro"},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "gamma",
                               .passed_over = "beta",
                               .reason = "speaks none of the client's languages"},
                      RuleCase{.name = "ALanguageTheNetworkDoesNotKnowNeedsAnInterpreter",
                               .need = "debt",
                               .region = "stad",
                               .languages = {"fr"},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "gamma",
                               .passed_over = "alpha",
                               .reason = "speaks none of the client's languages"},
                      RuleCase{.name = "NobodySpeaksItAndNoInterpreterIsUnroutable",
                               .need = "shelter",
                               .region = "stad",
                               .languages = {"ro"},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "",
                               .passed_over = "delta",
                               .reason = "speaks none of the client's languages"},
                      RuleCase{.name = "AClientWithoutLanguagesPassesTheLanguageRule",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "alpha",
                               .passed_over = "beta",
                               .reason = "eligible, but 'alpha' comes first in the network"},
                      RuleCase{.name = "ANeedWithoutContactIgnoresLanguage",
                               .need = "papers",
                               .region = "stad",
                               .languages = {"ro"},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {},
                               .chosen = "alpha",
                               .passed_over = "gamma",
                               .reason = "eligible, but 'alpha' comes first in the network"},
                      RuleCase{.name = "AtCapacity",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {{"alpha", 2}},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "at capacity (2 of 2 open)"},
                      RuleCase{.name = "OverCapacity",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {{"alpha", 5}},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "at capacity (5 of 2 open)"},
                      RuleCase{.name = "BelowCapacity",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {},
                               .loads = {{"alpha", 1}, {"beta", 1}, {"gamma", 1}},
                               .chosen = "alpha",
                               .passed_over = "beta",
                               .reason = "eligible, but 'alpha' comes first in the network"},
                      RuleCase{.name = "WithoutCapacityThereIsNoLimit",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = {"beta"},
                               .excluded = {},
                               .loads = {{"beta", 100000}},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "not covered by the client's sharing permission"},
                      RuleCase{.name = "AlreadyTriedForThisNeed",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {"alpha", "beta"},
                               .loads = {},
                               .chosen = "gamma",
                               .passed_over = "beta",
                               .reason = "already tried for this need"},
                      RuleCase{.name = "EveryoneTriedIsUnroutable",
                               .need = "papers",
                               .region = "stad",
                               .languages = {},
                               .sharing = kAll,
                               .excluded = {"alpha", "gamma"},
                               .loads = {},
                               .chosen = "",
                               .passed_over = "gamma",
                               .reason = "already tried for this need"},
                      RuleCase{.name = "CoveredByTheSharingPermission",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = {"gamma", "beta"},
                               .excluded = {},
                               .loads = {},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "not covered by the client's sharing permission"},
                      RuleCase{.name = "NeverOutsideTheSharingPermission",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = {"delta", "nobody"},
                               .excluded = {},
                               .loads = {},
                               .chosen = "",
                               .passed_over = "gamma",
                               .reason = "not covered by the client's sharing permission"},
                      // An organisation hears the first rule it fails, in the documented order.
                      RuleCase{.name = "LanguageIsReportedBeforeCapacityTriedAndPermission",
                               .need = "debt",
                               .region = "stad",
                               .languages = {"en"},
                               .sharing = {"beta"},
                               .excluded = {"alpha"},
                               .loads = {{"alpha", 2}},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "speaks none of the client's languages"},
                      RuleCase{.name = "CapacityIsReportedBeforeTriedAndPermission",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = {"beta"},
                               .excluded = {"alpha"},
                               .loads = {{"alpha", 2}},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "at capacity (2 of 2 open)"},
                      RuleCase{.name = "TriedIsReportedBeforePermission",
                               .need = "debt",
                               .region = "stad",
                               .languages = {},
                               .sharing = {"beta"},
                               .excluded = {"alpha"},
                               .loads = {},
                               .chosen = "beta",
                               .passed_over = "alpha",
                               .reason = "already tried for this need"}),
    [](const auto& param_info) { return param_info.param.name; });

// Ranking: preference for the region, then for the need, then fewer open assignments, then the
// order of the network file.
INSTANTIATE_TEST_SUITE_P(
    Ranking, RuleTest,
    ::testing::Values(
        RuleCase{.name = "ThePreferenceComesFirst",
                 .need = "shelter",
                 .region = "stad",
                 .languages = {},
                 .sharing = kAll,
                 .excluded = {},
                 .loads = {},
                 .chosen = "delta",
                 .passed_over = "alpha",
                 .reason = "eligible, but the network prefers 'delta' for need 'shelter'"},
        RuleCase{.name = "ThePreferenceBeatsLoad",
                 .need = "shelter",
                 .region = "stad",
                 .languages = {},
                 .sharing = kAll,
                 .excluded = {},
                 .loads = {{"delta", 30}, {"beta", 0}},
                 .chosen = "delta",
                 .passed_over = "beta",
                 .reason = "eligible, but the network prefers 'delta' for need 'shelter'"},
        RuleCase{.name = "TheNextInThePreferenceWhenTheFirstIsNotEligible",
                 .need = "shelter",
                 .region = "stad",
                 .languages = {},
                 .sharing = kAll,
                 .excluded = {"delta"},
                 .loads = {},
                 .chosen = "beta",
                 .passed_over = "alpha",
                 .reason = "eligible, but the network prefers 'beta' for need 'shelter'"},
        RuleCase{.name = "TheRegionsPreferenceBeforeTheNeeds",
                 .need = "shelter",
                 .region = "dorp",
                 .languages = {},
                 .sharing = kAll,
                 .excluded = {},
                 .loads = {},
                 .chosen = "eps",
                 .passed_over = "delta",
                 .reason = "eligible, but the network prefers 'eps' for need 'shelter' in "
                           "region 'dorp'"},
        RuleCase{.name = "TheNeedsPreferenceAfterTheRegions",
                 .need = "shelter",
                 .region = "dorp",
                 .languages = {},
                 .sharing = kAll,
                 .excluded = {"eps"},
                 .loads = {},
                 .chosen = "delta",
                 .passed_over = "beta",
                 .reason = "eligible, but the network prefers 'delta' for need 'shelter'"},
        RuleCase{.name = "UnlistedOrganisationsComeAfterTheListed",
                 .need = "shelter",
                 .region = "stad",
                 .languages = {},
                 .sharing = {"alpha", "beta", "eps"},
                 .excluded = {},
                 .loads = {{"beta", 1}},
                 .chosen = "beta",
                 .passed_over = "eps",
                 .reason = "eligible, but the network prefers 'beta' for need 'shelter'"},
        RuleCase{.name = "ThenFewerOpenAssignments",
                 .need = "shelter",
                 .region = "stad",
                 .languages = {},
                 .sharing = {"alpha", "eps"},
                 .excluded = {},
                 .loads = {{"alpha", 1}},
                 .chosen = "eps",
                 .passed_over = "alpha",
                 .reason = "eligible, but 'eps' has fewer open assignments (0 against 1)"},
        RuleCase{.name = "TheFewestOpenAssignmentsAmongMany",
                 .need = "debt",
                 .region = "stad",
                 .languages = {},
                 .sharing = kAll,
                 .excluded = {},
                 .loads = {{"alpha", 1}, {"beta", 3}, {"gamma", 2}},
                 .chosen = "alpha",
                 .passed_over = "gamma",
                 .reason = "eligible, but 'alpha' has fewer open assignments (1 against 2)"},
        RuleCase{.name = "ThenTheOrderOfTheNetworkFile",
                 .need = "shelter",
                 .region = "stad",
                 .languages = {},
                 .sharing = {"eps", "alpha"},
                 .excluded = {},
                 .loads = {{"alpha", 1}, {"eps", 1}},
                 .chosen = "alpha",
                 .passed_over = "eps",
                 .reason = "eligible, but 'alpha' comes first in the network"},
        RuleCase{.name = "NegativeLoadCountsAsNone",
                 .need = "debt",
                 .region = "stad",
                 .languages = {},
                 .sharing = kAll,
                 .excluded = {},
                 .loads = {{"alpha", 0}, {"beta", -7}},
                 .chosen = "alpha",
                 .passed_over = "beta",
                 .reason = "eligible, but 'alpha' comes first in the network"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(PolicyTest, ExplainOnlyOnRequestButAlwaysForAnUnroutableNeed) {
  Policy policy(Rules());
  RouteRequest request{.region = "stad",
                       .need_codes = {"debt", "shelter"},
                       .sharing_organisations = {"alpha", "beta"},
                       .languages = {"pl"}};
  std::vector<NeedDecision> d = policy.Decide(request);
  ASSERT_EQ(d.size(), 2u);
  // Debt: gamma speaks Polish but is outside the permission; nobody else speaks it.
  EXPECT_FALSE(d[0].routable());
  std::vector<std::string> explained;
  for (const PassedOver& p : d[0].passed_over) explained.push_back(p.organisation);
  EXPECT_THAT(explained, ElementsAre("alpha", "beta", "gamma", "delta", "eps"));  // file order
  EXPECT_FALSE(d[1].routable());

  request.languages = {};
  d = policy.Decide(request);
  EXPECT_EQ(d[0].organisation, "alpha");
  EXPECT_THAT(d[0].passed_over, IsEmpty());  // cheap: routable and not asked to explain
  EXPECT_EQ(d[1].organisation, "beta");
  EXPECT_THAT(d[1].passed_over, IsEmpty());

  request.explain = true;
  d = policy.Decide(request);
  EXPECT_EQ(d[0].organisation, "alpha");
  explained.clear();
  for (const PassedOver& p : d[0].passed_over) explained.push_back(p.organisation);
  EXPECT_THAT(explained, ElementsAre("beta", "gamma", "delta", "eps"));
}

TEST(PolicyTest, AssignmentsOfEarlierNeedsInTheRequestCountAsOpen) {
  Policy policy(Rules());
  // alpha takes two at most; among equals the fewer open assignments win.
  std::vector<NeedDecision> d = policy.Decide(
      {.region = "stad", .need_codes = {"debt", "debt", "debt"}, .sharing_organisations = kAll});
  EXPECT_EQ(d[0].organisation, "alpha");
  EXPECT_EQ(d[1].organisation, "beta");   // alpha has 1 open now, beta 0
  EXPECT_EQ(d[2].organisation, "gamma");  // alpha and beta have 1, gamma 0
  d = policy.Decide({.region = "stad",
                     .need_codes = {"papers", "debt", "papers"},
                     .sharing_organisations = {"alpha"},
                     .explain = true});
  EXPECT_EQ(d[0].organisation, "alpha");
  EXPECT_EQ(d[1].organisation, "alpha");
  EXPECT_FALSE(d[2].routable());
  EXPECT_THAT(d[2].passed_over,
              testing::Contains(AllOf(Field(&PassedOver::organisation, "alpha"),
                                      Field(&PassedOver::reason, "at capacity (2 of 2 open)"))));
}

TEST(PolicyTest, TheSameInputGivesTheSameAnswer) {
  const RouteRequest request{.region = "stad",
                             .need_codes = {"shelter", "debt", "papers", "astrology"},
                             .sharing_organisations = {"eps", "gamma", "alpha", "beta"},
                             .languages = {"nl", "pl"},
                             .excluded_organisations = {"delta"},
                             .open_assignments = LoadsOf({{"alpha", 1}, {"eps", 1}}),
                             .explain = true};
  const std::vector<NeedDecision> first = Policy(Rules()).Decide(request);
  RouteRequest reordered = request;  // the order of the permission and exclusions is no input
  std::reverse(reordered.sharing_organisations.begin(), reordered.sharing_organisations.end());
  for (int i = 0; i < 20; ++i) {
    const std::vector<NeedDecision> again = Policy(Rules()).Decide(i % 2 ? reordered : request);
    ASSERT_EQ(again.size(), first.size());
    for (std::size_t n = 0; n < first.size(); ++n) {
      EXPECT_EQ(again[n].need_code, first[n].need_code);
      EXPECT_EQ(again[n].organisation, first[n].organisation);
      ASSERT_EQ(again[n].passed_over.size(), first[n].passed_over.size());
      for (std::size_t p = 0; p < first[n].passed_over.size(); ++p) {
        EXPECT_EQ(again[n].passed_over[p].organisation, first[n].passed_over[p].organisation);
        EXPECT_EQ(again[n].passed_over[p].reason, first[n].passed_over[p].reason);
      }
    }
  }
  // Shelter: delta was tried, beta speaks neither Dutch nor Polish; of the unlisted alpha and eps
  // (one open each) the first in the file. Then alpha is at capacity for debt and papers.
  EXPECT_EQ(first[0].organisation, "alpha");
  EXPECT_EQ(first[1].organisation, "gamma");
  EXPECT_EQ(first[2].organisation, "gamma");
  EXPECT_FALSE(first[3].routable());
}

TEST(PolicyTest, ADecisionLooksOnlyAtTheCandidatesForTheNeedAndRegion) {
  Policy policy(Rules());
  std::vector<std::string> asked;
  std::vector<NeedDecision> d = policy.Decide({.region = "dorp",
                                               .need_codes = {"debt"},
                                               .sharing_organisations = kAll,
                                               .open_assignments = [&](std::string_view org) {
                                                 asked.emplace_back(org);
                                                 return 0;
                                               }});
  EXPECT_EQ(d[0].organisation, "beta");
  // beta serves debt in the village and has nothing open: nobody else needs to be looked at.
  EXPECT_THAT(asked, ElementsAre("beta"));
}

TEST(PolicyTest, ExcludedOrganisationsGiveTheNextOneForEscalation) {
  Policy policy(Example());
  std::vector<std::string> tried;
  std::vector<std::string> offered;
  for (;;) {
    std::vector<NeedDecision> d = policy.Decide({.region = "groningen-stad",
                                                 .need_codes = {"shelter"},
                                                 .sharing_organisations = kEveryone,
                                                 .excluded_organisations = tried});
    if (!d[0].routable()) {
      EXPECT_THAT(
          d[0].passed_over,
          testing::Contains(AllOf(Field(&PassedOver::organisation, "overweeghuis"),
                                  Field(&PassedOver::reason, "already tried for this need"))));
      break;
    }
    offered.push_back(d[0].organisation);
    tried.push_back(d[0].organisation);
  }
  EXPECT_THAT(offered, ElementsAre("leger-des-heils", "terwille", "overweeghuis"));
}

// The rules of policy.h written as a plain scan of every organisation, to check the index against.
std::vector<NeedDecision> ReferenceDecide(const Network& net, const RouteRequest& request) {
  const auto contains = [](const std::vector<std::string>& list, const std::string& value) {
    return std::find(list.begin(), list.end(), value) != list.end();
  };
  const auto place = [&](const std::string& need, const std::string& region,
                         const std::string& org) {
    for (const Preference& pref : net.preferences) {
      if (pref.need != need || pref.region != region) continue;
      const auto it = std::find(pref.order.begin(), pref.order.end(), org);
      return it == pref.order.end() ? std::ptrdiff_t{1000} : it - pref.order.begin();
    }
    return std::ptrdiff_t{1000};
  };
  std::map<std::string, int> given;
  std::vector<NeedDecision> decisions;
  for (const std::string& need : request.need_codes) {
    const NeedKind* kind = net.FindNeed(need);
    NeedDecision decision{.need_code = need, .organisation = {}, .passed_over = {}};
    std::optional<std::tuple<std::ptrdiff_t, std::ptrdiff_t, int, std::size_t>> best;
    std::vector<PassedOver> all;
    std::map<std::size_t, std::tuple<std::ptrdiff_t, std::ptrdiff_t, int, std::size_t>> keys;
    for (std::size_t i = 0; i < net.organisations.size(); ++i) {
      const Organisation& org = net.organisations[i];
      const int load =
          std::max(0, request.open_assignments ? request.open_assignments(org.id) : 0) +
          given[org.id];
      std::string reason;
      if (kind == nullptr || !org.Serves(need)) {
        reason = "does not serve need '" + need + "'";
      } else if (!net.HasRegion(request.region) || !org.Covers(request.region)) {
        reason = "does not cover region '" + request.region + "'";
      } else if (kind->contact && !request.languages.empty() && !org.interpreter &&
                 std::none_of(request.languages.begin(), request.languages.end(),
                              [&](const std::string& l) { return org.Speaks(l); })) {
        reason = "speaks none of the client's languages";
      } else if (org.capacity.has_value() && load >= *org.capacity) {
        reason = "at capacity (" + std::to_string(load) + " of " + std::to_string(*org.capacity) +
                 " open)";
      } else if (contains(request.excluded_organisations, org.id)) {
        reason = "already tried for this need";
      } else if (!contains(request.sharing_organisations, org.id)) {
        reason = "not covered by the client's sharing permission";
      } else {
        const auto key =
            std::make_tuple(place(need, request.region, org.id), place(need, "", org.id), load, i);
        if (!best.has_value() || key < *best) best = key;
        keys[i] = key;
      }
      all.push_back({org.id, reason});
    }
    if (best.has_value()) {
      decision.organisation = net.organisations[std::get<3>(*best)].id;
      ++given[decision.organisation];
      const auto& [best_regional, best_need_wide, best_load, best_index] = *best;
      for (const auto& [i, key] : keys) {
        const auto& [regional, need_wide, load, index] = key;
        const std::string& winner = decision.organisation;
        if (regional != best_regional || need_wide != best_need_wide) {
          all[i].reason = "eligible, but the network prefers '" + winner + "' for need '" + need +
                          "'" +
                          (regional != best_regional ? " in region '" + request.region + "'" : "");
        } else if (load != best_load) {
          all[i].reason = "eligible, but '" + winner + "' has fewer open assignments (" +
                          std::to_string(best_load) + " against " + std::to_string(load) + ")";
        } else {
          all[i].reason = "eligible, but '" + winner + "' comes first in the network";
        }
      }
    }
    if (!best.has_value() || request.explain) {
      for (PassedOver& p : all) {
        if (p.organisation != decision.organisation) decision.passed_over.push_back(std::move(p));
      }
    }
    decisions.push_back(std::move(decision));
  }
  return decisions;
}

TEST(PolicyTest, AgreesWithAPlainScanOfEveryOrganisation) {
  std::mt19937 random(20240611);
  const auto below = [&](int n) { return static_cast<int>(random() % static_cast<unsigned>(n)); };
  const auto some = [&](const std::vector<std::string>& from, int one_in) {
    std::vector<std::string> out;
    for (const std::string& v : from) {
      if (below(one_in) == 0) out.push_back(v);
    }
    return out;
  };
  const std::vector<std::string> needs = {"n0", "n1", "n2", "n3"};
  const std::vector<std::string> regions = {"r0", "r1", "r2"};
  const std::vector<std::string> languages = {"nl", "en", "pl", "ro"};
  int compared = 0;
  int routed = 0;
  for (int round = 0; round < 300; ++round) {
    Network net;
    for (const std::string& n : needs)
      net.needs.push_back({.id = n, .name = n, .contact = below(4) != 0});
    for (const std::string& r : regions) net.regions.push_back({r, r});
    net.languages = languages;
    std::vector<std::string> ids;
    for (int i = 0, count = 1 + below(12); i < count; ++i) {
      Organisation org;
      org.id = "o" + std::to_string(i);
      org.needs = some(needs, 2);
      org.regions = some(regions, 2);
      org.languages = some(languages, 2);
      if (below(2) == 0) org.capacity = below(4);
      org.interpreter = below(5) == 0;
      ids.push_back(org.id);
      net.organisations.push_back(std::move(org));
    }
    for (const std::string& n : needs) {
      for (const std::string& r : {std::string(), regions[0], regions[1], regions[2]}) {
        if (below(2) != 0) continue;
        Preference pref{.need = n, .region = r, .order = {}};
        for (const Organisation& org : net.organisations) {
          if (org.Serves(n) && (r.empty() || org.Covers(r)) && below(2) == 0) {
            pref.order.push_back(org.id);
          }
        }
        std::shuffle(pref.order.begin(), pref.order.end(), random);
        if (!pref.order.empty()) net.preferences.push_back(std::move(pref));
      }
    }
    const Policy policy(net);
    for (int r = 0; r < 20; ++r) {
      std::map<std::string, int, std::less<>> loads;
      for (const std::string& id : ids) loads[id] = below(5) - 1;
      std::vector<std::string> sharing = some(ids, 2);
      if (below(4) == 0) sharing.push_back("stranger");
      RouteRequest request{.region = below(10) == 0 ? "elsewhere" : regions[below(3)],
                           .need_codes = {},
                           .sharing_organisations = sharing,
                           .languages = some({"nl", "en", "pl", "ro", "fr"}, 3),
                           .excluded_organisations = some(ids, 4),
                           .open_assignments = below(3) == 0 ? nullptr : LoadsOf(loads),
                           .explain = below(2) == 0};
      for (int n = 0, count = 1 + below(4); n < count; ++n) {
        request.need_codes.push_back(below(10) == 0 ? "unknown" : needs[below(4)]);
      }
      const std::vector<NeedDecision> got = policy.Decide(request);
      const std::vector<NeedDecision> want = ReferenceDecide(net, request);
      ASSERT_EQ(got.size(), want.size());
      for (std::size_t n = 0; n < want.size(); ++n) {
        SCOPED_TRACE(testing::Message() << "round " << round << " request " << r << " need " << n);
        ASSERT_EQ(got[n].organisation, want[n].organisation);
        ASSERT_EQ(got[n].passed_over.size(), want[n].passed_over.size());
        for (std::size_t p = 0; p < want[n].passed_over.size(); ++p) {
          EXPECT_EQ(got[n].passed_over[p].organisation, want[n].passed_over[p].organisation);
          EXPECT_EQ(got[n].passed_over[p].reason, want[n].passed_over[p].reason);
        }
        ++compared;
        routed += want[n].routable() ? 1 : 0;
      }
    }
  }
  EXPECT_GT(compared, 10000);
  EXPECT_GT(routed, compared / 10);  // both ways are well covered
  EXPECT_LT(routed, compared * 9 / 10);
}

// The forward-target rule, for an owner's forward and an operator's reassignment of a shelter need
// that leger-des-heils had.
struct HandoverCase {
  std::string name;
  Handover handover;
  Refusal refusal;
  std::string reason;
};
void PrintTo(const HandoverCase& c, std::ostream* os) { *os << c.name; }

Handover Shelter(std::string target, std::string region = "groningen-stad") {
  return {.target = std::move(target),
          .from = "leger-des-heils",
          .need_code = "shelter",
          .region = std::move(region),
          .sharing_organisations = {"leger-des-heils", "terwille", "gemeente"}};
}

Handover Reassign(std::string target) {
  Handover handover = Shelter(std::move(target));
  handover.from.clear();
  handover.by_operator = true;
  return handover;
}

class HandoverTest : public ::testing::TestWithParam<HandoverCase> {};

TEST_P(HandoverTest, AppliesTheFirstRuleTheTargetFails) {
  const HandoverCheck check = CheckHandover(Example(), GetParam().handover);
  EXPECT_EQ(check.refusal, GetParam().refusal);
  EXPECT_EQ(check.reason, GetParam().reason);
  EXPECT_EQ(check.ok(), GetParam().refusal == Refusal::kNone);
}

INSTANTIATE_TEST_SUITE_P(
    All, HandoverTest,
    ::testing::Values(
        HandoverCase{"ForwardAllowed", Shelter("terwille"), Refusal::kNone, ""},
        HandoverCase{"ForwardOutsideTheNetwork", Shelter("cjib"), Refusal::kNotInNetwork,
                     "is not part of the network"},
        HandoverCase{"ForwardToItself", Shelter("leger-des-heils"), Refusal::kSameOrganisation,
                     "already had this assignment"},
        HandoverCase{"ForwardToOneThatDoesNotServeTheNeed", Shelter("gemeente"), Refusal::kNeed,
                     "does not serve need 'shelter'"},
        // Outside the permission too, but the region is the first rule it fails.
        HandoverCase{"ForwardOutsideTheRegion", Shelter("overweeghuis", "groningen-ommeland"),
                     Refusal::kRegion, "does not cover region 'groningen-ommeland'"},
        HandoverCase{"ForwardOutsideThePermission", Shelter("overweeghuis"), Refusal::kSharing,
                     "not covered by the client's sharing permission"},
        // An operator's choice stands over the network's needs and regions, not over the client's
        // permission.
        HandoverCase{"ReassignToOneThatDoesNotServeTheNeed", Reassign("gemeente"), Refusal::kNone,
                     ""},
        HandoverCase{"ReassignOutsideTheNetwork", Reassign("cjib"), Refusal::kNotInNetwork,
                     "is not part of the network"},
        HandoverCase{"ReassignOutsideThePermission", Reassign("overweeghuis"), Refusal::kSharing,
                     "not covered by the client's sharing permission"}),
    [](const auto& param_info) { return param_info.param.name; });

// The rule and Decide speak of the same rules in the same words.
TEST(HandoverRuleTest, SaysWhatDecideSaysForTheSameRule) {
  Policy policy(Example());
  const NeedDecision decision = policy
                                    .Decide({.region = "groningen-ommeland",
                                             .need_codes = {"shelter"},
                                             .sharing_organisations = {"gemeente"},
                                             .explain = true})
                                    .front();
  for (const PassedOver& passed : decision.passed_over) {
    const HandoverCheck check =
        CheckHandover(policy.network(), {.target = passed.organisation,
                                         .from = "nobody",
                                         .need_code = "shelter",
                                         .region = "groningen-ommeland",
                                         .sharing_organisations = {"gemeente"}});
    SCOPED_TRACE(passed.organisation);
    ASSERT_TRUE(check.refusal == Refusal::kNeed || check.refusal == Refusal::kRegion ||
                check.refusal == Refusal::kSharing);
    EXPECT_EQ(check.reason, passed.reason);
  }
  EXPECT_EQ(decision.passed_over.size(), policy.network().organisations.size());
}

}  // namespace
}  // namespace schakel::routing
