#include "services/inbox/assignment_gauges.h"

#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"

namespace schakel::inbox {

std::vector<prometheus::MetricFamily> AssignmentGauges::Collect() const {
  prometheus::MetricFamily family;
  family.name = "schakel_inbox_assignments";
  family.help = "Assignments in this inbox, by need code and status";
  family.type = prometheus::MetricType::Gauge;
  absl::StatusOr<std::vector<store::InboxStore::NeedStatusCount>> counts =
      store_.CountByNeedAndStatus();
  if (!counts.ok()) {
    spdlog::warn("metrics: cannot count the assignments: {}",
                 std::string(counts.status().message()));
    return {family};
  }
  for (const store::InboxStore::NeedStatusCount& c : *counts) {
    std::string status = v1::AssignmentStatus_Name(c.status);
    const std::string prefix = "ASSIGNMENT_STATUS_";
    if (status.rfind(prefix, 0) == 0) status = status.substr(prefix.size());
    prometheus::ClientMetric metric;
    // In name order, as the registry's own families print theirs.
    metric.label = {{"need", c.need_code},
                    {"organisation", organisation_},
                    {"status", absl::AsciiStrToLower(status)}};
    metric.gauge.value = static_cast<double>(c.count);
    family.metric.push_back(std::move(metric));
  }
  return {family};
}

}  // namespace schakel::inbox
