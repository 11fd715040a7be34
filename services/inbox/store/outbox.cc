#include "services/inbox/store/outbox.h"

#include "absl/status/status.h"

namespace schakel::inbox::store {

absl::StatusOr<OutboxTable> OutboxTable::Prepare(sqlite::Database& db) {
  OutboxTable table;
  if (absl::Status s = db.KeepAll({
          {&table.insert_, "INSERT INTO outbox (topic, key, value) VALUES (:topic, :key, :value)",
           "insert outbox"},
          {&table.pending_, "SELECT id, topic, key, value FROM outbox ORDER BY id LIMIT :limit",
           "outbox"},
          {&table.delete_, "DELETE FROM outbox WHERE id = :id", "delete outbox"},
      });
      !s.ok()) {
    return s;
  }
  return table;
}

absl::Status OutboxTable::Add(sqlite::Transaction& tx, const std::vector<OutboxEvent>& events) {
  for (const OutboxEvent& event : events) {
    insert_.BindText(":topic", event.topic).BindBlob(":key", event.key);
    if (absl::Status s = tx.Run(insert_.BindBlob(":value", event.value)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<OutboxEntry>> OutboxTable::Pending(int limit) {
  if (limit <= 0) return absl::InvalidArgumentError("limit: must be positive");
  sqlite::ScopedReset reset(pending_);
  pending_.BindInt64(":limit", limit);
  std::vector<OutboxEntry> entries;
  absl::StatusOr<bool> row;
  while ((row = pending_.Step()).ok() && *row) {
    entries.push_back(
        {.id = pending_.Int64(0),
         .event = {.topic = pending_.Text(1), .key = pending_.Blob(2), .value = pending_.Blob(3)}});
  }
  if (!row.ok()) return row.status();
  return entries;
}

absl::Status OutboxTable::Delete(sqlite::Transaction& tx, const std::vector<std::int64_t>& ids) {
  for (std::int64_t id : ids) {
    if (absl::Status s = tx.Run(delete_.BindInt64(":id", id)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace schakel::inbox::store
