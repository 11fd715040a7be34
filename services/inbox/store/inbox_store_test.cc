// The store as a whole: opening, migrating, transactions and commit listeners.
#include "services/inbox/store/inbox_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "services/inbox/store/store_test_fixture.h"

namespace schakel::inbox::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST_F(StoreTest, ReopenKeepsData) {
  {
    std::unique_ptr<InboxStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100)).ok());
    ASSERT_TRUE(store->Insert(MakeAssignment("a-2", 200)).ok());
  }
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Count().value_or(-1), 2);
  EXPECT_EQ(store->Get("a-2").value_or(Assignment()).referral_id(), "r-a-2");
  EXPECT_EQ(store->Insert(MakeAssignment("a-1", 100)).value_or(true), false);
}

TEST_F(StoreTest, OpenFailsWhereNoFileCanBeCreated) {
  absl::StatusOr<std::unique_ptr<InboxStore>> store =
      InboxStore::Open((dir_ / "missing" / "inbox.db").string());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(StoreTest, OpenRefusesANewerSchema) {
  ASSERT_NE(OpenStore(), nullptr);
  // As if a later version of the program had written the database.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_close(db), SQLITE_OK);

  absl::StatusOr<std::unique_ptr<InboxStore>> store = InboxStore::Open(path_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(StoreTest, CommitListenersHearOfEveryStoredChangeOnly) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::atomic<int> heard{0};
  std::atomic<std::int64_t> last_seen{-1};
  InboxStore::Subscription subscription = store->OnCommit([&] {
    ++heard;
    // Called outside the store's lock: reading the store from here works.
    last_seen = store->LastSequence().value_or(-2);
  });

  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100)).ok());
  EXPECT_EQ(heard, 1);
  EXPECT_EQ(last_seen, 1);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100)).ok());  // a duplicate: nothing stored
  ASSERT_FALSE(store->Apply("a-1", 7, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "")).ok());
  EXPECT_EQ(heard, 1);
  ASSERT_TRUE(store->Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "")).ok());
  EXPECT_EQ(heard, 2);
  EXPECT_EQ(last_seen, 2);

  subscription.Reset();
  ASSERT_TRUE(store->Apply("a-1", 2, MoveTo(v1::ASSIGNMENT_STATUS_ACCEPTED, "")).ok());
  EXPECT_EQ(heard, 2);
}

TEST_F(StoreTest, InTransactionCommitsEveryWriteAtOnce) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::atomic<int> heard{0};
  InboxStore::Subscription subscription = store->OnCommit([&] { ++heard; });

  absl::Status done = store->InTransaction([](InboxStore::Batch& batch) -> absl::Status {
    EXPECT_TRUE(batch.Insert(MakeAssignment("a-1", 100), {Event("a-1", "one")}).value_or(false));
    EXPECT_TRUE(batch.Insert(MakeAssignment("a-2", 200), {}).value_or(false));
    EXPECT_FALSE(batch.Insert(MakeAssignment("a-1", 100), {}).value_or(true));  // there already
    // Later steps see what earlier ones wrote.
    EXPECT_EQ(batch.CountOpen().value_or(-1), 2);
    EXPECT_EQ(batch.Get("a-2").value_or(Assignment()).version(), 1u);
    absl::StatusOr<Assignment> moved =
        batch.Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "two"));
    EXPECT_TRUE(moved.ok()) << moved.status();
    EXPECT_TRUE(absl::IsAborted(
        batch.Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_ACCEPTED, "")).status()));
    ListQuery query;
    query.status = v1::ASSIGNMENT_STATUS_RECEIVED;
    EXPECT_THAT(Ids(batch.List(query).value_or(Page())), ElementsAre("a-1"));
    return absl::OkStatus();
  });
  ASSERT_TRUE(done.ok()) << done;

  EXPECT_EQ(heard, 1);  // one commit
  EXPECT_EQ(store->Count().value_or(-1), 2);
  EXPECT_EQ(store->Get("a-1").value_or(Assignment()).status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_THAT(Sequences(store->ChangesAfter(0, 10).value_or(std::vector<StoredChange>())),
              ElementsAre(1, 2, 3));
  EXPECT_THAT(Values(store->PendingOutbox(10).value_or(std::vector<OutboxEntry>())),
              ElementsAre("one", "two"));
}

TEST_F(StoreTest, AFailedTransactionWritesNothingAndTellsNoListener) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-0", 50)).ok());
  const Snapshot before = Take(*store, "a-0");
  std::atomic<int> heard{0};
  InboxStore::Subscription subscription = store->OnCommit([&] { ++heard; });

  absl::Status done = store->InTransaction([](InboxStore::Batch& batch) -> absl::Status {
    EXPECT_TRUE(batch.Insert(MakeAssignment("a-1", 100), {Event("a-1", "one")}).ok());
    EXPECT_TRUE(batch.Apply("a-0", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "two")).ok());
    return absl::UnavailableError("given up");
  });
  EXPECT_EQ(done, absl::UnavailableError("given up"));
  EXPECT_EQ(heard, 0);
  EXPECT_EQ(store->Count().value_or(-1), 1);
  EXPECT_TRUE(absl::IsNotFound(store->Get("a-1").status()));
  ExpectSame(before, Take(*store, "a-0"));
}

TEST_F(StoreTest, AWriteThatFailedInSQLiteRollsBackTheTransactionEvenWhenIgnored) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ExecOnFile(path_,
             "CREATE TRIGGER refuse BEFORE INSERT ON assignments WHEN NEW.assignment_id = 'a-2'"
             " BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;");
  absl::Status done = store->InTransaction([](InboxStore::Batch& batch) -> absl::Status {
    EXPECT_TRUE(batch.Insert(MakeAssignment("a-1", 100), {Event("a-1", "one")}).ok());
    EXPECT_FALSE(batch.Insert(MakeAssignment("a-2", 200), {}).ok());
    return absl::OkStatus();  // wrongly going on
  });
  EXPECT_TRUE(absl::IsInternal(done)) << done;
  EXPECT_EQ(store->Count().value_or(-1), 0);
  EXPECT_TRUE(store->PendingOutbox(10).value_or(std::vector<OutboxEntry>{{}}).empty());

  // The single-write methods take the same path: a write that fails writes nothing.
  EXPECT_FALSE(store->Insert(MakeAssignment("a-2", 200), {Event("a-2", "two")}).ok());
  EXPECT_EQ(store->LastSequence().value_or(-1), 0);
  ExecOnFile(path_, "DROP TRIGGER refuse;");
  EXPECT_TRUE(store->Insert(MakeAssignment("a-2", 200), {Event("a-2", "two")}).value_or(false));
}

// The schema as version 1 of the program wrote it, verbatim.
constexpr char kVersionOneSchema[] = R"sql(
CREATE TABLE assignments (
  assignment_id     TEXT    PRIMARY KEY NOT NULL,
  status            INTEGER NOT NULL,
  need_code         TEXT    NOT NULL,
  requested_seconds INTEGER NOT NULL,
  requested_nanos   INTEGER NOT NULL,
  body              BLOB    NOT NULL
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

TEST_F(StoreTest, MigratesAVersionFiveDatabaseAndDropsItsOwnerTokens) {
  {
    std::unique_ptr<InboxStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Insert(MakeAssignment("a-old", 100, "debt"), {}).value_or(false));
  }
  // Version 5 is version 6 with the owner tokens' table.
  ExecOnFile(path_,
             "CREATE TABLE assignment_tokens (assignment_id TEXT PRIMARY KEY NOT NULL,"
             " token BLOB NOT NULL);"
             " INSERT INTO assignment_tokens VALUES ('a-old', x'0101');"
             " PRAGMA user_version = 5;");
  {
    std::unique_ptr<InboxStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->Count().value_or(-1), 1);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 6);
  sqlite3_finalize(stmt);
  ASSERT_EQ(
      sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE name = 'assignment_tokens'",
                         -1, &stmt, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), 0);
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
}

TEST_F(StoreTest, MigratesAVersionOneDatabaseInPlace) {
  Assignment later = MakeAssignment("a-later", 300, "legal");
  Assignment earlier = MakeAssignment("a-earlier", 100, "debt");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, kVersionOneSchema, nullptr, nullptr, nullptr), SQLITE_OK);
    for (const Assignment& a : {later, earlier}) {
      sqlite3_stmt* stmt = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO assignments VALUES (?, ?, ?, ?, 0, ?)", -1,
                                   &stmt, nullptr),
                SQLITE_OK);
      std::string body = a.SerializeAsString();
      sqlite3_bind_text(stmt, 1, a.assignment_id().c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(stmt, 2, a.status());
      sqlite3_bind_text(stmt, 3, a.need_code().c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(stmt, 4, a.requested_at().seconds());
      sqlite3_bind_blob(stmt, 5, body.data(), static_cast<int>(body.size()), SQLITE_TRANSIENT);
      EXPECT_EQ(sqlite3_step(stmt), SQLITE_DONE);
      sqlite3_finalize(stmt);
    }
    ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
  }

  {
    std::unique_ptr<InboxStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    // What was there is kept, and enters the changes feed once, in request order.
    EXPECT_EQ(store->Count().value_or(-1), 2);
    EXPECT_EQ(store->Get("a-later")->SerializeAsString(), later.SerializeAsString());
    absl::StatusOr<std::vector<StoredChange>> changes = store->ChangesAfter(0, 10);
    ASSERT_TRUE(changes.ok()) << changes.status();
    ASSERT_THAT(*changes, SizeIs(2));
    EXPECT_EQ((*changes)[0].sequence, 1);
    EXPECT_EQ((*changes)[0].assignment.SerializeAsString(), earlier.SerializeAsString());
    EXPECT_EQ((*changes)[1].sequence, 2);
    EXPECT_EQ((*changes)[1].assignment.SerializeAsString(), later.SerializeAsString());
    EXPECT_THAT(store->PendingOutbox(10).value(), IsEmpty());
    // And it works as a version-2 store.
    ASSERT_TRUE(store->Apply("a-earlier", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "x")).ok());
    EXPECT_EQ(store->LastSequence().value_or(-1), 3);
    EXPECT_THAT(Values(store->PendingOutbox(10).value()), ElementsAre("x"));
  }

  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int(stmt, 0), 6);
    sqlite3_finalize(stmt);
    ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
  }

  // Opening again migrates nothing twice.
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence().value_or(-1), 3);
}

}  // namespace

TEST(InstanceIdTest, StaysWithTheFileAndDiffersForANewOne) {
  const std::string path = ::testing::TempDir() + "/instance-id-test.db";
  std::remove(path.c_str());
  std::string first;
  {
    auto store = InboxStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status();
    absl::StatusOr<std::string> id = (*store)->InstanceId();
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(id->size(), 16u);
    first = *id;
  }
  {
    auto reopened = InboxStore::Open(path);
    ASSERT_TRUE(reopened.ok());
    EXPECT_EQ((*reopened)->InstanceId().value_or(""), first);
  }
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
  auto fresh = InboxStore::Open(path);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE((*fresh)->InstanceId().value_or(first), first);
  std::remove(path.c_str());
}

}  // namespace schakel::inbox::store
