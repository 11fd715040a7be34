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
  const std::vector<QueueRow> rows = figures.Rows(Network(), kStart);
  const std::string table = QueueTable(rows);
  EXPECT_NE(table.find("ORGANISATION"), std::string::npos);
  EXPECT_NE(table.find("alpha"), std::string::npos);
  EXPECT_EQ(QueueJson(rows),
            "[\n"
            "  {\n"
            "    \"accepted\": 0,\n"
            "    \"done\": 0,\n"
            "    \"in_progress\": 0,\n"
            "    \"organisation\": \"alpha\",\n"
            "    \"overdue\": 0,\n"
            "    \"waiting\": 0\n"
            "  },\n"
            "  {\n"
            "    \"accepted\": 0,\n"
            "    \"done\": 0,\n"
            "    \"in_progress\": 0,\n"
            "    \"organisation\": \"beta\",\n"
            "    \"overdue\": 0,\n"
            "    \"waiting\": 1\n"
            "  }\n"
            "]\n");
}

}  // namespace
}  // namespace schakel::ops
