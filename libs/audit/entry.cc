#include "libs/audit/entry.h"

#include <sodium.h>

#include <chrono>
#include <cstdlib>

#include "libs/service/identity.h"

namespace schakel::audit {
namespace {

void PutNumber(std::string& out, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

void PutField(std::string& out, int tag, std::string_view bytes) {
  out.push_back(static_cast<char>(tag));
  PutNumber(out, bytes.size());
  out.append(bytes);
}

void PutNumberField(std::string& out, int tag, std::uint64_t value) {
  std::string bytes;
  PutNumber(bytes, value);
  PutField(out, tag, bytes);
}

v1::AuditActor Actor(v1::AuditActor::Kind kind, std::string_view id) {
  v1::AuditActor actor;
  actor.set_kind(kind);
  actor.set_id(std::string(id));
  return actor;
}

}  // namespace

v1::AuditActor OrganisationActor(std::string_view id) {
  return Actor(v1::AuditActor::ORGANISATION, id);
}
v1::AuditActor OperatorActor(std::string_view name) {
  return Actor(v1::AuditActor::OPERATOR, name);
}
v1::AuditActor ServiceActor(std::string_view name) { return Actor(v1::AuditActor::SERVICE, name); }
v1::AuditActor NetworkActor() { return Actor(v1::AuditActor::NETWORK, "network"); }

v1::AuditActor ActorOf(const service::Caller& caller) {
  switch (caller.kind) {
    case service::Caller::Kind::kOrganisation:
      return OrganisationActor(caller.id);
    case service::Caller::Kind::kOperator:
      return OperatorActor(caller.id);
    case service::Caller::Kind::kService:
      return ServiceActor(caller.id);
    case service::Caller::Kind::kNobody:
      break;
  }
  return Actor(v1::AuditActor::KIND_UNSPECIFIED, "");
}

std::string ActorText(const v1::AuditActor& actor) {
  switch (actor.kind()) {
    case v1::AuditActor::ORGANISATION:
      return "organisation " + actor.id();
    case v1::AuditActor::OPERATOR:
      return "operator " + actor.id();
    case v1::AuditActor::SERVICE:
      return "service " + actor.id();
    case v1::AuditActor::NETWORK:
      return actor.id().empty() ? "network" : actor.id();
    default:
      return "nobody " + actor.id();
  }
}

v1::AuditSubject SubjectOf(const Ids& ids) {
  v1::AuditSubject subject;
  subject.set_referral_id(ids.referral_id);
  for (const std::string& id : ids.assignment_ids) subject.add_assignment_ids(id);
  subject.set_client_pseudonym(ids.client_pseudonym);
  subject.set_organisation(ids.organisation);
  return subject;
}

v1::AuditEntry NewEntry(const v1::AuditActor& actor, std::string_view action,
                        v1::AuditSubject subject, std::string_view reason,
                        const google::protobuf::Timestamp& at) {
  v1::AuditEntry entry;
  entry.set_schema_version(kSchemaVersion);
  *entry.mutable_at() = at;
  *entry.mutable_actor() = actor;
  entry.set_action(std::string(action));
  *entry.mutable_subject() = std::move(subject);
  entry.set_reason(std::string(reason));
  return entry;
}

v1::AuditEntry NewEntry(const v1::AuditActor& actor, std::string_view action,
                        v1::AuditSubject subject, std::string_view reason) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now);
  google::protobuf::Timestamp at;
  at.set_seconds(seconds.count());
  at.set_nanos(static_cast<std::int32_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(now - seconds).count()));
  return NewEntry(actor, action, std::move(subject), reason, at);
}

std::string CanonicalEncoding(const v1::AuditEntry& entry) {
  std::string out = "schakel.audit.v1";
  PutNumberField(out, 1, entry.schema_version());
  PutField(out, 2, entry.writer());
  PutNumberField(out, 3, entry.sequence());
  PutField(out, 4, entry.previous_hash());
  PutNumberField(out, 5, static_cast<std::uint64_t>(entry.at().seconds()));
  PutNumberField(out, 6, static_cast<std::uint64_t>(static_cast<std::int64_t>(entry.at().nanos())));
  PutNumberField(out, 7,
                 static_cast<std::uint64_t>(static_cast<std::int64_t>(entry.actor().kind())));
  PutField(out, 8, entry.actor().id());
  PutField(out, 9, entry.action());
  PutField(out, 10, entry.subject().referral_id());
  for (const std::string& id : entry.subject().assignment_ids()) PutField(out, 11, id);
  PutField(out, 12, entry.subject().client_pseudonym());
  PutField(out, 13, entry.subject().organisation());
  PutField(out, 14, entry.reason());
  return out;
}

std::string EntryHash(const v1::AuditEntry& entry) {
  if (sodium_init() < 0) std::abort();  // cannot hash at all: a broken invariant
  const std::string bytes = CanonicalEncoding(entry);
  std::string hash(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(hash.data()),
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return hash;
}

void Link(v1::AuditEntry& entry, std::string_view writer, Head& head) {
  entry.set_schema_version(kSchemaVersion);
  entry.set_writer(std::string(writer));
  entry.set_sequence(head.next_sequence);
  entry.set_previous_hash(head.hash);
  entry.set_hash(EntryHash(entry));
  head.next_sequence = entry.sequence() + 1;
  head.hash = entry.hash();
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

}  // namespace schakel::audit
