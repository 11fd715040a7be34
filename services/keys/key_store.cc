#include "services/keys/key_store.h"

#include <sodium.h>

#include <initializer_list>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
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

// Prepares `sql` with `texts` bound to its parameters in order.
absl::StatusOr<sqlite::Statement> Query(sqlite::Database& db, const char* sql,
                                        std::string_view what,
                                        std::initializer_list<std::string_view> texts) {
  absl::StatusOr<sqlite::Statement> statement = db.Prepare(sql, what);
  if (!statement.ok()) return statement;
  int index = 1;
  for (std::string_view text : texts) statement->BindText(index++, text);
  return statement;
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

}  // namespace

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& path,
                                                         const std::string& master_key) {
  if (master_key.size() != privacy::kDataKeyBytes) {
    return absl::InvalidArgumentError("the master key has 32 bytes");
  }
  // secure_delete: a destroyed key's bytes are overwritten in the file, not left in a free page.
  // Every failure is UNAVAILABLE, as the key service tells its callers.
  absl::StatusOr<sqlite::Database> db =
      sqlite::Database::Open(path, {.name = "key store",
                                    .errors = sqlite::Errors::kAllUnavailable,
                                    .require_wal = false,
                                    .secure_delete = true});
  if (!db.ok()) return db.status();
  if (absl::Status s = db->Exec(kSchema, "schema"); !s.ok()) return s;
  std::unique_ptr<KeyStore> store(new KeyStore(*std::move(db), master_key));
  absl::MutexLock lock(&store->mu_);
  if (absl::Status s = store->CheckMasterKey(); !s.ok()) return s;
  return store;
}

absl::Status KeyStore::CheckMasterKey() {
  const auto wrong = absl::FailedPreconditionError(
      "the master key is not the one this key store was made with: nothing in it would open "
      "(restore the right --master-key file)");
  absl::StatusOr<sqlite::Statement> find =
      db_.Prepare("SELECT sealed FROM master_check WHERE id = 1", "master key check");
  if (!find.ok()) return find.status();
  absl::StatusOr<bool> row = find->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    v1::Sealed sealed;
    if (!sealed.ParseFromString(find->Blob(0))) {
      return absl::DataLossError("key store: the master key check is damaged");
    }
    absl::StatusOr<std::string> opened = privacy::Open(sealed, master_key_, kCheckContext);
    if (!opened.ok() || *opened != kCheckText) return wrong;
    return absl::OkStatus();
  }
  // A store from before the check: the master key must open a key it holds, if it holds one.
  absl::StatusOr<sqlite::Statement> any =
      db_.Prepare("SELECT key_id, client_pseudonym, wrapped FROM keys LIMIT 1", "master key check");
  if (!any.ok()) return any.status();
  if (row = any->Step(); !row.ok()) return row.status();
  if (*row && !Unwrap(any->Blob(0), any->Blob(1), any->Blob(2)).ok()) return wrong;
  absl::StatusOr<v1::Sealed> sealed =
      privacy::Seal("master", master_key_, kCheckContext, kCheckText);
  if (!sealed.ok()) return sealed.status();
  absl::StatusOr<sqlite::Statement> insert = db_.Prepare(
      "INSERT INTO master_check (id, sealed) VALUES (1, ?)", "store the master key check");
  if (!insert.ok()) return insert.status();
  return insert->BindBlob(1, sealed->SerializeAsString()).Run();
}

KeyStore::~KeyStore() { sodium_memzero(master_key_.data(), master_key_.size()); }

absl::StatusOr<std::string> KeyStore::Unwrap(const std::string& key_id,
                                             const std::string& pseudonym,
                                             const std::string& wrapped) const {
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
  absl::MutexLock lock(&mu_);
  std::vector<absl::StatusOr<DataKey>> results;
  absl::Status done = sqlite::InTransaction(db_, [&](sqlite::Transaction& tx) -> absl::Status {
    sqlite::Database& db = tx.db();
    absl::StatusOr<sqlite::Statement> find = db.Prepare(
        "SELECT key_id, wrapped FROM keys WHERE client_pseudonym = ? ORDER BY "
        "created_at DESC, rowid DESC LIMIT 1",
        "find key");
    if (!find.ok()) return find.status();
    absl::StatusOr<sqlite::Statement> insert = db.Prepare(
        "INSERT INTO keys (key_id, client_pseudonym, wrapped, created_at) VALUES (?, "
        "?, ?, strftime('%s','now'))",
        "insert key");
    if (!insert.ok()) return insert.status();
    absl::StatusOr<sqlite::Statement> referral =
        db.Prepare("INSERT OR REPLACE INTO referrals (referral_id, client_pseudonym) VALUES (?, ?)",
                   "insert referral");
    if (!referral.ok()) return referral.status();
    absl::StatusOr<sqlite::Statement> known =
        db.Prepare("SELECT 1 FROM referrals WHERE referral_id = ?", "find referral");
    if (!known.ok()) return known.status();
    absl::StatusOr<sqlite::Statement> forget =
        db.Prepare("DELETE FROM referral_sharing WHERE referral_id = ?", "replace sharing");
    if (!forget.ok()) return forget.status();
    absl::StatusOr<sqlite::Statement> share = db.Prepare(
        "INSERT OR IGNORE INTO referral_sharing (referral_id, organisation) VALUES (?, ?)",
        "insert sharing");
    if (!share.ok()) return share.status();
    for (const KeyRequest& request : requests) {
      // A new referral comes with its sharing permission: none is ever recorded without one (only
      // referrals from before they were recorded have none).
      if (!request.sharing) {
        sqlite::ScopedReset reset(*known);
        absl::StatusOr<bool> recorded = known->BindText(1, request.referral_id).Step();
        if (!recorded.ok()) return recorded.status();
        if (!*recorded) {
          results.push_back(absl::InvalidArgumentError(
              "sharing: is required for a referral the key service has not recorded"));
          continue;
        }
      } else if (request.sharing->empty()) {
        results.push_back(absl::InvalidArgumentError(
            "sharing.organisations: must name at least one organisation"));
        continue;
      }
      DataKey result;
      result.client_pseudonym = request.client_pseudonym;
      result.referral_id = request.referral_id;
      sqlite::ScopedReset reset(*find);
      absl::StatusOr<bool> found = find->BindText(1, request.client_pseudonym).Step();
      if (!found.ok()) return found.status();
      if (*found) {
        result.key_id = find->Text(0);
        absl::StatusOr<std::string> key =
            Unwrap(result.key_id, request.client_pseudonym, find->Blob(1));
        if (!key.ok()) {
          results.push_back(key.status());  // this client's key only; the others go on
          continue;
        }
        result.key = *std::move(key);
      } else {
        result.key_id = NewKeyId();
        result.key = privacy::NewDataKey();
        absl::StatusOr<v1::Sealed> wrapped =
            privacy::Seal("master", master_key_,
                          WrapContext(result.key_id, request.client_pseudonym), result.key);
        if (!wrapped.ok()) return wrapped.status();
        insert->BindText(1, result.key_id).BindText(2, request.client_pseudonym);
        if (absl::Status s = tx.Run(insert->BindBlob(3, wrapped->SerializeAsString())); !s.ok()) {
          return s;
        }
      }
      referral->BindText(1, request.referral_id).BindText(2, request.client_pseudonym);
      if (absl::Status s = tx.Run(*referral); !s.ok()) return s;
      if (request.sharing) {
        if (absl::Status s = tx.Run(forget->BindText(1, request.referral_id)); !s.ok()) return s;
        for (const std::string& organisation : *request.sharing) {
          share->BindText(1, request.referral_id).BindText(2, organisation);
          if (absl::Status s = tx.Run(*share); !s.ok()) return s;
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
  absl::MutexLock lock(&mu_);
  return sqlite::InTransaction(db_, [&](sqlite::Transaction& tx) -> absl::Status {
    absl::StatusOr<sqlite::Statement> insert = tx.db().Prepare(
        "INSERT OR IGNORE INTO grants (assignment_id, referral_id, organisation) VALUES (?, ?, ?)",
        "insert grant");
    if (!insert.ok()) return insert.status();
    for (const Grant& g : grants) {
      insert->BindText(1, g.assignment_id).BindText(2, g.referral_id).BindText(3, g.organisation);
      if (absl::Status s = tx.Run(*insert); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<KeyStore::Access> KeyStore::AssignmentKey(const std::string& assignment_id,
                                                         const std::string& key_id,
                                                         const std::string& organisation,
                                                         DataKey* key) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> known = Query(
      db_,
      "SELECT 1 FROM keys WHERE key_id = ?1 UNION ALL SELECT 1 FROM erased_keys WHERE key_id = ?1",
      "find key id", {key_id});
  if (!known.ok()) return known.status();
  absl::StatusOr<bool> row = known->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Access::kUnknownKey;
  // The assignment's client, when it was offered to this organisation; whether the referral's
  // sharing permission is known, and whether it names the organisation.
  absl::StatusOr<sqlite::Statement> client =
      Query(db_,
            "SELECT r.client_pseudonym, g.referral_id, "
            "EXISTS (SELECT 1 FROM referral_sharing s WHERE s.referral_id = g.referral_id), "
            "EXISTS (SELECT 1 FROM referral_sharing s WHERE s.referral_id = g.referral_id "
            "AND s.organisation = g.organisation) "
            "FROM grants g JOIN referrals r ON r.referral_id = g.referral_id "
            "WHERE g.assignment_id = ? AND g.organisation = ?",
            "find grant", {assignment_id, organisation});
  if (!client.ok()) return client.status();
  if (row = client->Step(); !row.ok()) return row.status();
  if (!*row) return Access::kNotGranted;
  const std::string pseudonym = client->Blob(0);
  const std::string referral_id = client->Blob(1);
  const bool sharing_known = client->Int64(2) != 0;
  const bool shared_with = client->Int64(3) != 0;
  // Offered outside the client's permission (a router's bug, or an offer it was tricked into):
  // decided before anything about the key or an erasure is looked at, so the answer tells the
  // organisation nothing about the client.
  if (sharing_known && !shared_with) {
    key->referral_id = referral_id;
    return Access::kOutsideSharing;
  }

  absl::StatusOr<sqlite::Statement> find =
      Query(db_, "SELECT wrapped FROM keys WHERE key_id = ? AND client_pseudonym = ?", "find key",
            {key_id, pseudonym});
  if (!find.ok()) return find.status();
  if (row = find->Step(); !row.ok()) return row.status();
  if (*row) {
    absl::StatusOr<std::string> opened = Unwrap(key_id, pseudonym, find->Blob(0));
    if (!opened.ok()) return opened.status();
    key->key_id = key_id;
    key->key = *std::move(opened);
    key->client_pseudonym = pseudonym;
    key->referral_id = referral_id;
    key->sharing_known = sharing_known;
    return Access::kGranted;
  }
  absl::StatusOr<sqlite::Statement> erased =
      Query(db_, "SELECT 1 FROM erased_keys WHERE key_id = ? AND client_pseudonym = ?",
            "find erased key", {key_id, pseudonym});
  if (!erased.ok()) return erased.status();
  if (row = erased->Step(); !row.ok()) return row.status();
  if (*row) return Access::kErased;
  // A key id that is not this client's: the same answer as no grant.
  return Access::kNotGranted;
}

absl::StatusOr<KeyStore::Access> KeyStore::ReferralKey(const std::string& referral_id,
                                                       const std::string& key_id, DataKey* key) {
  absl::MutexLock lock(&mu_);
  // The key, when it is the key of the referral's client (one join: no answer tells whether the
  // referral or the key exists on its own).
  absl::StatusOr<sqlite::Statement> find = Query(db_,
                                                 "SELECT k.client_pseudonym, k.wrapped FROM "
                                                 "referrals r JOIN keys k ON k.client_pseudonym = "
                                                 "r.client_pseudonym WHERE r.referral_id = ? AND "
                                                 "k.key_id = ?",
                                                 "find referral key", {referral_id, key_id});
  if (!find.ok()) return find.status();
  absl::StatusOr<bool> row = find->Step();
  if (!row.ok()) return row.status();
  if (*row) {
    const std::string pseudonym = find->Blob(0);
    absl::StatusOr<std::string> opened = Unwrap(key_id, pseudonym, find->Blob(1));
    if (!opened.ok()) return opened.status();
    key->key_id = key_id;
    key->key = *std::move(opened);
    key->client_pseudonym = pseudonym;
    key->referral_id = referral_id;
    return Access::kGranted;
  }
  absl::StatusOr<sqlite::Statement> erased =
      Query(db_,
            "SELECT 1 FROM referrals r JOIN erased_keys e "
            "ON e.client_pseudonym = r.client_pseudonym "
            "WHERE r.referral_id = ? AND e.key_id = ?",
            "find erased referral key", {referral_id, key_id});
  if (!erased.ok()) return erased.status();
  if (row = erased->Step(); !row.ok()) return row.status();
  if (*row) return Access::kErased;
  return Access::kNotGranted;
}

absl::StatusOr<std::string> KeyStore::ClientOf(const std::string& referral_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> find =
      Query(db_, "SELECT client_pseudonym FROM referrals WHERE referral_id = ?", "find referral",
            {referral_id});
  if (!find.ok()) return find.status();
  absl::StatusOr<bool> row = find->Step();
  if (!row.ok()) return row.status();
  if (*row) return find->Blob(0);
  return absl::NotFoundError(absl::StrCat("referral ", referral_id, " is not known here"));
}

absl::StatusOr<Erasure> KeyStore::EraseClient(const std::string& client_pseudonym,
                                              std::int64_t erased_at_unix) {
  absl::MutexLock lock(&mu_);
  Erasure erasure;
  erasure.client_pseudonym = client_pseudonym;
  absl::Status done = sqlite::InTransaction(db_, [&](sqlite::Transaction& tx) -> absl::Status {
    sqlite::Database& db = tx.db();
    absl::StatusOr<sqlite::Statement> list = Query(
        db, "SELECT key_id FROM keys WHERE client_pseudonym = ?", "list keys", {client_pseudonym});
    if (!list.ok()) return list.status();
    absl::StatusOr<bool> row;
    while ((row = list->Step()).ok() && *row) erasure.key_ids.push_back(list->Blob(0));
    if (!row.ok()) return row.status();
    absl::StatusOr<sqlite::Statement> record = db.Prepare(
        "INSERT OR IGNORE INTO erased_keys (key_id, client_pseudonym, erased_at) VALUES (?, ?, ?)",
        "record erasure");
    if (!record.ok()) return record.status();
    for (const std::string& id : erasure.key_ids) {
      record->BindText(1, id).BindText(2, client_pseudonym).BindInt64(3, erased_at_unix);
      if (absl::Status s = tx.Run(*record); !s.ok()) return s;
    }
    absl::StatusOr<sqlite::Statement> destroy = Query(
        db, "DELETE FROM keys WHERE client_pseudonym = ?", "destroy keys", {client_pseudonym});
    if (!destroy.ok()) return destroy.status();
    return tx.Run(*destroy);
  });
  if (!done.ok()) return done;
  // The WAL still holds the deleted pages' old contents until a checkpoint writes them back
  // (zeroed): checkpoint and truncate it now.
  if (absl::Status s = db_.Checkpoint(); !s.ok()) return s;
  return erasure;
}

absl::StatusOr<std::int64_t> KeyStore::CountKeys() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> count = db_.Prepare("SELECT count(*) FROM keys", "count keys");
  if (!count.ok()) return count.status();
  absl::StatusOr<bool> row = count->Step();
  if (!row.ok()) return row.status();
  return count->Int64(0);
}

absl::StatusOr<Sharing> KeyStore::SharingOf(const std::string& referral_id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<sqlite::Statement> list = Query(
      db_, "SELECT organisation FROM referral_sharing WHERE referral_id = ? ORDER BY organisation",
      "list sharing", {referral_id});
  if (!list.ok()) return list.status();
  std::vector<std::string> organisations;
  absl::StatusOr<bool> row;
  while ((row = list->Step()).ok() && *row) organisations.push_back(list->Blob(0));
  if (!row.ok()) return row.status();
  if (organisations.empty()) return Sharing();
  return Sharing(std::move(organisations));
}

}  // namespace schakel::keys
