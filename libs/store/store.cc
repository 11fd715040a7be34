#include "libs/store/store.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/referral/lifecycle.h"

namespace schakel::store {
namespace {

// PRAGMA user_version of the schema this code writes. Raise it with every change and add the step
// that migrates to it to kMigrations.
constexpr int kSchemaVersion = 6;
constexpr int kBusyTimeoutMs = 5000;

// kMigrations[v] takes a database from user_version v to v + 1. A new database runs them all.
constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 -> 1: the assignments.
    R"sql(
CREATE TABLE assignments (
  assignment_id     TEXT    PRIMARY KEY NOT NULL,
  status            INTEGER NOT NULL,
  need_code         TEXT    NOT NULL,
  requested_seconds INTEGER NOT NULL,
  requested_nanos   INTEGER NOT NULL,
  body              BLOB    NOT NULL  -- the whole schakel.v1.Assignment, serialized
);
CREATE INDEX assignments_by_time
  ON assignments (requested_seconds, requested_nanos, assignment_id);
CREATE INDEX assignments_by_status
  ON assignments (status, requested_seconds, requested_nanos, assignment_id);
CREATE INDEX assignments_by_need
  ON assignments (need_code, requested_seconds, requested_nanos, assignment_id);
CREATE INDEX assignments_by_status_need
  ON assignments (status, need_code, requested_seconds, requested_nanos, assignment_id);
PRAGMA user_version = 1;
)sql",
    // 1 -> 2: the changes feed and the outbox. What a version-1 inbox holds enters the feed once,
    // in request order, so that a watcher starting from 0 still sees every assignment.
    R"sql(
CREATE TABLE changes (
  sequence      INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: watchers resume from it
  assignment_id TEXT    NOT NULL,
  body          BLOB    NOT NULL  -- the schakel.v1.Assignment right after this change
);
CREATE TABLE outbox (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT    NOT NULL,
  key   BLOB    NOT NULL,
  value BLOB    NOT NULL
);
INSERT INTO changes (assignment_id, body)
  SELECT assignment_id, body FROM assignments
  ORDER BY requested_seconds, requested_nanos, assignment_id;
PRAGMA user_version = 2;
)sql",
    // 2 -> 3: audit entries waiting for the audit writer (libs/audit), which links them into the
    // inbox's chain when it publishes them and then deletes them here.
    R"sql(
CREATE TABLE audit (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  entry BLOB    NOT NULL  -- a schakel.v1.AuditEntry, serialized, not yet linked
);
PRAGMA user_version = 3;
)sql",
    // 3 -> 4: the client's data key of each assignment (as the key service handed it out), so that
    // what the organisation types about it is sealed without asking again. Deleted at erasure.
    R"sql(
CREATE TABLE assignment_keys (
  assignment_id TEXT PRIMARY KEY NOT NULL,
  key_id        TEXT NOT NULL,
  key           BLOB NOT NULL
);
PRAGMA user_version = 4;
)sql",
    // 4 -> 5: the owner token of each assignment's offer (AssignmentRequested.owner_token), with
    // which the inbox proves to the router that its status changes and forward requests are its
    // own. Not personal data: kept at erasure, when the assignment's work goes on. An assignment
    // stored before this version has none (its changes go without a proof, as before).
    R"sql(
CREATE TABLE assignment_tokens (
  assignment_id TEXT PRIMARY KEY NOT NULL,
  token         BLOB NOT NULL
);
PRAGMA user_version = 5;
)sql",
    // 5 -> 6: owner tokens are gone (the router knows who sent a change from the organisation's own
    // topic); the tokens, capabilities that are no use to anyone now, go with their table.
    R"sql(
DROP TABLE assignment_tokens;
PRAGMA user_version = 6;
)sql",
};

// Where a page ends: the sort key of its last row.
struct Cursor {
  std::int64_t seconds = std::numeric_limits<std::int64_t>::min();
  std::int64_t nanos = -1;
  std::string assignment_id;
};

absl::Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  // sqlite's messages name tables and columns, never bound values, so they carry no personal data.
  std::string message = absl::StrCat("inbox store: ", std::string(what), ": ",
                                     db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

absl::Status Exec(sqlite3* db, const char* sql, std::string_view what) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  std::unique_ptr<char, decltype(&sqlite3_free)> free_error(error, &sqlite3_free);
  if (rc != SQLITE_OK) {
    return SqliteError(db, rc, what);
  }
  return absl::OkStatus();
}

// Resets a prepared statement when the scope ends, so the next use starts clean.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() {
    // Returns the last step's error again, which the caller has already handled.
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Binds a named parameter; `required` parameters must appear in the statement.
class Binder {
 public:
  Binder(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}

  void Text(const char* name, std::string_view value, bool required = true) {
    if (int index = Index(name, required); index > 0) {
      Check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                SQLITE_UTF8),
            name);
    }
  }
  void Blob(const char* name, std::string_view value) {
    if (int index = Index(name, true); index > 0) {
      Check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT), name);
    }
  }
  void Int64(const char* name, std::int64_t value, bool required = true) {
    if (int index = Index(name, required); index > 0) {
      Check(sqlite3_bind_int64(stmt_, index, value), name);
    }
  }
  const absl::Status& status() const { return status_; }

 private:
  int Index(const char* name, bool required) {
    int index = sqlite3_bind_parameter_index(stmt_, name);
    if (index == 0 && required && status_.ok()) {
      status_ = absl::InternalError(absl::StrCat("inbox store: no parameter ", name));
    }
    return index;
  }
  void Check(int rc, const char* name) {
    if (rc != SQLITE_OK && status_.ok()) {
      status_ = SqliteError(db_, rc, absl::StrCat("bind ", name));
    }
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  absl::Status status_;
};

std::string_view ColumnText(sqlite3_stmt* stmt, int column) {
  const unsigned char* text = sqlite3_column_text(stmt, column);
  if (text == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(text),
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
}

absl::StatusOr<schakel::v1::Assignment> ParseBody(sqlite3_stmt* stmt, int column) {
  const void* blob = sqlite3_column_blob(stmt, column);
  int size = sqlite3_column_bytes(stmt, column);
  schakel::v1::Assignment assignment;
  if (size > 0 && blob == nullptr) {
    return absl::UnavailableError("inbox store: out of memory reading an assignment");
  }
  if (!assignment.ParseFromArray(blob, size)) {
    return absl::DataLossError("inbox store: a stored assignment cannot be parsed");
  }
  return assignment;
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

// Runs a statement that returns no rows.
absl::Status StepDone(sqlite3* db, sqlite3_stmt* stmt, std::string_view what) {
  ResetOnExit reset(stmt);
  if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return SqliteError(db, rc, what);
  return absl::OkStatus();
}

std::string_view ColumnBlob(sqlite3_stmt* stmt, int column) {
  const void* blob = sqlite3_column_blob(stmt, column);
  if (blob == nullptr) return {};
  return std::string_view(static_cast<const char*>(blob),
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
}

absl::StatusOr<std::string> Serialize(const schakel::v1::Assignment& assignment) {
  std::string body;
  if (!assignment.SerializeToString(&body)) {
    return absl::InternalError("inbox store: cannot serialize an assignment");
  }
  return body;
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

}  // namespace

// A write transaction on the store's connection (BEGIN IMMEDIATE: the write lock is taken at once,
// so a transaction never fails half-way for want of it). Rolls back unless committed. Use with
// mu_ held.
class InboxStore::Transaction {
 public:
  explicit Transaction(InboxStore& store) : store_(store) {}
  ~Transaction() {
    if (begun_ && !committed_) {
      if (absl::Status s = StepDone(store_.db_.get(), store_.rollback_.get(), "rollback");
          !s.ok()) {
        spdlog::error("{}", std::string(s.message()));
      }
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  absl::Status Begin() {
    absl::Status s = StepDone(store_.db_.get(), store_.begin_.get(), "begin");
    begun_ = s.ok();
    return s;
  }
  absl::Status Commit() {
    absl::Status s = StepDone(store_.db_.get(), store_.commit_.get(), "commit");
    committed_ = s.ok();
    return s;
  }

 private:
  InboxStore& store_;
  bool begun_ = false;
  bool committed_ = false;
};

void InboxStore::DbCloser::operator()(sqlite3* db) const {
  if (int rc = sqlite3_close_v2(db); rc != SQLITE_OK) {
    spdlog::error("inbox store: close: {}", sqlite3_errstr(rc));
  }
}

void InboxStore::StmtFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

InboxStore::Subscription::~Subscription() { Reset(); }

InboxStore::Subscription::Subscription(Subscription&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)), id_(std::exchange(other.id_, 0)) {}

InboxStore::Subscription& InboxStore::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Reset();
    store_ = std::exchange(other.store_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void InboxStore::Subscription::Reset() {
  if (store_ != nullptr) store_->Unsubscribe(id_);
  store_ = nullptr;
  id_ = 0;
}

InboxStore::InboxStore(Db db) : db_(std::move(db)) {}

InboxStore::~InboxStore() = default;

absl::StatusOr<std::unique_ptr<InboxStore>> InboxStore::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);  // sqlite hands out a handle even on failure; it must be closed either way
  if (rc != SQLITE_OK) return SqliteError(db.get(), rc, absl::StrCat("open ", path));
  if (rc = sqlite3_extended_result_codes(db.get(), 1); rc != SQLITE_OK) {
    return SqliteError(db.get(), rc, "extended result codes");
  }
  if (rc = sqlite3_busy_timeout(db.get(), kBusyTimeoutMs); rc != SQLITE_OK) {
    return SqliteError(db.get(), rc, "busy timeout");
  }

  {
    // journal_mode answers with the mode it ended up in; WAL can be refused (e.g. on some
    // filesystems).
    sqlite3_stmt* raw_stmt = nullptr;
    rc = sqlite3_prepare_v2(db.get(), "PRAGMA journal_mode = WAL", -1, &raw_stmt, nullptr);
    Stmt stmt(raw_stmt);
    if (rc != SQLITE_OK) return SqliteError(db.get(), rc, "journal mode");
    rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_ROW) return SqliteError(db.get(), rc, "journal mode");
    std::string mode(ColumnText(stmt.get(), 0));
    if (mode != "wal" && mode != "memory") {
      return absl::FailedPreconditionError(
          absl::StrCat("inbox store: ", path, ": journal mode is '", mode, "', not 'wal'"));
    }
  }
  if (absl::Status s = Exec(db.get(), "PRAGMA synchronous = FULL", "synchronous"); !s.ok())
    return s;

  // Create, migrate or check the schema in one write transaction, so that two processes starting
  // at once agree and a migration that fails half-way leaves the old schema as it was.
  if (absl::Status s = Exec(db.get(), "BEGIN IMMEDIATE", "begin"); !s.ok()) return s;
  absl::Status schema = [&]() -> absl::Status {
    sqlite3_stmt* raw_stmt = nullptr;
    int prc = sqlite3_prepare_v2(db.get(), "PRAGMA user_version", -1, &raw_stmt, nullptr);
    Stmt stmt(raw_stmt);
    if (prc != SQLITE_OK) return SqliteError(db.get(), prc, "schema version");
    if (prc = sqlite3_step(stmt.get()); prc != SQLITE_ROW) {
      return SqliteError(db.get(), prc, "schema version");
    }
    int version = sqlite3_column_int(stmt.get(), 0);
    stmt.reset();
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("inbox store: ", path, ": schema version ",
                                                        version, " is newer than this program's (",
                                                        kSchemaVersion, ")"));
    }
    if (version < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("inbox store: ", path, ": schema version ", version, " is not valid"));
    }
    for (int from = version; from < kSchemaVersion; ++from) {
      if (absl::Status s =
              Exec(db.get(), kMigrations[from], absl::StrCat("migrate schema to ", from + 1));
          !s.ok()) {
        return s;
      }
    }
    if (version > 0 && version < kSchemaVersion) {
      spdlog::info("inbox store: migrated the schema from version {} to {}", version,
                   kSchemaVersion);
    }
    // Who this database is: a random id made once per file (see InstanceId()).
    return Exec(db.get(),
                "CREATE TABLE IF NOT EXISTS instance (id TEXT NOT NULL);"
                "INSERT INTO instance (id) SELECT lower(hex(randomblob(8)))"
                " WHERE NOT EXISTS (SELECT 1 FROM instance);",
                "instance id");
  }();
  if (!schema.ok()) {
    if (absl::Status s = Exec(db.get(), "ROLLBACK", "rollback"); !s.ok()) {
      spdlog::error("{}", std::string(s.message()));
    }
    return schema;
  }
  if (absl::Status s = Exec(db.get(), "COMMIT", "commit"); !s.ok()) return s;

  std::unique_ptr<InboxStore> store(new InboxStore(std::move(db)));
  if (absl::Status s = store->Prepare(); !s.ok()) return s;
  return store;
}

absl::Status InboxStore::Prepare() {
  auto prepare = [this](std::string_view sql, Stmt& out) -> absl::Status {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    out.reset(raw);
    if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "prepare");
    return absl::OkStatus();
  };
  const std::string count_open =
      absl::StrCat("SELECT count(*) FROM assignments WHERE ", OpenCondition());
  const std::pair<std::string_view, Stmt*> statements[] = {
      {"BEGIN IMMEDIATE", &begin_},
      {"COMMIT", &commit_},
      {"ROLLBACK", &rollback_},
      {"INSERT INTO assignments"
       " (assignment_id, status, need_code, requested_seconds, requested_nanos, body)"
       " VALUES (:id, :status, :need, :seconds, :nanos, :body)"
       " ON CONFLICT (assignment_id) DO NOTHING",
       &insert_},
      {"UPDATE assignments SET status = :status, need_code = :need, body = :body"
       " WHERE assignment_id = :id",
       &update_},
      {"INSERT INTO changes (assignment_id, body) VALUES (:id, :body)", &insert_change_},
      {"INSERT INTO outbox (topic, key, value) VALUES (:topic, :key, :value)", &insert_outbox_},
      {"SELECT body FROM assignments WHERE assignment_id = :id", &get_},
      {"SELECT count(*) FROM assignments", &count_},
      {count_open, &count_open_},
      {"SELECT need_code, status, count(*) FROM assignments GROUP BY need_code, status"
       " ORDER BY need_code, status",
       &count_by_need_and_status_},
      {"SELECT sequence, body FROM changes WHERE sequence > :after ORDER BY sequence LIMIT :limit",
       &changes_after_},
      {"SELECT coalesce(max(sequence), 0) FROM changes", &last_sequence_},
      {"SELECT id, topic, key, value FROM outbox ORDER BY id LIMIT :limit", &pending_outbox_},
      {"DELETE FROM outbox WHERE id = :id", &delete_outbox_},
      {"INSERT INTO audit (entry) VALUES (:entry)", &insert_audit_},
      {"SELECT id, entry FROM audit ORDER BY id LIMIT :limit", &pending_audit_},
      {"DELETE FROM audit WHERE id = :id", &delete_audit_},
      {"INSERT INTO assignment_keys (assignment_id, key_id, key) VALUES (:id, :key_id, :key)"
       " ON CONFLICT (assignment_id) DO NOTHING",
       &put_key_},
      {"SELECT key_id, key FROM assignment_keys WHERE assignment_id = :id", &get_key_},

  };
  for (const auto& [sql, stmt] : statements) {
    if (absl::Status s = prepare(sql, *stmt); !s.ok()) return s;
  }
  for (int filters = 0; filters < 4; ++filters) {
    std::string sql = absl::StrCat(
        "SELECT body, requested_seconds, requested_nanos, assignment_id FROM assignments WHERE ",
        (filters & kFilterStatus) != 0 ? "status = :status AND " : "",
        (filters & kFilterNeed) != 0 ? "need_code = :need AND " : "",
        "(requested_seconds, requested_nanos, assignment_id) > (:seconds, :nanos, :id)"
        " ORDER BY requested_seconds, requested_nanos, assignment_id LIMIT :limit");
    if (absl::Status s = prepare(sql, list_[filters]); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status InboxStore::WriteFailed(absl::Status status) {
  write_failed_ = true;
  return status;
}

absl::Status InboxStore::WriteAudit(const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) {
    sqlite3_stmt* stmt = insert_audit_.get();
    ResetOnExit reset(stmt);
    Binder bind(db_.get(), stmt);
    bind.Blob(":entry", entry);
    if (!bind.status().ok()) return WriteFailed(bind.status());
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
      return WriteFailed(SqliteError(db_.get(), rc, "insert audit"));
    }
  }
  return absl::OkStatus();
}

absl::Status InboxStore::WriteChange(const std::string& assignment_id, const std::string& body,
                                     const std::vector<OutboxEvent>& events,
                                     const std::vector<std::string>& audit) {
  if (absl::Status s = WriteAudit(audit); !s.ok()) return s;
  {
    sqlite3_stmt* stmt = insert_change_.get();
    ResetOnExit reset(stmt);
    Binder bind(db_.get(), stmt);
    bind.Text(":id", assignment_id);
    bind.Blob(":body", body);
    if (!bind.status().ok()) return WriteFailed(bind.status());
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
      return WriteFailed(SqliteError(db_.get(), rc, "insert change"));
    }
  }
  for (const OutboxEvent& event : events) {
    sqlite3_stmt* stmt = insert_outbox_.get();
    ResetOnExit reset(stmt);
    Binder bind(db_.get(), stmt);
    bind.Text(":topic", event.topic);
    bind.Blob(":key", event.key);
    bind.Blob(":value", event.value);
    if (!bind.status().ok()) return WriteFailed(bind.status());
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
      return WriteFailed(SqliteError(db_.get(), rc, "insert outbox"));
    }
  }
  wrote_ = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> InboxStore::InsertLocked(const schakel::v1::Assignment& assignment,
                                              const std::vector<OutboxEvent>& events,
                                              const std::vector<std::string>& audit) {
  if (assignment.assignment_id().empty()) {
    return absl::InvalidArgumentError("assignment_id: is required");
  }
  const google::protobuf::Timestamp& requested_at = assignment.requested_at();
  if (requested_at.nanos() < 0 || requested_at.nanos() > 999'999'999) {
    return absl::InvalidArgumentError("requested_at: nanos out of range");
  }
  absl::StatusOr<std::string> body = Serialize(assignment);
  if (!body.ok()) return body.status();
  {
    sqlite3_stmt* stmt = insert_.get();
    ResetOnExit reset(stmt);
    Binder bind(db_.get(), stmt);
    bind.Text(":id", assignment.assignment_id());
    bind.Int64(":status", assignment.status());
    bind.Text(":need", assignment.need_code());
    bind.Int64(":seconds", requested_at.seconds());
    bind.Int64(":nanos", requested_at.nanos());
    bind.Blob(":body", *body);
    if (!bind.status().ok()) return WriteFailed(bind.status());
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
      return WriteFailed(SqliteError(db_.get(), rc, "insert"));
    }
  }
  // There already: nothing was written.
  if (sqlite3_changes(db_.get()) != 1) return false;
  if (absl::Status s = WriteChange(assignment.assignment_id(), *body, events, audit); !s.ok()) {
    return s;
  }
  return true;
}

absl::StatusOr<bool> InboxStore::Insert(const schakel::v1::Assignment& assignment,
                                        std::vector<OutboxEvent> events,
                                        std::vector<std::string> audit) {
  bool inserted = false;
  absl::Status stored = InTransaction([&](Batch& batch) -> absl::Status {
    absl::StatusOr<bool> done = batch.Insert(assignment, events, audit);
    if (!done.ok()) return done.status();
    inserted = *done;
    return absl::OkStatus();
  });
  if (!stored.ok()) return stored;
  return inserted;
}

absl::StatusOr<schakel::v1::Assignment> InboxStore::ApplyLocked(const std::string& assignment_id,
                                                                std::uint64_t expected_version,
                                                                const ChangeFn& change) {
  absl::StatusOr<schakel::v1::Assignment> current = GetLocked(assignment_id);
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
  {
    sqlite3_stmt* stmt = update_.get();
    ResetOnExit reset(stmt);
    Binder bind(db_.get(), stmt);
    bind.Text(":id", assignment_id);
    bind.Int64(":status", decided->assignment.status());
    bind.Text(":need", decided->assignment.need_code());
    bind.Blob(":body", *body);
    if (!bind.status().ok()) return WriteFailed(bind.status());
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
      return WriteFailed(SqliteError(db_.get(), rc, "update"));
    }
  }
  if (absl::Status s = WriteChange(assignment_id, *body, decided->events, decided->audit);
      !s.ok()) {
    return s;
  }
  return std::move(decided->assignment);
}

absl::StatusOr<schakel::v1::Assignment> InboxStore::Apply(const std::string& assignment_id,
                                                          std::uint64_t expected_version,
                                                          const ChangeFn& change) {
  schakel::v1::Assignment stored;
  absl::Status applied = InTransaction([&](Batch& batch) -> absl::Status {
    absl::StatusOr<schakel::v1::Assignment> done =
        batch.Apply(assignment_id, expected_version, change);
    if (!done.ok()) return done.status();
    stored = *std::move(done);
    return absl::OkStatus();
  });
  if (!applied.ok()) return applied;
  return stored;
}

absl::StatusOr<std::vector<std::string>> InboxStore::EraseClient(
    const std::string& client_pseudonym,
    const std::function<void(schakel::v1::Assignment&)>& erase) {
  std::vector<std::string> erased;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3* db = db_.get();
    Transaction transaction(*this);
    if (absl::Status s = transaction.Begin(); !s.ok()) return s;
    // Rewrites every row of `table` whose body belongs to the client (and, for the changes feed,
    // to an assignment erased now); `key` names the row.
    const auto rewrite =
        [&](const char* select, const char* update,
            const std::function<bool(const schakel::v1::Assignment&)>& pick,
            const std::function<absl::Status(sqlite3_stmt*, const std::string&,
                                             const std::string&)>& after) -> absl::Status {
      std::vector<std::pair<std::string, std::string>> rows;  // key, new body
      {
        sqlite3_stmt* raw = nullptr;
        if (int rc = sqlite3_prepare_v2(db, select, -1, &raw, nullptr); rc != SQLITE_OK) {
          return SqliteError(db, rc, "erase: select");
        }
        Stmt stmt(raw);
        int rc;
        while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
          absl::StatusOr<schakel::v1::Assignment> body = ParseBody(stmt.get(), 1);
          if (!body.ok()) return body.status();
          if (body->client_pseudonym() != client_pseudonym || !pick(*body)) continue;
          erase(*body);
          absl::StatusOr<std::string> bytes = Serialize(*body);
          if (!bytes.ok()) return bytes.status();
          rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0)),
                            *std::move(bytes));
        }
        if (rc != SQLITE_DONE) return SqliteError(db, rc, "erase: scan");
      }
      sqlite3_stmt* raw = nullptr;
      if (int rc = sqlite3_prepare_v2(db, update, -1, &raw, nullptr); rc != SQLITE_OK) {
        return SqliteError(db, rc, "erase: update");
      }
      Stmt stmt(raw);
      for (const auto& [key, body] : rows) {
        sqlite3_reset(stmt.get());
        sqlite3_bind_blob(stmt.get(), 1, body.data(), static_cast<int>(body.size()),
                          SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt.get(), 2, key.data(), static_cast<int>(key.size()),
                          SQLITE_TRANSIENT);
        if (int rc = sqlite3_step(stmt.get()); rc != SQLITE_DONE) {
          return SqliteError(db, rc, "erase: rewrite");
        }
        if (after) {
          if (absl::Status s = after(stmt.get(), key, body); !s.ok()) return s;
        }
      }
      return absl::OkStatus();
    };
    // The changes feed first (its older rows), then the assignments, each of which adds a change.
    std::set<std::string> ids;
    {
      sqlite3_stmt* raw = nullptr;
      if (int rc = sqlite3_prepare_v2(db, "SELECT assignment_id, body FROM assignments", -1, &raw,
                                      nullptr);
          rc != SQLITE_OK) {
        return SqliteError(db, rc, "erase: select");
      }
      Stmt stmt(raw);
      int rc;
      while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
        absl::StatusOr<schakel::v1::Assignment> body = ParseBody(stmt.get(), 1);
        if (!body.ok()) return body.status();
        if (body->client_pseudonym() == client_pseudonym && !body->erased()) {
          ids.insert(body->assignment_id());
        }
      }
      if (rc != SQLITE_DONE) return SqliteError(db, rc, "erase: scan");
    }
    if (ids.empty()) return erased;
    // Freed and rewritten bytes are overwritten, not left in free pages (for this erasure only:
    // it costs writes the outbox's deletes need not pay).
    if (absl::Status s = Exec(db, "PRAGMA secure_delete = ON", "secure_delete"); !s.ok()) return s;
    const auto in_ids = [&ids](const schakel::v1::Assignment& a) {
      return ids.count(a.assignment_id()) > 0;
    };
    if (absl::Status s =
            rewrite("SELECT sequence, body FROM changes",
                    "UPDATE changes SET body = ?1 WHERE sequence = ?2", in_ids, nullptr);
        !s.ok()) {
      return s;
    }
    if (absl::Status s =
            rewrite("SELECT assignment_id, body FROM assignments",
                    "UPDATE assignments SET body = ?1 WHERE assignment_id = ?2", in_ids,
                    [this, &erased](sqlite3_stmt*, const std::string& id, const std::string& body) {
                      erased.push_back(id);
                      return WriteChange(id, body, {}, {});
                    });
        !s.ok()) {
      return s;
    }
    // The inbox's copies of the client's key go too.
    {
      sqlite3_stmt* raw = nullptr;
      if (int rc = sqlite3_prepare_v2(db, "DELETE FROM assignment_keys WHERE assignment_id = ?1",
                                      -1, &raw, nullptr);
          rc != SQLITE_OK) {
        return SqliteError(db, rc, "erase: keys");
      }
      Stmt stmt(raw);
      for (const std::string& id : ids) {
        sqlite3_reset(stmt.get());
        sqlite3_bind_text(stmt.get(), 1, id.data(), static_cast<int>(id.size()), SQLITE_TRANSIENT);
        if (int rc = sqlite3_step(stmt.get()); rc != SQLITE_DONE) {
          return SqliteError(db, rc, "erase: keys");
        }
      }
    }
    if (absl::Status s = transaction.Commit(); !s.ok()) return s;
    if (int rc =
            sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
        rc != SQLITE_OK) {
      spdlog::warn("inbox store: checkpoint after erasure: {}", sqlite3_errmsg(db));
    }
    if (absl::Status s = Exec(db, "PRAGMA secure_delete = OFF", "secure_delete"); !s.ok()) {
      return s;
    }
  }
  NotifyCommitted();
  return erased;
}

absl::Status InboxStore::InTransaction(const std::function<absl::Status(Batch& batch)>& work) {
  bool wrote = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Transaction transaction(*this);
    if (absl::Status s = transaction.Begin(); !s.ok()) return s;
    wrote_ = false;
    write_failed_ = false;
    Batch batch(*this);
    absl::Status worked = work(batch);
    if (worked.ok() && write_failed_) {
      worked = absl::InternalError(
          "inbox store: a write in the transaction failed and its error was not returned");
    }
    // Not committed: the transaction rolls back everything written in it.
    if (!worked.ok()) return worked;
    if (absl::Status s = transaction.Commit(); !s.ok()) return s;
    wrote = wrote_;
  }
  if (wrote) NotifyCommitted();
  return absl::OkStatus();
}

absl::StatusOr<bool> InboxStore::Batch::Insert(const schakel::v1::Assignment& assignment,
                                               const std::vector<OutboxEvent>& events,
                                               const std::vector<std::string>& audit) {
  return store_.InsertLocked(assignment, events, audit);
}

absl::Status InboxStore::Batch::AddAudit(const std::vector<std::string>& entries) {
  return store_.WriteAudit(entries);
}

absl::StatusOr<schakel::v1::Assignment> InboxStore::Batch::Apply(const std::string& assignment_id,
                                                                 std::uint64_t expected_version,
                                                                 const ChangeFn& change) {
  return store_.ApplyLocked(assignment_id, expected_version, change);
}

absl::StatusOr<schakel::v1::Assignment> InboxStore::Batch::Get(const std::string& assignment_id) {
  return store_.GetLocked(assignment_id);
}

absl::Status InboxStore::Batch::PutKey(const std::string& assignment_id, const DataKey& key) {
  return store_.PutKeyLocked(assignment_id, key);
}

absl::StatusOr<std::optional<DataKey>> InboxStore::Batch::GetKey(const std::string& assignment_id) {
  return store_.GetKeyLocked(assignment_id);
}

absl::StatusOr<std::optional<DataKey>> InboxStore::GetKey(const std::string& assignment_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetKeyLocked(assignment_id);
}

absl::Status InboxStore::PutKeyLocked(const std::string& assignment_id, const DataKey& key) {
  sqlite3_stmt* stmt = put_key_.get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Text(":id", assignment_id);
  bind.Text(":key_id", key.key_id);
  bind.Blob(":key", key.key);
  if (!bind.status().ok()) return WriteFailed(bind.status());
  if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
    return WriteFailed(SqliteError(db_.get(), rc, "insert key"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<DataKey>> InboxStore::GetKeyLocked(const std::string& assignment_id) {
  sqlite3_stmt* stmt = get_key_.get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Text(":id", assignment_id);
  if (!bind.status().ok()) return bind.status();
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "get key");
  return DataKey{.key_id = std::string(ColumnText(stmt, 0)),
                 .key = std::string(ColumnBlob(stmt, 1))};
}

absl::StatusOr<Page> InboxStore::Batch::List(const ListQuery& query) {
  return store_.ListLocked(query);
}

absl::StatusOr<std::int64_t> InboxStore::Batch::CountOpen() {
  return store_.CountLocked(store_.count_open_.get(), "count open");
}

absl::StatusOr<schakel::v1::Assignment> InboxStore::Get(const std::string& assignment_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetLocked(assignment_id);
}

absl::StatusOr<schakel::v1::Assignment> InboxStore::GetLocked(const std::string& assignment_id) {
  sqlite3_stmt* stmt = get_.get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Text(":id", assignment_id);
  if (!bind.status().ok()) return bind.status();
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return absl::NotFoundError("assignment not found");
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "get");
  return ParseBody(stmt, 0);
}

absl::StatusOr<Page> InboxStore::List(const ListQuery& query) {
  std::lock_guard<std::mutex> lock(mu_);
  return ListLocked(query);
}

absl::StatusOr<Page> InboxStore::ListLocked(const ListQuery& query) {
  if (query.page_size <= 0) return absl::InvalidArgumentError("page_size: must be positive");
  Cursor cursor;
  if (!query.page_token.empty()) {
    absl::StatusOr<Cursor> decoded = DecodeToken(query);
    if (!decoded.ok()) return decoded.status();
    cursor = *std::move(decoded);
  }
  int filters = (query.status != schakel::v1::ASSIGNMENT_STATUS_UNSPECIFIED ? kFilterStatus : 0) |
                (!query.need_code.empty() ? kFilterNeed : 0);

  sqlite3_stmt* stmt = list_[filters].get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Int64(":status", query.status, /*required=*/false);
  bind.Text(":need", query.need_code, /*required=*/false);
  bind.Int64(":seconds", cursor.seconds);
  bind.Int64(":nanos", cursor.nanos);
  bind.Text(":id", cursor.assignment_id);
  // One row more than asked tells whether there is a next page.
  bind.Int64(":limit", static_cast<std::int64_t>(query.page_size) + 1);
  if (!bind.status().ok()) return bind.status();

  Page page;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (static_cast<int>(page.assignments.size()) == query.page_size) {
      page.next_page_token = EncodeToken(query, cursor);
      break;
    }
    absl::StatusOr<schakel::v1::Assignment> assignment = ParseBody(stmt, 0);
    if (!assignment.ok()) return assignment.status();
    page.assignments.push_back(*std::move(assignment));
    cursor.seconds = sqlite3_column_int64(stmt, 1);
    cursor.nanos = sqlite3_column_int64(stmt, 2);
    cursor.assignment_id = std::string(ColumnText(stmt, 3));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "list");
  return page;
}

absl::StatusOr<std::int64_t> InboxStore::CountWith(sqlite3_stmt* stmt, const char* what) {
  std::lock_guard<std::mutex> lock(mu_);
  return CountLocked(stmt, what);
}

absl::StatusOr<std::int64_t> InboxStore::CountLocked(sqlite3_stmt* stmt, const char* what) {
  ResetOnExit reset(stmt);
  if (int rc = sqlite3_step(stmt); rc != SQLITE_ROW) return SqliteError(db_.get(), rc, what);
  return sqlite3_column_int64(stmt, 0);
}

absl::StatusOr<std::int64_t> InboxStore::Count() { return CountWith(count_.get(), "count"); }

absl::StatusOr<std::string> InboxStore::InstanceId() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), "SELECT id FROM instance LIMIT 1", -1, &raw, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "instance id");
  Stmt stmt(raw);
  rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "instance id");
  return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0)));
}

absl::StatusOr<std::int64_t> InboxStore::CountOpen() {
  return CountWith(count_open_.get(), "count open");
}

absl::StatusOr<std::vector<InboxStore::NeedStatusCount>> InboxStore::CountByNeedAndStatus() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = count_by_need_and_status_.get();
  ResetOnExit reset(stmt);
  std::vector<NeedStatusCount> counts;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    counts.push_back({reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                      static_cast<v1::AssignmentStatus>(sqlite3_column_int(stmt, 1)),
                      sqlite3_column_int64(stmt, 2)});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "count by need and status");
  return counts;
}

absl::StatusOr<std::int64_t> InboxStore::LastSequence() {
  return CountWith(last_sequence_.get(), "last sequence");
}

absl::StatusOr<std::vector<StoredChange>> InboxStore::ChangesAfter(std::int64_t after, int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = changes_after_.get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Int64(":after", after);
  bind.Int64(":limit", limit);
  if (!bind.status().ok()) return bind.status();
  std::vector<StoredChange> changes;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    StoredChange change;
    change.sequence = sqlite3_column_int64(stmt, 0);
    absl::StatusOr<schakel::v1::Assignment> assignment = ParseBody(stmt, 1);
    if (!assignment.ok()) return assignment.status();
    change.assignment = *std::move(assignment);
    changes.push_back(std::move(change));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "changes");
  return changes;
}

absl::StatusOr<std::vector<OutboxEntry>> InboxStore::PendingOutbox(int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = pending_outbox_.get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Int64(":limit", limit);
  if (!bind.status().ok()) return bind.status();
  std::vector<OutboxEntry> entries;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    OutboxEntry entry;
    entry.id = sqlite3_column_int64(stmt, 0);
    entry.event.topic = std::string(ColumnText(stmt, 1));
    entry.event.key = std::string(ColumnBlob(stmt, 2));
    entry.event.value = std::string(ColumnBlob(stmt, 3));
    entries.push_back(std::move(entry));
  }
  if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "outbox");
  return entries;
}

absl::Status InboxStore::DeleteOutbox(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction transaction(*this);
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  for (std::int64_t id : ids) {
    sqlite3_stmt* stmt = delete_outbox_.get();
    ResetOnExit reset(stmt);
    Binder bind(db_.get(), stmt);
    bind.Int64(":id", id);
    if (!bind.status().ok()) return bind.status();
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
      return SqliteError(db_.get(), rc, "delete outbox");
    }
  }
  return transaction.Commit();
}

absl::Status InboxStore::AddAudit(const std::vector<std::string>& entries) {
  if (entries.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction transaction(*this);
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  if (absl::Status s = WriteAudit(entries); !s.ok()) return s;
  return transaction.Commit();
}

absl::StatusOr<std::vector<AuditRow>> InboxStore::PendingAudit(int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = pending_audit_.get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Int64(":limit", limit);
  if (!bind.status().ok()) return bind.status();
  std::vector<AuditRow> rows;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    rows.push_back({sqlite3_column_int64(stmt, 0), std::string(ColumnBlob(stmt, 1))});
  }
  if (rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "pending audit");
  return rows;
}

absl::Status InboxStore::DeleteAudit(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  Transaction transaction(*this);
  if (absl::Status s = transaction.Begin(); !s.ok()) return s;
  for (std::int64_t id : ids) {
    sqlite3_stmt* stmt = delete_audit_.get();
    ResetOnExit reset(stmt);
    Binder bind(db_.get(), stmt);
    bind.Int64(":id", id);
    if (!bind.status().ok()) return bind.status();
    if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) {
      return SqliteError(db_.get(), rc, "delete audit");
    }
  }
  return transaction.Commit();
}

InboxStore::Subscription InboxStore::OnCommit(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  const std::uint64_t id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return Subscription(this, id);
}

void InboxStore::Unsubscribe(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  listeners_.erase(id);
}

void InboxStore::NotifyCommitted() {
  std::lock_guard<std::mutex> lock(listeners_mu_);
  for (const auto& [id, listener] : listeners_) listener();
}

}  // namespace schakel::store
