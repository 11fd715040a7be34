#include "libs/audit/verify.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/audit/entry.h"
#include "libs/audit/signing.h"

namespace schakel::audit {

std::string_view ProblemName(Problem problem) {
  switch (problem) {
    case Problem::kUndecodable:
      return "undecodable record";
    case Problem::kWrongKey:
      return "wrong key";
    case Problem::kWrongTopic:
      return "wrong topic";
    case Problem::kUnknownSchema:
      return "unknown schema version";
    case Problem::kChangedEntry:
      return "changed entry";
    case Problem::kBrokenLink:
      return "broken link";
    case Problem::kNotStartingAtZero:
      return "chain does not start at 0";
    case Problem::kMissingEntries:
      return "missing entries";
    case Problem::kInsertedEntry:
      return "inserted entry";
    case Problem::kOutOfOrder:
      return "out of order";
    case Problem::kUnsigned:
      return "unsigned entry";
    case Problem::kBadSignature:
      return "bad signature";
    case Problem::kNotWritersKey:
      return "not the writer's key";
  }
  return "unknown problem";
}

std::string Finding::Text() const {
  if (writer.empty()) {
    return absl::StrCat("(", position, "): ", std::string(ProblemName(problem)), ": ", detail);
  }
  return absl::StrCat(writer, " seq ", sequence, " (", position,
                      "): ", std::string(ProblemName(problem)), ": ", detail);
}

void Verifier::AddRecord(std::string position, std::string_view key, std::string_view value,
                         std::string_view topic) {
  v1::AuditEntry entry;
  if (!entry.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    AddUndecodable(std::move(position), "not an AuditEntry");
    return;
  }
  AddEntry(std::move(position), key, std::move(entry), topic);
}

void Verifier::AddEntry(std::string position, std::string_view key, v1::AuditEntry entry,
                        std::string_view topic) {
  ++records_;
  if (!key.empty() && key != entry.writer()) {
    early_.push_back({entry.writer(), entry.sequence(), position, Problem::kWrongKey,
                      absl::StrCat("the record's key is '", std::string(key), "'")});
  }
  if (!topic.empty() && topic != AuditTopic(entry.writer())) {
    // A chain is what is in its writer's own topic, which only the writer may write (the broker's
    // ACLs): an entry elsewhere is no part of it, whoever put it there.
    early_.push_back({entry.writer(), entry.sequence(), position, Problem::kWrongTopic,
                      absl::StrCat("in ", std::string(topic), ", not in its writer's own ",
                                   AuditTopic(entry.writer()))});
    return;
  }
  chains_[entry.writer()].push_back({std::move(position), std::move(entry)});
}

void Verifier::AddUndecodable(std::string position, std::string detail) {
  ++records_;
  early_.push_back({"", 0, std::move(position), Problem::kUndecodable, std::move(detail)});
}

Report Verifier::Finish() const {
  Report report;
  report.records = records_;
  report.findings = early_;
  for (const auto& chain : chains_) {
    // (Not a structured binding: clang, which builds the fuzzers, cannot capture one in a lambda.)
    const std::string& writer = chain.first;
    const auto& seen = chain.second;
    std::vector<Finding> found;
    auto add = [&](const Seen& s, Problem problem, std::string detail) {
      found.push_back({writer, s.entry.sequence(), s.position, problem, std::move(detail)});
    };
    WriterSummary summary;
    summary.writer = writer;
    summary.entries = seen.size();

    // Each entry on its own: a known schema, a hash that matches what it says, and a signature
    // over that hash by a key trusted for this writer. Unsigned entries in a row (a chain begun
    // before signatures) are one finding, not one per entry.
    constexpr std::size_t kNoRun = static_cast<std::size_t>(-1);
    std::size_t unsigned_run = kNoRun;  // index in `found` of the open run's finding
    std::uint64_t run_after = 0;        // unsigned entries after the run's first
    for (const Seen& s : seen) {
      bool is_unsigned = false;
      if (s.entry.schema_version() != kSchemaVersion) {
        add(s, Problem::kUnknownSchema,
            absl::StrCat("schema version ", s.entry.schema_version(), " (this verifier knows ",
                         kSchemaVersion, ")"));
      } else if (EntryHash(s.entry) != s.entry.hash()) {
        add(s, Problem::kChangedEntry,
            absl::StrCat("its hash ", Hex(s.entry.hash()).substr(0, 16),
                         "… does not match its contents (", ActorText(s.entry.actor()), ", ",
                         s.entry.action(), ")"));
      } else if (s.entry.signature().empty() && s.entry.signing_key().empty()) {
        is_unsigned = true;
        constexpr char kWhy[] =
            "written before signatures, or by a writer started without --audit-signing-key";
        if (unsigned_run == kNoRun) {
          unsigned_run = found.size();
          run_after = 0;
          add(s, Problem::kUnsigned, absl::StrCat("no signature (", kWhy, ")"));
        } else {
          ++run_after;
          found[unsigned_run].detail = absl::StrCat(
              "no signature, nor on the ", run_after, " entries after it, to sequence ",
              s.entry.sequence(), " (", s.position, ") (", kWhy, ")");
        }
      } else if (!SignatureVerifies(s.entry)) {
        add(s, Problem::kBadSignature,
            absl::StrCat("its signature does not verify with the key it names (",
                         Hex(s.entry.signing_key()).substr(0, 16),
                         "…): changed and re-hashed after it was signed, or no signature at all"));
      } else if (const std::string* owner = trusted_.WriterOf(s.entry.signing_key());
                 owner != nullptr && *owner == writer) {
        ++summary.signed_by_writer;
      } else if (owner != nullptr) {
        add(s, Problem::kNotWritersKey,
            absl::StrCat("signed with the key of ", *owner, " (",
                         Hex(s.entry.signing_key()).substr(0, 16), "…), not with one of ", writer,
                         ": ", *owner, " wrote it into ", writer, "'s chain"));
      } else {
        add(s, Problem::kNotWritersKey,
            absl::StrCat("signed with key ", Hex(s.entry.signing_key()).substr(0, 16),
                         "…, which is no trusted writer's key",
                         trusted_.Has(writer)
                             ? ""
                             : absl::StrCat(" (and no key is trusted for ", writer, " at all)"),
                         ": a key of someone's own making"));
      }
      if (!is_unsigned) unsigned_run = kNoRun;
      summary.actions[absl::StrCat(s.entry.action(), " by ", ActorText(s.entry.actor()))]++;
    }

    // In the order read: a sequence number seen before is an inserted entry (a forged copy,
    // or a second writer's fork); one below the highest so far comes out of order.
    std::map<std::uint64_t, const Seen*> first;  // sequence -> its first occurrence
    std::vector<const Seen*> unique;
    const Seen* highest = nullptr;
    for (const Seen& s : seen) {
      const std::uint64_t sequence = s.entry.sequence();
      if (auto it = first.find(sequence); it != first.end()) {
        const bool identical = it->second->entry.SerializeAsString() == s.entry.SerializeAsString();
        add(s, Problem::kInsertedEntry,
            absl::StrCat("sequence ", sequence, " is there already (", it->second->position, ")",
                         identical
                             ? "; this is an identical copy"
                             : absl::StrCat("; this one differs: ", ActorText(s.entry.actor()),
                                            ", ", s.entry.action(), ", hash ",
                                            Hex(s.entry.hash()).substr(0, 16), "…")));
        continue;
      }
      if (highest != nullptr && sequence < highest->entry.sequence()) {
        add(s, Problem::kOutOfOrder,
            absl::StrCat("comes after sequence ", highest->entry.sequence(), " (",
                         highest->position, ")"));
      }
      first[sequence] = &s;
      unique.push_back(&s);
      if (highest == nullptr || sequence > highest->entry.sequence()) highest = &s;
    }

    // In sequence order: from 0, without gaps, each naming the hash of the one before.
    std::set<std::uint64_t> out_of_order;
    for (const Finding& f : found) {
      if (f.problem == Problem::kOutOfOrder) out_of_order.insert(f.sequence);
    }
    const Seen* previous = nullptr;
    for (const auto& [sequence, s] : first) {
      if (previous == nullptr) {
        if (sequence != 0) {
          add(*s, Problem::kNotStartingAtZero,
              absl::StrCat("the first entry there is has sequence ", sequence, ": ",
                           sequence == 1 ? "entry 0 is"
                                         : absl::StrCat("entries 0 to ", sequence - 1, " are"),
                           " missing"));
        } else if (s->entry.previous_hash() != std::string(kHashSize, '\0')) {
          add(*s, Problem::kBrokenLink, "the first entry must name the zero hash");
        }
      } else if (sequence != previous->entry.sequence() + 1) {
        const std::uint64_t from = previous->entry.sequence() + 1;
        const std::uint64_t to = sequence - 1;
        add(*s, Problem::kMissingEntries,
            absl::StrCat(from == to ? absl::StrCat("sequence ", from, " is")
                                    : absl::StrCat("sequences ", from, " to ", to, " are"),
                         " missing (between ", previous->position, " and ", s->position, ")"));
      } else if (s->entry.previous_hash() != previous->entry.hash()) {
        add(*s, Problem::kBrokenLink,
            absl::StrCat("it names ", Hex(s->entry.previous_hash()).substr(0, 16),
                         "… as the hash of sequence ", previous->entry.sequence(), " (",
                         previous->position, "), which is ",
                         Hex(previous->entry.hash()).substr(0, 16),
                         "…: that entry was changed or replaced"));
      }
      previous = s;
    }
    if (previous != nullptr) {
      summary.last_sequence = previous->entry.sequence();
      summary.last_hash = Hex(previous->entry.hash());
    }
    summary.ok = found.empty();
    report.writers.push_back(std::move(summary));
    report.findings.insert(report.findings.end(), found.begin(), found.end());
  }
  return report;
}

std::string ReportText(const Report& report) {
  std::string out;
  for (const WriterSummary& w : report.writers) {
    absl::StrAppend(&out, w.writer, ": ", w.entries, " entries checked (", w.signed_by_writer,
                    " signed by its key), head sequence ", w.last_sequence, " hash ",
                    w.last_hash.substr(0, 16), "…: ", w.ok ? "OK" : "BROKEN", "\n");
    for (const auto& [action, count] : w.actions) {
      absl::StrAppend(&out, "    ", action, ": ", count, "\n");
    }
  }
  for (const Finding& f : report.findings) absl::StrAppend(&out, "PROBLEM ", f.Text(), "\n");
  absl::StrAppend(&out, report.records, " records, ", report.writers.size(), " chains: ",
                  report.ok() ? "OK" : absl::StrCat(report.findings.size(), " problems"), "\n");
  return out;
}

}  // namespace schakel::audit
