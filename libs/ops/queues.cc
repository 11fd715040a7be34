#include "libs/ops/queues.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "libs/referral/lifecycle.h"

namespace schakel::ops {
namespace {

std::chrono::system_clock::time_point ToTime(const google::protobuf::Timestamp& t) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(t.seconds()) +
                                               std::chrono::nanoseconds(t.nanos()));
}

// Counts one assignment where it stands (QueueRow and QueueCell have the same counters).
template <typename Counters>
void Tally(v1::AssignmentStatus status, bool overdue, Counters& counters) {
  switch (status) {
    case v1::ASSIGNMENT_STATUS_REQUESTED:
    case v1::ASSIGNMENT_STATUS_RECEIVED:
      ++counters.waiting;
      if (overdue) ++counters.overdue;
      break;
    case v1::ASSIGNMENT_STATUS_ACCEPTED:
      ++counters.accepted;
      break;
    case v1::ASSIGNMENT_STATUS_IN_PROGRESS:
    case v1::ASSIGNMENT_STATUS_ON_HOLD:
      ++counters.in_progress;
      break;
    default:
      if (referral::IsFinal(status)) ++counters.done;
      break;
  }
}

}  // namespace

bool QueueFigures::Overdue(const routing::Network& network, const Assignment& a,
                           std::chrono::system_clock::time_point now) {
  return a.offered && network.sla.Deadline(a.urgent, a.offered_at) < now;
}

void QueueFigures::AddOffer(const v1::AssignmentRequested& offer) {
  Assignment& a = assignments_[offer.meta().assignment_id()];
  a.organisation = offer.organisation();
  a.need = offer.need_code();
  a.urgent = offer.urgency() == v1::URGENCY_URGENT;
  a.offered_at = ToTime(offer.meta().occurred_at());
  a.offered = true;
}

void QueueFigures::AddStatus(const v1::AssignmentStatusChanged& change) {
  Assignment& a = assignments_[change.meta().assignment_id()];
  if (change.to_status() == v1::ASSIGNMENT_STATUS_ACCEPTED &&
      a.accepted_at == std::chrono::system_clock::time_point{}) {
    a.accepted_at = ToTime(change.meta().occurred_at());
  }
  if (a.version > change.version()) return;  // an older change read after a newer one
  a.version = change.version();
  a.status = change.to_status();
  if (a.organisation.empty()) a.organisation = change.organisation();
  if (a.need.empty()) a.need = change.need_code();
}

void TopicLag::Seen(std::int32_t partition, std::int64_t offset) {
  std::vector<std::int64_t>& offsets = offsets_[partition];
  if (offsets.empty() || offsets.back() < offset) {
    offsets.push_back(offset);
  } else if (!std::binary_search(offsets.begin(), offsets.end(), offset)) {
    offsets.insert(std::lower_bound(offsets.begin(), offsets.end(), offset), offset);
  }
}

std::int64_t TopicLag::Behind(const std::map<std::int32_t, std::int64_t>& committed) const {
  std::int64_t behind = 0;
  for (const auto& [partition, offsets] : offsets_) {
    const auto it = committed.find(partition);
    const std::int64_t from = it == committed.end() ? 0 : it->second;
    behind += offsets.end() - std::lower_bound(offsets.begin(), offsets.end(), from);
  }
  return behind;
}

std::vector<QueueRow> QueueFigures::Rows(const routing::Network& network,
                                         std::chrono::system_clock::time_point now,
                                         const std::map<std::string, std::int64_t>& lag) const {
  std::vector<QueueRow> rows;
  std::map<std::string, std::size_t> index;
  for (const routing::Organisation& org : network.organisations) {
    index[org.id] = rows.size();
    QueueRow row{.organisation = org.id};
    if (const auto l = lag.find(org.id); l != lag.end()) row.lag = l->second;
    rows.push_back(row);
  }
  const auto window_start = now - kThroughputWindow;
  const double minutes = std::chrono::duration<double, std::ratio<60>>(kThroughputWindow).count();
  for (const auto& [id, a] : assignments_) {
    const auto it = index.find(a.organisation);
    if (it == index.end()) continue;  // an organisation no longer in the network
    QueueRow& row = rows[it->second];
    if (a.offered && a.offered_at > window_start && a.offered_at <= now) {
      row.offered_per_minute += 1 / minutes;
    }
    if (a.accepted_at > window_start && a.accepted_at <= now)
      row.accepted_per_minute += 1 / minutes;
    Tally(a.status, Overdue(network, a, now), row);
  }
  return rows;
}

std::vector<QueueCell> QueueFigures::Cells(const routing::Network& network,
                                           std::chrono::system_clock::time_point now) const {
  std::map<std::pair<std::string, std::string>, QueueCell> cells;
  for (const auto& [id, a] : assignments_) {
    if (network.FindOrganisation(a.organisation) == nullptr) continue;
    QueueCell& cell = cells[{a.organisation, a.need}];
    cell.organisation = a.organisation;
    cell.need = a.need;
    Tally(a.status, Overdue(network, a, now), cell);
  }
  std::vector<QueueCell> out;
  out.reserve(cells.size());
  for (auto& [key, cell] : cells) out.push_back(std::move(cell));
  return out;
}

std::string QueueTable(const std::vector<QueueRow>& rows) {
  std::string out;
  char line[200];
  std::snprintf(line, sizeof line, "%-24s %8s %8s %9s %12s %7s %6s\n", "ORGANISATION", "WAITING",
                "OVERDUE", "ACCEPTED", "IN PROGRESS", "DONE", "LAG");
  out += line;
  for (const QueueRow& r : rows) {
    const std::string lag = r.lag < 0 ? "?" : std::to_string(r.lag);
    std::snprintf(line, sizeof line, "%-24s %8d %8d %9d %12d %7d %6s\n", r.organisation.c_str(),
                  r.waiting, r.overdue, r.accepted, r.in_progress, r.done, lag.c_str());
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
                   {"done", r.done},
                   {"lag", r.lag},
                   {"offered_per_minute", r.offered_per_minute},
                   {"accepted_per_minute", r.accepted_per_minute}});
  }
  return all.dump(2) + "\n";
}

}  // namespace schakel::ops
