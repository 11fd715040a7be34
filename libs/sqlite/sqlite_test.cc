#include "libs/sqlite/sqlite.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

namespace schakel::sqlite {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A fresh directory per test, removed afterwards.
class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "sqlite_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "test.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Database OpenOrDie(Options options = {.name = "test store"}) {
    absl::StatusOr<Database> db = Database::Open(path_, std::move(options));
    EXPECT_TRUE(db.ok()) << db.status();
    return *std::move(db);
  }

  // The first column of the first row of `sql`, as text.
  static std::string One(Database& db, const char* sql) {
    absl::StatusOr<Statement> statement = db.Prepare(sql, "read");
    EXPECT_TRUE(statement.ok()) << statement.status();
    if (!statement.ok()) return "";
    absl::StatusOr<bool> row = statement->Step();
    EXPECT_TRUE(row.ok() && *row) << row.status();
    return row.ok() && *row ? statement->Text(0) : "";
  }

  // A table of unique ids, and its kept insert (?1: the id).
  static Statement IdTable(Database& db) {
    EXPECT_TRUE(db.Exec("CREATE TABLE t (id TEXT PRIMARY KEY)", "create").ok());
    absl::StatusOr<Statement> insert = db.Keep("INSERT INTO t VALUES (?1)", "insert");
    EXPECT_TRUE(insert.ok()) << insert.status();
    return insert.ok() ? *std::move(insert) : Statement();
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteTest, OpensAFileInWalModeWithFullSynchronousWrites) {
  Database db = OpenOrDie();
  EXPECT_EQ(One(db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(One(db, "PRAGMA synchronous"), "2");  // FULL
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(SqliteTest, SecureDeleteIsOnWhenAsked) {
  Database db = OpenOrDie({.name = "keys", .secure_delete = true});
  EXPECT_EQ(One(db, "PRAGMA secure_delete"), "1");
}

TEST_F(SqliteTest, ADatabaseInMemoryOpens) {
  absl::StatusOr<Database> db = Database::Open(":memory:", {.name = "test store"});
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ(One(*db, "PRAGMA journal_mode"), "memory");
}

TEST_F(SqliteTest, OpenFailsWhereNoFileCanBeCreated) {
  absl::StatusOr<Database> db =
      Database::Open((dir_ / "missing" / "test.db").string(), {.name = "test store"});
  EXPECT_EQ(db.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(db.status().message()), StartsWith("test store: open "));
}

TEST_F(SqliteTest, BindsAndReadsTextBlobsAndIntegersByPositionAndByName) {
  Database db = OpenOrDie();
  ASSERT_TRUE(db.Exec("CREATE TABLE t (id TEXT, data BLOB, n INTEGER)", "create").ok());
  const std::string binary("\x00\xff bytes", 8);
  absl::StatusOr<Statement> insert = db.Prepare("INSERT INTO t VALUES (?1, :data, :n)", "insert");
  ASSERT_TRUE(insert.ok()) << insert.status();
  ASSERT_TRUE(insert->BindText(1, "a-1").BindBlob(":data", binary).BindInt64(":n", -7).Run().ok());
  EXPECT_EQ(db.Changes(), 1);
  ASSERT_TRUE(insert->BindText(1, "a-2").BindBlob(2, "").BindInt64(3, 1LL << 40).Run().ok());

  absl::StatusOr<Statement> select = db.Prepare("SELECT id, data, n FROM t ORDER BY id", "select");
  ASSERT_TRUE(select.ok()) << select.status();
  std::vector<std::string> rows;
  absl::StatusOr<bool> row;
  while ((row = select->Step()).ok() && *row) {
    rows.push_back(select->Text(0) + "|" + select->Blob(1) + "|" +
                   std::to_string(select->Int64(2)));
    EXPECT_EQ(select->BlobView(1).size(), select->Bytes(1));
  }
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_EQ(rows, (std::vector<std::string>{"a-1|" + binary + "|-7",
                                            "a-2||" + std::to_string(1LL << 40)}));
}

TEST_F(SqliteTest, AParameterTheStatementDoesNotHaveIsAnErrorWhenStepped) {
  Database db = OpenOrDie();
  absl::StatusOr<Statement> select = db.Keep("SELECT :known", "select");
  ASSERT_TRUE(select.ok()) << select.status();
  select->BindText(":unknown", "x").BindText(":known", "y");
  absl::StatusOr<bool> row = select->Step();
  EXPECT_EQ(row.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(row.status().message(), "test store: select: no parameter :unknown");
  // A reset clears the error with the bindings.
  select->Reset();
  select->BindText(":known", "y");
  row = select->Step();
  ASSERT_TRUE(row.ok() && *row) << row.status();
  EXPECT_EQ(select->Text(0), "y");
}

TEST_F(SqliteTest, AKeptStatementIsReusedAfterEachScopedUse) {
  Database db = OpenOrDie();
  ASSERT_TRUE(
      db.Exec("CREATE TABLE t (id TEXT); INSERT INTO t VALUES ('a'), ('b'), ('c');", "create")
          .ok());
  absl::StatusOr<Statement> find =
      db.Keep("SELECT id FROM t WHERE id >= :from ORDER BY id", "find");
  ASSERT_TRUE(find.ok()) << find.status();
  for (const char* from : {"b", "a", "c"}) {
    ScopedReset reset(*find);
    find->BindText(":from", from);
    absl::StatusOr<bool> row = find->Step();  // the first row only: the rest stay unread
    ASSERT_TRUE(row.ok() && *row) << row.status();
    EXPECT_EQ(find->Text(0), from);
  }
  // No read was left open: a checkpoint can truncate the log.
  ASSERT_TRUE(db.Exec("INSERT INTO t VALUES ('d')", "insert").ok());
  EXPECT_TRUE(db.Checkpoint().ok());
  EXPECT_EQ(std::filesystem::file_size(path_ + "-wal"), 0u);
}

// A prepared statement goes back to the database's pool when it is destroyed, and the next Prepare
// of the same SQL takes it: reset (a read it left half-way does not hold the log), without the
// bindings of its last use, and with its own name in its errors.
TEST_F(SqliteTest, APreparedStatementComesBackResetWithoutItsBindings) {
  Database db = OpenOrDie();
  ASSERT_TRUE(
      db.Exec("CREATE TABLE t (id TEXT); INSERT INTO t VALUES ('a'), ('b'), ('c');", "create")
          .ok());
  constexpr char kSql[] = "SELECT count(*), ?1 FROM t WHERE id >= ?1";
  {
    absl::StatusOr<Statement> first = db.Prepare(kSql, "first use");
    ASSERT_TRUE(first.ok()) << first.status();
    absl::StatusOr<bool> row = first->BindText(1, "b").Step();
    ASSERT_TRUE(row.ok() && *row) << row.status();
    EXPECT_EQ(first->Int64(0), 2);
  }
  absl::StatusOr<Statement> again = db.Prepare(kSql, "second use");
  ASSERT_TRUE(again.ok()) << again.status();
  absl::StatusOr<bool> row = again->Step();
  ASSERT_TRUE(row.ok() && *row) << row.status();
  EXPECT_EQ(again->Int64(0), 0) << "unbound: NULL, which no id is >= of";
  EXPECT_EQ(again->Text(1), "");
  again->Reset();
  // Nothing holds the log: a checkpoint can truncate it.
  ASSERT_TRUE(db.Exec("INSERT INTO t VALUES ('d')", "insert").ok());
  EXPECT_TRUE(db.Checkpoint().ok());
  EXPECT_EQ(std::filesystem::file_size(path_ + "-wal"), 0u);
  // Its errors name this use.
  again->BindText(":missing", "x");
  EXPECT_THAT(std::string(again->Step().status().message()), StartsWith("test store: second use"));
}

TEST_F(SqliteTest, ATransactionCommitsWhatItWrote) {
  Database db = OpenOrDie();
  Statement insert = IdTable(db);
  {
    absl::StatusOr<Transaction> tx = Transaction::Begin(db);
    ASSERT_TRUE(tx.ok()) << tx.status();
    ASSERT_TRUE(tx->Run(insert.BindText(1, "a")).ok());
    ASSERT_TRUE(tx->Run(insert.BindText(1, "b")).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  EXPECT_EQ(One(db, "SELECT count(*) FROM t"), "2");
}

TEST_F(SqliteTest, ATransactionThatIsNotCommittedRollsBack) {
  Database db = OpenOrDie();
  IdTable(db);
  {
    absl::StatusOr<Transaction> tx = Transaction::Begin(db);
    ASSERT_TRUE(tx.ok()) << tx.status();
    ASSERT_TRUE(tx->db().Exec("INSERT INTO t VALUES ('a')", "insert").ok());
  }
  EXPECT_EQ(One(db, "SELECT count(*) FROM t"), "0");
  // And the connection is usable afterwards.
  absl::StatusOr<Transaction> again = Transaction::Begin(db);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->Commit().ok());
}

TEST_F(SqliteTest, AFailedWriteMakesTheCommitRefuseEvenWhenItsErrorWasIgnored) {
  Database db = OpenOrDie();
  Statement insert = IdTable(db);
  {
    absl::StatusOr<Transaction> tx = Transaction::Begin(db);
    ASSERT_TRUE(tx.ok()) << tx.status();
    ASSERT_TRUE(tx->Run(insert.BindText(1, "a")).ok());
    EXPECT_FALSE(tx->Run(insert.BindText(1, "a")).ok());  // the key is taken
    absl::Status committed = tx->Commit();
    EXPECT_EQ(committed.code(), absl::StatusCode::kInternal);
    EXPECT_EQ(committed.message(),
              "test store: a write in the transaction failed and its error was not returned");
  }
  EXPECT_EQ(One(db, "SELECT count(*) FROM t"), "0");
}

TEST_F(SqliteTest, InTransactionCommitsWhenTheWorkSucceedsAndRollsBackWhenItFails) {
  Database db = OpenOrDie();
  Statement insert = IdTable(db);
  EXPECT_TRUE(
      InTransaction(db, [&](Transaction& tx) { return tx.Run(insert.BindText(1, "kept")); }).ok());
  absl::Status failed = InTransaction(db, [&](Transaction& tx) {
    EXPECT_TRUE(tx.Run(insert.BindText(1, "dropped")).ok());
    return absl::UnavailableError("given up");
  });
  EXPECT_EQ(failed, absl::UnavailableError("given up"));
  // A write that failed fails the whole transaction, even when the work lets it go.
  failed = InTransaction(db, [&](Transaction& tx) {
    EXPECT_TRUE(tx.Run(insert.BindText(1, "dropped")).ok());
    EXPECT_FALSE(tx.Run(insert.BindText(1, "kept")).ok());
    return absl::OkStatus();
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(One(db, "SELECT group_concat(id) FROM t"), "kept");
}

TEST_F(SqliteTest, ErrorsSayWhereAndCarryNoBoundValue) {
  Database db = OpenOrDie();
  ASSERT_TRUE(db.Exec("CREATE TABLE t (name TEXT PRIMARY KEY)", "create").ok());
  absl::StatusOr<Statement> insert = db.Keep("INSERT INTO t VALUES (?1)", "insert name");
  ASSERT_TRUE(insert.ok()) << insert.status();
  ASSERT_TRUE(insert->BindText(1, "Anna de Vries").Run().ok());
  absl::Status again = insert->BindText(1, "Anna de Vries").Run();
  EXPECT_EQ(again.code(), absl::StatusCode::kInternal);  // a constraint: a bug, not a passing state
  EXPECT_THAT(std::string(again.message()),
              StartsWith("test store: insert name: UNIQUE constraint failed"));
  EXPECT_THAT(std::string(again.message()), Not(HasSubstr("Anna")));

  absl::StatusOr<Statement> bad = db.Prepare("SELECT x FROM nowhere", "select");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(bad.status().message()),
              StartsWith("test store: prepare select: no such table"));
}

TEST_F(SqliteTest, AStoreWhoseCallersRetryGetsEveryErrorAsUnavailable) {
  Database db = OpenOrDie({.name = "view", .errors = Errors::kAllUnavailable});
  ASSERT_TRUE(db.Exec("CREATE TABLE t (name TEXT PRIMARY KEY)", "create").ok());
  ASSERT_TRUE(db.Exec("INSERT INTO t VALUES ('x')", "insert").ok());
  absl::Status again = db.Exec("INSERT INTO t VALUES ('x')", "insert");
  EXPECT_EQ(again.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(again.message()), StartsWith("view: insert: UNIQUE constraint failed"));
}

TEST_F(SqliteTest, AWriteLockHeldElsewhereIsUnavailable) {
  Database db = OpenOrDie({.name = "test store", .busy_timeout_ms = 0});
  Database other = OpenOrDie();
  absl::StatusOr<Transaction> holding = Transaction::Begin(other);
  ASSERT_TRUE(holding.ok()) << holding.status();
  absl::StatusOr<Transaction> waiting = Transaction::Begin(db);
  EXPECT_EQ(waiting.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(waiting.status().message()), StartsWith("test store: begin: "));
}

// Migrations as a program would grow them: the third came with a later version.
constexpr const char* kMigrations[] = {
    "CREATE TABLE a (x TEXT); PRAGMA user_version = 1;",
    "CREATE TABLE b (y TEXT); INSERT INTO b SELECT x FROM a; PRAGMA user_version = 2;",
    "CREATE TABLE c (z TEXT); PRAGMA user_version = 3;",
};

TEST_F(SqliteTest, MigrateRunsEachStepOnceFromTheFilesVersion) {
  {
    Database db = OpenOrDie();
    ASSERT_TRUE(db.Migrate(std::span(kMigrations).first(2)).ok());
    EXPECT_EQ(One(db, "PRAGMA user_version"), "2");
    ASSERT_TRUE(db.Exec("INSERT INTO b VALUES ('kept')", "insert").ok());
  }
  Database db = OpenOrDie();
  ASSERT_TRUE(db.Migrate(kMigrations, "CREATE TABLE IF NOT EXISTS d (w TEXT)").ok());
  EXPECT_EQ(One(db, "PRAGMA user_version"), "3");
  EXPECT_EQ(One(db, "SELECT y FROM b"), "kept");
  EXPECT_EQ(One(db, "SELECT count(*) FROM sqlite_master WHERE name IN ('c', 'd')"), "2");
  // Nothing runs twice.
  EXPECT_TRUE(db.Migrate(kMigrations, "CREATE TABLE IF NOT EXISTS d (w TEXT)").ok());
}

TEST_F(SqliteTest, MigrateRefusesADatabaseFromANewerSchema) {
  Database db = OpenOrDie();
  ASSERT_TRUE(db.Migrate(kMigrations).ok());
  absl::Status older = db.Migrate(std::span(kMigrations).first(1));
  EXPECT_EQ(older.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(older.message()),
              HasSubstr("schema version 3 is newer than this program's (1)"));
  EXPECT_EQ(One(db, "PRAGMA user_version"), "3");
}

TEST_F(SqliteTest, AMigrationThatFailsHalfWayLeavesTheFileAsItWas) {
  Database db = OpenOrDie();
  ASSERT_TRUE(db.Migrate(std::span(kMigrations).first(1)).ok());
  constexpr const char* kBroken[] = {
      kMigrations[0],
      "CREATE TABLE b (y TEXT); INSERT INTO nowhere VALUES (1); PRAGMA user_version = 2;",
  };
  EXPECT_EQ(db.Migrate(kBroken).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(One(db, "PRAGMA user_version"), "1");
  EXPECT_EQ(One(db, "SELECT count(*) FROM sqlite_master WHERE name = 'b'"), "0");
}

TEST_F(SqliteTest, ACheckpointEmptiesTheWriteAheadLog) {
  Database db = OpenOrDie();
  ASSERT_TRUE(db.Exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('x');", "create").ok());
  EXPECT_GT(std::filesystem::file_size(path_ + "-wal"), 0u);
  ASSERT_TRUE(db.Checkpoint().ok());
  EXPECT_EQ(std::filesystem::file_size(path_ + "-wal"), 0u);
}

}  // namespace
}  // namespace schakel::sqlite
