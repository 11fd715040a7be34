#include "libs/ops/queues.h"

#include <google/protobuf/util/time_util.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "libs/referral/lifecycle.h"

namespace schakel::ops {
namespace {

std::chrono::system_clock::time_point ToTime(const google::protobuf::Timestamp& t) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(t.seconds()) +
                                               std::chrono::nanoseconds(t.nanos()));
}

}  // namespace

void QueueFigures::AddOffer(const v1::AssignmentRequested& offer) {
  Assignment& a = assignments_[offer.meta().assignment_id()];
  a.organisation = offer.organisation();
  a.urgent = offer.urgency() == v1::URGENCY_URGENT;
  a.offered_at = ToTime(offer.meta().occurred_at());
  a.offered = true;
}

void QueueFigures::AddStatus(const v1::AssignmentStatusChanged& change) {
  Assignment& a = assignments_[change.meta().assignment_id()];
  if (a.version > change.version()) return;  // an older change read after a newer one
  a.version = change.version();
  a.status = change.to_status();
  if (a.organisation.empty()) a.organisation = change.organisation();
}

std::vector<QueueRow> QueueFigures::Rows(const routing::Network& network,
                                         std::chrono::system_clock::time_point now) const {
  std::vector<QueueRow> rows;
  std::map<std::string, std::size_t> index;
  for (const routing::Organisation& org : network.organisations) {
    index[org.id] = rows.size();
    rows.push_back({.organisation = org.id});
  }
  for (const auto& [id, a] : assignments_) {
    const auto it = index.find(a.organisation);
    if (it == index.end()) continue;  // an organisation no longer in the network
    QueueRow& row = rows[it->second];
    switch (a.status) {
      case v1::ASSIGNMENT_STATUS_REQUESTED:
      case v1::ASSIGNMENT_STATUS_RECEIVED:
        ++row.waiting;
        if (a.offered && network.sla.Deadline(a.urgent, a.offered_at) < now) ++row.overdue;
        break;
      case v1::ASSIGNMENT_STATUS_ACCEPTED:
        ++row.accepted;
        break;
      case v1::ASSIGNMENT_STATUS_IN_PROGRESS:
      case v1::ASSIGNMENT_STATUS_ON_HOLD:
        ++row.in_progress;
        break;
      default:
        if (referral::IsFinal(a.status)) ++row.done;
        break;
    }
  }
  return rows;
}

std::string QueueTable(const std::vector<QueueRow>& rows) {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof line, "%-24s %8s %8s %9s %12s %7s\n", "ORGANISATION", "WAITING",
                "OVERDUE", "ACCEPTED", "IN PROGRESS", "DONE");
  out += line;
  for (const QueueRow& r : rows) {
    std::snprintf(line, sizeof line, "%-24s %8d %8d %9d %12d %7d\n", r.organisation.c_str(),
                  r.waiting, r.overdue, r.accepted, r.in_progress, r.done);
    out += line;
  }
  return out;
}

std::string QueueJson(const std::vector<QueueRow>& rows) {
  nlohmann::json all = nlohmann::json::array();
  for (const QueueRow& r : rows) {
    all.push_back({{"organisation", r.organisation},
                   {"waiting", r.waiting},
                   {"overdue", r.overdue},
                   {"accepted", r.accepted},
                   {"in_progress", r.in_progress},
                   {"done", r.done}});
  }
  return all.dump(2) + "\n";
}

}  // namespace schakel::ops
