// Audit entries and their hash chain, without I/O. An entry says who (the authenticated caller, or
// the network's own rules) did what (an action name) to which ids, when and why. A writer links its
// entries into one chain: sequence numbers from 0 without gaps, each entry naming the hash of the
// one before it, and its own hash over all of that. The hash is SHA-256 over a canonical encoding
// (not the protobuf bytes, which protobuf does not promise to keep stable): the bytes
// "schakel.audit.v1", then for each field in this order its tag (one byte), its length (8 bytes,
// big-endian) and its bytes; numbers are 8 bytes big-endian (two's complement):
//    1 schema_version   2 writer   3 sequence   4 previous_hash   5 at.seconds   6 at.nanos
//    7 actor.kind   8 actor.id   9 action   10 subject.referral_id
//   11 subject.assignment_ids (one field per id, in order)   12 subject.client_pseudonym
//   13 subject.organisation   14 reason
// so that anyone can recompute it from an export without this code.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/audit.pb.h"

namespace schakel::service {
struct Caller;
}

namespace schakel::audit {

inline constexpr std::uint32_t kSchemaVersion = 1;
inline constexpr std::size_t kHashSize = 32;
// Topic and action names, in one place.
using topology::AuditTopic;
using topology::kAuditTopicPrefix;
inline constexpr char kAssignmentRead[] = "assignment.read";
inline constexpr char kAssignmentList[] = "assignment.list";
inline constexpr char kAssignmentWatch[] = "assignment.watch";
inline constexpr char kStatusChanged[] = "status.changed";
inline constexpr char kReferralSubmitted[] = "referral.submitted";
// Intake opened, for the referring organisation, what an owner's people typed (sealed status
// reasons and outcomes) about the referral's assignments, to answer it.
inline constexpr char kReferralRead[] = "referral.read";
inline constexpr char kUnroutableReassigned[] = "unroutable.reassigned";
// An operator re-drove a dead letter (ops); why: "redrive <dead letter topic/partition/offset>".
inline constexpr char kDeadLetterRedriven[] = "deadletter.redriven";
// The key service: an assignment's key handed to the organisation it was offered to, and a client
// erased (every key destroyed).
inline constexpr char kKeyGranted[] = "key.granted";
inline constexpr char kClientErased[] = "client.erased";

v1::AuditActor OrganisationActor(std::string_view id);
v1::AuditActor OperatorActor(std::string_view name);
v1::AuditActor ServiceActor(std::string_view name);
v1::AuditActor NetworkActor();
// The authenticated caller of a gRPC call (libs/service/identity.h).
v1::AuditActor ActorOf(const service::Caller& caller);
// "organisation mjd", "operator alice", "network".
std::string ActorText(const v1::AuditActor& actor);

// What an entry is about, for designated initializers: {.referral_id = r, .assignment_ids = {a}}.
struct Ids {
  std::string referral_id{};
  std::vector<std::string> assignment_ids{};
  std::string client_pseudonym{};
  std::string organisation{};  // another organisation the action concerns
};
v1::AuditSubject SubjectOf(const Ids& ids);

// An entry not yet in a chain (writer, sequence and hashes are set by Link).
v1::AuditEntry NewEntry(const v1::AuditActor& actor, std::string_view action,
                        v1::AuditSubject subject, std::string_view reason,
                        const google::protobuf::Timestamp& at);
v1::AuditEntry NewEntry(const v1::AuditActor& actor, std::string_view action,
                        v1::AuditSubject subject, std::string_view reason);

// Where a chain stands: the sequence its next entry gets and the hash that entry names.
struct Head {
  std::uint64_t next_sequence = 0;
  std::string hash = std::string(kHashSize, '\0');
};

// The canonical encoding of fields 1 to 9 (see the top of this file).
std::string CanonicalEncoding(const v1::AuditEntry& entry);
// SHA-256 of the canonical encoding (32 bytes).
std::string EntryHash(const v1::AuditEntry& entry);
// Makes `entry` the next entry of `writer`'s chain at `head` (schema version, writer, sequence,
// previous hash, hash) and moves `head` past it.
void Link(v1::AuditEntry& entry, std::string_view writer, Head& head);

std::string Hex(std::string_view bytes);

}  // namespace schakel::audit
