// The inbox's own database: one SQLite file per organisation holding its assignments. Each
// assignment is stored whole as a serialized schakel.v1.Assignment (so the message can grow without
// a migration), next to the columns that lists filter and sort on. Inserting is idempotent on
// assignment_id, because Kafka redelivers. Safe to use from several threads (one connection behind
// a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "schakel/v1/inbox.pb.h"

struct sqlite3;
struct sqlite3_stmt;

namespace schakel::store {

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

class InboxStore {
 public:
  // Opens (creating if needed) the database at `path` and brings its schema up to date. Refuses a
  // database written by a newer version of the schema.
  static absl::StatusOr<std::unique_ptr<InboxStore>> Open(const std::string& path);
  ~InboxStore();

  InboxStore(const InboxStore&) = delete;
  InboxStore& operator=(const InboxStore&) = delete;

  // Stores the assignment unless one with the same assignment_id is there already. Returns true
  // when it was stored, false when it was there (and nothing changed). Durable when it returns.
  absl::StatusOr<bool> Insert(const schakel::v1::Assignment& assignment);
  // NOT_FOUND when there is no such assignment.
  absl::StatusOr<schakel::v1::Assignment> Get(const std::string& assignment_id);
  // One page of the assignments that match. Paging is keyset-based: a token stays valid while rows
  // are added. INVALID_ARGUMENT for a malformed token or a non-positive page size.
  absl::StatusOr<Page> List(const ListQuery& query);
  // How many assignments are stored.
  absl::StatusOr<std::int64_t> Count();

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using Db = std::unique_ptr<sqlite3, DbCloser>;
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

  // One list statement per combination of filters, so that each can use its own index.
  static constexpr int kFilterStatus = 1;
  static constexpr int kFilterNeed = 2;

  explicit InboxStore(Db db);
  absl::Status Prepare();

  std::mutex mu_;
  // Declared before the statements: statements are finalized before the connection closes.
  Db db_;
  Stmt insert_;
  Stmt get_;
  Stmt count_;
  Stmt list_[4];
};

}  // namespace schakel::store
