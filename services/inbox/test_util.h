// Shared by the inbox tests: a temporary directory with a real InboxStore in it, and hand-made
// records.
#pragma once

#include <google/protobuf/timestamp.pb.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "libs/kafka/consumer.h"
#include "schakel/v1/events.pb.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox::testing {

inline constexpr char kOrg[] = "mjd";
inline constexpr char kTopic[] = "schakel.inbox.mjd";
// Where the inbox sends its changes and forward requests to the router.
inline constexpr char kFromTopic[] = "schakel.from.mjd";

// The status change an outbox event sends the router on the organisation's own topic; nullopt
// for any other event.
inline std::optional<v1::AssignmentStatusChanged> SentStatus(const store::OutboxEvent& event) {
  v1::OrganisationEvent sent;
  if (event.topic.rfind("schakel.from.", 0) != 0 || !sent.ParseFromString(event.value) ||
      !sent.has_status_changed()) {
    return std::nullopt;
  }
  return sent.status_changed();
}

// Likewise the forward request.
inline std::optional<v1::ForwardRequested> SentForward(const store::OutboxEvent& event) {
  v1::OrganisationEvent sent;
  if (event.topic.rfind("schakel.from.", 0) != 0 || !sent.ParseFromString(event.value) ||
      !sent.has_forward_requested()) {
    return std::nullopt;
  }
  return sent.forward_requested();
}

class TempStore {
 public:
  TempStore() {
    std::string pattern = (std::filesystem::temp_directory_path() / "inbox_test.XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    dir_ = pattern;
    Reopen();
  }
  ~TempStore() {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;

  // Closes the database (if open) and opens it again, as a restarted inbox would.
  bool Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<store::InboxStore>> opened = store::InboxStore::Open(path());
    if (!opened.ok()) {
      ADD_FAILURE() << opened.status();
      return false;
    }
    store_ = *std::move(opened);
    return true;
  }

  store::InboxStore& store() { return *store_; }
  const std::filesystem::path& dir() const { return dir_; }
  bool ok() const { return store_ != nullptr; }
  std::string path() const { return (dir_ / "inbox.db").string(); }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<store::InboxStore> store_;
};

// A valid AssignmentRequested for kOrg.
inline schakel::v1::AssignmentRequested MakeEvent(const std::string& referral_id,
                                                  std::uint32_t need_index,
                                                  const std::string& need_code,
                                                  std::int64_t occurred_seconds) {
  schakel::v1::AssignmentRequested event;
  schakel::v1::EventMeta* meta = event.mutable_meta();
  meta->set_schema_version(1);
  meta->set_event_id("e-" + referral_id + "-" + std::to_string(need_index));
  meta->mutable_occurred_at()->set_seconds(occurred_seconds);
  meta->mutable_occurred_at()->set_nanos(500);
  meta->set_referral_id(referral_id);
  meta->set_assignment_id("a-" + referral_id + "-" + std::to_string(need_index));
  event.set_organisation(kOrg);
  event.set_need_code(need_code);
  event.set_need_details("Needs help with a letter from the tax office");
  event.set_client_pseudonym("p-0123456789abcdef");
  event.set_urgency(schakel::v1::URGENCY_URGENT);
  event.set_region("groningen-stad");
  event.add_languages("nl");
  event.add_languages("ro");
  event.set_referring_organisation("gemeente");
  event.set_need_index(need_index);
  event.mutable_sharing()->set_basis(schakel::v1::SHARING_BASIS_CONSENT);
  event.mutable_sharing()->add_organisations("gemeente");
  event.mutable_sharing()->add_organisations(kOrg);
  return event;
}

// A clock for tests: a fixed time that the test moves on.
inline google::protobuf::Timestamp At(std::int64_t seconds) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  return t;
}

// Runs `sql` on a second connection to the database at `path`: e.g. a trigger that makes the
// store's writes of one assignment fail in SQLite, as a full or failing disk would.
inline void ExecOnFile(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  // The store may be in a write (a consumer retrying every few milliseconds): wait for it, as the
  // store's own connections do, instead of failing with "database is locked".
  sqlite3_busy_timeout(db, 5000);
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error != nullptr ? error : "");
  sqlite3_free(error);
  sqlite3_close(db);
}

// Makes every write of assignment `id` fail until AllowWrites.
inline void RefuseWritesOf(const std::string& path, const std::string& id) {
  ExecOnFile(path, "CREATE TRIGGER refuse BEFORE INSERT ON assignments WHEN NEW.assignment_id = '" +
                       id + "' BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;");
}
inline void AllowWrites(const std::string& path) { ExecOnFile(path, "DROP TRIGGER refuse;"); }

inline kafka::Record MakeRecord(const schakel::v1::AssignmentRequested& event,
                                std::int64_t offset = 7) {
  kafka::Record record;
  record.topic = kTopic;
  record.partition = 2;
  record.offset = offset;
  record.key = event.meta().assignment_id();
  schakel::v1::InboxEvent wrapper;
  *wrapper.mutable_requested() = event;
  record.value = wrapper.SerializeAsString();
  return record;
}

}  // namespace schakel::inbox::testing
