// Escalation: the router's memory of every need still waiting for an organisation to accept it.
//
// Each offer has a deadline (the network's SLA for the referral's urgency). An offer declined, or
// not accepted by its deadline, is withdrawn and offered to the next eligible organisation (never
// one already tried for that need); when nobody is left the need goes to the unroutable queue with
// the whole chain of offers and why each ended. Accepted (or cancelled by the referrer): settled.
// A need in the unroutable queue is remembered (as it would be offered) until an operator
// reassigns it to an organisation (ReassignRequested), which makes it an offer like any other.
//
// The router's only state machine: every offer it made is tracked here through its lifecycle
// (RouterReferralState.assignments, each owner's change checked with referral::CheckStep), and so
// is every need's escalation. Handle takes one consumed record and returns everything it causes;
// the records themselves are built by events.h, and Router (router.h) only publishes them.
//
// Pure apart from the clock (unit tests move time) and its store. The router keeps this state per
// referral on the compacted topic schakel.router.state, written in the same Kafka transaction as
// the events it caused and the consumed offsets; an instance that takes over a partition restores
// the state of its referrals from that topic first. So a deadline fires once, whichever instance
// owns it.
//
// Memory does not grow with the referrals still open: the state lives in a StateStore (a
// temporary SQLite file, state_store.h). Only the referrals a batch touches are in memory, from
// the first Handle or Tick that reads them until TakeStateChanges writes them back; the clock's
// check reads only the referrals whose deadline has passed (at most kMaxDuePerTick a time).
// Should the store fail, failure() says so, and nothing this object returned after it may be
// published: the router stops, and its successor reads the state from the topic again.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/routing/policy.h"
#include "schakel/v1/events.pb.h"
#include "services/router/events.h"
#include "services/router/state_store.h"

namespace schakel::router {

using Clock = std::function<std::chrono::system_clock::time_point()>;

// When an offer made at `offered_at` must be accepted by, under the network's SLA.
std::chrono::system_clock::time_point AcceptBy(const routing::Network& network, v1::Urgency urgency,
                                               std::chrono::system_clock::time_point offered_at);

class Escalation {
 public:
  // Referrals escalated by one Tick at most; the rest at the next.
  static constexpr std::size_t kMaxDuePerTick = 1000;

  // Opens its store (a new temporary file); see failure().
  explicit Escalation(Clock clock);

  // The store's first failure (OK while it works). Once it failed, what this object returns may be
  // wrong: do not publish it.
  const absl::Status& failure() const { return failure_; }

  // Open assignments per organisation for the decisions that follow (capacity and load).
  void SetLoad(routing::OpenAssignments open) { load_ = std::move(open); }

  // Restoring a partition: one record of the state topic (no value: the referral is settled).
  absl::Status Restore(std::int32_t partition, const std::string& referral_id,
                       const std::optional<std::string>& value);
  // This instance gave up `partition`: its referrals are forgotten (the next owner restores them).
  void Forget(std::int32_t partition);
  void ForgetAll();
  // After a restore's last record: makes it durable in the store (failure() otherwise).
  absl::Status Restored();

  // One consumed record of any input topic (submitted, cancellations, reassignments, and each
  // organisation's own schakel.from.<org>): the events to publish. For an organisation's status
  // change, the accepted fact on the status topic first, then what it causes. Errors (nothing
  // changes, and the caller sends the record to the dead letters):
  //  - INVALID_ARGUMENT for a record that is not what its topic carries;
  //  - PERMISSION_DENIED for a status change or forward request of an assignment the router did
  //    not offer to the organisation whose topic it came on, or whose fields name another
  //    organisation than that topic's;
  //  - FAILED_PRECONDITION for a step the lifecycle does not allow from where the assignment is.
  // A change the router took already (version not above the last) is answered with nothing.
  absl::StatusOr<std::vector<Output>> Handle(const routing::Policy& policy,
                                             const kafka::Record& record);
  // Escalates every waiting offer whose deadline has passed.
  std::vector<Output> Tick(const routing::Policy& policy);
  // The state records for the referrals changed since the last call: the state, or a tombstone once
  // every need is settled. They go to the store, and out of memory.
  std::vector<Output> TakeStateChanges();

  // What the router remembers of a referral (nullopt: nothing waits for it).
  std::optional<v1::RouterReferralState> Find(const std::string& referral_id);
  // Offers waiting for acceptance.
  std::size_t waiting();
  // Referrals held in memory now (the rest is in the store).
  std::size_t in_memory() const { return referrals_.size(); }
  std::uint64_t escalated() const { return escalated_; }
  // Status changes and forward requests refused because their sender does not own the assignment
  // (or the record names another organisation); Handle returned PERMISSION_DENIED for each.
  // Safe to read from another thread (the metrics' scrape).
  std::uint64_t unauthorised() const { return unauthorised_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    std::int32_t partition = 0;
    v1::RouterReferralState state;
  };

  // A status change that came on `sender`'s own topic: checked, then the fact and its effects.
  absl::StatusOr<std::vector<Output>> HandleOwnerStatus(const routing::Policy& policy,
                                                        const std::string& sender,
                                                        const v1::AssignmentStatusChanged& status);
  // A forward request that came on `sender`'s own topic: the router's own offer of the need, to
  // the organisation the owner chose (if the network and the client's permission allow it).
  absl::StatusOr<std::vector<Output>> HandleForward(const routing::Policy& policy,
                                                    const std::string& sender,
                                                    const v1::ForwardRequested& forward);
  // What a checked status change does to the escalation of its need.
  std::vector<Output> HandleStatus(const routing::Policy& policy, Entry& entry,
                                   const v1::AssignmentStatusChanged& status);
  // The tracked offer `meta` names, when the router offered it to `sender`; PERMISSION_DENIED
  // (counted) when it did not, or knows no such offer; INVALID_ARGUMENT for a bad meta.
  absl::StatusOr<v1::TrackedAssignment*> OwnedBy(const std::string& sender,
                                                 const v1::EventMeta& meta);
  static v1::TrackedAssignment* FindTracked(Entry& entry, const std::string& assignment_id);
  // Follows a new offer's lifecycle from REQUESTED (version 1).
  static void Track(Entry& entry, const v1::AssignmentRequested& offer);
  static void MarkWithdrawn(Entry& entry, const std::string& assignment_id);
  // An operator's reassignment of an unroutable need: the offer to the organisation, or (outside
  // the client's sharing permission, or not in the network) a ReferralUnroutable saying why not.
  std::vector<Output> HandleReassign(const routing::Policy& policy,
                                     const v1::ReassignRequested& reassign);
  // Remembers `need` in the unroutable queue, as it would be offered, under `unroutable_id`.
  static void KeepUnroutable(v1::RouterNeedState& need, const v1::AssignmentRequested& as_offered,
                             const std::string& unroutable_id);
  // Ends the current offer of `need` (`ended` says how) and offers the need to the next eligible
  // organisation, or sends it to the unroutable queue. `withdraw`: tell the owner's inbox.
  void Escalate(const routing::Policy& policy, Entry& entry, v1::RouterNeedState& need,
                const std::string& ended, bool withdraw, std::vector<Output>* out);
  void Wait(const routing::Network& network, v1::RouterNeedState& need,
            const v1::AssignmentRequested& offer);
  v1::RouterNeedState* FindNeed(Entry& entry, std::uint32_t need_index);
  // The referral's entry, from memory or read from the store (nullptr: none, or the store failed).
  Entry* Lookup(const std::string& referral_id);
  // Writes an entry (its record's value `value`) to the store.
  void Keep(const std::string& referral_id, const Entry& entry, const std::string& value);
  // Remembers the store's first failure.
  void Fail(const absl::Status& status);

  Clock clock_;
  routing::OpenAssignments load_;
  std::unique_ptr<StateStore> store_;
  absl::Status failure_;
  // The referrals read or changed since the last TakeStateChanges; node_hash_map, because Entry
  // references are held while others are read in.
  absl::node_hash_map<std::string, Entry> referrals_;
  absl::flat_hash_set<std::string> dirty_;
  std::uint64_t escalated_ = 0;
  std::atomic<std::uint64_t> unauthorised_{0};
};

}  // namespace schakel::router
