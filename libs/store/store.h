// The inbox's own database: one SQLite file per organisation holding its assignments, the feed of
// their changes, an outbox of events still to be published, and audit entries still to be
// published. Each assignment is stored whole as a serialized schakel.v1.Assignment (so the message
// can grow without a migration), next to the columns that lists filter and sort on. Every write
// stores the assignment, one row in the changes feed and the events it causes in one transaction,
// so that what is stored and what is published never disagree: a relay publishes the outbox and
// deletes what Kafka has acknowledged. Inserting is idempotent on assignment_id, because Kafka
// redelivers. Several writes can share one transaction (InTransaction: one fsync for a consumed
// batch instead of one per record). Safe to use from several threads (one connection behind a
// mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

// A Kafka record to publish once the transaction that queued it has committed.
struct OutboxEvent {
  std::string topic;
  std::string key;
  std::string value;
};

// An outbox row: `id` is what DeleteOutbox takes once the event is acknowledged.
struct OutboxEntry {
  std::int64_t id = 0;
  OutboxEvent event;
};

// What a change makes of an assignment: the assignment as it is afterwards, the events to
// publish about it, and its audit entries (serialized schakel.v1.AuditEntry, not yet linked).
struct Change {
  schakel::v1::Assignment assignment{};
  std::vector<OutboxEvent> events{};
  std::vector<std::string> audit{};
};

// A client's data key as the key service handed it out for an assignment (schakel.v1.DataKey).
struct DataKey {
  std::string key_id;
  std::string key;
};

// An audit entry waiting for the audit writer: `id` is what DeleteAudit takes once it is in Kafka.
struct AuditRow {
  std::int64_t id = 0;
  std::string entry;  // a serialized schakel.v1.AuditEntry
};

// One row of the changes feed.
struct StoredChange {
  std::int64_t sequence = 0;  // strictly increasing in commit order, never reused
  schakel::v1::Assignment assignment;
};

class InboxStore {
 public:
  // Decides a change from the assignment as it is now; an error refuses it (nothing is written).
  // Runs with the store locked: it must not call back into the store.
  using ChangeFn = std::function<absl::StatusOr<Change>(const schakel::v1::Assignment& current)>;

  // Unsubscribes a commit listener when destroyed. Must not outlive the store.
  class Subscription {
   public:
    Subscription() = default;
    ~Subscription();
    Subscription(Subscription&& other) noexcept;
    Subscription& operator=(Subscription&& other) noexcept;
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;
    // Unsubscribes now; afterwards the listener is not running and will not run again.
    void Reset();

   private:
    friend class InboxStore;
    Subscription(InboxStore* store, std::uint64_t id) : store_(store), id_(id) {}
    InboxStore* store_ = nullptr;
    std::uint64_t id_ = 0;
  };

  // Opens (creating if needed) the database at `path` and brings its schema up to date, migrating
  // older versions in place. Refuses a database written by a newer version of the schema.
  static absl::StatusOr<std::unique_ptr<InboxStore>> Open(const std::string& path);
  ~InboxStore();

  InboxStore(const InboxStore&) = delete;
  InboxStore& operator=(const InboxStore&) = delete;

  // Stores a new assignment with one row in the changes feed and `events` in the outbox, in one
  // transaction. Returns true when it was stored, false when an assignment with the same id was
  // there already (and nothing at all was written). Durable when it returns.
  absl::StatusOr<bool> Insert(const schakel::v1::Assignment& assignment,
                              std::vector<OutboxEvent> events = {},
                              std::vector<std::string> audit = {});

  // Changes one assignment in one write transaction, serialised with every other write:
  //  - NOT_FOUND "assignment not found" when there is no such assignment;
  //  - ABORTED "assignment <id> changed since version <expected> (now <current>)" when its
  //    version is not `expected_version`: someone else changed it first;
  //  - otherwise `change` decides; its error is returned as it is.
  // Only when `change` succeeds are the new assignment, one row in the changes feed and its events
  // written (and `change` must keep the id and raise the version). Returns what was stored.
  absl::StatusOr<schakel::v1::Assignment> Apply(const std::string& assignment_id,
                                                std::uint64_t expected_version,
                                                const ChangeFn& change);

  // NOT_FOUND when there is no such assignment.
  absl::StatusOr<schakel::v1::Assignment> Get(const std::string& assignment_id);

  // The client's data key of an assignment, kept so that what the organisation types about it can
  // be sealed (Batch::PutKey stores it with the assignment; a second put keeps the first). None
  // when the assignment came without sealed data, before keys were kept, or its client was erased
  // (EraseClient deletes them).
  absl::StatusOr<std::optional<DataKey>> GetKey(const std::string& assignment_id);

  // The store's reads and writes inside one transaction (see InTransaction): each answers as the
  // store's own method of that name does, and sees what the batch wrote before it; nothing is
  // durable, or visible to anyone else, until the transaction commits.
  class Batch {
   public:
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    absl::StatusOr<bool> Insert(const schakel::v1::Assignment& assignment,
                                const std::vector<OutboxEvent>& events,
                                const std::vector<std::string>& audit = {});
    // Audit entries (serialized schakel.v1.AuditEntry, not yet linked) committed with the batch:
    // what the batch's records did is recorded exactly when it is stored.
    absl::Status AddAudit(const std::vector<std::string>& entries);
    absl::StatusOr<schakel::v1::Assignment> Apply(const std::string& assignment_id,
                                                  std::uint64_t expected_version,
                                                  const ChangeFn& change);
    absl::StatusOr<schakel::v1::Assignment> Get(const std::string& assignment_id);
    absl::Status PutKey(const std::string& assignment_id, const DataKey& key);
    absl::StatusOr<std::optional<DataKey>> GetKey(const std::string& assignment_id);
    absl::StatusOr<Page> List(const ListQuery& query);
    absl::StatusOr<std::int64_t> CountOpen();

   private:
    friend class InboxStore;
    explicit Batch(InboxStore& store) : store_(store) {}
    InboxStore& store_;
  };
  // Runs `work` in one write transaction, with the store locked, and commits what it wrote when it
  // returns OK: then all of it is durable, and commit listeners run once. When `work` returns an
  // error, or any write inside it failed in SQLite (even if `work` went on), everything it wrote
  // is rolled back and that error returned. `work` must use only `batch`, never the store itself
  // (it is locked), and should not wait for anything: every other caller of the store waits.
  absl::Status InTransaction(const std::function<absl::Status(Batch& batch)>& work);
  // One page of the assignments that match. Paging is keyset-based: a token stays valid while rows
  // are added. INVALID_ARGUMENT for a malformed token or a non-positive page size.
  absl::StatusOr<Page> List(const ListQuery& query);
  // How many assignments are stored.
  absl::StatusOr<std::int64_t> Count();
  // How many assignments are not in a final status (see referral::IsFinal).
  absl::StatusOr<std::int64_t> CountOpen();
  // How many assignments there are of each need code in each status (for the metrics).
  struct NeedStatusCount {
    std::string need_code;
    v1::AssignmentStatus status = v1::ASSIGNMENT_STATUS_UNSPECIFIED;
    std::int64_t count = 0;
  };
  absl::StatusOr<std::vector<NeedStatusCount>> CountByNeedAndStatus();
  // A random id made when this database file was created. The inbox names its consumer group after
  // it, so a new (or deleted and recreated) database reads its topic from the beginning: the
  // rebuild. The same file keeps its id, and so its place in the topic.
  absl::StatusOr<std::string> InstanceId();

  // The changes feed: at most `limit` changes with a sequence above `after`, oldest first.
  absl::StatusOr<std::vector<StoredChange>> ChangesAfter(std::int64_t after, int limit);
  // The sequence of the newest change, 0 when there is none.
  absl::StatusOr<std::int64_t> LastSequence();

  // At most `limit` outbox rows, oldest first.
  absl::StatusOr<std::vector<OutboxEntry>> PendingOutbox(int limit);
  // Removes these rows (published and acknowledged), in one transaction. Unknown ids are ignored.
  absl::Status DeleteOutbox(const std::vector<std::int64_t>& ids);

  // Erasure of one client: every assignment of `client_pseudonym` not yet erased gets `erase`
  // applied (it must keep the id and version) and is stored with one row in the changes feed, so
  // watchers learn it; the earlier rows of the changes feed about those assignments are erased the
  // same way; freed bytes are overwritten (secure_delete) and the WAL is checkpointed, so the old
  // text is gone from the files; their data keys (GetKey) are deleted. One transaction. Returns
  // the ids of the assignments erased now.
  // Scans every assignment and change: an operator's rare action, not a hot path.
  absl::StatusOr<std::vector<std::string>> EraseClient(
      const std::string& client_pseudonym,
      const std::function<void(schakel::v1::Assignment&)>& erase);

  // Audit entries (of reads: changes bring theirs in Change::audit), in one transaction; durable
  // when it returns. Does not notify commit listeners (nothing in the feed changed).
  absl::Status AddAudit(const std::vector<std::string>& entries);
  // At most `limit` waiting audit entries, oldest first.
  absl::StatusOr<std::vector<AuditRow>> PendingAudit(int limit);
  // Removes these entries (in Kafka now), in one transaction. Unknown ids are ignored.
  absl::Status DeleteAudit(const std::vector<std::int64_t>& ids);

  // Calls `listener` after every commit that adds a change (Insert, Apply), on the committing
  // thread and outside the store's lock, so it may read the store. It should be quick (e.g. wake a
  // thread) and must not subscribe or unsubscribe.
  [[nodiscard]] Subscription OnCommit(std::function<void()> listener);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;
  };
  struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const;
  };
  using Db = std::unique_ptr<sqlite3, DbCloser>;
  using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;
  class Transaction;

  // One list statement per combination of filters, so that each can use its own index.
  static constexpr int kFilterStatus = 1;
  static constexpr int kFilterNeed = 2;

  explicit InboxStore(Db db);
  absl::Status Prepare();
  // With mu_ held, inside a transaction: the change row and the outbox rows of one write.
  absl::Status WriteChange(const std::string& assignment_id, const std::string& body,
                           const std::vector<OutboxEvent>& events,
                           const std::vector<std::string>& audit);
  // With mu_ held, inside a transaction: the audit rows of a write or of a batch.
  absl::Status WriteAudit(const std::vector<std::string>& entries);
  // With mu_ held, inside a transaction: what Insert and Apply do between begin and commit.
  absl::StatusOr<bool> InsertLocked(const schakel::v1::Assignment& assignment,
                                    const std::vector<OutboxEvent>& events,
                                    const std::vector<std::string>& audit);
  absl::StatusOr<schakel::v1::Assignment> ApplyLocked(const std::string& assignment_id,
                                                      std::uint64_t expected_version,
                                                      const ChangeFn& change);
  // With mu_ held: what Get, List and the counts do.
  absl::StatusOr<schakel::v1::Assignment> GetLocked(const std::string& assignment_id);
  absl::Status PutKeyLocked(const std::string& assignment_id, const DataKey& key);
  absl::StatusOr<std::optional<DataKey>> GetKeyLocked(const std::string& assignment_id);
  absl::StatusOr<Page> ListLocked(const ListQuery& query);
  absl::StatusOr<std::int64_t> CountLocked(sqlite3_stmt* stmt, const char* what);
  absl::StatusOr<std::int64_t> CountWith(sqlite3_stmt* stmt, const char* what);
  // A write statement failed inside the transaction: what it wrote before must not be committed.
  absl::Status WriteFailed(absl::Status status);
  void NotifyCommitted();
  void Unsubscribe(std::uint64_t id);

  std::mutex mu_;
  // Within the transaction in hand (mu_ held): a change was written / a write failed.
  bool wrote_ = false;
  bool write_failed_ = false;
  // Declared before the statements: statements are finalized before the connection closes.
  Db db_;
  Stmt begin_;
  Stmt commit_;
  Stmt rollback_;
  Stmt insert_;
  Stmt update_;
  Stmt insert_change_;
  Stmt insert_outbox_;
  Stmt get_;
  Stmt count_;
  Stmt count_open_;
  Stmt count_by_need_and_status_;
  Stmt changes_after_;
  Stmt last_sequence_;
  Stmt pending_outbox_;
  Stmt delete_outbox_;
  Stmt insert_audit_;
  Stmt pending_audit_;
  Stmt delete_audit_;
  Stmt put_key_;
  Stmt get_key_;
  Stmt list_[4];

  // Held while listeners run, so that once Unsubscribe returns its listener is not running.
  std::mutex listeners_mu_;
  std::uint64_t next_listener_id_ = 1;
  std::map<std::uint64_t, std::function<void()>> listeners_;
};

}  // namespace schakel::store
