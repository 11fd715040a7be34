// The inbox's own database: one SQLite file per organisation (WAL, synchronous = FULL) holding
// its assignments and the feed of their changes (assignments.h), an outbox of events still to be
// published (outbox.h), audit entries still to be published (audit.h) and the clients' data keys
// of its assignments (keys.h); the schema and its migrations are in schema.h.
//
// Every write stores the assignment, one row in the changes feed, the events it causes and its
// audit entries in one transaction, so that what is stored and what is published never disagree:
// a relay publishes the outbox and deletes what Kafka has acknowledged. Several writes can share
// one transaction (InTransaction: one fsync for a consumed batch instead of one per record).
// Safe to use from several threads (one connection behind a mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/sqlite/sqlite.h"
#include "schakel/v1/inbox.pb.h"
#include "services/inbox/store/assignments.h"
#include "services/inbox/store/audit.h"
#include "services/inbox/store/keys.h"
#include "services/inbox/store/outbox.h"

namespace schakel::inbox::store {

class InboxStore {
  struct Tables;

 public:
  using ChangeFn = store::ChangeFn;
  using NeedStatusCount = store::NeedStatusCount;

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

  // The store's reads and writes inside one transaction (see InTransaction). Each operation is
  // written here once; the store's single operations below run one of them on their own. Nothing
  // is durable, or visible to anyone else, until the transaction commits; later operations see
  // what earlier ones wrote.
  class Batch {
   public:
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;

    // Stores a new assignment with one row in the changes feed, `events` in the outbox and
    // `audit` in the audit queue. True when it was stored, false when an assignment with the same
    // id was there already (and nothing at all was written).
    absl::StatusOr<bool> Insert(const schakel::v1::Assignment& assignment,
                                const std::vector<OutboxEvent>& events,
                                const std::vector<std::string>& audit = {});
    // Changes one assignment (AssignmentTable::Apply says how it refuses). Only when `change`
    // succeeds are the new assignment, one row in the changes feed, its events and its audit
    // entries written (and `change` must keep the id and raise the version). Returns what was
    // stored.
    absl::StatusOr<schakel::v1::Assignment> Apply(const std::string& assignment_id,
                                                  std::uint64_t expected_version,
                                                  const ChangeFn& change);
    // Audit entries (serialized schakel.v1.AuditEntry, not yet linked) committed with the batch:
    // what the batch's records did is recorded exactly when it is stored.
    absl::Status AddAudit(const std::vector<std::string>& entries);
    // Keeps the client's data key of an assignment (a second put keeps the first).
    absl::Status PutKey(const std::string& assignment_id, const DataKey& key);
    // NOT_FOUND when there is no such assignment.
    absl::StatusOr<schakel::v1::Assignment> Get(const std::string& assignment_id);
    absl::StatusOr<std::optional<DataKey>> GetKey(const std::string& assignment_id);
    absl::StatusOr<Page> List(const ListQuery& query);
    absl::StatusOr<std::int64_t> CountOpen();

   private:
    friend class InboxStore;
    Batch(sqlite::Transaction& tx, Tables& tables) : tx_(tx), tables_(tables) {}
    // The events and audit entries of a change just stored.
    absl::Status Record(const std::vector<OutboxEvent>& events,
                        const std::vector<std::string>& audit);

    sqlite::Transaction& tx_;
    Tables& tables_;
    // A row was added to the changes feed: commit listeners run once it commits.
    bool changed_ = false;
  };
  // Runs `work` in one write transaction, with the store locked, and commits what it wrote when it
  // returns OK: then all of it is durable, and commit listeners run once. When `work` returns an
  // error, or any write inside it failed in SQLite (even if `work` went on), everything it wrote
  // is rolled back and that error returned. `work` must use only `batch`, never the store itself
  // (it is locked), and should not wait for anything: every other caller of the store waits.
  absl::Status InTransaction(const std::function<absl::Status(Batch& batch)>& work);

  // Batch's operations of the same names, each in its own transaction; durable when they return.
  absl::StatusOr<bool> Insert(const schakel::v1::Assignment& assignment,
                              std::vector<OutboxEvent> events = {},
                              std::vector<std::string> audit = {});
  absl::StatusOr<schakel::v1::Assignment> Apply(const std::string& assignment_id,
                                                std::uint64_t expected_version,
                                                const ChangeFn& change);
  // Audit entries of reads (changes bring theirs in Change::audit). Does not notify commit
  // listeners (nothing in the feed changed).
  absl::Status AddAudit(const std::vector<std::string>& entries);

  // Reads, with the store locked.
  absl::StatusOr<schakel::v1::Assignment> Get(const std::string& assignment_id);
  // The client's data key of an assignment, kept so that what the organisation types about it can
  // be sealed (Batch::PutKey stores it with the assignment). None when the assignment came without
  // sealed data, before keys were kept, or its client was erased (EraseClient deletes them).
  absl::StatusOr<std::optional<DataKey>> GetKey(const std::string& assignment_id);
  absl::StatusOr<Page> List(const ListQuery& query);
  absl::StatusOr<std::int64_t> Count();
  absl::StatusOr<std::int64_t> CountOpen();
  absl::StatusOr<std::vector<NeedStatusCount>> CountByNeedAndStatus();
  // A random id made when this database file was created. The inbox names its consumer group after
  // it, so a new (or deleted and recreated) database reads its topic from the beginning: the
  // rebuild. The same file keeps its id, and so its place in the topic.
  absl::StatusOr<std::string> InstanceId();

  // The changes feed (AssignmentTable::ChangesAfter, LastSequence).
  absl::StatusOr<std::vector<StoredChange>> ChangesAfter(std::int64_t after, int limit);
  absl::StatusOr<std::int64_t> LastSequence();

  // The outbox: at most `limit` rows, oldest first; removing rows published and acknowledged, in
  // one transaction (unknown ids are ignored).
  absl::StatusOr<std::vector<OutboxEntry>> PendingOutbox(int limit);
  absl::Status DeleteOutbox(const std::vector<std::int64_t>& ids);

  // The audit queue: at most `limit` waiting entries, oldest first; removing entries that are in
  // Kafka now, in one transaction (unknown ids are ignored).
  absl::StatusOr<std::vector<AuditRow>> PendingAudit(int limit);
  absl::Status DeleteAudit(const std::vector<std::int64_t>& ids);

  // Erasure of one client: every assignment of `client_pseudonym` not yet erased gets `erase`
  // applied (it must keep the id and version) and is stored with one row in the changes feed, so
  // watchers learn it; the earlier rows of the changes feed about those assignments are erased the
  // same way; freed bytes are overwritten (secure_delete) and the WAL is checkpointed, so the old
  // text is gone from the files; their data keys (GetKey) are deleted. One transaction. Returns
  // the ids of the assignments erased now.
  absl::StatusOr<std::vector<std::string>> EraseClient(
      const std::string& client_pseudonym,
      const std::function<void(schakel::v1::Assignment&)>& erase);

  // Calls `listener` after every commit that adds a change (Insert, Apply), on the committing
  // thread and outside the store's lock, so it may read the store. It should be quick (e.g. wake a
  // thread) and must not subscribe or unsubscribe.
  [[nodiscard]] Subscription OnCommit(std::function<void()> listener);

 private:
  struct Tables {
    AssignmentTable assignments;
    OutboxTable outbox;
    AuditTable audit;
    KeyTable keys;
  };

  InboxStore(sqlite::Database db, Tables tables) : db_(std::move(db)), tables_(std::move(tables)) {}
  // Takes the lock and runs `work` in one write transaction, committed when it returns OK.
  absl::Status Write(
      const std::function<absl::Status(sqlite::Transaction& tx, Tables& tables)>& work)
      ABSL_LOCKS_EXCLUDED(mu_);
  void NotifyCommitted() ABSL_LOCKS_EXCLUDED(listeners_mu_);
  void Unsubscribe(std::uint64_t id) ABSL_LOCKS_EXCLUDED(listeners_mu_);

  absl::Mutex mu_;
  // Declared before the tables: their statements are finalized before the connection closes.
  sqlite::Database db_ ABSL_GUARDED_BY(mu_);
  Tables tables_ ABSL_GUARDED_BY(mu_);

  // Held while listeners run, so that once Unsubscribe returns its listener is not running.
  absl::Mutex listeners_mu_;
  std::uint64_t next_listener_id_ ABSL_GUARDED_BY(listeners_mu_) = 1;
  std::map<std::uint64_t, std::function<void()>> listeners_ ABSL_GUARDED_BY(listeners_mu_);
};

}  // namespace schakel::inbox::store
