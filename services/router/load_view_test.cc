// LoadView::Apply: whose load a report is comes from its topic. Issue 18: Terwille may write its
// own load topic, and nothing stops it from putting a report there that names MJD as full; the
// router must not believe it, or MJD gets no more offers.
#include "services/router/load_view.h"

#include <gtest/gtest.h>

#include "libs/routing/network.h"
#include "libs/routing/policy.h"
#include "schakel/v1/events.pb.h"

namespace schakel::router {
namespace {

kafka::Record Report(const std::string& topic, const std::string& key,
                     const std::string& organisation, std::int64_t open) {
  v1::InboxLoad load;
  load.set_organisation(organisation);
  load.set_open(open);
  kafka::Record record;
  record.topic = topic;
  record.key = key;
  record.value = load.SerializeAsString();
  return record;
}

// Where the example network offers a client's debt need (MJD is the only one that takes debt, with
// capacity 40), given the router's view of the load.
std::string DebtGoesTo(const routing::Policy& policy, const LoadView& view) {
  routing::RouteRequest request;
  request.region = "groningen-stad";
  request.need_codes = {"debt"};
  request.sharing_organisations = {"gemeente", "mjd", "terwille"};
  request.languages = {"nl"};
  request.open_assignments = view.Snapshot();
  return policy.Decide(request).at(0).organisation;
}

TEST(LoadViewTest, AReportOnItsOrganisationsOwnTopicIsTaken) {
  LoadView view;
  ASSERT_TRUE(view.Apply(Report("schakel.load.mjd", "mjd", "mjd", 3)).ok());
  EXPECT_EQ(view.Snapshot()("mjd"), 3);
  EXPECT_EQ(view.Snapshot()("terwille"), 0);  // never reported
  EXPECT_EQ(view.forged(), 0u);
}

TEST(LoadViewTest, AReportOnTerwillesTopicClaimingMjdIsIgnored) {
  absl::StatusOr<routing::Network> network = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
  ASSERT_TRUE(network.ok()) << network.status();
  const routing::Policy policy(*std::move(network));
  LoadView view;
  ASSERT_TRUE(view.Apply(Report("schakel.load.mjd", "mjd", "mjd", 3)).ok());
  ASSERT_TRUE(view.Apply(Report("schakel.load.terwille", "terwille", "terwille", 5)).ok());
  ASSERT_EQ(DebtGoesTo(policy, view), "mjd");

  // Keyed as MJD's own report would be, and keyed as Terwille's: both refused, neither counted as
  // anyone's load.
  const absl::Status forged = view.Apply(Report("schakel.load.terwille", "mjd", "mjd", 1 << 30));
  EXPECT_EQ(forged.code(), absl::StatusCode::kPermissionDenied) << forged;
  EXPECT_EQ(view.Apply(Report("schakel.load.terwille", "terwille", "mjd", 1 << 30)).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(view.forged(), 2u);
  EXPECT_EQ(view.Snapshot()("mjd"), 3);
  EXPECT_EQ(view.Snapshot()("terwille"), 5);
  EXPECT_EQ(DebtGoesTo(policy, view), "mjd");

  // What the forged report would have done, had it been MJD's own: MJD full, debt unroutable.
  ASSERT_TRUE(view.Apply(Report("schakel.load.mjd", "mjd", "mjd", 1 << 30)).ok());
  EXPECT_EQ(DebtGoesTo(policy, view), "");
}

TEST(LoadViewTest, WhatIsNotAReportIsRefused) {
  LoadView view;
  kafka::Record garbage = Report("schakel.load.mjd", "mjd", "mjd", 1);
  garbage.value = "\xff\xff\xff";
  EXPECT_EQ(view.Apply(garbage).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view.Apply(Report("schakel.load.mjd", "mjd", "", 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view.Apply(Report("schakel.load.mjd", "ggd", "mjd", 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view.Apply(Report("schakel.load.mjd", "mjd", "mjd", -1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view.Snapshot()("mjd"), 0);
  EXPECT_EQ(view.forged(), 0u);
}

}  // namespace
}  // namespace schakel::router
