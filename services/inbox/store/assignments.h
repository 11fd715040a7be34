// The inbox's assignments and the feed of their changes. Each assignment is stored whole as a
// serialized schakel.v1.Assignment (so the message can grow without a migration), next to the
// columns that lists filter and sort on; every write of one adds a row to the changes feed, which
// watchers follow by sequence. Inserting is idempotent on assignment_id, because Kafka redelivers.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/sqlite/sqlite.h"
#include "schakel/v1/inbox.pb.h"
#include "services/inbox/store/outbox.h"

namespace schakel::inbox::store {

struct ListQuery {
  // Only assignments in this status (UNSPECIFIED: all).
  schakel::v1::AssignmentStatus status = schakel::v1::ASSIGNMENT_STATUS_UNSPECIFIED;
  // Only assignments for this need code (empty: all).
  std::string need_code;
  // At most this many; must be positive (the caller applies defaults and limits).
  int page_size = 50;
  // From a previous Page's next_page_token; empty for the first page.
  std::string page_token;
};

struct Page {
  // Oldest first: ordered by (requested_at, assignment_id).
  std::vector<schakel::v1::Assignment> assignments;
  // Empty when there are no more.
  std::string next_page_token;
};

// What a change makes of an assignment: the assignment as it is afterwards, the events to
// publish about it, and its audit entries (serialized schakel.v1.AuditEntry, not yet linked).
struct Change {
  schakel::v1::Assignment assignment{};
  std::vector<OutboxEvent> events{};
  std::vector<std::string> audit{};
};

// Decides a change from the assignment as it is now; an error refuses it (nothing is written).
// Runs with the store locked: it must not call back into the store.
using ChangeFn = std::function<absl::StatusOr<Change>(const schakel::v1::Assignment& current)>;

// One row of the changes feed.
struct StoredChange {
  std::int64_t sequence = 0;  // strictly increasing in commit order, never reused
  schakel::v1::Assignment assignment;
};

// How many assignments there are of one need code in one status (for the metrics).
struct NeedStatusCount {
  std::string need_code;
  v1::AssignmentStatus status = v1::ASSIGNMENT_STATUS_UNSPECIFIED;
  std::int64_t count = 0;
};

// The assignments' and the changes feed's statements; used with the store's lock held (see
// InboxStore). The writes store an assignment and its row in the feed; the events and audit
// entries of a change are the caller's to write in the same transaction.
class AssignmentTable {
 public:
  static absl::StatusOr<AssignmentTable> Prepare(sqlite::Database& db);

  // True when it was stored, false when an assignment with the same id was there already (and
  // nothing was written). INVALID_ARGUMENT without an id or with requested_at out of range.
  absl::StatusOr<bool> Insert(sqlite::Transaction& tx, const schakel::v1::Assignment& assignment);
  // Changes one assignment:
  //  - NOT_FOUND "assignment not found" when there is no such assignment;
  //  - ABORTED "assignment <id> changed since version <expected> (now <current>)" when its
  //    version is not `expected_version`: someone else changed it first;
  //  - otherwise `change` decides; its error is returned as it is, and INTERNAL when the change
  //    does not keep the id and raise the version.
  // Returns the change as stored.
  absl::StatusOr<Change> Apply(sqlite::Transaction& tx, const std::string& assignment_id,
                               std::uint64_t expected_version, const ChangeFn& change);
  // Erasure of one client, in two steps. First the ids of the client's assignments not yet erased.
  absl::StatusOr<std::set<std::string>> NotErasedOf(sqlite::Transaction& tx,
                                                    const std::string& client_pseudonym);
  // Then `erase` applied (keeping id and version) to the earlier rows of the changes feed about
  // those assignments and to the assignments themselves, each of which gets a row in the feed so
  // watchers learn it. Returns the ids of the assignments erased.
  absl::StatusOr<std::vector<std::string>> Erase(
      sqlite::Transaction& tx, const std::string& client_pseudonym,
      const std::set<std::string>& assignment_ids,
      const std::function<void(schakel::v1::Assignment&)>& erase);

  // NOT_FOUND "assignment not found" when there is no such assignment.
  absl::StatusOr<schakel::v1::Assignment> Get(const std::string& assignment_id);
  // One page of the assignments that match. Paging is keyset-based: a token stays valid while
  // rows are added. INVALID_ARGUMENT for a malformed token or a non-positive page size.
  absl::StatusOr<Page> List(const ListQuery& query);
  absl::StatusOr<std::int64_t> Count();
  // How many assignments are not in a final status (see referral::IsFinal).
  absl::StatusOr<std::int64_t> CountOpen();
  absl::StatusOr<std::vector<NeedStatusCount>> CountByNeedAndStatus();
  // At most `limit` changes with a sequence above `after`, oldest first.
  absl::StatusOr<std::vector<StoredChange>> ChangesAfter(std::int64_t after, int limit);
  // The sequence of the newest change, 0 when there is none.
  absl::StatusOr<std::int64_t> LastSequence();

 private:
  // One list statement per combination of filters, so that each can use its own index.
  static constexpr int kFilterStatus = 1;
  static constexpr int kFilterNeed = 2;

  AssignmentTable() = default;
  // The row in the changes feed of a write.
  absl::Status AddChange(sqlite::Transaction& tx, const std::string& assignment_id,
                         const std::string& body);

  sqlite::Statement insert_;
  sqlite::Statement update_;
  sqlite::Statement insert_change_;
  sqlite::Statement get_;
  sqlite::Statement count_;
  sqlite::Statement count_open_;
  sqlite::Statement count_by_need_and_status_;
  sqlite::Statement changes_after_;
  sqlite::Statement last_sequence_;
  sqlite::Statement list_[4];
};

}  // namespace schakel::inbox::store
