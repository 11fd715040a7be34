#include "services/inbox/store/assignments.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/referral/lifecycle.h"

namespace schakel::inbox::store {
namespace {

using schakel::v1::Assignment;

// Where a page ends: the sort key of its last row.
struct Cursor {
  std::int64_t seconds = std::numeric_limits<std::int64_t>::min();
  std::int64_t nanos = -1;
  std::string assignment_id;
};

absl::StatusOr<Assignment> ParseBody(const sqlite::Statement& row, int column) {
  const std::string_view body = row.BlobView(column);
  if (body.size() < row.Bytes(column)) {
    return absl::UnavailableError("inbox store: out of memory reading an assignment");
  }
  Assignment assignment;
  if (!assignment.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::DataLossError("inbox store: a stored assignment cannot be parsed");
  }
  return assignment;
}

absl::StatusOr<std::string> Serialize(const Assignment& assignment) {
  std::string body;
  if (!assignment.SerializeToString(&body)) {
    return absl::InternalError("inbox store: cannot serialize an assignment");
  }
  return body;
}

// A page token: web-safe base64 of "1:<status>:<seconds>:<nanos>:<need length>:<need><assignment
// id>". It carries the filters it was made for, so that it cannot silently be used with other ones.
std::string EncodeToken(const ListQuery& query, const Cursor& cursor) {
  return absl::WebSafeBase64Escape(
      absl::StrCat("1:", static_cast<int>(query.status), ":", cursor.seconds, ":", cursor.nanos,
                   ":", query.need_code.size(), ":", query.need_code, cursor.assignment_id));
}

absl::StatusOr<Cursor> DecodeToken(const ListQuery& query) {
  const absl::Status malformed = absl::InvalidArgumentError("page_token: is malformed");
  std::string raw;
  if (!absl::WebSafeBase64Unescape(query.page_token, &raw)) return malformed;
  std::vector<absl::string_view> parts = absl::StrSplit(raw, absl::MaxSplits(':', 5));
  if (parts.size() != 6 || parts[0] != "1") return malformed;
  int status = 0;
  Cursor cursor;
  std::size_t need_size = 0;
  if (!absl::SimpleAtoi(parts[1], &status) || !absl::SimpleAtoi(parts[2], &cursor.seconds) ||
      !absl::SimpleAtoi(parts[3], &cursor.nanos) || !absl::SimpleAtoi(parts[4], &need_size)) {
    return malformed;
  }
  absl::string_view rest = parts[5];
  if (cursor.nanos < 0 || cursor.nanos > 999'999'999 || need_size >= rest.size()) return malformed;
  absl::string_view need_code = rest.substr(0, need_size);
  cursor.assignment_id = std::string(rest.substr(need_size));
  if (status != static_cast<int>(query.status) || need_code != query.need_code) {
    return absl::InvalidArgumentError("page_token: was made for a query with other filters");
  }
  return cursor;
}

// "status NOT IN (4, 7, ...)": the final statuses come from the lifecycle, the one rule book.
std::string OpenCondition() {
  std::vector<int> final_statuses;
  for (int s = schakel::v1::AssignmentStatus_MIN; s <= schakel::v1::AssignmentStatus_MAX; ++s) {
    if (schakel::v1::AssignmentStatus_IsValid(s) &&
        referral::IsFinal(static_cast<schakel::v1::AssignmentStatus>(s))) {
      final_statuses.push_back(s);
    }
  }
  if (final_statuses.empty()) return "1";
  return absl::StrCat("status NOT IN (", absl::StrJoin(final_statuses, ", "), ")");
}

// The single integer a count-like query answers.
absl::StatusOr<std::int64_t> ReadNumber(sqlite::Statement& statement) {
  sqlite::ScopedReset reset(statement);
  absl::StatusOr<bool> row = statement.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inbox store: a count answered no row");
  return statement.Int64(0);
}

// Rewrites, with `erase`, the body of every row `select` finds (key, body) that belongs to the
// client and to one of `ids`, through `update` (?1 the body, ?2 the key); `after` follows each.
absl::Status Rewrite(
    sqlite::Transaction& tx, const char* select, const char* update,
    const std::string& client_pseudonym, const std::set<std::string>& ids,
    const std::function<void(Assignment&)>& erase,
    const std::function<absl::Status(const std::string& key, const std::string& body)>& after) {
  std::vector<std::pair<std::string, std::string>> rows;  // key, new body
  {
    absl::StatusOr<sqlite::Statement> scan = tx.db().Prepare(select, "erase: scan");
    if (!scan.ok()) return scan.status();
    absl::StatusOr<bool> row;
    while ((row = scan->Step()).ok() && *row) {
      absl::StatusOr<Assignment> body = ParseBody(*scan, 1);
      if (!body.ok()) return body.status();
      if (body->client_pseudonym() != client_pseudonym || ids.count(body->assignment_id()) == 0) {
        continue;
      }
      erase(*body);
      absl::StatusOr<std::string> bytes = Serialize(*body);
      if (!bytes.ok()) return bytes.status();
      rows.emplace_back(scan->Text(0), *std::move(bytes));
    }
    if (!row.ok()) return row.status();
  }
  absl::StatusOr<sqlite::Statement> rewrite = tx.db().Prepare(update, "erase: rewrite");
  if (!rewrite.ok()) return rewrite.status();
  for (const auto& [key, body] : rows) {
    if (absl::Status s = tx.Run(rewrite->BindBlob(1, body).BindText(2, key)); !s.ok()) return s;
    if (after) {
      if (absl::Status s = after(key, body); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AssignmentTable> AssignmentTable::Prepare(sqlite::Database& db) {
  AssignmentTable table;
  const std::string count_open =
      absl::StrCat("SELECT count(*) FROM assignments WHERE ", OpenCondition());
  if (absl::Status s = db.KeepAll({
          {&table.insert_,
           "INSERT INTO assignments"
           " (assignment_id, status, need_code, requested_seconds, requested_nanos, body)"
           " VALUES (:id, :status, :need, :seconds, :nanos, :body)"
           " ON CONFLICT (assignment_id) DO NOTHING",
           "insert"},
          {&table.update_,
           "UPDATE assignments SET status = :status, need_code = :need, body = :body"
           " WHERE assignment_id = :id",
           "update"},
          {&table.insert_change_, "INSERT INTO changes (assignment_id, body) VALUES (:id, :body)",
           "insert change"},
          {&table.get_, "SELECT body FROM assignments WHERE assignment_id = :id", "get"},
          {&table.count_, "SELECT count(*) FROM assignments", "count"},
          {&table.count_open_, count_open, "count open"},
          {&table.count_by_need_and_status_,
           "SELECT need_code, status, count(*) FROM assignments GROUP BY need_code, status"
           " ORDER BY need_code, status",
           "count by need and status"},
          {&table.changes_after_,
           "SELECT sequence, body FROM changes WHERE sequence > :after ORDER BY sequence"
           " LIMIT :limit",
           "changes"},
          {&table.last_sequence_, "SELECT coalesce(max(sequence), 0) FROM changes",
           "last sequence"},
      });
      !s.ok()) {
    return s;
  }
  for (int filters = 0; filters < 4; ++filters) {
    const std::string sql = absl::StrCat(
        "SELECT body, requested_seconds, requested_nanos, assignment_id FROM assignments WHERE ",
        (filters & kFilterStatus) != 0 ? "status = :status AND " : "",
        (filters & kFilterNeed) != 0 ? "need_code = :need AND " : "",
        "(requested_seconds, requested_nanos, assignment_id) > (:seconds, :nanos, :id)"
        " ORDER BY requested_seconds, requested_nanos, assignment_id LIMIT :limit");
    if (absl::Status s = db.KeepAll({{&table.list_[filters], sql, "list"}}); !s.ok()) return s;
  }
  return table;
}

absl::Status AssignmentTable::AddChange(sqlite::Transaction& tx, const std::string& assignment_id,
                                        const std::string& body) {
  return tx.Run(insert_change_.BindText(":id", assignment_id).BindBlob(":body", body));
}

absl::StatusOr<bool> AssignmentTable::Insert(sqlite::Transaction& tx,
                                             const Assignment& assignment) {
  if (assignment.assignment_id().empty()) {
    return absl::InvalidArgumentError("assignment_id: is required");
  }
  const google::protobuf::Timestamp& requested_at = assignment.requested_at();
  if (requested_at.nanos() < 0 || requested_at.nanos() > 999'999'999) {
    return absl::InvalidArgumentError("requested_at: nanos out of range");
  }
  absl::StatusOr<std::string> body = Serialize(assignment);
  if (!body.ok()) return body.status();
  insert_.BindText(":id", assignment.assignment_id())
      .BindInt64(":status", assignment.status())
      .BindText(":need", assignment.need_code())
      .BindInt64(":seconds", requested_at.seconds())
      .BindInt64(":nanos", requested_at.nanos())
      .BindBlob(":body", *body);
  if (absl::Status s = tx.Run(insert_); !s.ok()) return s;
  // There already: nothing was written.
  if (tx.db().Changes() != 1) return false;
  if (absl::Status s = AddChange(tx, assignment.assignment_id(), *body); !s.ok()) return s;
  return true;
}

absl::StatusOr<Change> AssignmentTable::Apply(sqlite::Transaction& tx,
                                              const std::string& assignment_id,
                                              std::uint64_t expected_version,
                                              const ChangeFn& change) {
  absl::StatusOr<Assignment> current = Get(assignment_id);
  if (!current.ok()) return current.status();
  if (current->version() != expected_version) {
    return absl::AbortedError(absl::StrCat("assignment ", assignment_id, " changed since version ",
                                           expected_version, " (now ", current->version(), ")"));
  }
  absl::StatusOr<Change> decided = change(*current);
  if (!decided.ok()) return decided.status();
  if (decided->assignment.assignment_id() != assignment_id ||
      decided->assignment.version() <= current->version()) {
    return absl::InternalError(absl::StrCat("inbox store: a change of assignment ", assignment_id,
                                            " must keep its id and raise its version"));
  }
  absl::StatusOr<std::string> body = Serialize(decided->assignment);
  if (!body.ok()) return body.status();
  update_.BindText(":id", assignment_id)
      .BindInt64(":status", decided->assignment.status())
      .BindText(":need", decided->assignment.need_code())
      .BindBlob(":body", *body);
  if (absl::Status s = tx.Run(update_); !s.ok()) return s;
  if (absl::Status s = AddChange(tx, assignment_id, *body); !s.ok()) return s;
  return decided;
}

absl::StatusOr<std::set<std::string>> AssignmentTable::NotErasedOf(
    sqlite::Transaction& tx, const std::string& client_pseudonym) {
  // Scans every assignment: an operator's rare action, not a hot path.
  absl::StatusOr<sqlite::Statement> scan =
      tx.db().Prepare("SELECT assignment_id, body FROM assignments", "erase: scan");
  if (!scan.ok()) return scan.status();
  std::set<std::string> ids;
  absl::StatusOr<bool> row;
  while ((row = scan->Step()).ok() && *row) {
    absl::StatusOr<Assignment> body = ParseBody(*scan, 1);
    if (!body.ok()) return body.status();
    if (body->client_pseudonym() == client_pseudonym && !body->erased()) {
      ids.insert(body->assignment_id());
    }
  }
  if (!row.ok()) return row.status();
  return ids;
}

absl::StatusOr<std::vector<std::string>> AssignmentTable::Erase(
    sqlite::Transaction& tx, const std::string& client_pseudonym,
    const std::set<std::string>& assignment_ids, const std::function<void(Assignment&)>& erase) {
  // The changes feed first (its older rows), then the assignments, each of which adds a change.
  if (absl::Status s = Rewrite(tx, "SELECT sequence, body FROM changes",
                               "UPDATE changes SET body = ?1 WHERE sequence = ?2", client_pseudonym,
                               assignment_ids, erase, nullptr);
      !s.ok()) {
    return s;
  }
  std::vector<std::string> erased;
  if (absl::Status s = Rewrite(tx, "SELECT assignment_id, body FROM assignments",
                               "UPDATE assignments SET body = ?1 WHERE assignment_id = ?2",
                               client_pseudonym, assignment_ids, erase,
                               [&](const std::string& id, const std::string& body) {
                                 erased.push_back(id);
                                 return AddChange(tx, id, body);
                               });
      !s.ok()) {
    return s;
  }
  return erased;
}

absl::StatusOr<Assignment> AssignmentTable::Get(const std::string& assignment_id) {
  sqlite::ScopedReset reset(get_);
  absl::StatusOr<bool> row = get_.BindText(":id", assignment_id).Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError("assignment not found");
  return ParseBody(get_, 0);
}

absl::StatusOr<Page> AssignmentTable::List(const ListQuery& query) {
  if (query.page_size <= 0) return absl::InvalidArgumentError("page_size: must be positive");
  Cursor cursor;
  if (!query.page_token.empty()) {
    absl::StatusOr<Cursor> decoded = DecodeToken(query);
    if (!decoded.ok()) return decoded.status();
    cursor = *std::move(decoded);
  }
  const int filters =
      (query.status != schakel::v1::ASSIGNMENT_STATUS_UNSPECIFIED ? kFilterStatus : 0) |
      (!query.need_code.empty() ? kFilterNeed : 0);

  sqlite::Statement& list = list_[filters];
  sqlite::ScopedReset reset(list);
  if ((filters & kFilterStatus) != 0) list.BindInt64(":status", query.status);
  if ((filters & kFilterNeed) != 0) list.BindText(":need", query.need_code);
  list.BindInt64(":seconds", cursor.seconds)
      .BindInt64(":nanos", cursor.nanos)
      .BindText(":id", cursor.assignment_id)
      // One row more than asked tells whether there is a next page.
      .BindInt64(":limit", static_cast<std::int64_t>(query.page_size) + 1);

  Page page;
  absl::StatusOr<bool> row;
  while ((row = list.Step()).ok() && *row) {
    if (static_cast<int>(page.assignments.size()) == query.page_size) {
      page.next_page_token = EncodeToken(query, cursor);
      break;
    }
    absl::StatusOr<Assignment> assignment = ParseBody(list, 0);
    if (!assignment.ok()) return assignment.status();
    page.assignments.push_back(*std::move(assignment));
    cursor.seconds = list.Int64(1);
    cursor.nanos = list.Int64(2);
    cursor.assignment_id = list.Text(3);
  }
  if (!row.ok()) return row.status();
  return page;
}

absl::StatusOr<std::int64_t> AssignmentTable::Count() { return ReadNumber(count_); }

absl::StatusOr<std::int64_t> AssignmentTable::CountOpen() { return ReadNumber(count_open_); }

absl::StatusOr<std::int64_t> AssignmentTable::LastSequence() { return ReadNumber(last_sequence_); }

absl::StatusOr<std::vector<NeedStatusCount>> AssignmentTable::CountByNeedAndStatus() {
  sqlite::Statement& counts = count_by_need_and_status_;
  sqlite::ScopedReset reset(counts);
  std::vector<NeedStatusCount> result;
  absl::StatusOr<bool> row;
  while ((row = counts.Step()).ok() && *row) {
    result.push_back({.need_code = counts.Text(0),
                      .status = static_cast<v1::AssignmentStatus>(counts.Int64(1)),
                      .count = counts.Int64(2)});
  }
  if (!row.ok()) return row.status();
  return result;
}

absl::StatusOr<std::vector<StoredChange>> AssignmentTable::ChangesAfter(std::int64_t after,
                                                                        int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  sqlite::ScopedReset reset(changes_after_);
  changes_after_.BindInt64(":after", after).BindInt64(":limit", limit);
  std::vector<StoredChange> changes;
  absl::StatusOr<bool> row;
  while ((row = changes_after_.Step()).ok() && *row) {
    absl::StatusOr<Assignment> assignment = ParseBody(changes_after_, 1);
    if (!assignment.ok()) return assignment.status();
    changes.push_back({.sequence = changes_after_.Int64(0), .assignment = *std::move(assignment)});
  }
  if (!row.ok()) return row.status();
  return changes;
}

}  // namespace schakel::inbox::store
