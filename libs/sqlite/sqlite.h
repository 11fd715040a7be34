// The one small layer over SQLite that every store uses (the inbox's, the key service's, intake's
// referral view): a database handle that opens a file with the pragmas the stores rely on and
// brings a schema up to date by PRAGMA user_version; prepared statements with typed binding and
// column reading; and a write transaction that rolls back unless it is committed. Errors are
// absl::Status values with SQLite's own message, which names tables and columns but never a bound
// value: no personal data reaches an error text or a log line through it.
//
// Not safe for concurrent use: each store keeps its Database behind its own mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct sqlite3;
struct sqlite3_stmt;

namespace schakel::sqlite {

class StatementPool;

// How SQLite's failures become status codes.
enum class Errors {
  // By kind: UNAVAILABLE for what may pass (busy, locked, I/O, a full disk, a file that cannot be
  // opened), DATA_LOSS for a damaged file, INTERNAL for everything else (a bug).
  kByKind,
  // All UNAVAILABLE: for a store whose callers wait and retry whatever failed.
  kAllUnavailable,
};

struct Options {
  // The first words of every error message, naming the store ("inbox store").
  std::string name = "sqlite";
  Errors errors = Errors::kByKind;
  // Refuse (FAILED_PRECONDITION) a file on which SQLite will not keep a write-ahead log. Otherwise
  // WAL is asked for and whatever journal SQLite settles on is used.
  bool require_wal = true;
  // Freed bytes are overwritten instead of left in free pages, so what is deleted is gone.
  bool secure_delete = false;
  // How long a statement waits for another connection's lock before it fails; 0: not at all.
  int busy_timeout_ms = 5000;
};

// A prepared statement: bound, stepped through its rows and reset for its next use.
class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters by position (from 1) or by name (":id"). A failure, or a name the statement does
  // not have, is kept and returned by the next Step or Run.
  Statement& BindText(int index, std::string_view value);
  Statement& BindText(const char* name, std::string_view value);
  Statement& BindBlob(int index, std::string_view value);
  Statement& BindBlob(const char* name, std::string_view value);
  Statement& BindInt64(int index, std::int64_t value);
  Statement& BindInt64(const char* name, std::int64_t value);

  // One step: true when a row is ready to read, false when the statement is done.
  absl::StatusOr<bool> Step();
  // Runs the statement to its end, skipping any rows, and resets it: for writes.
  absl::Status Run();
  // Ends a use: resets the statement (a read it holds open is released) and clears its bindings.
  // Run does it itself; a kept statement that is read from needs it (see ScopedReset).
  void Reset();

  // Columns of the row Step made ready, from 0. A view is valid until the next Step or Reset.
  std::int64_t Int64(int column) const;
  std::string Text(int column) const;
  std::string Blob(int column) const;
  std::string_view BlobView(int column) const;
  // The column's size in bytes (more than BlobView's when SQLite ran out of memory reading it).
  std::size_t Bytes(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, std::string context, Errors errors,
            std::weak_ptr<StatementPool> pool = {})
      : stmt_(stmt), context_(std::move(context)), errors_(errors), pool_(std::move(pool)) {}
  int Index(const char* name);
  void Check(int rc, std::string_view parameter);
  // Gives the statement back to its pool, or finalizes it (kept, or the pool is gone or full).
  void Release();

  sqlite3_stmt* stmt_ = nullptr;
  std::string context_;  // "<store>: <what the statement does>", the start of its errors
  Errors errors_ = Errors::kByKind;
  absl::Status bind_error_;
  std::weak_ptr<StatementPool> pool_;  // where a prepared (not kept) statement goes back to
};

// Resets a kept statement when the scope ends, however its use ends (Statement::Reset).
class ScopedReset {
 public:
  explicit ScopedReset(Statement& statement) : statement_(statement) {}
  ~ScopedReset() { statement_.Reset(); }
  ScopedReset(const ScopedReset&) = delete;
  ScopedReset& operator=(const ScopedReset&) = delete;

 private:
  Statement& statement_;
};

class Database {
 public:
  // Opens (creating) the file at `path` (":memory:": a database in memory) with synchronous =
  // FULL, so a commit is durable when it returns, and the journal and pragmas `options` asks for.
  static absl::StatusOr<Database> Open(const std::string& path, Options options);
  ~Database();
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Brings the schema up to date: migrations[v] takes the database from user_version v to v + 1
  // (and sets it); a new database runs them all. `then` (statements no version covers, such as
  // CREATE ... IF NOT EXISTS) runs after them. All in one write transaction, so that two processes
  // starting at once agree and a migration that fails half-way leaves the file as it was.
  // FAILED_PRECONDITION for a database written by a newer schema than `migrations` knows.
  absl::Status Migrate(std::span<const char* const> migrations, const char* then = nullptr);

  // Runs SQL (one statement or several) whose rows, if any, are not wanted.
  absl::Status Exec(const char* sql, std::string_view what);
  // Prepares one statement; `what` names it in its errors. Prepare is for a statement used now and
  // then, Keep for one prepared at the start and reused for the life of the database. A statement
  // from Prepare goes back to the database's pool when it is destroyed (reset, its bindings
  // cleared), and the next Prepare of the same SQL takes it from there instead of compiling it
  // again: a store that prepares its statements per call does not pay SQLite's compiler per call.
  absl::StatusOr<Statement> Prepare(std::string_view sql, std::string_view what);
  absl::StatusOr<Statement> Keep(std::string_view sql, std::string_view what);
  // Keeps several statements at once: each is prepared into `*statement`. Stops at the first
  // failure and returns it.
  struct ToKeep {
    Statement* statement;
    std::string_view sql;
    std::string_view what;
  };
  absl::Status KeepAll(std::initializer_list<ToKeep> statements);

  // Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t Changes() const;
  // Writes the write-ahead log back into the file and truncates it, so that the images of freed
  // pages are gone from the log as well.
  absl::Status Checkpoint();

  // This database's error for SQLite's result `rc` while doing `what`.
  absl::Status Error(int rc, std::string_view what) const;

 private:
  friend class Transaction;
  struct Closer {
    void operator()(sqlite3* db) const;
  };
  Database(sqlite3* db, std::string path, Options options);
  absl::StatusOr<Statement> PrepareWith(std::string_view sql, std::string_view what,
                                        unsigned flags);
  absl::Status ApplyOptions();

  std::unique_ptr<sqlite3, Closer> db_;
  std::string path_;
  Options options_;
  // Declared after db_: statements are finalized before the connection closes.
  std::shared_ptr<StatementPool> pool_;
  Statement begin_;
  Statement commit_;
  Statement rollback_;
};

// A write transaction (BEGIN IMMEDIATE: the write lock is taken at once, so the transaction never
// fails half-way for want of it). Rolls back when it goes unless it was committed.
class Transaction {
 public:
  static absl::StatusOr<Transaction> Begin(Database& db);
  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Database& db() { return *db_; }
  // Runs a write in the transaction (Statement::Run). A failure is remembered, so that what was
  // written before it is never committed without it, even when the caller let the error go.
  absl::Status Run(Statement& statement);
  // Commits. INTERNAL, and everything rolled back, when a write inside failed (Run).
  absl::Status Commit();

 private:
  explicit Transaction(Database& db) : db_(&db) {}

  Database* db_;
  bool committed_ = false;
  bool failed_ = false;
};

// Runs `work` in one write transaction and commits what it wrote when it returns OK. When `work`
// fails, or a write inside it failed (Transaction::Run) even if `work` went on, everything it wrote
// is rolled back and that error returned.
absl::Status InTransaction(Database& db, const std::function<absl::Status(Transaction& tx)>& work);

}  // namespace schakel::sqlite
