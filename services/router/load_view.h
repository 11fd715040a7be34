// What the router knows of each organisation's load: the latest InboxLoad report of every inbox,
// followed on the compacted topic schakel.inbox.load. The policy uses it for capacity ("fewer open
// assignments than its capacity") and to rank equally preferred organisations by load. A report
// lags its inbox by about a second; an organisation that never reported counts as 0 open.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/follower.h"
#include "libs/routing/policy.h"

namespace schakel::router {

class LoadView {
 public:
  LoadView() = default;
  ~LoadView();
  // Follows the load topic on a thread of its own.
  absl::Status Start(const std::string& bootstrap_servers);
  void Stop();

  // One report (a record of schakel.inbox.load); INVALID_ARGUMENT when it is not one.
  absl::Status Apply(const kafka::Record& record);
  // The open assignments per organisation now, frozen: for one routing decision (or batch).
  routing::OpenAssignments Snapshot() const;

 private:
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, int> open_;
  std::unique_ptr<kafka::Follower> follower_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace schakel::router
