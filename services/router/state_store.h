// StateStore: where the router keeps the escalation state of the referrals it owns, so that its
// memory does not grow with the number of referrals still open (issue 20).
//
// The truth is the compacted topic schakel.router.state; this is the router's own copy of the
// partitions it owns, read from that topic at every (re)assignment and after every aborted
// transaction (Router::Reset), then kept in step by the router's own changes. So it needs to
// survive nothing: it is a private temporary SQLite database (SQLite deletes its file when it is
// closed, and the system does when the process dies), written without fsync. SQLite keeps a
// bounded page cache in memory (kCacheKiB) and the rest on disk.
//
// Each row is one referral: its RouterReferralState as written on the topic (sealed personal data
// only, as on the topic), the partition it belongs to, how many of its needs wait for acceptance,
// and when the first of them is due (an index, so that the clock's check reads only what is due).
//
// Writes open a transaction that Flush commits: one per batch of the router, one per restore.
// Reads see what was written before, flushed or not. Not safe for concurrent use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/sqlite/sqlite.h"

namespace schakel::router {

class StateStore {
 public:
  // SQLite's page cache for the store, in KiB: what the store may keep in memory.
  static constexpr int kCacheKiB = 8 * 1024;

  // A new, empty store in a private temporary file.
  static absl::StatusOr<std::unique_ptr<StateStore>> Open();

  struct Row {
    std::int32_t partition = 0;
    std::string value;  // a serialized RouterReferralState
  };
  // The referral's row, nullopt when the store has none.
  absl::StatusOr<std::optional<Row>> Get(const std::string& referral_id);
  // Keeps (replacing) a referral's state. `due_micros`: when its first waiting need is due
  // (microseconds since the epoch), nullopt when none waits with a deadline.
  absl::Status Put(const std::string& referral_id, std::int32_t partition, const std::string& value,
                   std::int64_t waiting, std::optional<std::int64_t> due_micros);
  absl::Status Erase(const std::string& referral_id);
  // Every referral of `partition` goes; ForgetAll: every referral.
  absl::Status Forget(std::int32_t partition);
  absl::Status ForgetAll();
  // Up to `limit` referrals with a need due at or before `now_micros`, the earliest first.
  absl::StatusOr<std::vector<std::string>> Due(std::int64_t now_micros, std::size_t limit);
  // The waiting needs of every referral, or of one (0 when the store has no row for it).
  absl::StatusOr<std::int64_t> Waiting();
  absl::StatusOr<std::int64_t> Waiting(const std::string& referral_id);
  // Referrals kept.
  absl::StatusOr<std::int64_t> Count();
  // Commits what was written since the last Flush.
  absl::Status Flush();

 private:
  explicit StateStore(sqlite::Database db) : db_(std::move(db)) {}
  absl::Status Prepare();
  // Opens the write transaction if none is open.
  absl::Status Write();

  sqlite::Database db_;
  bool open_ = false;  // a write transaction is open
  sqlite::Statement begin_, commit_, get_, put_, erase_, forget_, forget_all_, due_, waiting_all_,
      waiting_one_, count_;
};

}  // namespace schakel::router
