// A Recorder whose queue is a table in the service's own SQLite file: `done` runs once the entry is
// committed there, and the chain writer publishes it to the service's chain from there, shortly
// after. For a service that answers a call only once its entry will survive a crash (the key
// service's hand-outs, intake's referrals), without waiting for a Kafka transaction of its own on
// every call: entries that arrive together are written in one SQLite transaction (one fsync), and
// a restarted process publishes what its predecessor left in the table.
//
//   auto log = process.Must(audit::DatabaseLog::Open(audit::QueueFileBeside("keys.db"), options));
//   process.Start(*log);
//   log->Record(caller, audit::kKeyGranted, ids, reason, [](absl::Status s) { ... answer ... });
//
// The table (audit_queue) is the log's own, in a file of its own beside the service's database
// (QueueFileBeside): in the same file, the store's writes and the log's would wait for each other's
// write lock, and SQLite's busy wait sleeps for milliseconds at a time.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/audit/writer.h"
#include "libs/sqlite/sqlite.h"

namespace schakel::audit {

// The audit queue's file beside the SQLite file `db_path` of a service's store, in the same folder
// (so on the same volume): "keys.db" -> "keys-audit.db", "/var/lib/x/intake-view.db" ->
// "/var/lib/x/intake-view-audit.db".
std::string QueueFileBeside(const std::string& db_path);

class DatabaseLog final : public Recorder, private Queue {
 public:
  // Opens (creating) the queue's table in the SQLite file at `path`. `max_waiting`: entries in the
  // table at most (Kafka unreachable for long); beyond, Append refuses at once (UNAVAILABLE).
  static absl::StatusOr<std::unique_ptr<DatabaseLog>> Open(const std::string& path,
                                                           ChainWriterOptions options,
                                                           std::int64_t max_waiting = 100000);
  ~DatabaseLog() override;
  DatabaseLog(const DatabaseLog&) = delete;
  DatabaseLog& operator=(const DatabaseLog&) = delete;

  // Starts the thread that writes entries to the table and the chain writer that publishes them.
  void Start();
  // Writes what was appended (its Done runs), publishes what it can within the chain writer's
  // stop_timeout, and stops; what is not published stays in the table for the next start.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // `done` gets OK once the entry is committed to the table, UNAVAILABLE when it could not be
  // (the file failed, the log is stopped, or max_waiting entries wait already).
  void Append(v1::AuditEntry entry, Done done) override ABSL_LOCKS_EXCLUDED(mu_);

  // Entries in the table, not yet published.
  std::int64_t waiting() const { return waiting_.load(); }

 private:
  DatabaseLog(sqlite::Database db, ChainWriterOptions options, std::int64_t max_waiting,
              std::int64_t waiting);
  absl::StatusOr<std::vector<Queued>> Pending(int limit) override ABSL_LOCKS_EXCLUDED(db_mu_);
  absl::Status Published(const std::vector<std::int64_t>& ids) override ABSL_LOCKS_EXCLUDED(db_mu_);
  void WriteLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // One transaction for `entries`; OK when they are all committed.
  absl::Status Write(const std::vector<std::string>& entries) ABSL_LOCKS_EXCLUDED(db_mu_);

  struct Item {
    v1::AuditEntry entry;
    Done done;
  };
  const std::int64_t max_waiting_;
  std::atomic<std::int64_t> waiting_;  // in the table

  // Appended, not yet written: taken by WriteLoop all at once.
  absl::Mutex mu_;
  std::vector<Item> appended_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread write_thread_;

  // The connection, shared by the writing thread and the chain writer's.
  mutable absl::Mutex db_mu_;
  sqlite::Database db_ ABSL_GUARDED_BY(db_mu_);
  sqlite::Statement insert_ ABSL_GUARDED_BY(db_mu_);
  sqlite::Statement pending_ ABSL_GUARDED_BY(db_mu_);
  sqlite::Statement delete_ ABSL_GUARDED_BY(db_mu_);

  ChainWriter writer_;  // last: its thread uses the table above
};

}  // namespace schakel::audit
