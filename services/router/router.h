// The router's work, apart from Kafka: RouteReferral turns one ReferralSubmitted into the events to
// publish (pure, unit-tested), and Router runs the consume-route-publish loop around it.
//
// Delivery: exactly once. Each batch's events, the escalation state it changed and the consumed
// positions are committed in one Kafka transaction; readers read committed records only.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/publisher.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/routing/policy.h"
#include "schakel/v1/events.pb.h"
#include "services/router/escalation.h"

namespace schakel::router {

struct OutgoingEvent {
  std::string topic;
  std::string key;
  std::string value;
};

// An assignment offered: the AssignmentRequested on schakel.inbox.<org> (keyed by assignment id)
// and its first status event, REQUESTED, on the status topic (keyed by referral id). `why`, for an
// assignment that continues another, says what became of that one ("not accepted in time").
void AddAssignment(v1::AssignmentRequested* assignment, std::vector<OutgoingEvent>* events,
                   std::string_view why = {});
OutgoingEvent RequestedStatus(const v1::AssignmentRequested& assignment, std::string_view why = {});

// The key service learns whom each assignment was offered to from a topic only the router writes
// (routing::kKeyGrantsTopic): every offer's REQUESTED status goes there too, in the same
// transaction. The copy for `out` when it is such a status event; nullopt for everything else.
std::optional<Output> KeyGrantFor(const Output& out);

// The reasons for an unroutable need, as the operators get them: one entry per organisation, except
// that a reason shared by more than kGroupReasonsAbove organisations (in a large network most "do
// not serve need X") becomes one entry with an empty organisation and the count, e.g. "does not
// serve need 'debt' (4,980 organisations)", so that the event stays small. ExplainRoute still names
// everyone.
inline constexpr std::size_t kGroupReasonsAbove = 10;
void AddPassedOver(const std::vector<routing::PassedOver>& passed, v1::ReferralUnroutable* out);

// The events for one submitted referral: an AssignmentRequested on schakel.inbox.<org> per routable
// need, a ReferralUnroutable on schakel.referrals.unroutable per need nobody can take.
// INVALID_ARGUMENT when the event is not one we can route (unknown schema version, missing ids).
// `offers`, when given, receives each assignment offered (needs without one went to unroutable);
// `open` gives each organisation's open assignments (capacity and load; none when empty).
// `unroutable_needs`, when given, receives each need that went to unroutable as it would be offered
// (organisation empty), so that an operator can reassign it later.
absl::StatusOr<std::vector<OutgoingEvent>> RouteReferral(
    const routing::Policy& policy, const v1::ReferralSubmitted& submitted,
    std::vector<v1::AssignmentRequested>* offers = nullptr,
    const routing::OpenAssignments& open = nullptr,
    std::vector<v1::AssignmentRequested>* unroutable_needs = nullptr);

// The events for an owner's request to hand an assignment to another organisation: the new
// assignment on the target's topic (id NextAssignmentId(forwarded), pointing back to it) with its
// REQUESTED status; or, when the network does not allow the target (it does not serve the need or
// cover the region, or the client's sharing permission does not cover it), a ReferralUnroutable
// with that reason, so nothing is lost. `forward.proposed()` must be the router's own offer of the
// need (Escalation puts it there): its sharing permission is what the target is checked against.
absl::StatusOr<std::vector<OutgoingEvent>> RouteForward(
    const routing::Policy& policy, const v1::ForwardRequested& forward,
    std::vector<v1::AssignmentRequested>* offers = nullptr);

// A referrer's request to cancel an assignment, handed to the owner's inbox: the CancelRequested in
// an InboxEvent on schakel.inbox.<organisation>, keyed by assignment id (the inbox decides).
// INVALID_ARGUMENT for an unknown schema version, missing ids or an organisation outside the
// network.
absl::StatusOr<std::vector<OutgoingEvent>> RouteCancel(const routing::Network& network,
                                                       const v1::CancelRequested& cancel);

// The events for one consumed record, by its topic: a cancel request, or else a submitted
// referral. INVALID_ARGUMENT for a record that is not what its topic carries or that the
// matching Route* function refuses (the loop logs and skips it).
absl::StatusOr<std::vector<OutgoingEvent>> RouteRecord(const routing::Policy& policy,
                                                       const kafka::Record& record);

// The consume-route-publish loop: reads the submitted, cancellations and reassignments topics and
// every organisation's own topic (schakel.from.<org>) in one consumer group (range assignment:
// partition N of every topic to the same member), and publishes what Escalation decides, the
// changed escalation state and the consumed positions in one Kafka transaction per batch. A crash
// at any moment leaves either the whole batch or none of it.
class Router {
 public:
  using PolicySource = std::function<std::shared_ptr<const routing::Policy>()>;

  // `load`, when given, says how many open assignments each organisation has (LoadView::Snapshot).
  using LoadSource = std::function<routing::OpenAssignments()>;

  Router(PolicySource policy, kafka::TransactionalProducer& producer, Escalation& escalation,
         std::string bootstrap_servers, std::chrono::milliseconds tick, LoadSource load = nullptr)
      : policy_(std::move(policy)),
        load_(std::move(load)),
        producer_(producer),
        escalation_(escalation),
        bootstrap_servers_(std::move(bootstrap_servers)),
        tick_(tick) {}

  // Told, after each committed transaction, of every record it made visible (e.g. to count them
  // per topic). Set before Run.
  void OnCommitted(std::function<void(const std::vector<Output>&)> committed) {
    on_committed_ = std::move(committed);
  }

  // For ConsumerOptions::on_rebalance: the loop restores the state of partitions it gets.
  kafka::RebalanceListener Listener();

  // Runs until Stop(). A fenced producer is renewed (see Renew); an error means this instance must
  // not go on (fenced again and again by another instance with the same transactional id, or a
  // fatal Kafka error): restart the process.
  absl::Status Run(kafka::Consumer& consumer);
  void Stop() { stop_.store(true); }

  std::uint64_t routed() const { return routed_.load(); }
  std::uint64_t rejected() const { return rejected_.load(); }

 private:
  // Forgets what was not committed, moves the consumer back to the committed positions and reads
  // the escalation state of the assigned partitions again.
  absl::Status Reset(kafka::Consumer& consumer);
  absl::Status Publish(kafka::Consumer& consumer, const std::vector<Output>& out);
  // After the producer reported itself fenced or stuck (`why`): a new producer, unless this
  // happened more than ten times in five minutes.
  absl::Status Renew(const absl::Status& why);

  PolicySource policy_;
  LoadSource load_;
  kafka::TransactionalProducer& producer_;
  Escalation& escalation_;
  std::string bootstrap_servers_;
  std::chrono::milliseconds tick_;
  std::atomic<bool> stop_{false};
  bool rebalanced_ = true;  // the state must be (re)read before routing; set by the listener
  std::vector<std::int32_t> assigned_;  // partition numbers this member owns
  std::atomic<std::uint64_t> routed_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::vector<std::chrono::steady_clock::time_point> renewals_;
  std::function<void(const std::vector<Output>&)> on_committed_;
};

}  // namespace schakel::router
