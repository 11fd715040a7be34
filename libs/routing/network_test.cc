#include "libs/routing/network.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace schakel::routing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

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

TEST(NetworkTest, TheExampleNetworkLoads) {
  absl::StatusOr<Network> net = LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  ASSERT_TRUE(net.ok()) << net.status();
  std::vector<std::string> ids;
  for (const Organisation& org : net->organisations) ids.push_back(org.id);
  EXPECT_THAT(ids,
              ElementsAre("gemeente", "leger-des-heils", "terwille", "overweeghuis", "ggd", "mjd"));
  EXPECT_THAT(AllTopics(*net),
              ElementsAre("schakel.referrals.submitted", "schakel.assignments.status",
                          "schakel.referrals.unroutable", "schakel.inbox.gemeente",
                          "schakel.inbox.leger-des-heils", "schakel.inbox.terwille",
                          "schakel.inbox.overweeghuis", "schakel.inbox.ggd", "schakel.inbox.mjd"));
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

TEST(NetworkTest, MissingFileIsNotFound) {
  absl::StatusOr<Network> net = LoadNetworkFile("/nonexistent/network.yaml");
  EXPECT_EQ(net.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace schakel::routing
