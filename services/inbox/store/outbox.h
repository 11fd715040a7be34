// The inbox's outbox: Kafka records written in the same SQLite transaction as the change that
// causes them, so that what is stored and what is published never disagree. The relay
// (services/inbox/outbox_relay.h) publishes them oldest first and deletes what Kafka acknowledged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/sqlite/sqlite.h"

namespace schakel::inbox::store {

// A Kafka record to publish once the transaction that queued it has committed.
struct OutboxEvent {
  std::string topic;
  std::string key;
  std::string value;
};

// An outbox row: `id` is what Delete takes once the event is acknowledged.
struct OutboxEntry {
  std::int64_t id = 0;
  OutboxEvent event;
};

// The outbox table's statements; used with the store's lock held (see InboxStore).
class OutboxTable {
 public:
  static absl::StatusOr<OutboxTable> Prepare(sqlite::Database& db);

  absl::Status Add(sqlite::Transaction& tx, const std::vector<OutboxEvent>& events);
  // At most `limit` rows, oldest first. INVALID_ARGUMENT for a non-positive limit.
  absl::StatusOr<std::vector<OutboxEntry>> Pending(int limit);
  // Unknown ids are ignored.
  absl::Status Delete(sqlite::Transaction& tx, const std::vector<std::int64_t>& ids);

 private:
  OutboxTable() = default;

  sqlite::Statement insert_;
  sqlite::Statement pending_;
  sqlite::Statement delete_;
};

}  // namespace schakel::inbox::store
