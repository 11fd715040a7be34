// Shared by the inbox store's tests (one file per part of the store): a fresh directory per test
// with a store in it, hand-made assignments and changes, and a second connection to the file.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox::store {

// A fresh directory per test, removed afterwards.
class StoreTest : public ::testing::Test {
 protected:
  using Assignment = ::schakel::v1::Assignment;

  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "store_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "inbox.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<InboxStore> OpenStore() {
    absl::StatusOr<std::unique_ptr<InboxStore>> store = InboxStore::Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  static Assignment MakeAssignment(const std::string& id, std::int64_t seconds,
                                   const std::string& need = "debt",
                                   v1::AssignmentStatus status = v1::ASSIGNMENT_STATUS_REQUESTED) {
    Assignment a;
    a.set_assignment_id(id);
    a.set_referral_id("r-" + id);
    a.set_organisation("mjd");
    a.set_need_code(need);
    a.set_status(status);
    a.set_version(1);
    a.mutable_requested_at()->set_seconds(seconds);
    *a.mutable_updated_at() = a.requested_at();
    return a;
  }

  static std::vector<std::string> Ids(const Page& page) {
    std::vector<std::string> ids;
    for (const Assignment& a : page.assignments) ids.push_back(a.assignment_id());
    return ids;
  }

  static std::vector<std::int64_t> Sequences(const std::vector<StoredChange>& changes) {
    std::vector<std::int64_t> sequences;
    for (const StoredChange& c : changes) sequences.push_back(c.sequence);
    return sequences;
  }

  static std::vector<std::string> Values(const std::vector<OutboxEntry>& entries) {
    std::vector<std::string> values;
    for (const OutboxEntry& e : entries) values.push_back(e.event.value);
    return values;
  }

  static OutboxEvent Event(const std::string& key, const std::string& value) {
    return OutboxEvent{"schakel.from.mjd", key, value};
  }

  // A change to `status` one version up, with one event.
  static InboxStore::ChangeFn MoveTo(v1::AssignmentStatus status, const std::string& value) {
    return [status, value](const Assignment& current) -> absl::StatusOr<Change> {
      Change change;
      change.assignment = current;
      change.assignment.set_status(status);
      change.assignment.set_version(current.version() + 1);
      change.events.push_back(Event(current.assignment_id(), value));
      return change;
    };
  }

  // Everything a change could have written, to show that a refused one wrote nothing.
  struct Snapshot {
    std::string assignment;
    std::int64_t last_sequence = -1;
    std::vector<std::string> outbox;
  };
  static Snapshot Take(InboxStore& store, const std::string& id) {
    Snapshot snapshot;
    snapshot.assignment = store.Get(id).value_or(Assignment()).SerializeAsString();
    snapshot.last_sequence = store.LastSequence().value_or(-1);
    snapshot.outbox = Values(store.PendingOutbox(100).value_or(std::vector<OutboxEntry>()));
    return snapshot;
  }
  static void ExpectSame(const Snapshot& before, const Snapshot& after) {
    EXPECT_EQ(after.assignment, before.assignment);
    EXPECT_EQ(after.last_sequence, before.last_sequence);
    EXPECT_EQ(after.outbox, before.outbox);
  }

  std::filesystem::path dir_;
  std::string path_;
};

// Runs `sql` on a second connection to the store's file (e.g. to make a write fail in SQLite).
inline void ExecOnFile(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

}  // namespace schakel::inbox::store
