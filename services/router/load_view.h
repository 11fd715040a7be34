// What the router knows of each organisation's load: the latest InboxLoad report of every inbox,
// followed on each organisation's own compacted topic schakel.load.<org> (topology::LoadTopic),
// which only that organisation may write. The policy uses it for capacity ("fewer open assignments
// than its capacity") and to rank equally preferred organisations by load. A report lags its inbox
// by about a second; an organisation that never reported counts as 0 open.
//
// Whose load a report is, the view takes from the topic it came from, never from the report alone:
// Kafka proves who connected, not who wrote a record. A report on one organisation's topic that
// claims another organisation is ignored and counted (forged()), as Terwille writing "MJD has
// 2^30 open" on schakel.load.terwille would otherwise stop every offer to MJD.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/follower.h"
#include "libs/routing/policy.h"
#include "libs/topology/topics.h"

namespace schakel::router {

class LoadView {
 public:
  // The ids of the organisations whose load to follow: the running network's, which may change
  // while the router runs (NetworkWatch). Called from the view's thread.
  using Organisations = std::function<std::vector<std::string>()>;

  LoadView() = default;
  ~LoadView();
  // Follows the load topics of `organisations()` on a thread of its own, and those of
  // organisations that appear later (looked for every `recheck`). A topic that cannot be followed
  // (not made yet, or not readable with this identity: ACLs not applied) is logged and tried again
  // every 30 s; its organisation counts as 0 open meanwhile. An error only when the Kafka client
  // cannot be made.
  absl::Status Start(const std::string& bootstrap_servers, Organisations organisations,
                     std::chrono::milliseconds recheck = std::chrono::seconds(2));
  void Stop();

  // One record of a load topic. OK when taken; INVALID_ARGUMENT when it is not a report;
  // PERMISSION_DENIED when it claims an organisation other than the one whose topic it is on: it
  // is ignored, counted in forged() and logged with the topic and the claimed id only.
  absl::Status Apply(const kafka::Record& record);
  // The open assignments per organisation now, frozen: for one routing decision (or batch).
  routing::OpenAssignments Snapshot() const;

  // Reports ignored because their topic is not the claimed organisation's.
  std::uint64_t forged() const { return forged_.load(); }

 private:
  // Follows the load topics of organisations not followed yet; false (and logged) when one of them
  // could not be followed within `timeout`.
  bool FollowNewOrganisations(std::chrono::milliseconds timeout);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
  std::atomic<std::uint64_t> forged_{0};
  // The view's thread only (after Start):
  Organisations organisations_;
  std::vector<std::string> followed_;  // topics
  std::unique_ptr<kafka::Follower> follower_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace schakel::router
