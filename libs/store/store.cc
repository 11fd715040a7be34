#include "libs/store/store.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <cstdint>
#include <limits>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace schakel::store {
namespace {

// PRAGMA user_version of the schema this code writes. Raise it with every change and migrate in
// Open.
constexpr int kSchemaVersion = 1;
constexpr int kBusyTimeoutMs = 5000;

constexpr char kCreateSchema[] = R"sql(
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
)sql";

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

}  // namespace

void InboxStore::DbCloser::operator()(sqlite3* db) const {
  if (int rc = sqlite3_close_v2(db); rc != SQLITE_OK) {
    spdlog::error("inbox store: close: {}", sqlite3_errstr(rc));
  }
}

void InboxStore::StmtFinalizer::operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }

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

  // Create or check the schema in one write transaction, so two processes starting at once agree.
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
    if (version == 0) return Exec(db.get(), kCreateSchema, "create schema");
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("inbox store: ", path, ": schema version ",
                                                        version, " is newer than this program's (",
                                                        kSchemaVersion, ")"));
    }
    return absl::OkStatus();
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
  if (absl::Status s =
          prepare("INSERT INTO assignments"
                  " (assignment_id, status, need_code, requested_seconds, requested_nanos, body)"
                  " VALUES (:id, :status, :need, :seconds, :nanos, :body)"
                  " ON CONFLICT (assignment_id) DO NOTHING",
                  insert_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = prepare("SELECT body FROM assignments WHERE assignment_id = :id", get_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = prepare("SELECT count(*) FROM assignments", count_); !s.ok()) return s;
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

absl::StatusOr<bool> InboxStore::Insert(const schakel::v1::Assignment& assignment) {
  if (assignment.assignment_id().empty()) {
    return absl::InvalidArgumentError("assignment_id: is required");
  }
  const google::protobuf::Timestamp& requested_at = assignment.requested_at();
  if (requested_at.nanos() < 0 || requested_at.nanos() > 999'999'999) {
    return absl::InvalidArgumentError("requested_at: nanos out of range");
  }
  std::string body;
  if (!assignment.SerializeToString(&body)) {
    return absl::InternalError("inbox store: cannot serialize an assignment");
  }

  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = insert_.get();
  ResetOnExit reset(stmt);
  Binder bind(db_.get(), stmt);
  bind.Text(":id", assignment.assignment_id());
  bind.Int64(":status", assignment.status());
  bind.Text(":need", assignment.need_code());
  bind.Int64(":seconds", requested_at.seconds());
  bind.Int64(":nanos", requested_at.nanos());
  bind.Blob(":body", body);
  if (!bind.status().ok()) return bind.status();
  if (int rc = sqlite3_step(stmt); rc != SQLITE_DONE) return SqliteError(db_.get(), rc, "insert");
  return sqlite3_changes(db_.get()) == 1;
}

absl::StatusOr<schakel::v1::Assignment> InboxStore::Get(const std::string& assignment_id) {
  std::lock_guard<std::mutex> lock(mu_);
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
  if (query.page_size <= 0) return absl::InvalidArgumentError("page_size: must be positive");
  Cursor cursor;
  if (!query.page_token.empty()) {
    absl::StatusOr<Cursor> decoded = DecodeToken(query);
    if (!decoded.ok()) return decoded.status();
    cursor = *std::move(decoded);
  }
  int filters = (query.status != schakel::v1::ASSIGNMENT_STATUS_UNSPECIFIED ? kFilterStatus : 0) |
                (!query.need_code.empty() ? kFilterNeed : 0);

  std::lock_guard<std::mutex> lock(mu_);
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

absl::StatusOr<std::int64_t> InboxStore::Count() {
  std::lock_guard<std::mutex> lock(mu_);
  sqlite3_stmt* stmt = count_.get();
  ResetOnExit reset(stmt);
  if (int rc = sqlite3_step(stmt); rc != SQLITE_ROW) return SqliteError(db_.get(), rc, "count");
  return sqlite3_column_int64(stmt, 0);
}

}  // namespace schakel::store
