// Checks audit chains as they were read (from the topic, or from an export): every writer's
// entries must be numbered from 0 without gaps, in order, each naming the hash of the one before
// it, each hash must match the entry's contents, and each entry must be signed by a key trusted
// for its writer (signing.h). Reports every problem with where it is, so that an operator can tell
// a changed entry from a missing, inserted, reordered, unsigned or forged one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libs/audit/signing.h"
#include "schakel/v1/audit.pb.h"

namespace schakel::audit {

enum class Problem {
  kUndecodable,        // a record that is no audit entry
  kWrongKey,           // the record's key is not the entry's writer
  kWrongTopic,         // the record is not in its writer's own topic (schakel.audit.<writer>)
  kUnknownSchema,      // a schema version this verifier does not know
  kChangedEntry,       // the hash does not match the entry's contents
  kBrokenLink,         // previous_hash does not match the hash of the entry before it
  kNotStartingAtZero,  // the chain's first entry has a sequence above 0
  kMissingEntries,     // sequence numbers skipped
  kInsertedEntry,      // a sequence number that is there already
  kOutOfOrder,         // a sequence number below one already seen (and not seen before)
  kUnsigned,           // no signature (written before signatures, or without a signing key)
  kBadSignature,       // a signature that does not verify under the key it names
  kNotWritersKey,      // a valid signature by a key not trusted for this writer
};
std::string_view ProblemName(Problem problem);

struct Finding {
  std::string writer;  // empty for an undecodable record
  std::uint64_t sequence = 0;
  std::string position;  // where it was read: "offset 17", "line 3"
  Problem problem = Problem::kUndecodable;
  std::string detail;
  // "inbox-mjd seq 4 (offset 17): changed entry: ..."
  std::string Text() const;
};

struct WriterSummary {
  std::string writer;
  std::uint64_t entries = 0;
  std::uint64_t last_sequence = 0;  // the highest sequence seen
  std::string last_hash;            // its hash (hex)
  // "<action> by <actor>" -> how many entries.
  std::map<std::string, std::uint64_t> actions;
  std::uint64_t signed_by_writer = 0;  // entries with a valid signature by one of its trusted keys
  bool ok = true;
};

struct Report {
  std::uint64_t records = 0;
  std::vector<WriterSummary> writers;  // by writer id
  std::vector<Finding> findings;       // per writer, in the order found
  bool ok() const { return findings.empty(); }
};

class Verifier {
 public:
  // Checks signatures against `trusted` (with none, every entry's signer is unknown).
  explicit Verifier(TrustedKeys trusted = {}) : trusted_(std::move(trusted)) {}

  // Feed every record in the order it was read. `value` is the serialized AuditEntry; `topic`, the
  // topic it was read from, must be its writer's own.
  void AddRecord(std::string position, std::string_view key, std::string_view value,
                 std::string_view topic);
  // An entry parsed elsewhere (e.g. from an export's JSON); `key` and `topic` empty: not checked.
  void AddEntry(std::string position, std::string_view key, v1::AuditEntry entry,
                std::string_view topic = {});
  // A record that could not be read at all.
  void AddUndecodable(std::string position, std::string detail);

  Report Finish() const;

 private:
  struct Seen {
    std::string position;
    v1::AuditEntry entry;
  };
  TrustedKeys trusted_;
  std::uint64_t records_ = 0;
  std::vector<Finding> early_;  // undecodable records, wrong keys and topics
  std::map<std::string, std::vector<Seen>> chains_;
};

// The report as `schakelctl audit verify` prints it: per writer the entries checked, the head, the
// actions by actor, then OK or each problem.
std::string ReportText(const Report& report);

}  // namespace schakel::audit
