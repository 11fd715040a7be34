#include "libs/sqlite/sqlite.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace schakel::sqlite {
namespace {

// `context` says where ("inbox store: get"); SQLite's message names tables and columns, never
// bound values.
absl::Status ErrorFor(sqlite3* db, int rc, Errors errors, std::string_view context) {
  std::string message = absl::StrCat(std::string(context), ": ",
                                     db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (errors == Errors::kAllUnavailable) return absl::UnavailableError(message);
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

}  // namespace

// Statements from Database::Prepare that were used and given back, by their SQL, ready for the
// next Prepare of the same SQL. Bounded: SQL that differs per call (it should bind its values)
// would otherwise fill it.
class StatementPool {
 public:
  static constexpr std::size_t kMax = 64;
  ~StatementPool() {
    for (auto& [sql, stmts] : idle_) {
      for (sqlite3_stmt* stmt : stmts) sqlite3_finalize(stmt);
    }
  }
  sqlite3_stmt* Take(std::string_view sql) {
    auto it = idle_.find(sql);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    sqlite3_stmt* stmt = it->second.back();
    it->second.pop_back();
    --size_;
    return stmt;
  }
  // False when full: the caller finalizes it.
  bool Give(sqlite3_stmt* stmt) {
    if (size_ >= kMax) return false;
    idle_[sqlite3_sql(stmt)].push_back(stmt);
    ++size_;
    return true;
  }

 private:
  std::map<std::string, std::vector<sqlite3_stmt*>, std::less<>> idle_;
  std::size_t size_ = 0;
};

Statement::~Statement() { Release(); }

void Statement::Release() {
  if (stmt_ == nullptr) return;
  if (std::shared_ptr<StatementPool> pool = pool_.lock()) {
    // As Reset, which its next user would otherwise inherit.
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    if (pool->Give(stmt_)) {
      stmt_ = nullptr;
      return;
    }
  }
  sqlite3_finalize(stmt_);
  stmt_ = nullptr;
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      context_(std::move(other.context_)),
      errors_(other.errors_),
      bind_error_(std::move(other.bind_error_)),
      pool_(std::move(other.pool_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    Release();
    stmt_ = std::exchange(other.stmt_, nullptr);
    context_ = std::move(other.context_);
    errors_ = other.errors_;
    bind_error_ = std::move(other.bind_error_);
    pool_ = std::move(other.pool_);
  }
  return *this;
}

int Statement::Index(const char* name) {
  const int index = sqlite3_bind_parameter_index(stmt_, name);
  if (index == 0 && bind_error_.ok()) {
    bind_error_ = absl::InternalError(absl::StrCat(context_, ": no parameter ", name));
  }
  return index;
}

void Statement::Check(int rc, std::string_view parameter) {
  if (rc != SQLITE_OK && bind_error_.ok()) {
    bind_error_ = ErrorFor(sqlite3_db_handle(stmt_), rc, errors_,
                           absl::StrCat(context_, ": bind ", std::string(parameter)));
  }
}

Statement& Statement::BindText(int index, std::string_view value) {
  Check(
      sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      std::to_string(index));
  return *this;
}

Statement& Statement::BindText(const char* name, std::string_view value) {
  if (const int index = Index(name); index > 0) {
    Check(sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8),
          name);
  }
  return *this;
}

Statement& Statement::BindBlob(int index, std::string_view value) {
  Check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT),
        std::to_string(index));
  return *this;
}

Statement& Statement::BindBlob(const char* name, std::string_view value) {
  if (const int index = Index(name); index > 0) {
    Check(sqlite3_bind_blob64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT), name);
  }
  return *this;
}

Statement& Statement::BindInt64(int index, std::int64_t value) {
  Check(sqlite3_bind_int64(stmt_, index, value), std::to_string(index));
  return *this;
}

Statement& Statement::BindInt64(const char* name, std::int64_t value) {
  if (const int index = Index(name); index > 0)
    Check(sqlite3_bind_int64(stmt_, index, value), name);
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (!bind_error_.ok()) return bind_error_;
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return ErrorFor(sqlite3_db_handle(stmt_), rc, errors_, context_);
}

absl::Status Statement::Run() {
  absl::StatusOr<bool> row;
  while ((row = Step()).ok() && *row) {
  }
  Reset();
  return row.status();
}

void Statement::Reset() {
  if (stmt_ == nullptr) return;
  // sqlite3_reset returns the last step's error again, which its caller has had already.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = absl::OkStatus();
}

std::int64_t Statement::Int64(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::string Statement::Blob(int column) const { return std::string(BlobView(column)); }

std::string_view Statement::BlobView(int column) const {
  const void* blob = sqlite3_column_blob(stmt_, column);
  if (blob == nullptr) return {};
  return std::string_view(static_cast<const char*>(blob),
                          static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::size_t Statement::Bytes(int column) const {
  return static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
}

void Database::Closer::operator()(sqlite3* db) const {
  if (int rc = sqlite3_close_v2(db); rc != SQLITE_OK) {
    spdlog::error("sqlite: close: {}", sqlite3_errstr(rc));
  }
}

Database::Database(sqlite3* db, std::string path, Options options)
    : db_(db),
      path_(std::move(path)),
      options_(std::move(options)),
      pool_(std::make_shared<StatementPool>()) {}

Database::~Database() = default;
Database::Database(Database&& other) noexcept = default;
Database& Database::operator=(Database&& other) noexcept = default;

absl::StatusOr<Database> Database::Open(const std::string& path, Options options) {
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // SQLite hands out a handle even when opening fails; it must be closed either way.
  Database db(raw, path, std::move(options));
  if (rc != SQLITE_OK) return db.Error(rc, absl::StrCat("open ", path));
  if (absl::Status s = db.ApplyOptions(); !s.ok()) return s;
  return db;
}

absl::Status Database::ApplyOptions() {
  sqlite3* db = db_.get();
  if (int rc = sqlite3_extended_result_codes(db, 1); rc != SQLITE_OK) {
    return Error(rc, "extended result codes");
  }
  if (int rc = sqlite3_busy_timeout(db, options_.busy_timeout_ms); rc != SQLITE_OK) {
    return Error(rc, "busy timeout");
  }
  {
    // journal_mode answers with the mode it ended up in: WAL can be refused (on some file
    // systems), and a database in memory keeps its journal in memory.
    absl::StatusOr<Statement> journal = Prepare("PRAGMA journal_mode = WAL", "journal mode");
    if (!journal.ok()) return journal.status();
    absl::StatusOr<bool> row = journal->Step();
    if (!row.ok()) return row.status();
    const std::string mode = *row ? journal->Text(0) : "";
    if (options_.require_wal && mode != "wal" && mode != "memory") {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.name, ": ", path_, ": journal mode is '", mode, "', not 'wal'"));
    }
  }
  if (absl::Status s = Exec("PRAGMA synchronous = FULL", "synchronous"); !s.ok()) return s;
  if (options_.secure_delete) {
    if (absl::Status s = Exec("PRAGMA secure_delete = ON", "secure_delete"); !s.ok()) return s;
  }
  return KeepAll({{&begin_, "BEGIN IMMEDIATE", "begin"},
                  {&commit_, "COMMIT", "commit"},
                  {&rollback_, "ROLLBACK", "rollback"}});
}

absl::Status Database::Error(int rc, std::string_view what) const {
  return ErrorFor(db_.get(), rc, options_.errors,
                  absl::StrCat(options_.name, ": ", std::string(what)));
}

absl::Status Database::Exec(const char* sql, std::string_view what) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, &error);
  sqlite3_free(error);  // the same text as sqlite3_errmsg, which Error reads
  if (rc != SQLITE_OK) return Error(rc, what);
  return absl::OkStatus();
}

absl::StatusOr<Statement> Database::PrepareWith(std::string_view sql, std::string_view what,
                                                unsigned flags) {
  sqlite3_stmt* raw = nullptr;
  const int rc =
      sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), flags, &raw, nullptr);
  Statement statement(raw, absl::StrCat(options_.name, ": ", std::string(what)), options_.errors);
  if (rc != SQLITE_OK) return Error(rc, absl::StrCat("prepare ", std::string(what)));
  return statement;
}

absl::StatusOr<Statement> Database::Prepare(std::string_view sql, std::string_view what) {
  if (sqlite3_stmt* reused = pool_->Take(sql)) {
    return Statement(reused, absl::StrCat(options_.name, ": ", std::string(what)), options_.errors,
                     pool_);
  }
  // Persistent: it is meant to come back.
  absl::StatusOr<Statement> prepared = PrepareWith(sql, what, SQLITE_PREPARE_PERSISTENT);
  if (prepared.ok()) prepared->pool_ = pool_;
  return prepared;
}

absl::StatusOr<Statement> Database::Keep(std::string_view sql, std::string_view what) {
  return PrepareWith(sql, what, SQLITE_PREPARE_PERSISTENT);
}

absl::Status Database::KeepAll(std::initializer_list<ToKeep> statements) {
  for (const ToKeep& to_keep : statements) {
    absl::StatusOr<Statement> kept = Keep(to_keep.sql, to_keep.what);
    if (!kept.ok()) return kept.status();
    *to_keep.statement = *std::move(kept);
  }
  return absl::OkStatus();
}

std::int64_t Database::Changes() const { return sqlite3_changes64(db_.get()); }

absl::Status Database::Checkpoint() {
  if (int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                         nullptr);
      rc != SQLITE_OK) {
    return Error(rc, "checkpoint");
  }
  return absl::OkStatus();
}

absl::Status Database::Migrate(std::span<const char* const> migrations, const char* then) {
  const int latest = static_cast<int>(migrations.size());
  int version = 0;
  absl::Status migrated = InTransaction(*this, [&](Transaction&) -> absl::Status {
    {
      absl::StatusOr<Statement> read = Prepare("PRAGMA user_version", "schema version");
      if (!read.ok()) return read.status();
      absl::StatusOr<bool> row = read->Step();
      if (!row.ok()) return row.status();
      version = static_cast<int>(read->Int64(0));
    }
    if (version > latest) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.name, ": ", path_, ": schema version ", version,
                       " is newer than this program's (", latest, ")"));
    }
    if (version < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(options_.name, ": ", path_, ": schema version ", version, " is not valid"));
    }
    for (int from = version; from < latest; ++from) {
      if (absl::Status s = Exec(migrations[from], absl::StrCat("migrate schema to ", from + 1));
          !s.ok()) {
        return s;
      }
    }
    return then != nullptr ? Exec(then, "schema") : absl::OkStatus();
  });
  if (!migrated.ok()) return migrated;
  if (version > 0 && version < latest) {
    spdlog::info("{}: migrated the schema from version {} to {}", options_.name, version, latest);
  }
  return absl::OkStatus();
}

absl::StatusOr<Transaction> Transaction::Begin(Database& db) {
  if (absl::Status s = db.begin_.Run(); !s.ok()) return s;
  return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept
    : db_(other.db_), committed_(std::exchange(other.committed_, true)), failed_(other.failed_) {}

Transaction::~Transaction() {
  if (committed_) return;
  if (absl::Status s = db_->rollback_.Run(); !s.ok()) {
    spdlog::error("{}", std::string(s.message()));
  }
}

absl::Status Transaction::Run(Statement& statement) {
  absl::Status s = statement.Run();
  if (!s.ok()) failed_ = true;
  return s;
}

absl::Status Transaction::Commit() {
  if (failed_) {
    // Not committed: the destructor rolls everything back.
    return absl::InternalError(absl::StrCat(
        db_->options_.name, ": a write in the transaction failed and its error was not returned"));
  }
  absl::Status s = db_->commit_.Run();
  committed_ = s.ok();
  return s;
}

absl::Status InTransaction(Database& db, const std::function<absl::Status(Transaction& tx)>& work) {
  absl::StatusOr<Transaction> tx = Transaction::Begin(db);
  if (!tx.ok()) return tx.status();
  // Not committed: the transaction rolls back everything written in it.
  if (absl::Status worked = work(*tx); !worked.ok()) return worked;
  return tx->Commit();
}

}  // namespace schakel::sqlite
