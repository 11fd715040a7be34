// The router's work, apart from Kafka: RouteReferral turns one ReferralSubmitted into the events to
// publish (pure, unit-tested), and Router runs the consume-route-publish loop around it.
//
// Delivery: at least once with stable ids. A batch's offsets are marked done only after every event
// it produced was acknowledged; after a crash the batch is routed again to the same assignment ids,
// and the inbox stores an assignment once. (Kafka transactions come with the routing issue.)
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/publisher.h"
#include "libs/routing/policy.h"
#include "schakel/v1/events.pb.h"

namespace schakel::router {

struct OutgoingEvent {
  std::string topic;
  std::string key;
  std::string value;
};

// The events for one submitted referral: an AssignmentRequested on schakel.inbox.<org> per routable
// need, a ReferralUnroutable on schakel.referrals.unroutable per need nobody can take.
// INVALID_ARGUMENT when the event is not one we can route (unknown schema version, missing ids).
absl::StatusOr<std::vector<OutgoingEvent>> RouteReferral(const routing::Policy& policy,
                                                         const v1::ReferralSubmitted& submitted);

// The events for an owner's request to hand an assignment to another organisation: the new
// assignment on the target's topic (id NextAssignmentId(forwarded), pointing back to it) with its
// REQUESTED status; or, when the network does not allow the target (it does not serve the need or
// cover the region, or the client's sharing permission does not cover it), a ReferralUnroutable
// with that reason, so nothing is lost.
absl::StatusOr<std::vector<OutgoingEvent>> RouteForward(const routing::Policy& policy,
                                                        const v1::ForwardRequested& forward);

// A referrer's request to cancel an assignment, handed to the owner's inbox: the CancelRequested in
// an InboxEvent on schakel.inbox.<organisation>, keyed by assignment id (the inbox decides).
// INVALID_ARGUMENT for an unknown schema version, missing ids or an organisation outside the
// network.
absl::StatusOr<std::vector<OutgoingEvent>> RouteCancel(const routing::Network& network,
                                                       const v1::CancelRequested& cancel);

// The events for one consumed record, by its topic: a forward request, a cancel request, or else a
// submitted referral. INVALID_ARGUMENT for a record that is not what its topic carries or that the
// matching Route* function refuses (the loop logs and skips it).
absl::StatusOr<std::vector<OutgoingEvent>> RouteRecord(const routing::Policy& policy,
                                                       const kafka::Record& record);

class Router {
 public:
  Router(const routing::Policy& policy, kafka::Consumer& consumer, kafka::Publisher& publisher)
      : policy_(policy), consumer_(consumer), publisher_(publisher) {}

  // Runs until Stop(); returns an error only when the consumer fails fatally.
  absl::Status Run();
  void Stop() { stop_.store(true); }

  std::uint64_t routed() const { return routed_.load(); }
  std::uint64_t rejected() const { return rejected_.load(); }

 private:
  // Publishes the events and waits for every acknowledgement; retries until they all succeed or
  // Stop().
  bool PublishAll(const std::vector<OutgoingEvent>& events);

  const routing::Policy& policy_;
  kafka::Consumer& consumer_;
  kafka::Publisher& publisher_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> routed_{0};
  std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace schakel::router
