// What the ops service knows: the network's events folded into the operators' figures — queues per
// organisation (libs/ops QueueFigures), how far each inbox is behind its topic, the unroutable
// queue and the dead letters — as the console's JSON and as Prometheus gauges. Thread-safe: the
// follower thread applies records, the lag poller sets committed offsets, HTTP and scrapes read.
//
// No personal data passes through here: offers are read for their ids, need codes, urgency and
// times only, and nothing else is kept.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/consumer.h"
#include "libs/ops/queues.h"
#include "libs/ops/unroutable.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"

namespace schakel::ops {

class OpsView {
 public:
  explicit OpsView(routing::Network network) : network_(std::move(network)) {}

  // The topics the view is folded from.
  std::vector<std::string> Topics() const;

  // One record of any of Topics(). One it cannot read (INVALID_ARGUMENT, counted as unreadable) or
  // does not believe (FAILED_PRECONDITION, counted as forged) changes nothing; the status says why
  // (its follower sets the record aside as a dead letter).
  absl::Status Apply(const kafka::Record& record);

  // Each organisation's inbox consumer group, as its load reports name it.
  std::map<std::string, std::string> ConsumerGroups() const;
  // What the group of `organisation`'s inbox has committed on its topic.
  void SetCommitted(const std::string& organisation,
                    std::map<std::int32_t, std::int64_t> committed);

  // The console's overview (see services/ops/console/app.js for how it is shown).
  nlohmann::json Overview(std::chrono::system_clock::time_point now, bool kafka_reachable,
                          const std::string& bootstrap) const;

  // Checks an operator's reassignment and builds its event (see UnroutableQueue::CheckReassign).
  absl::StatusOr<v1::ReassignRequested> PrepareReassign(const std::string& referral_id,
                                                        std::uint32_t need_index,
                                                        const std::string& organisation,
                                                        const std::string& reason,
                                                        const std::string& by) const;
  // A reassignment Kafka acknowledged: on its way (until the router's answer is read).
  void Reassigned(const v1::ReassignRequested& event);

  // Gauges for Prometheus: schakel_assignments{organisation,need,state} (state: waiting, overdue,
  // accepted, in_progress), schakel_unroutable_needs{need,referring_organisation},
  // schakel_dead_letters{topic,consumer}, schakel_inbox_lag{organisation}.
  std::vector<prometheus::MetricFamily> Families(std::chrono::system_clock::time_point now) const;

  std::uint64_t records() const;
  std::uint64_t unreadable() const;
  // Load reports skipped because they claim an organisation other than their topic's, and offers
  // on an organisation's inbox topic for another organisation.
  std::uint64_t forged() const;

 private:
  std::map<std::string, std::int64_t> LagLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ApplyLocked(const kafka::Record& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const routing::Network network_;
  mutable absl::Mutex mu_;
  QueueFigures queues_ ABSL_GUARDED_BY(mu_);
  UnroutableQueue unroutable_ ABSL_GUARDED_BY(mu_);
  std::vector<DeadLetterRow> dead_letters_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> groups_ ABSL_GUARDED_BY(mu_);      // org → group
  std::map<std::string, TopicLag> topic_records_ ABSL_GUARDED_BY(mu_);  // org → offsets
  // org → committed
  std::map<std::string, std::map<std::int32_t, std::int64_t>> committed_ ABSL_GUARDED_BY(mu_);
  std::uint64_t records_ ABSL_GUARDED_BY(mu_) = 0;
  std::uint64_t unreadable_ ABSL_GUARDED_BY(mu_) = 0;
  std::uint64_t forged_ ABSL_GUARDED_BY(mu_) = 0;
};

// OpsView's gauges for a metrics::Metrics registry.
class OpsGauges final : public prometheus::Collectable {
 public:
  explicit OpsGauges(const OpsView& view) : view_(view) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return view_.Families(std::chrono::system_clock::now());
  }

 private:
  const OpsView& view_;
};

}  // namespace schakel::ops
