// The clients' data keys kept with their assignments, and gone at erasure.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "services/inbox/store/inbox_store.h"
#include "services/inbox/store/store_test_fixture.h"

namespace schakel::inbox::store {
namespace {

using ::testing::ElementsAre;

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

}  // namespace
}  // namespace schakel::inbox::store
