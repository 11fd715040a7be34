#include "services/keys/key_store.h"

#include <sodium.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/privacy/sealed.h"

namespace schakel::keys {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS keys (
  key_id           TEXT PRIMARY KEY NOT NULL,
  client_pseudonym TEXT NOT NULL,
  wrapped          BLOB NOT NULL,  -- schakel.v1.Sealed: the key sealed with the master key
  created_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS keys_by_client ON keys (client_pseudonym, created_at);
CREATE TABLE IF NOT EXISTS referrals (
  referral_id      TEXT PRIMARY KEY NOT NULL,
  client_pseudonym TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS referrals_by_client ON referrals (client_pseudonym);
-- The organisations each referral's sharing permission names (ClientKey, from intake; not from
-- the router): AssignmentKey hands a key to no organisation outside them. A referral without rows
-- here was recorded before this table was (a store made earlier gets it, empty, at its next start):
-- its sharing permission is unknown. A permission naming nobody is refused, so "no rows" never
-- means "nobody".
CREATE TABLE IF NOT EXISTS referral_sharing (
  referral_id  TEXT NOT NULL,
  organisation TEXT NOT NULL,
  PRIMARY KEY (referral_id, organisation)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS grants (
  assignment_id TEXT PRIMARY KEY NOT NULL,
  referral_id   TEXT NOT NULL,
  organisation  TEXT NOT NULL
);
-- A known text sealed with the master key the store was made with: a different master key is
-- refused at start instead of answering DATA_LOSS for every key later.
CREATE TABLE IF NOT EXISTS master_check (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS erased_keys (
  key_id           TEXT PRIMARY KEY NOT NULL,
  client_pseudonym TEXT NOT NULL,
  erased_at        INTEGER NOT NULL
);
)sql";

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

absl::Status SqlError(sqlite3* db, const std::string& what) {
  return absl::UnavailableError(absl::StrCat("key store: ", what, ": ", sqlite3_errmsg(db)));
}

absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) return SqlError(db, sql);
  return Stmt(raw);
}

void Bind(sqlite3_stmt* s, int i, const std::string& text) {
  sqlite3_bind_text(s, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

std::string Column(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  return p == nullptr ? std::string()
                      : std::string(static_cast<const char*>(p),
                                    static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
}

std::string WrapContext(const std::string& key_id, const std::string& pseudonym) {
  return absl::StrCat("schakel.keys|", key_id, "|", pseudonym);
}

constexpr std::string_view kCheckContext = "schakel.keys|master-check";
constexpr std::string_view kCheckText = "the master key of this key store";

std::string NewKeyId() {
  unsigned char raw[12];
  randombytes_buf(raw, sizeof raw);
  char hex[2 * sizeof raw + 1];
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return absl::StrCat("k-", hex);
}

// Runs `body` in one transaction; rolls back when it fails.
template <typename F>
absl::Status InTransaction(sqlite3* db, F body) {
  if (sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return SqlError(db, "begin");
  }
  absl::Status done = body();
  if (!done.ok()) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return done;
  }
  if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    absl::Status failed = SqlError(db, "commit");
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return failed;
  }
  return absl::OkStatus();
}

absl::Status Step(sqlite3* db, sqlite3_stmt* s, const char* what) {
  const int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return SqlError(db, what);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& path,
                                                         const std::string& master_key) {
  if (master_key.size() != privacy::kDataKeyBytes) {
    return absl::InvalidArgumentError("the master key has 32 bytes");
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  std::unique_ptr<sqlite3, DbCloser> db(raw);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat(path, ": cannot open the key store"));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  std::unique_ptr<KeyStore> store(new KeyStore(std::move(db), master_key));
  // secure_delete: a destroyed key's bytes are overwritten in the file, not left in a free page.
  for (const char* pragma :
       {"PRAGMA journal_mode = WAL", "PRAGMA synchronous = FULL", "PRAGMA secure_delete = ON"}) {
    if (absl::Status s = store->Exec(pragma); !s.ok()) return s;
  }
  if (absl::Status s = store->Exec(kSchema); !s.ok()) return s;
  if (absl::Status s = store->CheckMasterKey(); !s.ok()) return s;
  return store;
}

absl::Status KeyStore::CheckMasterKey() {
  sqlite3* db = db_.get();
  const auto wrong = absl::FailedPreconditionError(
      "the master key is not the one this key store was made with: nothing in it would open "
      "(restore the right --master-key file)");
  absl::StatusOr<Stmt> find = Prepare(db, "SELECT sealed FROM master_check WHERE id = 1");
  if (!find.ok()) return find.status();
  const int rc = sqlite3_step(find->get());
  if (rc == SQLITE_ROW) {
    v1::Sealed sealed;
    if (!sealed.ParseFromString(Column(find->get(), 0))) {
      return absl::DataLossError("key store: the master key check is damaged");
    }
    absl::StatusOr<std::string> opened = privacy::Open(sealed, master_key_, kCheckContext);
    if (!opened.ok() || *opened != kCheckText) return wrong;
    return absl::OkStatus();
  }
  if (rc != SQLITE_DONE) return SqlError(db, "master key check");
  // A store from before the check: the master key must open a key it holds, if it holds one.
  absl::StatusOr<Stmt> any =
      Prepare(db, "SELECT key_id, client_pseudonym, wrapped FROM keys LIMIT 1");
  if (!any.ok()) return any.status();
  if (const int r = sqlite3_step(any->get()); r == SQLITE_ROW) {
    if (!Unwrap(Column(any->get(), 0), Column(any->get(), 1), Column(any->get(), 2)).ok()) {
      return wrong;
    }
  } else if (r != SQLITE_DONE) {
    return SqlError(db, "master key check");
  }
  absl::StatusOr<v1::Sealed> sealed =
      privacy::Seal("master", master_key_, kCheckContext, kCheckText);
  if (!sealed.ok()) return sealed.status();
  absl::StatusOr<Stmt> insert = Prepare(db, "INSERT INTO master_check (id, sealed) VALUES (1, ?)");
  if (!insert.ok()) return insert.status();
  const std::string bytes = sealed->SerializeAsString();
  sqlite3_bind_blob(insert->get(), 1, bytes.data(), static_cast<int>(bytes.size()),
                    SQLITE_TRANSIENT);
  return Step(db, insert->get(), "store the master key check");
}

KeyStore::~KeyStore() { sodium_memzero(master_key_.data(), master_key_.size()); }

absl::Status KeyStore::Exec(const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status failed =
        absl::UnavailableError(absl::StrCat("key store: ", error == nullptr ? "error" : error));
    sqlite3_free(error);
    return failed;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> KeyStore::Unwrap(const std::string& key_id,
                                             const std::string& pseudonym,
                                             const std::string& wrapped) {
  v1::Sealed sealed;
  if (!sealed.ParseFromString(wrapped)) {
    return absl::DataLossError(absl::StrCat("key ", key_id, " is damaged in the key store"));
  }
  absl::StatusOr<std::string> key =
      privacy::Open(sealed, master_key_, WrapContext(key_id, pseudonym));
  if (!key.ok()) {
    return absl::DataLossError(absl::StrCat("key ", key_id, " does not open with this master key"));
  }
  return key;
}

absl::StatusOr<DataKey> KeyStore::ClientKey(const std::string& client_pseudonym,
                                            const std::string& referral_id,
                                            const Sharing& sharing) {
  return std::move(ClientKeys({{client_pseudonym, referral_id, sharing}}).front());
}

std::vector<absl::StatusOr<DataKey>> KeyStore::ClientKeys(const std::vector<KeyRequest>& requests) {
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  std::vector<absl::StatusOr<DataKey>> results;
  absl::Status done = InTransaction(db, [&]() -> absl::Status {
    results.clear();
    absl::StatusOr<Stmt> find = Prepare(
        db,
        "SELECT key_id, wrapped FROM keys WHERE client_pseudonym = ? ORDER BY created_at DESC, "
        "rowid DESC LIMIT 1");
    if (!find.ok()) return find.status();
    absl::StatusOr<Stmt> insert =
        Prepare(db,
                "INSERT INTO keys (key_id, client_pseudonym, wrapped, created_at) VALUES (?, ?, ?, "
                "strftime('%s','now'))");
    if (!insert.ok()) return insert.status();
    absl::StatusOr<Stmt> referral = Prepare(
        db, "INSERT OR REPLACE INTO referrals (referral_id, client_pseudonym) VALUES (?, ?)");
    if (!referral.ok()) return referral.status();
    absl::StatusOr<Stmt> known = Prepare(db, "SELECT 1 FROM referrals WHERE referral_id = ?");
    if (!known.ok()) return known.status();
    absl::StatusOr<Stmt> forget = Prepare(db, "DELETE FROM referral_sharing WHERE referral_id = ?");
    if (!forget.ok()) return forget.status();
    absl::StatusOr<Stmt> share = Prepare(
        db, "INSERT OR IGNORE INTO referral_sharing (referral_id, organisation) VALUES (?, ?)");
    if (!share.ok()) return share.status();
    for (const KeyRequest& request : requests) {
      // A new referral comes with its sharing permission: none is ever recorded without one (only
      // referrals from before they were recorded have none).
      if (!request.sharing) {
        sqlite3_reset(known->get());
        Bind(known->get(), 1, request.referral_id);
        const int rc = sqlite3_step(known->get());
        if (rc == SQLITE_DONE) {
          results.push_back(absl::InvalidArgumentError(
              "sharing: is required for a referral the key service has not recorded"));
          continue;
        }
        if (rc != SQLITE_ROW) return SqlError(db, "find referral");
      } else if (request.sharing->empty()) {
        results.push_back(absl::InvalidArgumentError(
            "sharing.organisations: must name at least one organisation"));
        continue;
      }
      DataKey result;
      result.client_pseudonym = request.client_pseudonym;
      result.referral_id = request.referral_id;
      sqlite3_reset(find->get());
      Bind(find->get(), 1, request.client_pseudonym);
      const int rc = sqlite3_step(find->get());
      if (rc == SQLITE_ROW) {
        result.key_id = Column(find->get(), 0);
        absl::StatusOr<std::string> key =
            Unwrap(result.key_id, request.client_pseudonym, Column(find->get(), 1));
        if (!key.ok()) {
          results.push_back(key.status());  // this client's key only; the others go on
          continue;
        }
        result.key = *std::move(key);
      } else if (rc != SQLITE_DONE) {
        return SqlError(db, "find key");
      } else {
        result.key_id = NewKeyId();
        result.key = privacy::NewDataKey();
        absl::StatusOr<v1::Sealed> wrapped =
            privacy::Seal("master", master_key_,
                          WrapContext(result.key_id, request.client_pseudonym), result.key);
        if (!wrapped.ok()) return wrapped.status();
        sqlite3_reset(insert->get());
        Bind(insert->get(), 1, result.key_id);
        Bind(insert->get(), 2, request.client_pseudonym);
        const std::string bytes = wrapped->SerializeAsString();
        sqlite3_bind_blob(insert->get(), 3, bytes.data(), static_cast<int>(bytes.size()),
                          SQLITE_TRANSIENT);
        if (absl::Status s = Step(db, insert->get(), "insert key"); !s.ok()) return s;
      }
      sqlite3_reset(referral->get());
      Bind(referral->get(), 1, request.referral_id);
      Bind(referral->get(), 2, request.client_pseudonym);
      if (absl::Status s = Step(db, referral->get(), "insert referral"); !s.ok()) return s;
      if (request.sharing) {
        sqlite3_reset(forget->get());
        Bind(forget->get(), 1, request.referral_id);
        if (absl::Status s = Step(db, forget->get(), "replace sharing"); !s.ok()) return s;
        for (const std::string& organisation : *request.sharing) {
          sqlite3_reset(share->get());
          Bind(share->get(), 1, request.referral_id);
          Bind(share->get(), 2, organisation);
          if (absl::Status s = Step(db, share->get(), "insert sharing"); !s.ok()) return s;
        }
      }
      results.push_back(std::move(result));
    }
    return absl::OkStatus();
  });
  if (!done.ok()) {
    results.assign(requests.size(), done);
  }
  return results;
}

absl::Status KeyStore::AddGrants(const std::vector<Grant>& grants) {
  if (grants.empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  return InTransaction(db, [&]() -> absl::Status {
    absl::StatusOr<Stmt> insert = Prepare(
        db,
        "INSERT OR IGNORE INTO grants (assignment_id, referral_id, organisation) VALUES (?, ?, ?)");
    if (!insert.ok()) return insert.status();
    for (const Grant& g : grants) {
      sqlite3_reset(insert->get());
      Bind(insert->get(), 1, g.assignment_id);
      Bind(insert->get(), 2, g.referral_id);
      Bind(insert->get(), 3, g.organisation);
      if (absl::Status s = Step(db, insert->get(), "insert grant"); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<KeyStore::Access> KeyStore::AssignmentKey(const std::string& assignment_id,
                                                         const std::string& key_id,
                                                         const std::string& organisation,
                                                         DataKey* key) {
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  absl::StatusOr<Stmt> known = Prepare(
      db,
      "SELECT 1 FROM keys WHERE key_id = ?1 UNION ALL SELECT 1 FROM erased_keys WHERE key_id = ?1");
  if (!known.ok()) return known.status();
  Bind(known->get(), 1, key_id);
  if (const int rc = sqlite3_step(known->get()); rc == SQLITE_DONE) {
    return Access::kUnknownKey;
  } else if (rc != SQLITE_ROW) {
    return SqlError(db, "find key id");
  }
  // The assignment's client, when it was offered to this organisation; whether the referral's
  // sharing permission is known, and whether it names the organisation.
  absl::StatusOr<Stmt> client =
      Prepare(db,
              "SELECT r.client_pseudonym, g.referral_id, "
              "EXISTS (SELECT 1 FROM referral_sharing s WHERE s.referral_id = g.referral_id), "
              "EXISTS (SELECT 1 FROM referral_sharing s WHERE s.referral_id = g.referral_id "
              "AND s.organisation = g.organisation) "
              "FROM grants g JOIN referrals r ON r.referral_id = g.referral_id "
              "WHERE g.assignment_id = ? AND g.organisation = ?");
  if (!client.ok()) return client.status();
  Bind(client->get(), 1, assignment_id);
  Bind(client->get(), 2, organisation);
  int rc = sqlite3_step(client->get());
  if (rc == SQLITE_DONE) return Access::kNotGranted;
  if (rc != SQLITE_ROW) return SqlError(db, "find grant");
  const std::string pseudonym = Column(client->get(), 0);
  const std::string referral_id = Column(client->get(), 1);
  const bool sharing_known = sqlite3_column_int(client->get(), 2) != 0;
  const bool shared_with = sqlite3_column_int(client->get(), 3) != 0;
  // Offered outside the client's permission (a router's bug, or an offer it was tricked into):
  // decided before anything about the key or an erasure is looked at, so the answer tells the
  // organisation nothing about the client.
  if (sharing_known && !shared_with) {
    key->referral_id = referral_id;
    return Access::kOutsideSharing;
  }

  absl::StatusOr<Stmt> find =
      Prepare(db, "SELECT wrapped FROM keys WHERE key_id = ? AND client_pseudonym = ?");
  if (!find.ok()) return find.status();
  Bind(find->get(), 1, key_id);
  Bind(find->get(), 2, pseudonym);
  rc = sqlite3_step(find->get());
  if (rc == SQLITE_ROW) {
    absl::StatusOr<std::string> opened = Unwrap(key_id, pseudonym, Column(find->get(), 0));
    if (!opened.ok()) return opened.status();
    key->key_id = key_id;
    key->key = *std::move(opened);
    key->client_pseudonym = pseudonym;
    key->referral_id = referral_id;
    key->sharing_known = sharing_known;
    return Access::kGranted;
  }
  if (rc != SQLITE_DONE) return SqlError(db, "find key");
  absl::StatusOr<Stmt> erased =
      Prepare(db, "SELECT 1 FROM erased_keys WHERE key_id = ? AND client_pseudonym = ?");
  if (!erased.ok()) return erased.status();
  Bind(erased->get(), 1, key_id);
  Bind(erased->get(), 2, pseudonym);
  rc = sqlite3_step(erased->get());
  if (rc == SQLITE_ROW) return Access::kErased;
  if (rc != SQLITE_DONE) return SqlError(db, "find erased key");
  // A key id that is not this client's: the same answer as no grant.
  return Access::kNotGranted;
}

absl::StatusOr<KeyStore::Access> KeyStore::ReferralKey(const std::string& referral_id,
                                                       const std::string& key_id, DataKey* key) {
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  // The key, when it is the key of the referral's client (one join: no answer tells whether the
  // referral or the key exists on its own).
  absl::StatusOr<Stmt> find = Prepare(db,
                                      "SELECT k.client_pseudonym, k.wrapped FROM referrals r "
                                      "JOIN keys k ON k.client_pseudonym = r.client_pseudonym "
                                      "WHERE r.referral_id = ? AND k.key_id = ?");
  if (!find.ok()) return find.status();
  Bind(find->get(), 1, referral_id);
  Bind(find->get(), 2, key_id);
  int rc = sqlite3_step(find->get());
  if (rc == SQLITE_ROW) {
    const std::string pseudonym = Column(find->get(), 0);
    absl::StatusOr<std::string> opened = Unwrap(key_id, pseudonym, Column(find->get(), 1));
    if (!opened.ok()) return opened.status();
    key->key_id = key_id;
    key->key = *std::move(opened);
    key->client_pseudonym = pseudonym;
    key->referral_id = referral_id;
    return Access::kGranted;
  }
  if (rc != SQLITE_DONE) return SqlError(db, "find referral key");
  absl::StatusOr<Stmt> erased = Prepare(db,
                                        "SELECT 1 FROM referrals r JOIN erased_keys e "
                                        "ON e.client_pseudonym = r.client_pseudonym "
                                        "WHERE r.referral_id = ? AND e.key_id = ?");
  if (!erased.ok()) return erased.status();
  Bind(erased->get(), 1, referral_id);
  Bind(erased->get(), 2, key_id);
  rc = sqlite3_step(erased->get());
  if (rc == SQLITE_ROW) return Access::kErased;
  if (rc != SQLITE_DONE) return SqlError(db, "find erased referral key");
  return Access::kNotGranted;
}

absl::StatusOr<std::string> KeyStore::ClientOf(const std::string& referral_id) {
  std::lock_guard lock(mu_);
  absl::StatusOr<Stmt> find =
      Prepare(db_.get(), "SELECT client_pseudonym FROM referrals WHERE referral_id = ?");
  if (!find.ok()) return find.status();
  Bind(find->get(), 1, referral_id);
  const int rc = sqlite3_step(find->get());
  if (rc == SQLITE_ROW) return Column(find->get(), 0);
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "find referral");
  return absl::NotFoundError(absl::StrCat("referral ", referral_id, " is not known here"));
}

absl::StatusOr<Erasure> KeyStore::EraseClient(const std::string& client_pseudonym,
                                              std::int64_t erased_at_unix) {
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Erasure erasure;
  erasure.client_pseudonym = client_pseudonym;
  absl::Status done = InTransaction(db, [&]() -> absl::Status {
    absl::StatusOr<Stmt> list = Prepare(db, "SELECT key_id FROM keys WHERE client_pseudonym = ?");
    if (!list.ok()) return list.status();
    Bind(list->get(), 1, client_pseudonym);
    int rc;
    while ((rc = sqlite3_step(list->get())) == SQLITE_ROW) {
      erasure.key_ids.push_back(Column(list->get(), 0));
    }
    if (rc != SQLITE_DONE) return SqlError(db, "list keys");
    absl::StatusOr<Stmt> record = Prepare(
        db,
        "INSERT OR IGNORE INTO erased_keys (key_id, client_pseudonym, erased_at) VALUES (?, ?, ?)");
    if (!record.ok()) return record.status();
    for (const std::string& id : erasure.key_ids) {
      sqlite3_reset(record->get());
      Bind(record->get(), 1, id);
      Bind(record->get(), 2, client_pseudonym);
      sqlite3_bind_int64(record->get(), 3, erased_at_unix);
      if (absl::Status s = Step(db, record->get(), "record erasure"); !s.ok()) return s;
    }
    absl::StatusOr<Stmt> destroy = Prepare(db, "DELETE FROM keys WHERE client_pseudonym = ?");
    if (!destroy.ok()) return destroy.status();
    Bind(destroy->get(), 1, client_pseudonym);
    return Step(db, destroy->get(), "destroy keys");
  });
  if (!done.ok()) return done;
  // The WAL still holds the deleted pages' old contents until a checkpoint writes them back
  // (zeroed): checkpoint and truncate it now.
  if (sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) !=
      SQLITE_OK) {
    return SqlError(db, "checkpoint after erasure");
  }
  return erasure;
}

absl::StatusOr<std::int64_t> KeyStore::CountKeys() {
  std::lock_guard lock(mu_);
  absl::StatusOr<Stmt> count = Prepare(db_.get(), "SELECT count(*) FROM keys");
  if (!count.ok()) return count.status();
  if (sqlite3_step(count->get()) != SQLITE_ROW) return SqlError(db_.get(), "count keys");
  return sqlite3_column_int64(count->get(), 0);
}

absl::StatusOr<Sharing> KeyStore::SharingOf(const std::string& referral_id) {
  std::lock_guard lock(mu_);
  absl::StatusOr<Stmt> list = Prepare(
      db_.get(),
      "SELECT organisation FROM referral_sharing WHERE referral_id = ? ORDER BY organisation");
  if (!list.ok()) return list.status();
  Bind(list->get(), 1, referral_id);
  std::vector<std::string> organisations;
  int rc;
  while ((rc = sqlite3_step(list->get())) == SQLITE_ROW) {
    organisations.push_back(Column(list->get(), 0));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "list sharing");
  if (organisations.empty()) return Sharing();
  return Sharing(std::move(organisations));
}

}  // namespace schakel::keys
