// The inbox database's schema, version by version (PRAGMA user_version): what each version added
// and why, and the step that takes an older file there. An existing inbox database opens unchanged
// and is brought up to date in place (sqlite::Database::Migrate).
#pragma once

namespace schakel::inbox::store {

// The version this code writes. Raise it with every change and add the step that migrates to it.
inline constexpr int kSchemaVersion = 6;

// kMigrations[v] takes a database from user_version v to v + 1. A new database runs them all.
extern const char* const kMigrations[kSchemaVersion];

// Runs at every open after the migrations, in their transaction: who this database is, a random
// id made once per file (InboxStore::InstanceId).
extern const char kInstanceSchema[];

}  // namespace schakel::inbox::store
