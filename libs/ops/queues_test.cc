#include "libs/ops/queues.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

namespace schakel::ops {
namespace {

using google::protobuf::util::TimeUtil;
using std::chrono::hours;

routing::Network Network() {
  routing::Network network;
  for (const char* id : {"alpha", "beta"}) {
    routing::Organisation org;
    org.id = id;
    network.organisations.push_back(org);
  }
  network.sla.urgent = hours(4);
  network.sla.normal = hours(72);
  return network;
}

const auto kStart = std::chrono::system_clock::from_time_t(1'800'000'000);

v1::AssignmentRequested Offer(const std::string& id, const std::string& org, bool urgent,
                              std::chrono::system_clock::time_point at) {
  v1::AssignmentRequested offer;
  offer.mutable_meta()->set_assignment_id(id);
  *offer.mutable_meta()->mutable_occurred_at() =
      TimeUtil::TimeTToTimestamp(std::chrono::system_clock::to_time_t(at));
  offer.set_organisation(org);
  offer.set_urgency(urgent ? v1::URGENCY_URGENT : v1::URGENCY_NORMAL);
  return offer;
}

v1::AssignmentStatusChanged Change(const std::string& id, const std::string& org,
                                   v1::AssignmentStatus to, std::uint64_t version) {
  v1::AssignmentStatusChanged change;
  change.mutable_meta()->set_assignment_id(id);
  change.set_organisation(org);
  change.set_to_status(to);
  change.set_version(version);
  return change;
}

TEST(QueueFiguresTest, CountsTheNewestStatusOfEachAssignmentPerOrganisation) {
  QueueFigures figures;
  figures.AddOffer(Offer("a-1", "alpha", false, kStart));
  figures.AddOffer(Offer("a-2", "alpha", false, kStart));
  figures.AddOffer(Offer("a-3", "alpha", false, kStart));
  figures.AddOffer(Offer("a-4", "beta", false, kStart));
  figures.AddStatus(Change("a-1", "alpha", v1::ASSIGNMENT_STATUS_RECEIVED, 2));
  figures.AddStatus(Change("a-2", "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED, 3));
  figures.AddStatus(Change("a-3", "alpha", v1::ASSIGNMENT_STATUS_IN_PROGRESS, 4));
  // An older change read after a newer one does not undo it.
  figures.AddStatus(Change("a-3", "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED, 3));
  figures.AddStatus(Change("a-4", "beta", v1::ASSIGNMENT_STATUS_COMPLETED, 6));

  const std::vector<QueueRow> rows = figures.Rows(Network(), kStart + hours(1));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].organisation, "alpha");
  EXPECT_EQ(rows[0].waiting, 1);
  EXPECT_EQ(rows[0].accepted, 1);
  EXPECT_EQ(rows[0].in_progress, 1);
  EXPECT_EQ(rows[0].done, 0);
  EXPECT_EQ(rows[1].organisation, "beta");
  EXPECT_EQ(rows[1].waiting, 0);
  EXPECT_EQ(rows[1].done, 1);
}

TEST(QueueFiguresTest, WaitingPastTheSlaOfItsUrgencyIsOverdue) {
  QueueFigures figures;
  figures.AddOffer(Offer("a-urgent", "alpha", true, kStart));
  figures.AddOffer(Offer("a-normal", "alpha", false, kStart));
  figures.AddOffer(Offer("a-accepted", "alpha", true, kStart));
  figures.AddStatus(Change("a-accepted", "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED, 3));

  EXPECT_EQ(figures.Rows(Network(), kStart + hours(3))[0].overdue, 0);
  EXPECT_EQ(figures.Rows(Network(), kStart + hours(5))[0].overdue, 1);  // urgent: 4 h
  const QueueRow later = figures.Rows(Network(), kStart + hours(73))[0];
  EXPECT_EQ(later.overdue, 2);  // normal: 72 h; the accepted one never
  EXPECT_EQ(later.waiting, 2);
}

TEST(QueueFiguresTest, TableAndJsonShowEveryOrganisation) {
  QueueFigures figures;
  figures.AddOffer(Offer("a-1", "beta", false, kStart));
  const std::vector<QueueRow> rows = figures.Rows(Network(), kStart, {{"beta", 3}});
  const std::string table = QueueTable(rows);
  EXPECT_NE(table.find("ORGANISATION"), std::string::npos);
  EXPECT_NE(table.find("LAG"), std::string::npos);
  // alpha's lag is not known: "?"; beta's is 3.
  EXPECT_NE(table.find(
                "alpha                           0        0         0            0       0      ?"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find(
                "beta                            1        0         0            0       0      3"),
            std::string::npos)
      << table;
  EXPECT_EQ(QueueJson(rows),
            "[\n"
            "  {\n"
            "    \"accepted\": 0,\n"
            "    \"accepted_per_minute\": 0.0,\n"
            "    \"done\": 0,\n"
            "    \"in_progress\": 0,\n"
            "    \"lag\": -1,\n"
            "    \"offered_per_minute\": 0.0,\n"
            "    \"organisation\": \"alpha\",\n"
            "    \"overdue\": 0,\n"
            "    \"waiting\": 0\n"
            "  },\n"
            "  {\n"
            "    \"accepted\": 0,\n"
            "    \"accepted_per_minute\": 0.0,\n"
            "    \"done\": 0,\n"
            "    \"in_progress\": 0,\n"
            "    \"lag\": 3,\n"
            "    \"offered_per_minute\": 0.2,\n"
            "    \"organisation\": \"beta\",\n"
            "    \"overdue\": 0,\n"
            "    \"waiting\": 1\n"
            "  }\n"
            "]\n");
}

TEST(QueueFiguresTest, ThroughputCountsTheLastFiveMinutes) {
  QueueFigures figures;
  figures.AddOffer(Offer("a-1", "alpha", false, kStart - std::chrono::minutes(6)));
  figures.AddOffer(Offer("a-2", "alpha", false, kStart - std::chrono::minutes(4)));
  figures.AddOffer(Offer("a-3", "alpha", false, kStart - std::chrono::minutes(1)));
  v1::AssignmentStatusChanged accepted = Change("a-2", "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED, 3);
  *accepted.mutable_meta()->mutable_occurred_at() = TimeUtil::TimeTToTimestamp(
      std::chrono::system_clock::to_time_t(kStart - std::chrono::minutes(2)));
  figures.AddStatus(accepted);
  // Started after accepting: the acceptance still counts in its minute.
  figures.AddStatus(Change("a-2", "alpha", v1::ASSIGNMENT_STATUS_IN_PROGRESS, 4));
  const QueueRow alpha = figures.Rows(Network(), kStart)[0];
  EXPECT_DOUBLE_EQ(alpha.offered_per_minute, 2.0 / 5);
  EXPECT_DOUBLE_EQ(alpha.accepted_per_minute, 1.0 / 5);
}

TEST(QueueFiguresTest, CellsSplitPerOrganisationAndNeed) {
  QueueFigures figures;
  v1::AssignmentRequested housing = Offer("a-1", "alpha", true, kStart - hours(5));
  housing.set_need_code("housing");
  v1::AssignmentRequested debt = Offer("a-2", "alpha", false, kStart);
  debt.set_need_code("debt");
  v1::AssignmentRequested elsewhere = Offer("a-3", "gone", false, kStart);
  elsewhere.set_need_code("debt");
  for (const auto& offer : {housing, debt, elsewhere}) figures.AddOffer(offer);
  figures.AddStatus(Change("a-2", "alpha", v1::ASSIGNMENT_STATUS_ACCEPTED, 3));
  const std::vector<QueueCell> cells = figures.Cells(Network(), kStart);
  ASSERT_EQ(cells.size(), 2u);  // "gone" is not in the network
  EXPECT_EQ(cells[0].organisation, "alpha");
  EXPECT_EQ(cells[0].need, "debt");
  EXPECT_EQ(cells[0].accepted, 1);
  EXPECT_EQ(cells[0].waiting, 0);
  EXPECT_EQ(cells[1].need, "housing");
  EXPECT_EQ(cells[1].waiting, 1);
  EXPECT_EQ(cells[1].overdue, 1);  // urgent, offered 5 h ago, SLA 4 h
}

TEST(TopicLagTest, CountsTheRecordsAtOrAfterTheCommittedOffset) {
  TopicLag lag;
  // Partition 0: records at 0, 1, 3 (2 is a transaction marker, never read); partition 1: 0, 1.
  for (std::int64_t offset : {0, 1, 3}) lag.Seen(0, offset);
  lag.Seen(1, 1);
  lag.Seen(1, 0);                              // out of order
  lag.Seen(1, 1);                              // twice
  EXPECT_EQ(lag.Behind({}), 5);                // nothing committed: everything
  EXPECT_EQ(lag.Behind({{0, 2}, {1, 2}}), 1);  // offset 3 of partition 0
  EXPECT_EQ(lag.Behind({{0, 4}, {1, 2}}), 0);  // committed past the last record (and its marker)
  EXPECT_EQ(lag.Behind({{0, 0}}), 5);
}

}  // namespace
}  // namespace schakel::ops
