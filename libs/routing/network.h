// The network: which organisations exist, which needs each serves, where, in which languages, how
// many open assignments each can hold, the time to accept per urgency, the network's preferences
// and the organisations' automatic rules. Loaded from the YAML file operators edit
// (deploy/local/network.yaml is the example and documents every key).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace schakel::routing {

struct NeedKind {
  std::string id;
  std::string name;
  // Whether the need is met in direct contact with the client, so that language matters.
  bool contact = true;
};

struct Region {
  std::string id;
  std::string name;
};

// An automatic rule of an organisation: hand every assignment for `need` on to `to`. Parsed and
// checked here (the organisation and the target serve the need, the target is another
// organisation, rules never go round in a circle); applied outside this library, not by Policy.
struct ForwardRule {
  std::string need;
  std::string to;
};

// An automatic rule of an organisation: decline a new assignment while it has more than
// `open_above` open ones, with `reason` (default "at capacity"; the network's own text, so no
// personal data). Applied outside this library, like ForwardRule.
struct DeclineRule {
  int open_above = 0;
  std::string reason;
};

// How many referrals an organisation may submit to intake: a token bucket that holds at most
// `burst` referrals and refills at `per_second` (a fraction is allowed: 0.5 is one every two
// seconds). Beyond it intake answers RESOURCE_EXHAUSTED with when to try again.
struct IntakeLimit {
  double per_second = 0;
  int burst = 0;
};

struct Organisation {
  std::string id;  // also names its Kafka topic: schakel.inbox.<id>
  std::string name;
  std::vector<std::string> needs;
  std::vector<std::string> regions;
  std::vector<std::string> languages;
  // Most open assignments it takes at once; none: unlimited. 0 pauses it.
  std::optional<int> capacity = std::nullopt;
  // Serves clients in any language through an interpreter.
  bool interpreter = false;
  std::vector<ForwardRule> forward_rules = {};  // at most one per need
  std::optional<DeclineRule> decline_rule = std::nullopt;
  // None: intake takes every referral it can from this organisation.
  std::optional<IntakeLimit> intake_limit = std::nullopt;

  bool Serves(std::string_view need) const;
  bool Covers(std::string_view region) const;
  bool Speaks(std::string_view language) const;
};

// The time an organisation has to accept an assignment, per urgency. Durations are whole minutes,
// hours or days ("30m", "4h", "3d": a day is 24 hours), or working days ("3wd": Monday to Friday,
// counted in UTC, the time of day kept; public holidays are not known).
struct Sla {
  std::chrono::seconds urgent = std::chrono::hours(4);
  std::chrono::seconds normal = std::chrono::hours(72);
  bool urgent_in_working_days = false;  // then `urgent` is a whole number of days
  bool normal_in_working_days = false;

  // When an assignment offered at `offered_at` must be accepted by.
  std::chrono::system_clock::time_point Deadline(
      bool urgent, std::chrono::system_clock::time_point offered_at) const;
};

// The network's stated order of organisations for a need, in one region or (region empty) in all.
// A regional preference ranks before the need's general one; organisations in neither come after
// the listed ones.
struct Preference {
  std::string need;
  std::string region;  // empty: every region
  std::vector<std::string> order;
};

// How the topics are created (explicitly; the broker never auto-creates them).
struct TopicSettings {
  int partitions = 3;
  int replication_factor = 1;
};

struct Network {
  std::vector<NeedKind> needs;
  std::vector<Region> regions;
  std::vector<std::string> languages;
  std::vector<Organisation> organisations;  // in file order: this order breaks ties
  TopicSettings topics;
  Sla sla = {};
  std::vector<Preference> preferences = {};  // at most one per need and region

  const Organisation* FindOrganisation(std::string_view id) const;
  const NeedKind* FindNeed(std::string_view id) const;
  bool HasNeed(std::string_view id) const;
  bool HasRegion(std::string_view id) const;
  bool HasLanguage(std::string_view code) const;
};

// Parses and checks a network file. Errors name the source, the place (line:column and the path of
// keys) and what is wrong, e.g. "network.yaml:12:5: organisations[2].needs[0]: unknown need
// 'debts'". Unknown keys are refused too: a misspelt "capacity" would otherwise silently change
// routing.
absl::StatusOr<Network> ParseNetwork(std::string_view yaml_text, std::string_view source_name);
absl::StatusOr<Network> LoadNetworkFile(const std::string& path);

// "30m", "4h", "3d" (a day is 24 hours): a positive whole number and a unit.
absl::StatusOr<std::chrono::seconds> ParseDuration(std::string_view text);

// Topic names, in one place.
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
// Which organisation each assignment was offered to, for the key service (the offer's REQUESTED
// AssignmentStatusChanged, key: referral id). Only the router may write it: a copy of the status
// topic, which inboxes and operators also write, so that nobody else can grant themselves a key.
inline constexpr std::string_view kKeyGrantsTopic = "schakel.keys.grants";
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

}  // namespace schakel::routing
