// What the router's main needs besides the process shell: `router --check`, its clock (which tests
// move forward), the topics it reads and the check that they are co-partitioned, and its own
// metrics.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "libs/kafka/consumer.h"
#include "libs/metrics/metrics.h"
#include "libs/routing/network.h"
#include "services/router/escalation.h"
#include "services/router/load_view.h"
#include "services/router/network_watch.h"

namespace schakel::router {

// `router --check FILE`: says on stdout whether the network file is valid (0) or on stderr why
// not (2).
int CheckNetworkFile(const std::string& file);

// The router's clock: the system clock, plus (for tests only) a number of seconds read from a file,
// so that a test can move the router's time past a deadline without waiting for it.
Clock MakeClock(const std::string& offset_file);

// What the router consumes: the submitted, cancellations and reassign topics, and every
// organisation's own topic, also of organisations a changed network file adds later: a pattern,
// which the consumer matches again at each metadata refresh.
std::vector<std::string> InputTopics();

// All topics the router reads (those of `network`'s organisations) and its state topic must have
// the same number of partitions: the events of one referral then share a partition number.
// FAILED_PRECONDITION naming the topic that differs.
absl::Status CheckCopartitioned(kafka::Consumer& consumer, const routing::Network& network);

// Before a changed network file takes effect: its topics on `kafka`, so that a new organisation
// has its topic before anything is routed to it.
NetworkWatch::Prepare CreateTopicsOn(const std::string& kafka);

// The ids of the organisations of the watched network, as it is when asked.
LoadView::Organisations OrganisationsOf(const NetworkWatch& watch);

// schakel_router_unauthorised_total: status changes and forward requests refused because their
// sender does not own the assignment (Escalation::unauthorised; each one is in the dead letters);
// schakel_router_forged_load_reports_total: load reports ignored because they claim an
// organisation other than the one whose topic they are on (LoadView::forged).
void AddRouterCounters(metrics::Metrics& metrics, const Escalation& escalation,
                       const LoadView& load_view);

}  // namespace schakel::router
