#include "services/inbox/store/keys.h"

#include "absl/status/status.h"

namespace schakel::inbox::store {

absl::StatusOr<KeyTable> KeyTable::Prepare(sqlite::Database& db) {
  KeyTable table;
  if (absl::Status s = db.KeepAll({
          {&table.put_,
           "INSERT INTO assignment_keys (assignment_id, key_id, key) VALUES (:id, :key_id, :key)"
           " ON CONFLICT (assignment_id) DO NOTHING",
           "insert key"},
          {&table.get_, "SELECT key_id, key FROM assignment_keys WHERE assignment_id = :id",
           "get key"},
          {&table.delete_, "DELETE FROM assignment_keys WHERE assignment_id = :id", "erase: keys"},
      });
      !s.ok()) {
    return s;
  }
  return table;
}

absl::Status KeyTable::Put(sqlite::Transaction& tx, const std::string& assignment_id,
                           const DataKey& key) {
  put_.BindText(":id", assignment_id).BindText(":key_id", key.key_id).BindBlob(":key", key.key);
  return tx.Run(put_);
}

absl::StatusOr<std::optional<DataKey>> KeyTable::Get(const std::string& assignment_id) {
  sqlite::ScopedReset reset(get_);
  absl::StatusOr<bool> row = get_.BindText(":id", assignment_id).Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  return DataKey{.key_id = get_.Text(0), .key = get_.Blob(1)};
}

absl::Status KeyTable::Delete(sqlite::Transaction& tx,
                              const std::set<std::string>& assignment_ids) {
  for (const std::string& id : assignment_ids) {
    if (absl::Status s = tx.Run(delete_.BindText(":id", id)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace schakel::inbox::store
