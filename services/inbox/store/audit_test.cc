// The audit queue: entries wait, oldest first, until they are deleted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "services/inbox/store/inbox_store.h"
#include "services/inbox/store/store_test_fixture.h"

namespace schakel::inbox::store {
namespace {

using ::testing::ElementsAre;

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

}  // namespace
}  // namespace schakel::inbox::store
