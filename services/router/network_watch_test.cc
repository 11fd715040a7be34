#include "services/router/network_watch.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

namespace schakel::router {
namespace {

constexpr char kTwoOrganisations[] = R"(version: 1
needs: [{id: housing, name: Housing}]
regions: [{id: stad, name: City}]
languages: [nl]
organisations:
  - {id: alpha, name: Alpha, needs: [housing], regions: [stad], languages: [nl]}
  - {id: beta, name: Beta, needs: [housing], regions: [stad], languages: [nl]}
)";

class NetworkWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "network-watch-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".yaml";
    Write(kTwoOrganisations);
  }
  void Write(const std::string& text) {
    std::ofstream(path_, std::ios::trunc) << text;
    // Modification times can be coarse: make each version's size differ, and wait a little.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  static std::vector<std::string> Organisations(const routing::Policy& policy) {
    std::vector<std::string> ids;
    for (const routing::Organisation& org : policy.network().organisations) ids.push_back(org.id);
    return ids;
  }
  std::string path_;
};

TEST_F(NetworkWatchTest, AValidChangeIsTakenWithoutRestart) {
  absl::StatusOr<std::unique_ptr<NetworkWatch>> watch = NetworkWatch::Load(path_);
  ASSERT_TRUE(watch.ok()) << watch.status();
  const std::shared_ptr<const routing::Policy> before = (*watch)->Current();
  EXPECT_TRUE((*watch)->CheckForChange().ok());  // unchanged
  EXPECT_EQ((*watch)->Current(), before);

  Write(std::string(kTwoOrganisations) +
        "  - {id: gamma, name: Gamma, needs: [housing], regions: [stad], languages: [nl]}\n");
  EXPECT_TRUE((*watch)->CheckForChange().ok());
  EXPECT_EQ(Organisations(*(*watch)->Current()),
            (std::vector<std::string>{"alpha", "beta", "gamma"}));
  EXPECT_EQ((*watch)->reloads(), 1u);
  // A decision that started on the old policy keeps it alive and unchanged.
  EXPECT_EQ(Organisations(*before), (std::vector<std::string>{"alpha", "beta"}));
}

TEST_F(NetworkWatchTest, AnInvalidChangeIsRefusedAndTheRunningPolicyStays) {
  absl::StatusOr<std::unique_ptr<NetworkWatch>> watch = NetworkWatch::Load(path_);
  ASSERT_TRUE(watch.ok()) << watch.status();
  Write(std::string(kTwoOrganisations) +
        "  - {id: gamma, name: Gamma, needs: [debts], regions: [stad], languages: [nl]}\n");
  const absl::Status refused = (*watch)->CheckForChange();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("unknown need 'debts'"), std::string::npos) << refused;
  EXPECT_NE(refused.message().find(path_), std::string::npos) << refused;
  EXPECT_EQ(Organisations(*(*watch)->Current()), (std::vector<std::string>{"alpha", "beta"}));
  EXPECT_EQ((*watch)->reloads(), 0u);
  // The same bad version is not reported again; a fixed one is taken.
  EXPECT_TRUE((*watch)->CheckForChange().ok());
  Write(std::string(kTwoOrganisations) +
        "  - {id: gamma, name: Gamma, needs: [housing], regions: [stad], languages: [nl]}  \n");
  EXPECT_TRUE((*watch)->CheckForChange().ok());
  EXPECT_EQ((*watch)->Current()->network().organisations.size(), 3u);
}

TEST_F(NetworkWatchTest, ChangingTheTopicSettingsIsRefused) {
  absl::StatusOr<std::unique_ptr<NetworkWatch>> watch = NetworkWatch::Load(path_);
  ASSERT_TRUE(watch.ok()) << watch.status();
  Write(std::string(kTwoOrganisations) + "topics: {partitions: 6}\n");
  const absl::Status refused = (*watch)->CheckForChange();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("partitions and replication factor cannot change"),
            std::string::npos)
      << refused;
  EXPECT_EQ((*watch)->Current()->network().topics.partitions, 3);
}

TEST_F(NetworkWatchTest, AChangeThatCannotBePreparedIsRefused) {
  int prepared = 0;
  absl::StatusOr<std::unique_ptr<NetworkWatch>> watch =
      NetworkWatch::Load(path_, [&](const routing::Network& network) {
        ++prepared;
        return network.organisations.size() > 2
                   ? absl::UnavailableError("cannot create topic schakel.inbox.gamma")
                   : absl::OkStatus();
      });
  ASSERT_TRUE(watch.ok()) << watch.status();
  Write(std::string(kTwoOrganisations) +
        "  - {id: gamma, name: Gamma, needs: [housing], regions: [stad], languages: [nl]}\n");
  const absl::Status refused = (*watch)->CheckForChange();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(prepared, 1);
  EXPECT_EQ((*watch)->Current()->network().organisations.size(), 2u);
}

}  // namespace
}  // namespace schakel::router
