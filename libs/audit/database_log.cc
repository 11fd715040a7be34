#include "libs/audit/database_log.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace schakel::audit {
namespace {

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS audit_queue (id INTEGER PRIMARY KEY, entry BLOB NOT NULL)";

}  // namespace

std::string QueueFileBeside(const std::string& db_path) {
  std::string stem = db_path;
  if (stem.ends_with(".db")) stem.resize(stem.size() - 3);
  return stem + "-audit.db";
}

absl::StatusOr<std::unique_ptr<DatabaseLog>> DatabaseLog::Open(const std::string& path,
                                                               ChainWriterOptions options,
                                                               std::int64_t max_waiting) {
  absl::StatusOr<sqlite::Database> db =
      sqlite::Database::Open(path, {.name = absl::StrCat("audit queue ", options.writer),
                                    .errors = sqlite::Errors::kAllUnavailable,
                                    .require_wal = false});
  if (!db.ok()) return db.status();
  if (absl::Status s = db->Exec(kSchema, "schema"); !s.ok()) return s;
  std::int64_t waiting = 0;
  {
    absl::StatusOr<sqlite::Statement> count =
        db->Prepare("SELECT count(*) FROM audit_queue", "count waiting");
    if (!count.ok()) return count.status();
    absl::StatusOr<bool> row = count->Step();
    if (!row.ok()) return row.status();
    waiting = count->Int64(0);
  }  // the statement goes back to the pool, reset
  if (waiting > 0) {
    spdlog::info("audit chain {}: {} entries from before the restart wait to be published",
                 options.writer, waiting);
  }
  std::unique_ptr<DatabaseLog> log(
      new DatabaseLog(*std::move(db), std::move(options), max_waiting, waiting));
  absl::MutexLock lock(&log->db_mu_);
  if (absl::Status s = log->db_.KeepAll({
          {&log->insert_, "INSERT INTO audit_queue (entry) VALUES (:entry)", "queue audit entry"},
          {&log->pending_, "SELECT id, entry FROM audit_queue ORDER BY id LIMIT :limit",
           "pending audit entries"},
          {&log->delete_, "DELETE FROM audit_queue WHERE id = :id", "published audit entry"},
      });
      !s.ok()) {
    return s;
  }
  return log;
}

DatabaseLog::DatabaseLog(sqlite::Database db, ChainWriterOptions options, std::int64_t max_waiting,
                         std::int64_t waiting)
    : max_waiting_(max_waiting),
      waiting_(waiting),
      db_(std::move(db)),
      writer_(std::move(options), *this) {}

DatabaseLog::~DatabaseLog() { Stop(); }

void DatabaseLog::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return;
    started_ = true;
  }
  write_thread_ = std::thread([this] { WriteLoop(); });
  writer_.Start();
}

void DatabaseLog::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (write_thread_.joinable()) write_thread_.join();
  // Not started (or already stopped): whatever is still appended is refused here.
  std::vector<Item> left;
  {
    absl::MutexLock lock(&mu_);
    left.swap(appended_);
  }
  for (Item& item : left) {
    if (item.done) item.done(absl::UnavailableError("the audit log stopped before it took this"));
  }
  writer_.Stop();
}

void DatabaseLog::Append(v1::AuditEntry entry, Done done) {
  {
    absl::MutexLock lock(&mu_);  // wakes WriteLoop as it is released
    if (!stopping_ && waiting() + static_cast<std::int64_t>(appended_.size()) < max_waiting_) {
      appended_.push_back({std::move(entry), std::move(done)});
      return;
    }
  }
  if (done) {
    done(absl::UnavailableError(
        "the audit log cannot take more entries (stopping, or Kafka unreachable for long)"));
  }
}

void DatabaseLog::WriteLoop() {
  auto woken = [this]()
                   ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !appended_.empty(); };
  while (true) {
    std::vector<Item> items;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&woken));
      if (appended_.empty()) return;  // stopping, and nothing left to write
      items.swap(appended_);
    }
    std::vector<std::string> entries;
    entries.reserve(items.size());
    for (const Item& item : items) entries.push_back(item.entry.SerializeAsString());
    const absl::Status written = Write(entries);
    if (!written.ok()) {
      spdlog::error("audit chain {}: {} entries not queued: {}", writer_.writer(), items.size(),
                    std::string(written.message()));
    }
    for (Item& item : items) {
      if (item.done) item.done(written);
    }
    if (written.ok()) writer_.Notify();
  }
}

absl::Status DatabaseLog::Write(const std::vector<std::string>& entries) {
  absl::MutexLock lock(&db_mu_);
  sqlite::Statement* insert = &insert_;  // taken under the lock: the lambda runs under it too
  absl::Status written = sqlite::InTransaction(db_, [&](sqlite::Transaction& tx) {
    for (const std::string& entry : entries) {
      if (absl::Status s = tx.Run(insert->BindBlob(":entry", entry)); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  if (written.ok()) waiting_ += static_cast<std::int64_t>(entries.size());
  return written;
}

absl::StatusOr<std::vector<Queued>> DatabaseLog::Pending(int limit) {
  absl::MutexLock lock(&db_mu_);
  sqlite::ScopedReset reset(pending_);
  pending_.BindInt64(":limit", limit);
  std::vector<Queued> queued;
  absl::StatusOr<bool> row;
  while ((row = pending_.Step()).ok() && *row) {
    Queued item;
    item.id = pending_.Int64(0);
    if (!item.entry.ParseFromString(pending_.Blob(1))) {
      // Written by this program into its own table: a broken invariant, not bad input.
      return absl::DataLossError(
          absl::StrCat("audit queue ", writer_.writer(), ": entry ", item.id, " cannot be parsed"));
    }
    queued.push_back(std::move(item));
  }
  if (!row.ok()) return row.status();
  return queued;
}

absl::Status DatabaseLog::Published(const std::vector<std::int64_t>& ids) {
  absl::MutexLock lock(&db_mu_);
  sqlite::Statement* remove = &delete_;  // taken under the lock: the lambda runs under it too
  absl::Status deleted = sqlite::InTransaction(db_, [&](sqlite::Transaction& tx) {
    for (std::int64_t id : ids) {
      if (absl::Status s = tx.Run(remove->BindInt64(":id", id)); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  if (deleted.ok()) waiting_ -= static_cast<std::int64_t>(ids.size());
  return deleted;
}

}  // namespace schakel::audit
