#include "services/router/state_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

namespace schakel::router {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<StateStore>> opened = StateStore::Open();
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }
  std::vector<std::string> Due(std::int64_t now, std::size_t limit = 10) {
    absl::StatusOr<std::vector<std::string>> due = store_->Due(now, limit);
    EXPECT_TRUE(due.ok()) << due.status();
    return due.ok() ? *due : std::vector<std::string>{};
  }
  std::int64_t Waiting() {
    absl::StatusOr<std::int64_t> n = store_->Waiting();
    EXPECT_TRUE(n.ok()) << n.status();
    return n.value_or(-1);
  }

  std::unique_ptr<StateStore> store_;
};

TEST_F(StateStoreTest, KeepsReplacesAndForgetsAReferral) {
  ASSERT_TRUE(store_->Put("r-1", 3, "first", 1, 100).ok());
  ASSERT_TRUE(store_->Put("r-1", 3, "second", 2, 200).ok());
  absl::StatusOr<std::optional<StateStore::Row>> row = store_->Get("r-1");
  ASSERT_TRUE(row.ok()) << row.status();
  ASSERT_TRUE(row->has_value());
  EXPECT_EQ((*row)->partition, 3);
  EXPECT_EQ((*row)->value, "second");
  EXPECT_EQ(Waiting(), 2);
  EXPECT_EQ(store_->Waiting("r-1").value_or(-1), 2);
  EXPECT_EQ(store_->Waiting("r-unknown").value_or(-1), 0);

  ASSERT_TRUE(store_->Erase("r-1").ok());
  row = store_->Get("r-1");
  ASSERT_TRUE(row.ok()) << row.status();
  EXPECT_FALSE(row->has_value());
  EXPECT_EQ(Waiting(), 0);
}

TEST_F(StateStoreTest, DueListsTheEarliestDeadlinesFirstUpToTheLimit) {
  ASSERT_TRUE(store_->Put("r-late", 0, "v", 1, 300).ok());
  ASSERT_TRUE(store_->Put("r-early", 0, "v", 1, 100).ok());
  ASSERT_TRUE(store_->Put("r-middle", 1, "v", 1, 200).ok());
  ASSERT_TRUE(store_->Put("r-unroutable", 1, "v", 0, std::nullopt).ok());
  EXPECT_THAT(Due(99), IsEmpty());
  EXPECT_THAT(Due(100), ElementsAre("r-early"));
  EXPECT_THAT(Due(1000), ElementsAre("r-early", "r-middle", "r-late"));
  EXPECT_THAT(Due(1000, 2), ElementsAre("r-early", "r-middle"));
  // A deadline that moves on moves in the index too.
  ASSERT_TRUE(store_->Put("r-early", 0, "v", 1, 500).ok());
  EXPECT_THAT(Due(400), ElementsAre("r-middle", "r-late"));
}

TEST_F(StateStoreTest, ForgetsOnePartitionOrAll) {
  ASSERT_TRUE(store_->Put("r-a", 0, "v", 1, 100).ok());
  ASSERT_TRUE(store_->Put("r-b", 1, "v", 1, 100).ok());
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->Forget(1).ok());
  EXPECT_THAT(Due(1000), ElementsAre("r-a"));
  EXPECT_EQ(store_->Count().value_or(-1), 1);
  ASSERT_TRUE(store_->ForgetAll().ok());
  EXPECT_THAT(Due(1000), IsEmpty());
  EXPECT_EQ(store_->Count().value_or(-1), 0);
  ASSERT_TRUE(store_->Flush().ok());
  ASSERT_TRUE(store_->Flush().ok()) << "a flush with nothing written is no error";
}

}  // namespace
}  // namespace schakel::router
