// The network's topology on the broker: every topic's name, in one place, and who its writer is
// (the comments say why each has the one writer it has). Names only: how a topic is created is in
// topic_specs.h, who may do what on it in kafka_access.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "libs/routing/network.h"

namespace schakel::topology {

using routing::Network;
using routing::Organisation;

inline constexpr std::string_view kSubmittedTopic = "schakel.referrals.submitted";
// The accepted facts about assignments (AssignmentStatusChanged): only the router writes it.
inline constexpr std::string_view kStatusTopic = "schakel.assignments.status";
inline constexpr std::string_view kUnroutableTopic = "schakel.referrals.unroutable";
// Each organisation's own outgoing topic, schakel.from.<org> (v1::OrganisationEvent: its status
// changes and forward requests). Only that organisation writes it: the topic names the author.
inline constexpr std::string_view kFromTopicPrefix = "schakel.from.";
std::string FromTopic(std::string_view organisation_id);
// The organisation whose outgoing topic `topic` is; empty when it is not one.
std::string_view FromTopicOrganisation(std::string_view topic);
inline constexpr std::string_view kCancellationsTopic = "schakel.assignments.cancellations";
// The router's escalation state per referral (compacted: the latest state per key is kept).
inline constexpr std::string_view kRouterStateTopic = "schakel.router.state";
// Records a consumer could not use, with the reason (see v1::DeadLetter): one topic per Kafka
// principal that consumes, schakel.deadletters.<principal>, which only that principal writes. So a
// dead letter's topic proves which consumer set it aside (the broker authenticated the writer), and
// a redrive (through ops) can check that the record it names is an input of that consumer.
inline constexpr std::string_view kDeadLetterTopicPrefix = "schakel.deadletters.";
std::string DeadLetterTopic(std::string_view principal);
// The principals that dead-letter: "router", "intake", "keys", "ops" and "inbox-<org>" per
// organisation.
std::vector<std::string> DeadLetterPrincipals(const Network& network);
// The principal whose dead-letter topic `topic` is; empty when it is none of `network`'s.
std::string DeadLetterPrincipalOf(const Network& network, std::string_view topic);
// Operators' reassignments of unroutable needs (ReassignRequested; the router reads it).
inline constexpr std::string_view kReassignTopic = "schakel.operator.reassignments";
// Clients erased by an operator (ClientErased, key: pseudonym; compacted, so that an inbox started
// long after still learns of every erasure).
inline constexpr std::string_view kErasuresTopic = "schakel.clients.erasures";
// The audit stream: one hash chain per writer (v1::AuditEntry, libs/audit), each in a topic of its
// own, schakel.audit.<writer>, which only that writer may write and read (and operators read, to
// verify): so an inbox cannot learn from another chain whom else a client is served by. One
// partition each, kept for ever, never compacted.
inline constexpr std::string_view kAuditTopicPrefix = "schakel.audit.";
std::string AuditTopic(std::string_view writer);
// The audit chains a network has from the start: "intake", "keys", "ops" and "inbox-<org>" for
// each organisation. (Operators write no chain: what they do goes through ops, whose chain "ops"
// records it with the operator's name.) (More intake instances, "intake-<n>", create their own
// topic when they start.)
std::vector<std::string> AuditWriters(const Network& network);
std::string InboxTopic(std::string_view organisation_id);
// A topic an earlier version used and this one does not (`schakelctl topics retire` deletes it,
// once `drained_by` has read it to the end; nothing needs to be read first when that is empty).
struct RetiredTopic {
  std::string_view name;
  std::string_view drained_by;  // the consumer group that had to read it
  std::string_view instead;     // what took its place, for the operator
};
inline constexpr RetiredTopic kRetiredTopics[] = {
    {"schakel.assignments.forwarding", "schakel.router",
     "forward requests come on each organisation's own schakel.from.<org>"},
    {"schakel.inbox.load", "", "each organisation reports its load on its own schakel.load.<org>"},
    {"schakel.keys.grants", "schakel.keys.grants",
     "the key service reads the offers from schakel.assignments.status, which only the router "
     "writes"},
};
// An organisation's load reports (v1::InboxLoad, key: organisation id; compacted), for capacity:
// schakel.load.<id>, which only that organisation (inbox-<id>) may write. A reader learns whose
// load a report is from the topic, never from the report's own fields (Kafka proves who connected,
// not who wrote a record).
inline constexpr std::string_view kLoadTopicPrefix = "schakel.load.";
std::string LoadTopic(std::string_view organisation_id);
// Every topic the network needs, in a stable order: the shared ones, the inboxes', the
// organisations' own, their load reports', the consumers' dead letters, the audit chains'.
std::vector<std::string> AllTopics(const Network& network);

}  // namespace schakel::topology
