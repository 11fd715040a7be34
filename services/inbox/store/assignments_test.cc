// The assignments and their changes feed: inserting, changing, listing and counting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/inbox/store/inbox_store.h"
#include "services/inbox/store/store_test_fixture.h"

namespace schakel::inbox::store {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;

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

}  // namespace
}  // namespace schakel::inbox::store
