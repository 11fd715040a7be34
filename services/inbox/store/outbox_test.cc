// The outbox: events wait, oldest first, until they are deleted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "services/inbox/store/inbox_store.h"
#include "services/inbox/store/store_test_fixture.h"

namespace schakel::inbox::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

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

}  // namespace
}  // namespace schakel::inbox::store
