#include "libs/store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace schakel::store {
namespace {

using ::schakel::v1::Assignment;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

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

}  // namespace
}  // namespace schakel::store
