#include "services/router/state_store.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace schakel::router {
namespace {

// Bound for "no need is due": the statements turn it into NULL, which the due index leaves out.
constexpr std::int64_t kNotDue = std::numeric_limits<std::int64_t>::min();

constexpr char kSchema[] = R"(
CREATE TABLE state (
  referral_id TEXT PRIMARY KEY,
  partition INTEGER NOT NULL,
  waiting INTEGER NOT NULL,
  due INTEGER,
  value BLOB NOT NULL
);
CREATE INDEX state_due ON state (due) WHERE due IS NOT NULL;
CREATE INDEX state_partition ON state (partition);
)";

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open() {
  // "": a private temporary database, deleted when it is closed. It outlives nothing, so neither
  // a write-ahead log nor fsync is of any use. Its rollback journal stays a (temporary) file, not
  // memory: a restore rewrites the whole store in one transaction, and a journal in memory would
  // then hold a copy of every page it reuses.
  absl::StatusOr<sqlite::Database> db =
      sqlite::Database::Open("", {.name = "router state", .require_wal = false});
  if (!db.ok()) return db.status();
  if (absl::Status s = db->Exec(absl::StrCat("PRAGMA synchronous = OFF; PRAGMA journal_mode = "
                                             "DELETE; PRAGMA cache_size = -",
                                             kCacheKiB, ";")
                                    .c_str(),
                                "pragmas");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = db->Exec(kSchema, "schema"); !s.ok()) return s;
  std::unique_ptr<StateStore> store(new StateStore(*std::move(db)));
  if (absl::Status s = store->Prepare(); !s.ok()) return s;
  return store;
}

absl::Status StateStore::Prepare() {
  return db_.KeepAll({
      {&begin_, "BEGIN", "begin"},
      {&commit_, "COMMIT", "commit"},
      {&get_, "SELECT partition, value FROM state WHERE referral_id = ?1", "read a referral"},
      {&put_,
       "INSERT OR REPLACE INTO state (referral_id, partition, waiting, due, value) "
       "VALUES (?1, ?2, ?3, NULLIF(?4, ?6), ?5)",
       "keep a referral"},
      {&erase_, "DELETE FROM state WHERE referral_id = ?1", "forget a referral"},
      {&forget_, "DELETE FROM state WHERE partition = ?1", "forget a partition"},
      {&forget_all_, "DELETE FROM state", "forget everything"},
      {&due_,
       "SELECT referral_id FROM state WHERE due IS NOT NULL AND due <= ?1 ORDER BY due LIMIT ?2",
       "due referrals"},
      {&waiting_all_, "SELECT COALESCE(SUM(waiting), 0) FROM state", "count waiting needs"},
      {&waiting_one_, "SELECT waiting FROM state WHERE referral_id = ?1", "a referral's waiting"},
      {&count_, "SELECT COUNT(*) FROM state", "count referrals"},
  });
}

absl::Status StateStore::Write() {
  if (open_) return absl::OkStatus();
  if (absl::Status s = begin_.Run(); !s.ok()) return s;
  open_ = true;
  return absl::OkStatus();
}

absl::Status StateStore::Flush() {
  if (!open_) return absl::OkStatus();
  absl::Status s = commit_.Run();
  if (s.ok()) open_ = false;
  return s;
}

absl::StatusOr<std::optional<StateStore::Row>> StateStore::Get(const std::string& referral_id) {
  sqlite::ScopedReset reset(get_);
  get_.BindText(1, referral_id);
  absl::StatusOr<bool> row = get_.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::nullopt;
  return Row{.partition = static_cast<std::int32_t>(get_.Int64(0)), .value = get_.Blob(1)};
}

absl::Status StateStore::Put(const std::string& referral_id, std::int32_t partition,
                             const std::string& value, std::int64_t waiting,
                             std::optional<std::int64_t> due_micros) {
  if (absl::Status s = Write(); !s.ok()) return s;
  put_.BindText(1, referral_id)
      .BindInt64(2, partition)
      .BindInt64(3, waiting)
      .BindInt64(4, due_micros.value_or(kNotDue))
      .BindBlob(5, value)
      .BindInt64(6, kNotDue);
  return put_.Run();
}

absl::Status StateStore::Erase(const std::string& referral_id) {
  if (absl::Status s = Write(); !s.ok()) return s;
  erase_.BindText(1, referral_id);
  return erase_.Run();
}

absl::Status StateStore::Forget(std::int32_t partition) {
  if (absl::Status s = Write(); !s.ok()) return s;
  forget_.BindInt64(1, partition);
  return forget_.Run();
}

absl::Status StateStore::ForgetAll() {
  if (absl::Status s = Write(); !s.ok()) return s;
  return forget_all_.Run();
}

absl::StatusOr<std::vector<std::string>> StateStore::Due(std::int64_t now_micros,
                                                         std::size_t limit) {
  sqlite::ScopedReset reset(due_);
  due_.BindInt64(1, now_micros).BindInt64(2, static_cast<std::int64_t>(limit));
  std::vector<std::string> ids;
  while (true) {
    absl::StatusOr<bool> row = due_.Step();
    if (!row.ok()) return row.status();
    if (!*row) return ids;
    ids.push_back(due_.Text(0));
  }
}

absl::StatusOr<std::int64_t> StateStore::Waiting() {
  sqlite::ScopedReset reset(waiting_all_);
  absl::StatusOr<bool> row = waiting_all_.Step();
  if (!row.ok()) return row.status();
  return *row ? waiting_all_.Int64(0) : 0;
}

absl::StatusOr<std::int64_t> StateStore::Waiting(const std::string& referral_id) {
  sqlite::ScopedReset reset(waiting_one_);
  waiting_one_.BindText(1, referral_id);
  absl::StatusOr<bool> row = waiting_one_.Step();
  if (!row.ok()) return row.status();
  return *row ? waiting_one_.Int64(0) : 0;
}

absl::StatusOr<std::int64_t> StateStore::Count() {
  sqlite::ScopedReset reset(count_);
  absl::StatusOr<bool> row = count_.Step();
  if (!row.ok()) return row.status();
  return *row ? count_.Int64(0) : 0;
}

}  // namespace schakel::router
