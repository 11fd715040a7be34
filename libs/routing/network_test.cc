#include "libs/routing/network.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace schakel::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kSmall[] = R"(version: 1
needs: [{id: debt}, {id: housing}]
regions: [{id: stad}]
languages: [nl, en]
organisations:
  - id: mjd
    needs: [debt]
    regions: [stad]
    languages: [nl]
)";

TEST(NetworkTest, ParsesASmallNetwork) {
  absl::StatusOr<Network> net = ParseNetwork(kSmall, "small.yaml");
  ASSERT_TRUE(net.ok()) << net.status();
  ASSERT_EQ(net->organisations.size(), 1u);
  EXPECT_EQ(net->organisations[0].id, "mjd");
  EXPECT_EQ(net->organisations[0].name, "mjd");  // name defaults to the id
  EXPECT_TRUE(net->organisations[0].Serves("debt"));
  EXPECT_FALSE(net->organisations[0].Serves("housing"));
  EXPECT_EQ(net->topics.partitions, 3);
  EXPECT_EQ(net->topics.replication_factor, 1);
}

TEST(NetworkTest, AnOrganisationsOwnTopicNamesIt) {
  EXPECT_EQ(FromTopic("mjd"), "schakel.from.mjd");
  EXPECT_EQ(FromTopicOrganisation("schakel.from.mjd"), "mjd");
  EXPECT_EQ(FromTopicOrganisation("schakel.from."), "");
  EXPECT_EQ(FromTopicOrganisation("schakel.inbox.mjd"), "");
  EXPECT_EQ(FromTopicOrganisation("xschakel.from.mjd"), "");
}

TEST(NetworkTest, TheExampleNetworkLoads) {
  absl::StatusOr<Network> net = LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  ASSERT_TRUE(net.ok()) << net.status();
  std::vector<std::string> ids;
  for (const Organisation& org : net->organisations) ids.push_back(org.id);
  EXPECT_THAT(ids,
              ElementsAre("gemeente", "leger-des-heils", "terwille", "overweeghuis", "ggd", "mjd"));
  EXPECT_THAT(
      AllTopics(*net),
      ElementsAre("schakel.referrals.submitted", "schakel.assignments.status",
                  "schakel.referrals.unroutable", "schakel.assignments.cancellations",
                  "schakel.router.state", "schakel.operator.reassignments",
                  "schakel.clients.erasures", "schakel.keys.grants", "schakel.inbox.gemeente",
                  "schakel.inbox.leger-des-heils", "schakel.inbox.terwille",
                  "schakel.inbox.overweeghuis", "schakel.inbox.ggd", "schakel.inbox.mjd",
                  "schakel.from.gemeente", "schakel.from.leger-des-heils", "schakel.from.terwille",
                  "schakel.from.overweeghuis", "schakel.from.ggd", "schakel.from.mjd",
                  "schakel.load.gemeente", "schakel.load.leger-des-heils", "schakel.load.terwille",
                  "schakel.load.overweeghuis", "schakel.load.ggd", "schakel.load.mjd",
                  "schakel.deadletters.router", "schakel.deadletters.intake",
                  "schakel.deadletters.keys", "schakel.deadletters.ops",
                  "schakel.deadletters.inbox-gemeente", "schakel.deadletters.inbox-leger-des-heils",
                  "schakel.deadletters.inbox-terwille", "schakel.deadletters.inbox-overweeghuis",
                  "schakel.deadletters.inbox-ggd", "schakel.deadletters.inbox-mjd",
                  "schakel.audit.intake", "schakel.audit.keys", "schakel.audit.ops",
                  "schakel.audit.inbox-gemeente", "schakel.audit.inbox-leger-des-heils",
                  "schakel.audit.inbox-terwille", "schakel.audit.inbox-overweeghuis",
                  "schakel.audit.inbox-ggd", "schakel.audit.inbox-mjd"));
}

struct BadCase {
  std::string name;
  std::string from;  // a line of kSmall
  std::string to;    // what it becomes
  std::string expected;
};
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class BadNetworkTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadNetworkTest, IsRefusedWithPlaceAndReason) {
  std::string text = kSmall;
  const std::size_t at = text.find(GetParam().from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, GetParam().from.size(), GetParam().to);
  absl::StatusOr<Network> net = ParseNetwork(text, "bad.yaml");
  ASSERT_FALSE(net.ok());
  EXPECT_EQ(net.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(net.status().message()), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    All, BadNetworkTest,
    ::testing::Values(
        BadCase{"UnknownNeed", "needs: [debt]", "needs: [debts]",
                "bad.yaml:7:13: organisations[0].needs[0]: unknown need 'debts'"},
        BadCase{"UnknownRegion", "regions: [stad]\n    lang", "regions: [dorp]\n    lang",
                "organisations[0].regions[0]: unknown region 'dorp'"},
        BadCase{"UnknownLanguage", "languages: [nl]", "languages: [fr]",
                "organisations[0].languages[0]: unknown language 'fr'"},
        BadCase{"BadId", "id: mjd", "id: MJD Groningen", "'MJD Groningen' is not a valid id"},
        BadCase{"DuplicateNeed", "{id: housing}", "{id: debt}", "needs[1]: duplicate id 'debt'"},
        BadCase{"WrongVersion", "version: 1", "version: 2", "bad.yaml:1:10: version: must be 1"},
        BadCase{"NotYaml", "needs: [{id: debt}", "needs: [{id: debt", "bad.yaml:2:"},
        BadCase{"NoOrganisations", "organisations:\n", "organisations: []\nx:\n",
                "organisations: must be a non-empty list"},
        BadCase{"BadLanguageCode", "languages: [nl, en]", "languages: [nl, eng]",
                "languages[1]: 'eng' is not an ISO 639-1 code"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(NetworkTest, AVersionOneFileWithoutTheNewKeysGetsTheDefaults) {
  absl::StatusOr<Network> net = ParseNetwork(kSmall, "small.yaml");
  ASSERT_TRUE(net.ok()) << net.status();
  const Organisation& mjd = net->organisations[0];
  EXPECT_EQ(mjd.capacity, std::nullopt);
  EXPECT_FALSE(mjd.interpreter);
  EXPECT_THAT(mjd.forward_rules, IsEmpty());
  EXPECT_EQ(mjd.decline_rule, std::nullopt);
  EXPECT_TRUE(net->needs[0].contact);
  EXPECT_EQ(net->sla.urgent, std::chrono::hours(4));
  EXPECT_EQ(net->sla.normal, std::chrono::hours(72));
  EXPECT_THAT(net->preferences, IsEmpty());
}

TEST(SlaTest, DeadlinesInHoursDaysAndWorkingDays) {
  using std::chrono::hours;
  using std::chrono::sys_days;
  using namespace std::chrono_literals;
  const std::string yaml = std::string(kSmall) + "sla: {urgent: 4h, normal: 3wd}\n";
  absl::StatusOr<Network> net = ParseNetwork(yaml, "sla.yaml");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_TRUE(net->sla.normal_in_working_days);
  EXPECT_FALSE(net->sla.urgent_in_working_days);
  // Friday 27 November 2026, 10:00 UTC.
  const auto friday = sys_days{2026y / 11 / 27} + hours(10);
  EXPECT_EQ(net->sla.Deadline(/*urgent=*/true, friday), friday + hours(4));
  // Three working days after Friday morning: Wednesday morning (the weekend does not count).
  EXPECT_EQ(net->sla.Deadline(/*urgent=*/false, friday), sys_days{2026y / 12 / 2} + hours(10));
  // Offered on a Saturday: the first working day is Monday.
  const auto saturday = sys_days{2026y / 11 / 28} + hours(15);
  EXPECT_EQ(net->sla.Deadline(false, saturday), sys_days{2026y / 12 / 2} + hours(15));
  // Plain days are 24 hours each, weekends included.
  Sla plain;
  plain.normal = hours(72);
  EXPECT_EQ(plain.Deadline(false, friday), friday + hours(72));
}

// Every new key of the network file, used once.
constexpr char kRich[] = R"(version: 1
sla: {urgent: 2h, normal: 5d}
needs: [{id: debt}, {id: housing, contact: false}, {id: shelter}]
regions: [{id: stad}, {id: dorp}]
languages: [nl, en, pl]
organisations:
  - id: mjd
    needs: [debt, shelter]
    regions: [stad, dorp]
    languages: [nl]
    capacity: 12
    rules:
      - forward: {need: shelter, to: leger}
      - {decline_when_open_above: 10, reason: "full"}
  - id: leger
    needs: [housing, shelter]
    regions: [stad]
    languages: [nl, en]
    interpreter: true
preferences:
  - {need: shelter, order: [leger, mjd]}
  - {need: shelter, region: dorp, order: [mjd]}
)";

TEST(NetworkTest, ParsesCapacityInterpreterContactSlaPreferencesAndRules) {
  absl::StatusOr<Network> net = ParseNetwork(kRich, "rich.yaml");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->sla.urgent, std::chrono::hours(2));
  EXPECT_EQ(net->sla.normal, std::chrono::hours(5 * 24));
  EXPECT_TRUE(net->FindNeed("debt")->contact);
  EXPECT_FALSE(net->FindNeed("housing")->contact);

  const Organisation& mjd = net->organisations[0];
  EXPECT_EQ(mjd.capacity, 12);
  EXPECT_FALSE(mjd.interpreter);
  ASSERT_EQ(mjd.forward_rules.size(), 1u);
  EXPECT_EQ(mjd.forward_rules[0].need, "shelter");
  EXPECT_EQ(mjd.forward_rules[0].to, "leger");
  ASSERT_TRUE(mjd.decline_rule.has_value());
  EXPECT_EQ(mjd.decline_rule->open_above, 10);
  EXPECT_EQ(mjd.decline_rule->reason, "full");

  const Organisation& leger = net->organisations[1];
  EXPECT_EQ(leger.capacity, std::nullopt);
  EXPECT_TRUE(leger.interpreter);
  EXPECT_TRUE(leger.Speaks("en"));
  EXPECT_FALSE(leger.Speaks("pl"));

  ASSERT_EQ(net->preferences.size(), 2u);
  EXPECT_EQ(net->preferences[0].need, "shelter");
  EXPECT_EQ(net->preferences[0].region, "");
  EXPECT_THAT(net->preferences[0].order, ElementsAre("leger", "mjd"));
  EXPECT_EQ(net->preferences[1].region, "dorp");
  EXPECT_THAT(net->preferences[1].order, ElementsAre("mjd"));
}

TEST(NetworkTest, ADeclineRuleWithoutReasonSaysAtCapacity) {
  std::string text = kRich;
  const std::string from = R"(, reason: "full")";
  text.replace(text.find(from), from.size(), "");
  absl::StatusOr<Network> net = ParseNetwork(text, "rich.yaml");
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->organisations[0].decline_rule->reason, "at capacity");
}

TEST(NetworkTest, ParsesAnIntakeLimitPerOrganisation) {
  std::string text = kRich;
  text.replace(text.find("capacity: 12"), 12,
               "capacity: 12\n    intake_limit: {per_second: 20, burst: 40}");
  absl::StatusOr<Network> net = ParseNetwork(text, "rich.yaml");
  ASSERT_TRUE(net.ok()) << net.status();
  ASSERT_TRUE(net->organisations[0].intake_limit.has_value());
  EXPECT_EQ(net->organisations[0].intake_limit->per_second, 20.0);
  EXPECT_EQ(net->organisations[0].intake_limit->burst, 40);
  EXPECT_FALSE(net->organisations[1].intake_limit.has_value());  // not configured: no limit
}

TEST(NetworkTest, AnIntakeLimitWithoutBurstHoldsOneSecondsWorth) {
  for (const auto& [per_second, burst] :
       std::vector<std::pair<std::string, int>>{{"0.5", 1}, {"2.5", 3}, {"20", 20}}) {
    std::string text = kRich;
    text.replace(text.find("capacity: 12"), 12, "intake_limit: {per_second: " + per_second + "}");
    absl::StatusOr<Network> net = ParseNetwork(text, "rich.yaml");
    ASSERT_TRUE(net.ok()) << net.status();
    ASSERT_TRUE(net->organisations[0].intake_limit.has_value());
    EXPECT_EQ(net->organisations[0].intake_limit->burst, burst) << per_second;
  }
}

TEST(NetworkTest, TheExampleNetworkUsesTheNewKeys) {
  absl::StatusOr<Network> net = LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  ASSERT_TRUE(net.ok()) << net.status();
  EXPECT_EQ(net->sla.urgent, std::chrono::hours(4));
  EXPECT_EQ(net->sla.normal, std::chrono::hours(72));
  EXPECT_FALSE(net->FindNeed("registration")->contact);
  EXPECT_TRUE(net->FindOrganisation("gemeente")->interpreter);
  EXPECT_EQ(net->FindOrganisation("terwille")->capacity, 12);
  EXPECT_EQ(net->FindOrganisation("leger-des-heils")->capacity, std::nullopt);
  ASSERT_EQ(net->FindOrganisation("overweeghuis")->forward_rules.size(), 1u);
  EXPECT_EQ(net->FindOrganisation("overweeghuis")->forward_rules[0].to, "leger-des-heils");
  EXPECT_TRUE(net->FindOrganisation("leger-des-heils")->decline_rule.has_value());
  EXPECT_EQ(net->preferences.size(), 2u);
  // The six organisations, ten needs, two regions and ten languages stay as they were.
  EXPECT_EQ(net->organisations.size(), 6u);
  EXPECT_EQ(net->needs.size(), 10u);
  EXPECT_EQ(net->regions.size(), 2u);
  EXPECT_EQ(net->languages.size(), 10u);
}

struct DurationCase {
  std::string text;
  std::optional<std::chrono::seconds> expected;  // none: refused
  std::string name;
};
void PrintTo(const DurationCase& c, std::ostream* os) { *os << "'" << c.text << "'"; }

class DurationTest : public ::testing::TestWithParam<DurationCase> {};

TEST_P(DurationTest, Parses) {
  absl::StatusOr<std::chrono::seconds> duration = ParseDuration(GetParam().text);
  if (GetParam().expected.has_value()) {
    ASSERT_TRUE(duration.ok()) << duration.status();
    EXPECT_EQ(*duration, *GetParam().expected);
  } else {
    ASSERT_FALSE(duration.ok());
    EXPECT_EQ(duration.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(duration.status().message()),
                HasSubstr("'" + GetParam().text + "' is not a duration"));
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, DurationTest,
    ::testing::Values(
        DurationCase{"30m", std::chrono::minutes(30), "Minutes"},
        DurationCase{"4h", std::chrono::hours(4), "Hours"},
        // A day is 24 hours for now (working days come with escalation).
        DurationCase{"3d", std::chrono::hours(72), "DaysOf24Hours"},
        DurationCase{"1000000m", std::chrono::minutes(1000000), "Largest"},
        DurationCase{"", std::nullopt, "Empty"}, DurationCase{"4", std::nullopt, "NoUnit"},
        DurationCase{"h", std::nullopt, "NoNumber"}, DurationCase{"0h", std::nullopt, "Zero"},
        DurationCase{"-1h", std::nullopt, "Negative"}, DurationCase{"4 h", std::nullopt, "Space"},
        DurationCase{"1.5h", std::nullopt, "Fraction"}, DurationCase{"2w", std::nullopt, "Weeks"},
        DurationCase{"4H", std::nullopt, "CapitalUnit"},
        DurationCase{"1000001m", std::nullopt, "TooLarge"}),
    [](const auto& param_info) { return param_info.param.name; });

class BadRichNetworkTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadRichNetworkTest, IsRefusedWithPlaceAndReason) {
  std::string text = kRich;
  const std::size_t at = text.find(GetParam().from);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, GetParam().from.size(), GetParam().to);
  absl::StatusOr<Network> net = ParseNetwork(text, "bad.yaml");
  ASSERT_FALSE(net.ok());
  EXPECT_EQ(net.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(net.status().message()), HasSubstr(GetParam().expected));
}

INSTANTIATE_TEST_SUITE_P(
    All, BadRichNetworkTest,
    ::testing::Values(
        // Unknown keys anywhere.
        BadCase{"UnknownTopLevelKey", "preferences:", "preference:",
                "bad.yaml:20:1: preference: unknown key 'preference' (known here: version, "
                "topics, sla, needs, regions, languages, organisations, preferences)"},
        BadCase{"MisspeltOrganisationKey", "capacity: 12", "capactiy: 12",
                "bad.yaml:11:5: organisations[0].capactiy: unknown key 'capactiy'"},
        BadCase{"UnknownNeedKey", "contact: false", "contacts: false",
                "bad.yaml:3:35: needs[1].contacts: unknown key 'contacts' (known here: id, name, "
                "contact)"},
        // capacity, interpreter, contact.
        BadCase{"NegativeCapacity", "capacity: 12", "capacity: -1",
                "bad.yaml:11:15: organisations[0].capacity: must be a whole number from 0 to "
                "1000000"},
        BadCase{"CapacityNotANumber", "capacity: 12", "capacity: lots",
                "organisations[0].capacity: must be a whole number"},
        BadCase{"InterpreterNotABoolean", "interpreter: true", "interpreter: sometimes",
                "bad.yaml:19:18: organisations[1].interpreter: must be true or false"},
        BadCase{"ContactNotABoolean", "contact: false", "contact: maybe",
                "bad.yaml:3:44: needs[1].contact: must be true or false"},
        // intake_limit.
        BadCase{"NegativeIntakeRate", "capacity: 12", "intake_limit: {per_second: -1, burst: 4}",
                "bad.yaml:11:32: organisations[0].intake_limit.per_second: must be a number of "
                "referrals per second above 0"},
        BadCase{"ZeroIntakeRate", "capacity: 12", "intake_limit: {per_second: 0}",
                "organisations[0].intake_limit.per_second: must be a number of referrals per "
                "second above 0"},
        BadCase{"IntakeRateNotANumber", "capacity: 12", "intake_limit: {per_second: lots}",
                "organisations[0].intake_limit.per_second: must be a number"},
        BadCase{"IntakeBurstBelowOne", "capacity: 12", "intake_limit: {per_second: 5, burst: 0}",
                "bad.yaml:11:42: organisations[0].intake_limit.burst: must be a whole number from "
                "1 to 1000000"},
        BadCase{"NegativeIntakeBurst", "capacity: 12", "intake_limit: {per_second: 5, burst: -3}",
                "organisations[0].intake_limit.burst: must be a whole number from 1 to 1000000"},
        BadCase{"FractionalIntakeBurst", "capacity: 12",
                "intake_limit: {per_second: 5, burst: 1.5}",
                "organisations[0].intake_limit.burst: must be a whole number from 1 to 1000000"},
        BadCase{"IntakeLimitWithoutRate", "capacity: 12", "intake_limit: {burst: 5}",
                "bad.yaml:11:19: organisations[0].intake_limit: missing 'per_second'"},
        BadCase{"IntakeLimitNotAMapping", "capacity: 12", "intake_limit: 20",
                "organisations[0].intake_limit: must be a mapping like {per_second: 20, burst: "
                "40}"},
        BadCase{"UnknownIntakeLimitKey", "capacity: 12",
                "intake_limit: {per_second: 5, per_minute: 100}",
                "organisations[0].intake_limit.per_minute: unknown key 'per_minute' (known here: "
                "per_second, burst)"},
        // sla.
        BadCase{"SlaNotADuration", "urgent: 2h", "urgent: 2 hours",
                "bad.yaml:2:15: sla.urgent: '2 hours' is not a duration"},
        BadCase{"SlaOfZero", "normal: 5d", "normal: 0d", "sla.normal: '0d' is not a duration"},
        BadCase{"UnknownUrgency", "normal: 5d", "later: 5d",
                "bad.yaml:2:19: sla.later: unknown key 'later' (known here: urgent, normal)"},
        BadCase{"SlaNotAMapping", "sla: {urgent: 2h, normal: 5d}", "sla: 4h",
                "bad.yaml:2:6: sla: must be a mapping"},
        // preferences.
        BadCase{"PreferencesNotAList", "preferences:\n", "preferences: x\nx:\n",
                "preferences: must be a list"},
        BadCase{"PreferenceForUnknownNeed", "{need: shelter, order: [leger, mjd]}",
                "{need: shelters, order: [leger, mjd]}",
                "bad.yaml:21:12: preferences[0].need: unknown need 'shelters'"},
        BadCase{"PreferenceWithoutNeed", "{need: shelter, order: [leger, mjd]}",
                "{order: [leger, mjd]}", "bad.yaml:21:5: preferences[0]: missing 'need'"},
        BadCase{"PreferenceForUnknownRegion", "region: dorp", "region: stadt",
                "preferences[1].region: unknown region 'stadt'"},
        BadCase{"PreferenceForUnknownOrganisation", "order: [leger, mjd]", "order: [leger, ggd]",
                "bad.yaml:21:36: preferences[0].order[1]: unknown organisation 'ggd'"},
        BadCase{"PreferredOrganisationDoesNotServeTheNeed", "{need: shelter, order: [leger, mjd]}",
                "{need: debt, order: [leger, mjd]}",
                "preferences[0].order[0]: 'leger' does not serve need 'debt'"},
        BadCase{"PreferredOrganisationDoesNotCoverTheRegion", "region: dorp, order: [mjd]",
                "region: dorp, order: [leger]",
                "preferences[1].order[0]: 'leger' does not cover region 'dorp'"},
        BadCase{"OrganisationListedTwice", "order: [leger, mjd]", "order: [leger, leger]",
                "preferences[0].order[1]: 'leger' is listed twice"},
        BadCase{"SecondPreferenceForTheSameNeedAndRegion", "region: dorp, ", "",
                "bad.yaml:22:5: preferences[1]: a second preference for need 'shelter' in every "
                "region (the first is preferences[0])"},
        BadCase{"PreferenceWithoutOrder", "region: dorp, order: [mjd]}", "region: dorp}",
                "preferences[1]: missing 'order'"},
        BadCase{"PreferenceWithEmptyOrder", "order: [mjd]", "order: []",
                "preferences[1].order: must be a non-empty list"},
        // rules.
        BadCase{"RulesNotAList",
                "rules:\n      - forward: {need: shelter, to: leger}\n      - "
                "{decline_when_open_above: 10, reason: \"full\"}",
                "rules: {}", "bad.yaml:12:12: organisations[0].rules: must be a list"},
        BadCase{"RuleNeitherForwardNorDecline", R"({decline_when_open_above: 10, reason: "full"})",
                R"({reason: "full"})",
                "bad.yaml:14:9: organisations[0].rules[1]: a rule needs forward or "
                "decline_when_open_above"},
        BadCase{"RuleBothForwardAndDecline", R"({decline_when_open_above: 10, reason: "full"})",
                R"({decline_when_open_above: 10, forward: {need: debt, to: leger}})",
                "organisations[0].rules[1]: a rule is either forward or decline_when_open_above, "
                "not both"},
        BadCase{"UnknownRuleKey", "decline_when_open_above: 10", "decline_when_open_over: 10",
                "organisations[0].rules[1].decline_when_open_over: unknown key"},
        BadCase{"ForwardOfUnknownNeed", "forward: {need: shelter, to: leger}",
                "forward: {need: shelters, to: leger}",
                "bad.yaml:13:25: organisations[0].rules[0].forward.need: unknown need 'shelters'"},
        BadCase{"ForwardOfANeedItDoesNotServe", "forward: {need: shelter, to: leger}",
                "forward: {need: housing, to: leger}",
                "organisations[0].rules[0].forward.need: 'mjd' does not serve need 'housing' "
                "itself"},
        BadCase{"ForwardToUnknownOrganisation", "to: leger}", "to: ggd}",
                "bad.yaml:13:38: organisations[0].rules[0].forward.to: unknown organisation "
                "'ggd'"},
        BadCase{"ForwardToItself", "to: leger}", "to: mjd}",
                "organisations[0].rules[0].forward.to: an organisation cannot forward to itself"},
        BadCase{"ForwardToAnOrganisationThatDoesNotServeTheNeed",
                "forward: {need: shelter, to: leger}", "forward: {need: debt, to: leger}",
                "organisations[0].rules[0].forward.to: 'leger' does not serve need 'debt'"},
        BadCase{"ForwardWithoutTarget", "forward: {need: shelter, to: leger}",
                "forward: {need: shelter}", "organisations[0].rules[0].forward: missing 'to'"},
        BadCase{"SecondForwardForTheSameNeed", "      - {decline_when_open_above",
                "      - forward: {need: shelter, to: leger}\n      - {decline_when_open_above",
                "organisations[0].rules[1].forward: a second forward rule for need 'shelter'"},
        BadCase{"ForwardRulesInACircle", "interpreter: true",
                "interpreter: true\n    rules: [{forward: {need: shelter, to: mjd}}]",
                "bad.yaml:13:18: organisations[0].rules[0].forward: forward rules for need "
                "'shelter' go round in a circle: mjd -> leger -> mjd"},
        BadCase{"ForwardWithAReason", "- forward: {need: shelter, to: leger}",
                "- {forward: {need: shelter, to: leger}, reason: x}",
                "organisations[0].rules[0].reason: only a decline_when_open_above rule has a "
                "reason"},
        BadCase{"NegativeDeclineThreshold", "decline_when_open_above: 10",
                "decline_when_open_above: -1",
                "bad.yaml:14:35: organisations[0].rules[1].decline_when_open_above: must be a "
                "whole number from 0 to 1000000"},
        BadCase{"EmptyDeclineReason", R"(reason: "full")", R"(reason: "")",
                "organisations[0].rules[1].reason: must not be empty"},
        BadCase{"SecondDeclineRule", "      - {decline_when_open_above",
                "      - {decline_when_open_above: 3}\n      - {decline_when_open_above",
                "organisations[0].rules[2]: a second decline_when_open_above rule"}),
    [](const auto& param_info) { return param_info.param.name; });

TEST(NetworkTest, MissingFileIsNotFound) {
  absl::StatusOr<Network> net = LoadNetworkFile("/nonexistent/network.yaml");
  EXPECT_EQ(net.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace schakel::routing
