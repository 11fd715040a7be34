// The inbox's copies of clients' data keys: for each assignment, the key the key service handed
// out for it, kept so that what the organisation types about the assignment is sealed without
// asking again. Deleted when the client is erased.
#pragma once

#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "libs/sqlite/sqlite.h"

namespace schakel::inbox::store {

// A client's data key as the key service handed it out for an assignment (schakel.v1.DataKey).
struct DataKey {
  std::string key_id;
  std::string key;
};

// The assignment_keys table's statements; used with the store's lock held (see InboxStore).
class KeyTable {
 public:
  static absl::StatusOr<KeyTable> Prepare(sqlite::Database& db);

  // A second put for the same assignment keeps the first key.
  absl::Status Put(sqlite::Transaction& tx, const std::string& assignment_id, const DataKey& key);
  // None when no key is kept for the assignment.
  absl::StatusOr<std::optional<DataKey>> Get(const std::string& assignment_id);
  absl::Status Delete(sqlite::Transaction& tx, const std::set<std::string>& assignment_ids);

 private:
  KeyTable() = default;

  sqlite::Statement put_;
  sqlite::Statement get_;
  sqlite::Statement delete_;
};

}  // namespace schakel::inbox::store
