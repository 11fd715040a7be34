// Where a service's audit queue lives: a file of its own beside the service's database.
#include "libs/audit/database_log.h"

#include <gtest/gtest.h>

namespace schakel::audit {
namespace {

TEST(QueueFileBesideTest, IsBesideTheDatabaseInTheSameFolder) {
  EXPECT_EQ(QueueFileBeside("keys.db"), "keys-audit.db");
  EXPECT_EQ(QueueFileBeside("/var/lib/schakel/intake-view.db"),
            "/var/lib/schakel/intake-view-audit.db");
  EXPECT_EQ(QueueFileBeside(".state/keys"), ".state/keys-audit.db");
}

}  // namespace
}  // namespace schakel::audit
