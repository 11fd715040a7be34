#include "libs/store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace schakel::store {
namespace {

using ::schakel::v1::Assignment;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// A fresh directory per test, removed afterwards.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "store_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "inbox.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<InboxStore> OpenStore() {
    absl::StatusOr<std::unique_ptr<InboxStore>> store = InboxStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  static Assignment MakeAssignment(const std::string& id, std::int64_t seconds,
                                   const std::string& need = "debt",
                                   v1::AssignmentStatus status = v1::ASSIGNMENT_STATUS_REQUESTED) {
    Assignment a;
    a.set_assignment_id(id);
    a.set_referral_id("r-" + id);
    a.set_organisation("mjd");
    a.set_need_code(need);
    a.set_status(status);
    a.set_version(1);
    a.mutable_requested_at()->set_seconds(seconds);
    *a.mutable_updated_at() = a.requested_at();
    return a;
  }

  static std::vector<std::string> Ids(const Page& page) {
    std::vector<std::string> ids;
    for (const Assignment& a : page.assignments) ids.push_back(a.assignment_id());
    return ids;
  }

  static std::vector<std::int64_t> Sequences(const std::vector<StoredChange>& changes) {
    std::vector<std::int64_t> sequences;
    for (const StoredChange& c : changes) sequences.push_back(c.sequence);
    return sequences;
  }

  static std::vector<std::string> Values(const std::vector<OutboxEntry>& entries) {
    std::vector<std::string> values;
    for (const OutboxEntry& e : entries) values.push_back(e.event.value);
    return values;
  }

  static OutboxEvent Event(const std::string& key, const std::string& value) {
    return OutboxEvent{"schakel.from.mjd", key, value};
  }

  // A change to `status` one version up, with one event.
  static InboxStore::ChangeFn MoveTo(v1::AssignmentStatus status, const std::string& value) {
    return [status, value](const Assignment& current) -> absl::StatusOr<Change> {
      Change change;
      change.assignment = current;
      change.assignment.set_status(status);
      change.assignment.set_version(current.version() + 1);
      change.events.push_back(Event(current.assignment_id(), value));
      return change;
    };
  }

  // Everything a change could have written, to show that a refused one wrote nothing.
  struct Snapshot {
    std::string assignment;
    std::int64_t last_sequence = -1;
    std::vector<std::string> outbox;
  };
  static Snapshot Take(InboxStore& store, const std::string& id) {
    Snapshot snapshot;
    snapshot.assignment = store.Get(id).value_or(Assignment()).SerializeAsString();
    snapshot.last_sequence = store.LastSequence().value_or(-1);
    snapshot.outbox = Values(store.PendingOutbox(100).value_or(std::vector<OutboxEntry>()));
    return snapshot;
  }
  static void ExpectSame(const Snapshot& before, const Snapshot& after) {
    EXPECT_EQ(after.assignment, before.assignment);
    EXPECT_EQ(after.last_sequence, before.last_sequence);
    EXPECT_EQ(after.outbox, before.outbox);
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(StoreTest, InsertThenGetReturnsTheSameAssignment) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Assignment a = MakeAssignment("a-1", 1000, "housing");
  a.add_languages("nl");
  a.set_need_details("details");
  ASSERT_EQ(store->Insert(a).value_or(false), true);

  absl::StatusOr<Assignment> got = store->Get("a-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->SerializeAsString(), a.SerializeAsString());
}

TEST_F(StoreTest, GetUnknownIsNotFound) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<Assignment> got = store->Get("a-missing");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got.status().message(), "assignment not found");
}

TEST_F(StoreTest, DuplicateInsertIsStoredOnceAndChangesNothing) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Assignment first = MakeAssignment("a-1", 1000, "debt");
  ASSERT_EQ(store->Insert(first).value_or(false), true);

  Assignment again = MakeAssignment("a-1", 2000, "housing");
  absl::StatusOr<bool> inserted = store->Insert(again);
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_FALSE(*inserted);
  EXPECT_EQ(store->Count().value_or(-1), 1);
  EXPECT_EQ(store->Get("a-1")->need_code(), "debt");
}

TEST_F(StoreTest, InsertWithoutIdIsInvalidArgument) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  absl::StatusOr<bool> inserted = store->Insert(MakeAssignment("", 1000));
  EXPECT_EQ(inserted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Count().value_or(-1), 0);
}

TEST_F(StoreTest, ListFiltersByStatusAndNeedInRequestOrder) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  // Inserted out of time order; same time ties break on the id.
  ASSERT_TRUE(store->Insert(MakeAssignment("a-3", 300, "debt")).ok());
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100, "debt")).ok());
  ASSERT_TRUE(store->Insert(MakeAssignment("a-2", 200, "housing")).ok());
  ASSERT_TRUE(
      store->Insert(MakeAssignment("a-5", 100, "debt", v1::ASSIGNMENT_STATUS_ACCEPTED)).ok());
  ASSERT_TRUE(
      store->Insert(MakeAssignment("a-4", 400, "housing", v1::ASSIGNMENT_STATUS_ACCEPTED)).ok());

  auto list = [&](v1::AssignmentStatus status, const std::string& need) {
    ListQuery query;
    query.status = status;
    query.need_code = need;
    absl::StatusOr<Page> page = store->List(query);
    EXPECT_TRUE(page.ok()) << page.status();
    EXPECT_THAT(page->next_page_token, IsEmpty());
    return Ids(*page);
  };
  EXPECT_THAT(list(v1::ASSIGNMENT_STATUS_UNSPECIFIED, ""),
              ElementsAre("a-1", "a-5", "a-2", "a-3", "a-4"));
  EXPECT_THAT(list(v1::ASSIGNMENT_STATUS_UNSPECIFIED, "debt"), ElementsAre("a-1", "a-5", "a-3"));
  EXPECT_THAT(list(v1::ASSIGNMENT_STATUS_REQUESTED, ""), ElementsAre("a-1", "a-2", "a-3"));
  EXPECT_THAT(list(v1::ASSIGNMENT_STATUS_ACCEPTED, "housing"), ElementsAre("a-4"));
  EXPECT_THAT(list(v1::ASSIGNMENT_STATUS_COMPLETED, ""), IsEmpty());
  EXPECT_THAT(list(v1::ASSIGNMENT_STATUS_UNSPECIFIED, "shelter"), IsEmpty());
}

TEST_F(StoreTest, PagingVisitsEveryRowOnceInOrder) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> expected;
  for (int i = 0; i < 25; ++i) {
    std::string id = absl::StrCat("a-", 100 + i);
    expected.push_back(id);
    // Pairs share a time, so the id must break ties across page boundaries.
    ASSERT_TRUE(store->Insert(MakeAssignment(id, 1000 + i / 2)).ok());
  }

  std::vector<std::string> seen;
  std::vector<std::size_t> page_sizes;
  ListQuery query;
  query.page_size = 10;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<Page> page = store->List(query);
    ASSERT_TRUE(page.ok()) << page.status();
    page_sizes.push_back(page->assignments.size());
    for (const std::string& id : Ids(*page)) seen.push_back(id);
    if (page->next_page_token.empty()) break;
    query.page_token = page->next_page_token;
  }
  EXPECT_THAT(page_sizes, ElementsAre(10, 10, 5));
  EXPECT_THAT(seen, ElementsAreArray(expected));
}

TEST_F(StoreTest, PagingIsStableUnderInserts) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store->Insert(MakeAssignment(absl::StrCat("a-", i), 100 + i)).ok());
  }
  ListQuery query;
  query.page_size = 2;
  absl::StatusOr<Page> first = store->List(query);
  ASSERT_TRUE(first.ok());
  EXPECT_THAT(Ids(*first), ElementsAre("a-0", "a-1"));
  // One earlier than the cursor (not revisited) and one later (seen).
  ASSERT_TRUE(store->Insert(MakeAssignment("a-early", 50)).ok());
  ASSERT_TRUE(store->Insert(MakeAssignment("a-late", 500)).ok());
  query.page_token = first->next_page_token;
  query.page_size = 10;
  absl::StatusOr<Page> rest = store->List(query);
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(Ids(*rest), ElementsAre("a-2", "a-3", "a-late"));
  EXPECT_THAT(rest->next_page_token, IsEmpty());
}

TEST_F(StoreTest, MalformedPageTokenIsInvalidArgument) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (const std::string token : {"%%%", "bm90IGEgdG9rZW4", "MTox", "Mjo6Ojo6"}) {
    ListQuery query;
    query.page_token = token;
    absl::StatusOr<Page> page = store->List(query);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_EQ(page.status().message(), "page_token: is malformed") << token;
  }
}

TEST_F(StoreTest, PageTokenForOtherFiltersIsInvalidArgument) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->Insert(MakeAssignment(absl::StrCat("a-", i), 100 + i)).ok());
  }
  ListQuery query;
  query.page_size = 1;
  query.need_code = "debt";
  absl::StatusOr<Page> page = store->List(query);
  ASSERT_TRUE(page.ok());
  ASSERT_FALSE(page->next_page_token.empty());
  query.page_token = page->next_page_token;
  query.need_code = "housing";
  EXPECT_EQ(store->List(query).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, NonPositivePageSizeIsInvalidArgument) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ListQuery query;
  query.page_size = 0;
  EXPECT_EQ(store->List(query).status().code(), absl::StatusCode::kInvalidArgument);
}

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

TEST_F(StoreTest, InsertWritesOneChangeAndItsEvents) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LastSequence().value_or(-1), 0);
  Assignment a = MakeAssignment("a-1", 100);
  ASSERT_EQ(store->Insert(a, {Event("a-1", "received"), Event("a-1", "second")}).value_or(false),
            true);

  absl::StatusOr<std::vector<StoredChange>> changes = store->ChangesAfter(0, 10);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_THAT(*changes, SizeIs(1));
  EXPECT_EQ((*changes)[0].sequence, 1);
  EXPECT_EQ((*changes)[0].assignment.SerializeAsString(), a.SerializeAsString());
  EXPECT_EQ(store->LastSequence().value_or(-1), 1);

  absl::StatusOr<std::vector<OutboxEntry>> outbox = store->PendingOutbox(10);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_THAT(*outbox, SizeIs(2));
  EXPECT_EQ((*outbox)[0].event.topic, "schakel.from.mjd");
  EXPECT_EQ((*outbox)[0].event.key, "a-1");
  EXPECT_EQ((*outbox)[0].event.value, "received");
  EXPECT_EQ((*outbox)[1].event.value, "second");
  EXPECT_LT((*outbox)[0].id, (*outbox)[1].id);
}

TEST_F(StoreTest, DuplicateInsertWritesNoChangeAndNoEvent) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(store->Insert(MakeAssignment("a-1", 100), {Event("a-1", "first")}).value_or(false),
            true);
  Snapshot before = Take(*store, "a-1");
  EXPECT_EQ(store->Insert(MakeAssignment("a-1", 100), {Event("a-1", "again")}).value_or(true),
            false);
  ExpectSame(before, Take(*store, "a-1"));
}

TEST_F(StoreTest, ApplyStoresTheAssignmentAChangeAndItsEvents) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100)).ok());

  absl::StatusOr<Assignment> applied =
      store->Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_ACCEPTED, "accepted"));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->status(), v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(applied->version(), 2u);
  EXPECT_EQ(store->Get("a-1")->SerializeAsString(), applied->SerializeAsString());

  absl::StatusOr<std::vector<StoredChange>> changes = store->ChangesAfter(1, 10);
  ASSERT_TRUE(changes.ok()) << changes.status();
  ASSERT_THAT(*changes, SizeIs(1));
  EXPECT_EQ((*changes)[0].sequence, 2);
  EXPECT_EQ((*changes)[0].assignment.SerializeAsString(), applied->SerializeAsString());
  EXPECT_THAT(Values(store->PendingOutbox(10).value()), ElementsAre("accepted"));

  // The status column follows the body, so lists filter on the new status.
  ListQuery query;
  query.status = v1::ASSIGNMENT_STATUS_ACCEPTED;
  EXPECT_THAT(Ids(store->List(query).value()), ElementsAre("a-1"));
}

TEST_F(StoreTest, ApplyToAnUnknownAssignmentIsNotFound) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  bool called = false;
  absl::StatusOr<Assignment> applied =
      store->Apply("a-missing", 1, [&called](const Assignment&) -> absl::StatusOr<Change> {
        called = true;
        return absl::InternalError("not reached");
      });
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(applied.status().message(), "assignment not found");
  EXPECT_FALSE(called);
  EXPECT_EQ(store->LastSequence().value_or(-1), 0);
}

TEST_F(StoreTest, ApplyOnAStaleVersionIsAbortedAndWritesNothing) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100)).ok());
  ASSERT_TRUE(store->Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "received")).ok());
  Snapshot before = Take(*store, "a-1");

  bool called = false;
  absl::StatusOr<Assignment> applied =
      store->Apply("a-1", 1, [&called](const Assignment&) -> absl::StatusOr<Change> {
        called = true;
        return absl::InternalError("not reached");
      });
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(applied.status().message(), "assignment a-1 changed since version 1 (now 2)");
  EXPECT_FALSE(called);
  ExpectSame(before, Take(*store, "a-1"));
}

TEST_F(StoreTest, ARefusedChangeWritesNoAssignmentChangeOrEvent) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100), {Event("a-1", "requested")}).ok());
  Snapshot before = Take(*store, "a-1");

  absl::StatusOr<Assignment> applied =
      store->Apply("a-1", 1, [](const Assignment&) -> absl::StatusOr<Change> {
        return absl::FailedPreconditionError("cannot go from requested to completed");
      });
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(applied.status().message(), "cannot go from requested to completed");
  ExpectSame(before, Take(*store, "a-1"));

  // A store that is still usable afterwards: the failed transaction was rolled back.
  EXPECT_TRUE(store->Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "received")).ok());
}

TEST_F(StoreTest, AuditEntriesWaitInOrderUntilDeleted) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AddAudit({"read 1", "read 2"}).ok());
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100), {}, {"received"}).ok());
  ASSERT_TRUE(store
                  ->Apply("a-1", 1,
                          [](const Assignment& current) -> absl::StatusOr<Change> {
                            Change change;
                            change.assignment = current;
                            change.assignment.set_version(current.version() + 1);
                            change.audit.push_back("accepted");
                            return change;
                          })
                  .ok());
  // A refused change writes no audit entry either.
  EXPECT_FALSE(store
                   ->Apply("a-1", 2,
                           [](const Assignment&) -> absl::StatusOr<Change> {
                             return absl::FailedPreconditionError("no");
                           })
                   .ok());
  absl::StatusOr<std::vector<AuditRow>> rows = store->PendingAudit(10);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::vector<std::string> entries;
  for (const AuditRow& row : *rows) entries.push_back(row.entry);
  EXPECT_THAT(entries, ElementsAre("read 1", "read 2", "received", "accepted"));
  ASSERT_TRUE(store->DeleteAudit({(*rows)[0].id, (*rows)[2].id}).ok());
  entries.clear();
  rows = store->PendingAudit(1);
  ASSERT_TRUE(rows.ok()) << rows.status();
  for (const AuditRow& row : *rows) entries.push_back(row.entry);
  EXPECT_THAT(entries, ElementsAre("read 2"));
}

TEST_F(StoreTest, AChangeThatKeepsTheVersionIsRefused) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100)).ok());
  Snapshot before = Take(*store, "a-1");
  absl::StatusOr<Assignment> applied =
      store->Apply("a-1", 1, [](const Assignment& current) -> absl::StatusOr<Change> {
        Change change;
        change.assignment = current;
        change.assignment.set_status(v1::ASSIGNMENT_STATUS_RECEIVED);
        change.events.push_back(Event("a-1", "received"));
        return change;
      });
  EXPECT_EQ(applied.status().code(), absl::StatusCode::kInternal);
  ExpectSame(before, Take(*store, "a-1"));
}

TEST_F(StoreTest, ConcurrentChangesOnOneVersionLetExactlyOneWin) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100)).ok());
  constexpr int kThreads = 8;
  std::vector<absl::Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] =
          store->Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_ACCEPTED, "accepted")).status();
    });
  }
  for (std::thread& t : threads) t.join();
  int won = 0;
  for (const absl::Status& s : results) {
    if (s.ok()) {
      ++won;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
      EXPECT_EQ(s.message(), "assignment a-1 changed since version 1 (now 2)");
    }
  }
  EXPECT_EQ(won, 1);
  EXPECT_EQ(store->Get("a-1")->version(), 2u);
  EXPECT_EQ(store->LastSequence().value_or(-1), 2);
  EXPECT_THAT(Values(store->PendingOutbox(100).value()), ElementsAre("accepted"));
}

TEST_F(StoreTest, ChangesFeedIsInCommitOrderAndPages) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  // Commit order, not request order: a-2 is requested earlier but stored later.
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 200)).ok());
  ASSERT_TRUE(store->Insert(MakeAssignment("a-2", 100)).ok());
  ASSERT_TRUE(store->Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "")).ok());
  ASSERT_TRUE(store->Apply("a-2", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, "")).ok());
  ASSERT_TRUE(store->Apply("a-1", 2, MoveTo(v1::ASSIGNMENT_STATUS_ACCEPTED, "")).ok());

  absl::StatusOr<std::vector<StoredChange>> all = store->ChangesAfter(0, 100);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Sequences(*all), ElementsAre(1, 2, 3, 4, 5));
  std::vector<std::string> seen;
  for (const StoredChange& c : *all) {
    seen.push_back(absl::StrCat(c.assignment.assignment_id(), "@", c.assignment.version()));
  }
  EXPECT_THAT(seen, ElementsAre("a-1@1", "a-2@1", "a-1@2", "a-2@2", "a-1@3"));

  EXPECT_THAT(Sequences(store->ChangesAfter(0, 2).value()), ElementsAre(1, 2));
  EXPECT_THAT(Sequences(store->ChangesAfter(2, 2).value()), ElementsAre(3, 4));
  EXPECT_THAT(Sequences(store->ChangesAfter(4, 2).value()), ElementsAre(5));
  EXPECT_THAT(store->ChangesAfter(5, 2).value(), IsEmpty());
  EXPECT_EQ(store->LastSequence().value_or(-1), 5);
  EXPECT_EQ(store->ChangesAfter(0, 0).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(StoreTest, OutboxIsPendingOldestFirstUntilDeleted) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100), {Event("a-1", "one")}).ok());
  ASSERT_TRUE(
      store->Insert(MakeAssignment("a-2", 100), {Event("a-2", "two"), Event("a-2", "three")}).ok());
  std::string binary("\x00\xff value", 8);
  ASSERT_TRUE(store->Apply("a-1", 1, MoveTo(v1::ASSIGNMENT_STATUS_RECEIVED, binary)).ok());

  absl::StatusOr<std::vector<OutboxEntry>> pending = store->PendingOutbox(2);
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_THAT(Values(*pending), ElementsAre("one", "two"));
  EXPECT_THAT(Values(store->PendingOutbox(10).value()), ElementsAre("one", "two", "three", binary));

  // Deleting is by id, whatever the order; unknown ids are ignored.
  ASSERT_TRUE(store->DeleteOutbox({(*pending)[1].id, (*pending)[0].id, 12345}).ok());
  absl::StatusOr<std::vector<OutboxEntry>> rest = store->PendingOutbox(10);
  ASSERT_TRUE(rest.ok());
  EXPECT_THAT(Values(*rest), ElementsAre("three", binary));
  EXPECT_EQ((*rest)[1].event.key, "a-1");
  ASSERT_TRUE(store->DeleteOutbox({(*rest)[0].id, (*rest)[1].id}).ok());
  EXPECT_THAT(store->PendingOutbox(10).value(), IsEmpty());
  EXPECT_TRUE(store->DeleteOutbox({}).ok());
  // The changes feed is not the outbox: it keeps everything.
  EXPECT_EQ(store->LastSequence().value_or(-1), 3);
}

TEST_F(StoreTest, OutboxSurvivesAReopen) {
  {
    std::unique_ptr<InboxStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Insert(MakeAssignment("a-1", 100), {Event("a-1", "one")}).ok());
  }
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(Values(store->PendingOutbox(10).value()), ElementsAre("one"));
  EXPECT_EQ(store->LastSequence().value_or(-1), 1);
}

TEST_F(StoreTest, CountOpenLeavesOutFinalStatuses) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  const v1::AssignmentStatus statuses[] = {
      v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_RECEIVED,
      v1::ASSIGNMENT_STATUS_ACCEPTED,  v1::ASSIGNMENT_STATUS_IN_PROGRESS,
      v1::ASSIGNMENT_STATUS_ON_HOLD,   v1::ASSIGNMENT_STATUS_REJECTED,
      v1::ASSIGNMENT_STATUS_COMPLETED, v1::ASSIGNMENT_STATUS_FAILED,
      v1::ASSIGNMENT_STATUS_CANCELLED,
  };
  int i = 0;
  for (v1::AssignmentStatus status : statuses) {
    ASSERT_TRUE(store->Insert(MakeAssignment(absl::StrCat("a-", i++), 100, "debt", status)).ok());
  }
  EXPECT_EQ(store->CountOpen().value_or(-1), 5);
  EXPECT_EQ(store->Count().value_or(-1), 9);
  ASSERT_TRUE(store->Apply("a-0", 1, MoveTo(v1::ASSIGNMENT_STATUS_REJECTED, "")).ok());
  EXPECT_EQ(store->CountOpen().value_or(-1), 4);
}

TEST_F(StoreTest, CountByNeedAndStatusGroupsEveryAssignment) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->Insert(MakeAssignment("a-1", 100, "debt", v1::ASSIGNMENT_STATUS_RECEIVED)).ok());
  ASSERT_TRUE(
      store->Insert(MakeAssignment("a-2", 101, "debt", v1::ASSIGNMENT_STATUS_RECEIVED)).ok());
  ASSERT_TRUE(
      store->Insert(MakeAssignment("a-3", 102, "debt", v1::ASSIGNMENT_STATUS_ACCEPTED)).ok());
  ASSERT_TRUE(
      store->Insert(MakeAssignment("a-4", 103, "housing", v1::ASSIGNMENT_STATUS_RECEIVED)).ok());
  absl::StatusOr<std::vector<InboxStore::NeedStatusCount>> counts = store->CountByNeedAndStatus();
  ASSERT_TRUE(counts.ok()) << counts.status();
  std::vector<std::string> seen;
  for (const InboxStore::NeedStatusCount& c : *counts) {
    seen.push_back(
        absl::StrCat(c.need_code, "/", v1::AssignmentStatus_Name(c.status), "=", c.count));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"debt/ASSIGNMENT_STATUS_RECEIVED=2",
                                            "debt/ASSIGNMENT_STATUS_ACCEPTED=1",
                                            "housing/ASSIGNMENT_STATUS_RECEIVED=1"}));
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

// Runs `sql` on a second connection to the store's file (e.g. to make a write fail in SQLite).
void ExecOnFile(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
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

TEST_F(StoreTest, AnAssignmentsKeyIsKeptWithItAndGoesAtErasure) {
  std::unique_ptr<InboxStore> store = OpenStore();
  ASSERT_NE(store, nullptr);
  Assignment mine = MakeAssignment("a-1", 100, "debt");
  mine.set_client_pseudonym("p-anna");
  mine.set_client_name("Anna");
  Assignment other = MakeAssignment("a-2", 200, "debt");
  other.set_client_pseudonym("p-bert");
  ASSERT_TRUE(store
                  ->InTransaction([&](InboxStore::Batch& batch) -> absl::Status {
                    for (const Assignment& a : {mine, other}) {
                      if (absl::StatusOr<bool> in = batch.Insert(a, {}); !in.ok()) {
                        return in.status();
                      }
                      const DataKey key{.key_id = "k-" + a.client_pseudonym(),
                                        .key = std::string(32, a.client_pseudonym().back())};
                      if (absl::Status s = batch.PutKey(a.assignment_id(), key); !s.ok()) return s;
                    }
                    // A second put (a redelivered offer) keeps the first key.
                    return batch.PutKey("a-1", {.key_id = "k-other", .key = std::string(32, 'x')});
                  })
                  .ok());
  absl::StatusOr<std::optional<DataKey>> key = store->GetKey("a-1");
  ASSERT_TRUE(key.ok()) << key.status();
  ASSERT_TRUE(key->has_value());
  EXPECT_EQ((*key)->key_id, "k-p-anna");
  EXPECT_EQ((*key)->key, std::string(32, 'a'));
  EXPECT_FALSE(store->GetKey("a-unknown")->has_value());

  absl::StatusOr<std::vector<std::string>> erased =
      store->EraseClient("p-anna", [](Assignment& a) { a.clear_client_name(); });
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_THAT(*erased, ElementsAre("a-1"));
  EXPECT_FALSE(store->GetKey("a-1")->has_value());
  ASSERT_TRUE(store->GetKey("a-2")->has_value());
  EXPECT_EQ((*store->GetKey("a-2"))->key_id, "k-p-bert");
}

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

}  // namespace schakel::store
