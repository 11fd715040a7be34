// The inbox's own figures for Prometheus, read from its database when scraped:
// schakel_inbox_assignments{organisation, need, status}, the number of assignments of each need
// code in each status. Ids and codes only, no personal data.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox {

class AssignmentGauges final : public prometheus::Collectable {
 public:
  AssignmentGauges(std::string organisation, store::InboxStore& store)
      : organisation_(std::move(organisation)), store_(store) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string organisation_;
  store::InboxStore& store_;
};

}  // namespace schakel::inbox
