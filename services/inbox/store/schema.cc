#include "services/inbox/store/schema.h"

namespace schakel::inbox::store {

const char* const kMigrations[kSchemaVersion] = {
    // 0 -> 1: the assignments.
    R"sql(
CREATE TABLE assignments (
  assignment_id     TEXT    PRIMARY KEY NOT NULL,
  status            INTEGER NOT NULL,
  need_code         TEXT    NOT NULL,
  requested_seconds INTEGER NOT NULL,
  requested_nanos   INTEGER NOT NULL,
  body              BLOB    NOT NULL  -- the whole schakel.v1.Assignment, serialized
);
CREATE INDEX assignments_by_time
  ON assignments (requested_seconds, requested_nanos, assignment_id);
CREATE INDEX assignments_by_status
  ON assignments (status, requested_seconds, requested_nanos, assignment_id);
CREATE INDEX assignments_by_need
  ON assignments (need_code, requested_seconds, requested_nanos, assignment_id);
CREATE INDEX assignments_by_status_need
  ON assignments (status, need_code, requested_seconds, requested_nanos, assignment_id);
PRAGMA user_version = 1;
)sql",
    // 1 -> 2: the changes feed and the outbox. What a version-1 inbox holds enters the feed once,
    // in request order, so that a watcher starting from 0 still sees every assignment.
    R"sql(
CREATE TABLE changes (
  sequence      INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: watchers resume from it
  assignment_id TEXT    NOT NULL,
  body          BLOB    NOT NULL  -- the schakel.v1.Assignment right after this change
);
CREATE TABLE outbox (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT    NOT NULL,
  key   BLOB    NOT NULL,
  value BLOB    NOT NULL
);
INSERT INTO changes (assignment_id, body)
  SELECT assignment_id, body FROM assignments
  ORDER BY requested_seconds, requested_nanos, assignment_id;
PRAGMA user_version = 2;
)sql",
    // 2 -> 3: audit entries waiting for the audit writer (libs/audit), which links them into the
    // inbox's chain when it publishes them and then deletes them here.
    R"sql(
CREATE TABLE audit (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  entry BLOB    NOT NULL  -- a schakel.v1.AuditEntry, serialized, not yet linked
);
PRAGMA user_version = 3;
)sql",
    // 3 -> 4: the client's data key of each assignment (as the key service handed it out), so that
    // what the organisation types about it is sealed without asking again. Deleted at erasure.
    R"sql(
CREATE TABLE assignment_keys (
  assignment_id TEXT PRIMARY KEY NOT NULL,
  key_id        TEXT NOT NULL,
  key           BLOB NOT NULL
);
PRAGMA user_version = 4;
)sql",
    // 4 -> 5: the owner token of each assignment's offer (AssignmentRequested.owner_token), with
    // which the inbox proves to the router that its status changes and forward requests are its
    // own. Not personal data: kept at erasure, when the assignment's work goes on. An assignment
    // stored before this version has none (its changes go without a proof, as before).
    R"sql(
CREATE TABLE assignment_tokens (
  assignment_id TEXT PRIMARY KEY NOT NULL,
  token         BLOB NOT NULL
);
PRAGMA user_version = 5;
)sql",
    // 5 -> 6: owner tokens are gone (the router knows who sent a change from the organisation's own
    // topic); the tokens, capabilities that are no use to anyone now, go with their table.
    R"sql(
DROP TABLE assignment_tokens;
PRAGMA user_version = 6;
)sql",
};

const char kInstanceSchema[] =
    "CREATE TABLE IF NOT EXISTS instance (id TEXT NOT NULL);"
    "INSERT INTO instance (id) SELECT lower(hex(randomblob(8)))"
    " WHERE NOT EXISTS (SELECT 1 FROM instance);";

}  // namespace schakel::inbox::store
