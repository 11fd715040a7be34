#include "services/intake/referral_view.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace schakel::intake {
namespace {

using google::protobuf::util::TimeUtil;

constexpr char kReferral[] = "r-000000000000000000000001";

v1::ReferralSubmitted Submitted() {
  v1::ReferralSubmitted s;
  s.mutable_meta()->set_referral_id(kReferral);
  *s.mutable_meta()->mutable_occurred_at() = TimeUtil::SecondsToTimestamp(1000);
  s.set_referring_organisation("terwille");
  for (const char* code : {"debt", "income"}) s.add_needs()->set_code(code);
  return s;
}

v1::AssignmentStatusChanged Status(const std::string& assignment, const std::string& need,
                                   const std::string& org, v1::AssignmentStatus from,
                                   v1::AssignmentStatus to, std::uint64_t version,
                                   std::int64_t at) {
  v1::AssignmentStatusChanged e;
  e.mutable_meta()->set_referral_id(kReferral);
  e.mutable_meta()->set_assignment_id(assignment);
  *e.mutable_meta()->mutable_occurred_at() = TimeUtil::SecondsToTimestamp(at);
  e.set_organisation(org);
  e.set_need_code(need);
  e.set_from_status(from);
  e.set_to_status(to);
  e.set_version(version);
  e.set_by(version == 1 ? "network" : org);
  e.set_referring_organisation("terwille");
  return e;
}

const v1::NeedStatus& Need(const v1::ReferralStatus& r, const std::string& code) {
  for (const v1::NeedStatus& n : r.needs()) {
    if (n.need_code() == code) return n;
  }
  ADD_FAILURE() << "no need " << code;
  return r.needs(0);
}

TEST(ReferralFoldTest, StatusBeforeSubmittedStillEndsInOrder) {
  v1::ReferralStatus r;
  // Different partitions: the inbox's RECEIVED may arrive before the router's REQUESTED and the
  // referral.
  EXPECT_TRUE(ApplyStatus(Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_REQUESTED,
                                 v1::ASSIGNMENT_STATUS_RECEIVED, 2, 1002),
                          &r));
  EXPECT_TRUE(ApplyStatus(Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_UNSPECIFIED,
                                 v1::ASSIGNMENT_STATUS_REQUESTED, 1, 1001),
                          &r));
  EXPECT_TRUE(ApplySubmitted(Submitted(), &r));
  ASSERT_EQ(r.needs_size(), 2);
  EXPECT_EQ(r.needs(0).need_code(), "debt");
  EXPECT_EQ(r.needs(1).need_code(), "income");
  EXPECT_EQ(Need(r, "debt").status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_EQ(Need(r, "debt").organisation(), "mjd");
  ASSERT_EQ(Need(r, "debt").history_size(), 2);
  EXPECT_EQ(Need(r, "debt").history(0).to_status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  EXPECT_EQ(Need(r, "debt").history(1).to_status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_FALSE(r.done());
}

TEST(ReferralFoldTest, RedeliveryChangesNothing) {
  v1::ReferralStatus r;
  ApplySubmitted(Submitted(), &r);
  const auto e = Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_RECEIVED,
                        v1::ASSIGNMENT_STATUS_ACCEPTED, 3, 1003);
  EXPECT_TRUE(ApplyStatus(e, &r));
  EXPECT_FALSE(ApplyStatus(e, &r));
  EXPECT_EQ(Need(r, "debt").history_size(), 1);
}

TEST(ReferralFoldTest, ForwardedNeedFollowsTheNewestAssignmentOfTheChain) {
  v1::ReferralStatus r;
  ApplySubmitted(Submitted(), &r);
  // The new assignment's REQUESTED can arrive before the old one's REJECTED.
  ApplyStatus(Status("a-1-0.1", "debt", "gemeente", v1::ASSIGNMENT_STATUS_UNSPECIFIED,
                     v1::ASSIGNMENT_STATUS_REQUESTED, 1, 1010),
              &r);
  auto rejected = Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_RECEIVED,
                         v1::ASSIGNMENT_STATUS_REJECTED, 3, 1009);
  rejected.set_reason("forwarded to gemeente");
  ApplyStatus(rejected, &r);
  EXPECT_EQ(Need(r, "debt").assignment_id(), "a-1-0.1");
  EXPECT_EQ(Need(r, "debt").organisation(), "gemeente");
  EXPECT_EQ(Need(r, "debt").status(), v1::ASSIGNMENT_STATUS_REQUESTED);
  ASSERT_EQ(Need(r, "debt").history_size(), 2);
  EXPECT_EQ(Need(r, "debt").history(0).reason(), "forwarded to gemeente");
}

TEST(ReferralFoldTest, DoneWhenEveryNeedIsFinalOrUnroutable) {
  v1::ReferralStatus r;
  ApplySubmitted(Submitted(), &r);
  auto completed = Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                          v1::ASSIGNMENT_STATUS_COMPLETED, 5, 1020);
  completed.set_outcome("payment plan agreed");
  ApplyStatus(completed, &r);
  EXPECT_FALSE(r.done());
  v1::ReferralUnroutable unroutable;
  unroutable.mutable_meta()->set_referral_id(kReferral);
  unroutable.mutable_meta()->set_assignment_id("a-1-1");
  unroutable.set_need_code("income");
  unroutable.set_need_index(1);
  EXPECT_TRUE(ApplyUnroutable(unroutable, &r));
  EXPECT_TRUE(Need(r, "income").unroutable());
  EXPECT_EQ(Need(r, "debt").outcome(), "payment plan agreed");
  EXPECT_TRUE(r.done());
}

TEST(ReferralFoldTest, AnUnroutableStepStaysWhenTheDeclineBeforeItArrivesAfterIt) {
  v1::ReferralStatus r;
  ApplySubmitted(Submitted(), &r);
  ApplyStatus(Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_UNSPECIFIED,
                     v1::ASSIGNMENT_STATUS_REQUESTED, 1, 1001),
              &r);
  // The router publishes mjd's decline (status topic) and that nobody else is left (unroutable
  // topic) together; intake reads the unroutable step first.
  v1::ReferralUnroutable unroutable;
  unroutable.mutable_meta()->set_referral_id(kReferral);
  unroutable.mutable_meta()->set_assignment_id("a-1-0.1");
  unroutable.set_need_code("debt");
  EXPECT_TRUE(ApplyUnroutable(unroutable, &r));
  EXPECT_TRUE(ApplyStatus(Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_REQUESTED,
                                 v1::ASSIGNMENT_STATUS_REJECTED, 2, 1002),
                          &r));
  EXPECT_TRUE(Need(r, "debt").unroutable());
  EXPECT_EQ(Need(r, "debt").assignment_id(), "a-1-0.1");
  ASSERT_EQ(Need(r, "debt").history_size(), 2);
  EXPECT_EQ(Need(r, "debt").history(1).to_status(), v1::ASSIGNMENT_STATUS_REJECTED);
  // A newer assignment (an operator's reassignment) makes it routable again.
  EXPECT_TRUE(ApplyStatus(Status("a-1-0.2", "debt", "gemeente", v1::ASSIGNMENT_STATUS_UNSPECIFIED,
                                 v1::ASSIGNMENT_STATUS_REQUESTED, 1, 1003),
                          &r));
  EXPECT_FALSE(Need(r, "debt").unroutable());
  EXPECT_EQ(Need(r, "debt").organisation(), "gemeente");
}

TEST(ReferralViewTest, OnlyTheReferrerSeesItAndItSurvivesARestart) {
  const std::string path = testing::TempDir() + "/referral-view-test.db";
  std::remove(path.c_str());
  {
    auto view = ReferralView::Open(path);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_TRUE(
        (*view)->ApplyRecord("schakel.referrals.submitted", Submitted().SerializeAsString()).ok());
    EXPECT_EQ((*view)->ApplyRecord("schakel.referrals.submitted", "\xff\xff").code(),
              absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((*view)->Get("mjd", kReferral).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((*view)->Get("terwille", "r-unknown").status().code(), absl::StatusCode::kNotFound);
  }
  auto reopened = ReferralView::Open(path);
  ASSERT_TRUE(reopened.ok());
  absl::StatusOr<v1::ReferralStatus> r = (*reopened)->Get("terwille", kReferral);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->needs_size(), 2);
  absl::StatusOr<v1::ListReferralsResponse> list = (*reopened)->List("terwille", 10, "");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->referrals_size(), 1);
  EXPECT_TRUE(list->next_page_token().empty());
  EXPECT_EQ((*reopened)->List("mjd", 10, "")->referrals_size(), 0);
  std::remove(path.c_str());
}

// Attack 1 of issue 18: a status event naming another referrer would have made the referral (with
// every need's organisation, status and history) that organisation's. Only the submission says
// who referred it; a fact that disagrees is refused and changes nothing.
TEST(ReferralViewTest, OnlyTheSubmissionSaysWhoReferredIt) {
  const std::string path = testing::TempDir() + "/referral-view-referrer-test.db";
  std::remove(path.c_str());
  auto view = ReferralView::Open(path);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_TRUE(
      (*view)->ApplyRecord("schakel.referrals.submitted", Submitted().SerializeAsString()).ok());
  const absl::StatusOr<v1::ReferralStatus> before = (*view)->Get("terwille", kReferral);
  ASSERT_TRUE(before.ok()) << before.status();

  v1::AssignmentStatusChanged forged =
      Status("a-1-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_REQUESTED,
             v1::ASSIGNMENT_STATUS_RECEIVED, 2, 1002);
  forged.set_referring_organisation("mjd");
  const absl::Status refused =
      (*view)->ApplyRecord("schakel.assignments.status", forged.SerializeAsString());
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.message(),
            "referring_organisation: not the referral's referrer (schakel.assignments.status)");

  EXPECT_EQ((*view)->Get("mjd", kReferral).status().code(), absl::StatusCode::kNotFound);
  const absl::StatusOr<v1::ReferralStatus> after = (*view)->Get("terwille", kReferral);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->SerializeAsString(), before->SerializeAsString());

  // A fact that arrives before the submission names the referrer for the moment; the submission,
  // when it comes, has the last word.
  v1::AssignmentStatusChanged early =
      Status("a-2-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_UNSPECIFIED,
             v1::ASSIGNMENT_STATUS_REQUESTED, 1, 1001);
  early.mutable_meta()->set_referral_id("r-000000000000000000000002");
  early.set_referring_organisation("ggd");
  ASSERT_TRUE((*view)->ApplyRecord("schakel.assignments.status", early.SerializeAsString()).ok());
  v1::ReferralSubmitted second = Submitted();
  second.mutable_meta()->set_referral_id("r-000000000000000000000002");
  ASSERT_TRUE((*view)->ApplyRecord("schakel.referrals.submitted", second.SerializeAsString()).ok());
  EXPECT_EQ((*view)->Get("ggd", "r-000000000000000000000002").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE((*view)->Get("terwille", "r-000000000000000000000002").ok());
  std::remove(path.c_str());
}

TEST(ReferralViewTest, ABatchIsStoredInOneGoAndEachRecordGetsItsOwnAnswer) {
  const std::string path = testing::TempDir() + "/referral-view-batch-test.db";
  std::remove(path.c_str());
  v1::ReferralSubmitted second = Submitted();
  second.mutable_meta()->set_referral_id("r-000000000000000000000002");
  const std::string topic = "schakel.referrals.submitted";
  const std::string first_value = Submitted().SerializeAsString();
  const std::string garbage = "\xff\xff";
  const std::string second_value = second.SerializeAsString();
  const std::string status_topic = "schakel.assignments.status";
  const std::string offered =
      Status("a-000000000000000000000001-0", "debt", "mjd", v1::ASSIGNMENT_STATUS_UNSPECIFIED,
             v1::ASSIGNMENT_STATUS_REQUESTED, 1, 1001)
          .SerializeAsString();
  {
    auto view = ReferralView::Open(path);
    ASSERT_TRUE(view.ok()) << view.status();
    std::vector<std::string> seen;
    (*view)->Subscribe([&seen](const std::string& org, const v1::ReferralStatus& r) {
      seen.push_back(org + " " + r.referral_id());
    });
    std::vector<absl::Status> results;
    ASSERT_TRUE((*view)
                    ->ApplyRecords({{topic, first_value},
                                    {topic, garbage},
                                    {topic, second_value},
                                    {status_topic, offered}},
                                   &results)
                    .ok());
    ASSERT_EQ(results.size(), 4u);
    EXPECT_TRUE(results[0].ok());
    EXPECT_EQ(results[1].code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(results[2].ok());
    EXPECT_TRUE(results[3].ok());
    // Every change is told, in order, once the batch is stored.
    EXPECT_EQ(seen, (std::vector<std::string>{"terwille " + std::string(kReferral),
                                              "terwille r-000000000000000000000002",
                                              "terwille " + std::string(kReferral)}));
  }
  auto reopened = ReferralView::Open(path);
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->List("terwille", 10, "")->referrals_size(), 2);
  absl::StatusOr<v1::NeedStatus> need =
      (*reopened)->FindAssignment("terwille", "a-000000000000000000000001-0");
  ASSERT_TRUE(need.ok()) << need.status();
  EXPECT_EQ(need->organisation(), "mjd");
  std::remove(path.c_str());
}

v1::ReferralSubmitted SubmittedAt(const std::string& id, const std::string& org,
                                  std::int64_t seconds, const std::string& pseudonym = "") {
  v1::ReferralSubmitted s;
  s.mutable_meta()->set_referral_id(id);
  *s.mutable_meta()->mutable_occurred_at() = TimeUtil::SecondsToTimestamp(seconds);
  s.set_referring_organisation(org);
  s.set_client_pseudonym(pseudonym);
  s.add_needs()->set_code("debt");
  return s;
}

// Pages come newest first from the file (ties by id, so a page never repeats or skips one), and a
// token that is not one of the organisation's referrals is refused.
TEST(ReferralViewTest, PagesAreNewestFirstAndStableWithEqualTimes) {
  const std::string path = testing::TempDir() + "/referral-view-pages.db";
  std::remove(path.c_str());
  auto view = ReferralView::Open(path);
  ASSERT_TRUE(view.ok()) << view.status();
  // Five of terwille's (two submitted in the same second), one of mjd's.
  const std::vector<std::pair<std::string, std::int64_t>> mine = {
      {"r-000000000000000000000011", 100},
      {"r-000000000000000000000012", 300},
      {"r-000000000000000000000013", 200},
      {"r-000000000000000000000014", 300},
      {"r-000000000000000000000015", 50}};
  for (const auto& [id, at] : mine) {
    ASSERT_TRUE((*view)
                    ->ApplyRecord("schakel.referrals.submitted",
                                  SubmittedAt(id, "terwille", at).SerializeAsString())
                    .ok());
  }
  ASSERT_TRUE(
      (*view)
          ->ApplyRecord("schakel.referrals.submitted",
                        SubmittedAt("r-000000000000000000000099", "mjd", 400).SerializeAsString())
          .ok());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<v1::ListReferralsResponse> page = (*view)->List("terwille", 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const v1::ReferralStatus& r : page->referrals()) seen.push_back(r.referral_id());
    token = page->next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen,
            (std::vector<std::string>{"r-000000000000000000000014", "r-000000000000000000000012",
                                      "r-000000000000000000000013", "r-000000000000000000000011",
                                      "r-000000000000000000000015"}));
  EXPECT_EQ((*view)->List("terwille", 2, "r-000000000000000000000099").status().code(),
            absl::StatusCode::kInvalidArgument)
      << "another organisation's referral is no page token";
  EXPECT_EQ((*view)->List("terwille", 2, "r-unknown").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

// A new referral's need is linked to the client's open need of the same kind, found in the file by
// the client's pseudonym, whoever referred the first.
TEST(ReferralViewTest, FindsTheClientsOpenNeedInTheFile) {
  const std::string path = testing::TempDir() + "/referral-view-open.db";
  std::remove(path.c_str());
  auto view = ReferralView::Open(path);
  ASSERT_TRUE(view.ok()) << view.status();
  v1::ReferralSubmitted first = SubmittedAt(kReferral, "terwille", 100, "p-client");
  ASSERT_TRUE((*view)->ApplyRecord("schakel.referrals.submitted", first.SerializeAsString()).ok());
  EXPECT_FALSE((*view)->FindOpen("p-client", "debt").has_value()) << "not offered yet";
  ASSERT_TRUE((*view)
                  ->ApplyRecord("schakel.assignments.status",
                                Status("a-000000000000000000000001-0", "debt", "mjd",
                                       v1::ASSIGNMENT_STATUS_UNSPECIFIED,
                                       v1::ASSIGNMENT_STATUS_REQUESTED, 1, 101)
                                    .SerializeAsString())
                  .ok());
  std::optional<v1::LinkedNeed> open = (*view)->FindOpen("p-client", "debt");
  ASSERT_TRUE(open.has_value());
  EXPECT_EQ(open->assignment_id(), "a-000000000000000000000001-0");
  EXPECT_EQ(open->organisation(), "mjd");
  EXPECT_FALSE((*view)->FindOpen("p-client", "income").has_value());
  EXPECT_FALSE((*view)->FindOpen("p-other", "debt").has_value());
  EXPECT_FALSE((*view)->FindOpen("", "debt").has_value());
  std::remove(path.c_str());
}

// A file written before the view kept each referral's time in a column of its own: the times are
// taken from the stored referrals once, and the order is right.
TEST(ReferralViewTest, AFileFromBeforeTheTimeColumnsIsBroughtUpToDate) {
  const std::string path = testing::TempDir() + "/referral-view-old.db";
  std::remove(path.c_str());
  {
    absl::StatusOr<sqlite::Database> db = sqlite::Database::Open(path, {.require_wal = false});
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(db->Exec("CREATE TABLE referrals (referral_id TEXT PRIMARY KEY NOT NULL,"
                         " referring_organisation TEXT NOT NULL, body BLOB NOT NULL);",
                         "old schema")
                    .ok());
    absl::StatusOr<sqlite::Statement> insert =
        db->Prepare("INSERT INTO referrals VALUES (?, ?, ?)", "old row");
    ASSERT_TRUE(insert.ok());
    for (const auto& [id, at] : std::vector<std::pair<std::string, std::int64_t>>{
             {"r-000000000000000000000021", 200}, {"r-000000000000000000000022", 100}}) {
      v1::ReferralStatus status;
      ASSERT_TRUE(ApplySubmitted(SubmittedAt(id, "terwille", at), &status));
      insert->BindText(1, id).BindText(2, "terwille").BindBlob(3, status.SerializeAsString());
      ASSERT_TRUE(insert->Run().ok());
    }
  }
  auto view = ReferralView::Open(path);
  ASSERT_TRUE(view.ok()) << view.status();
  absl::StatusOr<v1::ListReferralsResponse> list = (*view)->List("terwille", 1, "");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->referrals_size(), 1);
  // The newer by time, not by id (without the times both would be 0, and the larger id first).
  EXPECT_EQ(list->referrals(0).referral_id(), "r-000000000000000000000021");
  EXPECT_EQ(list->next_page_token(), "r-000000000000000000000021");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace schakel::intake
