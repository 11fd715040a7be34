#include "services/inbox/store/audit.h"

#include "absl/status/status.h"

namespace schakel::inbox::store {

absl::StatusOr<AuditTable> AuditTable::Prepare(sqlite::Database& db) {
  AuditTable table;
  if (absl::Status s = db.KeepAll({
          {&table.insert_, "INSERT INTO audit (entry) VALUES (:entry)", "insert audit"},
          {&table.pending_, "SELECT id, entry FROM audit ORDER BY id LIMIT :limit",
           "pending audit"},
          {&table.delete_, "DELETE FROM audit WHERE id = :id", "delete audit"},
      });
      !s.ok()) {
    return s;
  }
  return table;
}

absl::Status AuditTable::Add(sqlite::Transaction& tx, const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) {
    if (absl::Status s = tx.Run(insert_.BindBlob(":entry", entry)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AuditRow>> AuditTable::Pending(int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  sqlite::ScopedReset reset(pending_);
  pending_.BindInt64(":limit", limit);
  std::vector<AuditRow> rows;
  absl::StatusOr<bool> row;
  while ((row = pending_.Step()).ok() && *row) {
    rows.push_back({.id = pending_.Int64(0), .entry = pending_.Blob(1)});
  }
  if (!row.ok()) return row.status();
  return rows;
}

absl::Status AuditTable::Delete(sqlite::Transaction& tx, const std::vector<std::int64_t>& ids) {
  for (std::int64_t id : ids) {
    if (absl::Status s = tx.Run(delete_.BindInt64(":id", id)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace schakel::inbox::store
