#include "services/inbox/store/inbox_store.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "absl/status/status.h"
#include "services/inbox/store/schema.h"

namespace schakel::inbox::store {

using schakel::v1::Assignment;

InboxStore::Subscription::~Subscription() { Reset(); }

InboxStore::Subscription::Subscription(Subscription&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)), id_(std::exchange(other.id_, 0)) {}

InboxStore::Subscription& InboxStore::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    Reset();
    store_ = std::exchange(other.store_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void InboxStore::Subscription::Reset() {
  if (store_ != nullptr) store_->Unsubscribe(id_);
  store_ = nullptr;
  id_ = 0;
}

InboxStore::~InboxStore() = default;

absl::StatusOr<std::unique_ptr<InboxStore>> InboxStore::Open(const std::string& path) {
  absl::StatusOr<sqlite::Database> db = sqlite::Database::Open(path, {.name = "inbox store"});
  if (!db.ok()) return db.status();
  if (absl::Status s = db->Migrate(kMigrations, kInstanceSchema); !s.ok()) return s;
  absl::StatusOr<AssignmentTable> assignments = AssignmentTable::Prepare(*db);
  if (!assignments.ok()) return assignments.status();
  absl::StatusOr<OutboxTable> outbox = OutboxTable::Prepare(*db);
  if (!outbox.ok()) return outbox.status();
  absl::StatusOr<AuditTable> audit = AuditTable::Prepare(*db);
  if (!audit.ok()) return audit.status();
  absl::StatusOr<KeyTable> keys = KeyTable::Prepare(*db);
  if (!keys.ok()) return keys.status();
  return std::unique_ptr<InboxStore>(
      new InboxStore(*std::move(db), Tables{.assignments = *std::move(assignments),
                                            .outbox = *std::move(outbox),
                                            .audit = *std::move(audit),
                                            .keys = *std::move(keys)}));
}

absl::Status InboxStore::Write(
    const std::function<absl::Status(sqlite::Transaction& tx, Tables& tables)>& work) {
  absl::MutexLock lock(&mu_);
  // The work runs under this lock, but a lambda cannot say so to the thread-safety analysis.
  Tables* tables = &tables_;
  return sqlite::InTransaction(db_, [&](sqlite::Transaction& tx) { return work(tx, *tables); });
}

absl::Status InboxStore::InTransaction(const std::function<absl::Status(Batch& batch)>& work) {
  bool changed = false;
  absl::Status done = Write([&](sqlite::Transaction& tx, Tables& tables) {
    Batch batch(tx, tables);
    absl::Status worked = work(batch);
    changed = batch.changed_;
    return worked;
  });
  if (!done.ok()) return done;
  if (changed) NotifyCommitted();
  return absl::OkStatus();
}

absl::Status InboxStore::Batch::Record(const std::vector<OutboxEvent>& events,
                                       const std::vector<std::string>& audit) {
  if (absl::Status s = tables_.audit.Add(tx_, audit); !s.ok()) return s;
  if (absl::Status s = tables_.outbox.Add(tx_, events); !s.ok()) return s;
  changed_ = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> InboxStore::Batch::Insert(const Assignment& assignment,
                                               const std::vector<OutboxEvent>& events,
                                               const std::vector<std::string>& audit) {
  absl::StatusOr<bool> inserted = tables_.assignments.Insert(tx_, assignment);
  if (!inserted.ok() || !*inserted) return inserted;
  if (absl::Status s = Record(events, audit); !s.ok()) return s;
  return true;
}

absl::StatusOr<Assignment> InboxStore::Batch::Apply(const std::string& assignment_id,
                                                    std::uint64_t expected_version,
                                                    const ChangeFn& change) {
  absl::StatusOr<Change> applied =
      tables_.assignments.Apply(tx_, assignment_id, expected_version, change);
  if (!applied.ok()) return applied.status();
  if (absl::Status s = Record(applied->events, applied->audit); !s.ok()) return s;
  return std::move(applied->assignment);
}

absl::Status InboxStore::Batch::AddAudit(const std::vector<std::string>& entries) {
  return tables_.audit.Add(tx_, entries);
}

absl::Status InboxStore::Batch::PutKey(const std::string& assignment_id, const DataKey& key) {
  return tables_.keys.Put(tx_, assignment_id, key);
}

absl::StatusOr<Assignment> InboxStore::Batch::Get(const std::string& assignment_id) {
  return tables_.assignments.Get(assignment_id);
}

absl::StatusOr<std::optional<DataKey>> InboxStore::Batch::GetKey(const std::string& assignment_id) {
  return tables_.keys.Get(assignment_id);
}

absl::StatusOr<Page> InboxStore::Batch::List(const ListQuery& query) {
  return tables_.assignments.List(query);
}

absl::StatusOr<std::int64_t> InboxStore::Batch::CountOpen() {
  return tables_.assignments.CountOpen();
}

absl::StatusOr<bool> InboxStore::Insert(const Assignment& assignment,
                                        std::vector<OutboxEvent> events,
                                        std::vector<std::string> audit) {
  bool inserted = false;
  absl::Status stored = InTransaction([&](Batch& batch) -> absl::Status {
    absl::StatusOr<bool> done = batch.Insert(assignment, events, audit);
    if (!done.ok()) return done.status();
    inserted = *done;
    return absl::OkStatus();
  });
  if (!stored.ok()) return stored;
  return inserted;
}

absl::StatusOr<Assignment> InboxStore::Apply(const std::string& assignment_id,
                                             std::uint64_t expected_version,
                                             const ChangeFn& change) {
  Assignment stored;
  absl::Status applied = InTransaction([&](Batch& batch) -> absl::Status {
    absl::StatusOr<Assignment> done = batch.Apply(assignment_id, expected_version, change);
    if (!done.ok()) return done.status();
    stored = *std::move(done);
    return absl::OkStatus();
  });
  if (!applied.ok()) return applied;
  return stored;
}

absl::Status InboxStore::AddAudit(const std::vector<std::string>& entries) {
  if (entries.empty()) return absl::OkStatus();
  return Write(
      [&](sqlite::Transaction& tx, Tables& tables) { return tables.audit.Add(tx, entries); });
}

absl::StatusOr<Assignment> InboxStore::Get(const std::string& assignment_id) {
  absl::MutexLock lock(&mu_);
  return tables_.assignments.Get(assignment_id);
}

absl::StatusOr<std::optional<DataKey>> InboxStore::GetKey(const std::string& assignment_id) {
  absl::MutexLock lock(&mu_);
  return tables_.keys.Get(assignment_id);
}

absl::StatusOr<Page> InboxStore::List(const ListQuery& query) {
  absl::MutexLock lock(&mu_);
  return tables_.assignments.List(query);
}

absl::StatusOr<std::int64_t> InboxStore::Count() {
  absl::MutexLock lock(&mu_);
  return tables_.assignments.Count();
}

absl::StatusOr<std::int64_t> InboxStore::CountOpen() {
  absl::MutexLock lock(&mu_);
  return tables_.assignments.CountOpen();
}

absl::StatusOr<std::vector<NeedStatusCount>> InboxStore::CountByNeedAndStatus() {
  absl::MutexLock lock(&mu_);
  return tables_.assignments.CountByNeedAndStatus();
}

absl::StatusOr<std::string> InboxStore::InstanceId() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> read =
      db_.Prepare("SELECT id FROM instance LIMIT 1", "instance id");
  if (!read.ok()) return read.status();
  absl::StatusOr<bool> row = read->Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("inbox store: instance id: no row");
  return read->Text(0);
}

absl::StatusOr<std::vector<StoredChange>> InboxStore::ChangesAfter(std::int64_t after, int limit) {
  absl::MutexLock lock(&mu_);
  return tables_.assignments.ChangesAfter(after, limit);
}

absl::StatusOr<std::int64_t> InboxStore::LastSequence() {
  absl::MutexLock lock(&mu_);
  return tables_.assignments.LastSequence();
}

absl::StatusOr<std::vector<OutboxEntry>> InboxStore::PendingOutbox(int limit) {
  absl::MutexLock lock(&mu_);
  return tables_.outbox.Pending(limit);
}

absl::Status InboxStore::DeleteOutbox(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  return Write(
      [&](sqlite::Transaction& tx, Tables& tables) { return tables.outbox.Delete(tx, ids); });
}

absl::StatusOr<std::vector<AuditRow>> InboxStore::PendingAudit(int limit) {
  absl::MutexLock lock(&mu_);
  return tables_.audit.Pending(limit);
}

absl::Status InboxStore::DeleteAudit(const std::vector<std::int64_t>& ids) {
  if (ids.empty()) return absl::OkStatus();
  return Write(
      [&](sqlite::Transaction& tx, Tables& tables) { return tables.audit.Delete(tx, ids); });
}

absl::StatusOr<std::vector<std::string>> InboxStore::EraseClient(
    const std::string& client_pseudonym, const std::function<void(Assignment&)>& erase) {
  std::vector<std::string> erased;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<sqlite::Transaction> tx = sqlite::Transaction::Begin(db_);
    if (!tx.ok()) return tx.status();
    absl::StatusOr<std::set<std::string>> ids =
        tables_.assignments.NotErasedOf(*tx, client_pseudonym);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) return erased;
    // Freed and rewritten bytes are overwritten, not left in free pages (for this erasure only:
    // it costs writes the outbox's deletes need not pay).
    if (absl::Status s = db_.Exec("PRAGMA secure_delete = ON", "secure_delete"); !s.ok()) return s;
    absl::StatusOr<std::vector<std::string>> rewritten =
        tables_.assignments.Erase(*tx, client_pseudonym, *ids, erase);
    if (!rewritten.ok()) return rewritten.status();
    erased = *std::move(rewritten);
    // The inbox's copies of the client's key go too.
    if (absl::Status s = tables_.keys.Delete(*tx, *ids); !s.ok()) return s;
    if (absl::Status s = tx->Commit(); !s.ok()) return s;
    if (absl::Status s = db_.Checkpoint(); !s.ok()) {
      spdlog::warn("inbox store: checkpoint after erasure: {}", std::string(s.message()));
    }
    if (absl::Status s = db_.Exec("PRAGMA secure_delete = OFF", "secure_delete"); !s.ok()) {
      return s;
    }
  }
  NotifyCommitted();
  return erased;
}

InboxStore::Subscription InboxStore::OnCommit(std::function<void()> listener) {
  absl::MutexLock lock(&listeners_mu_);
  const std::uint64_t id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return Subscription(this, id);
}

void InboxStore::Unsubscribe(std::uint64_t id) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(id);
}

void InboxStore::NotifyCommitted() {
  absl::MutexLock lock(&listeners_mu_);
  for (const auto& [id, listener] : listeners_) listener();
}

}  // namespace schakel::inbox::store
