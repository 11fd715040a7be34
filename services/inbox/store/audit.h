// Audit entries waiting in the inbox's database for the audit writer (libs/audit), which links
// them into the inbox's chain when it publishes them and then deletes them here. A change brings
// its entries in the transaction that stores it, so what was done is recorded exactly when it is.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/sqlite/sqlite.h"

namespace schakel::inbox::store {

// An audit entry waiting for the audit writer: `id` is what Delete takes once it is in Kafka.
struct AuditRow {
  std::int64_t id = 0;
  std::string entry;  // a serialized schakel.v1.AuditEntry, not yet linked
};

// The audit table's statements; used with the store's lock held (see InboxStore).
class AuditTable {
 public:
  static absl::StatusOr<AuditTable> Prepare(sqlite::Database& db);

  // `entries`: serialized schakel.v1.AuditEntry, not yet linked.
  absl::Status Add(sqlite::Transaction& tx, const std::vector<std::string>& entries);
  // At most `limit` entries, oldest first. INVALID_ARGUMENT for a non-positive limit.
  absl::StatusOr<std::vector<AuditRow>> Pending(int limit);
  // Unknown ids are ignored.
  absl::Status Delete(sqlite::Transaction& tx, const std::vector<std::int64_t>& ids);

 private:
  AuditTable() = default;

  sqlite::Statement insert_;
  sqlite::Statement pending_;
  sqlite::Statement delete_;
};

}  // namespace schakel::inbox::store
