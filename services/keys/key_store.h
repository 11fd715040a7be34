// The key service's own database (SQLite): one data key per client, each stored wrapped with the
// service's master key, so that a copy of the file alone opens nothing; which client each referral
// is for, and which organisations that client's sharing permission names (from intake, with the
// key); which organisation each assignment was offered to (the grants, from the router's offers on
// its status topic); and which keys were destroyed. Erasing deletes the keys with secure_delete
// on, so their bytes are overwritten in the file, not just unlinked.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/sqlite/sqlite.h"

namespace schakel::keys {

struct DataKey {
  std::string key_id{};
  std::string key{};  // 32 bytes
  // Whose key it is, and the referral it was handed out for (the audit entry of the hand-out).
  std::string client_pseudonym{};
  std::string referral_id{};
  // AssignmentKey: whether the referral's sharing permission is recorded here (false for a referral
  // recorded before the key service learnt them: the grant alone decided).
  bool sharing_known = false;
};

// The organisations a referral's sharing permission names; nullopt: not given with the request.
using Sharing = std::optional<std::vector<std::string>>;

// The router offered `assignment_id` (of `referral_id`) to `organisation`.
struct Grant {
  std::string assignment_id;
  std::string referral_id;
  std::string organisation;
};

struct Erasure {
  std::string client_pseudonym;
  std::vector<std::string> key_ids;  // destroyed now (empty when erased before)
};

class KeyStore {
 public:
  // `master_key`: 32 bytes (privacy::ReadKeyFile). ":memory:" for tests. FAILED_PRECONDITION when
  // the store was made with another master key.
  static absl::StatusOr<std::unique_ptr<KeyStore>> Open(const std::string& path,
                                                        const std::string& master_key);
  ~KeyStore();

  // The client's current key, made (and stored durably) on first use; remembers that `referral_id`
  // is for this client and, when `sharing` is given, that its sharing permission names those
  // organisations (replacing what was recorded). INVALID_ARGUMENT "sharing: ..." when `sharing` is
  // missing for a referral not recorded here, or names no organisation (nothing is stored then).
  // An erased client gets a new key: erasure destroys what was, not who comes.
  absl::StatusOr<DataKey> ClientKey(const std::string& client_pseudonym,
                                    const std::string& referral_id, const Sharing& sharing);
  // ClientKey for many requests in one transaction: one write to disk for all of them (the key
  // service gathers the requests that arrive meanwhile). One answer per request, in order; a key
  // that does not open fails its own requests only, a failing transaction fails them all.
  struct KeyRequest {
    std::string client_pseudonym{};
    std::string referral_id{};
    Sharing sharing{};
  };
  std::vector<absl::StatusOr<DataKey>> ClientKeys(const std::vector<KeyRequest>& requests);

  // Stores grants (idempotent: a grant seen again changes nothing), in one transaction.
  absl::Status AddGrants(const std::vector<Grant>& grants);

  enum class Access { kGranted, kNotGranted, kOutsideSharing, kErased, kUnknownKey };
  // Whether `organisation` may have key `key_id` for `assignment_id`: the assignment was offered to
  // it, the referral's recorded sharing permission names it (or none is recorded: a referral from
  // before they were; `key->sharing_known` says which) and the key is the client's.
  // kOutsideSharing (with `key->referral_id` set, and nothing else) when it was offered to
  // `organisation` but the sharing permission does not name it, whether or not the client was
  // erased; kErased when the client's key was destroyed; kUnknownKey when this store never made
  // `key_id` (sealed by another key service, or before its database was lost): no wait will change
  // that.
  absl::StatusOr<Access> AssignmentKey(const std::string& assignment_id, const std::string& key_id,
                                       const std::string& organisation, DataKey* key);

  // Whether key `key_id` is the key of the client recorded for `referral_id` (ClientKey):
  // kGranted with the key; kErased when that client's key `key_id` was destroyed; kNotGranted
  // otherwise — an unknown referral, an unknown key and another client's key alike.
  absl::StatusOr<Access> ReferralKey(const std::string& referral_id, const std::string& key_id,
                                     DataKey* key);

  // The client of `referral_id`; NOT_FOUND when no referral of that id got a key here.
  absl::StatusOr<std::string> ClientOf(const std::string& referral_id);
  // Destroys every key of the client and records it. Idempotent.
  absl::StatusOr<Erasure> EraseClient(const std::string& client_pseudonym,
                                      std::int64_t erased_at_unix);

  absl::StatusOr<std::int64_t> CountKeys();
  // The organisations recorded for `referral_id`'s sharing permission, sorted; nullopt when none
  // are recorded.
  absl::StatusOr<Sharing> SharingOf(const std::string& referral_id);

 private:
  KeyStore(sqlite::Database db, std::string master_key)
      : db_(std::move(db)), master_key_(std::move(master_key)) {}
  // FAILED_PRECONDITION when the master key is not the store's (see master_check); a new store
  // records its check.
  absl::Status CheckMasterKey() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> Unwrap(const std::string& key_id, const std::string& pseudonym,
                                     const std::string& wrapped) const;

  absl::Mutex mu_;
  sqlite::Database db_ ABSL_GUARDED_BY(mu_);
  std::string master_key_;  // set once; zeroed when the store goes
};

}  // namespace schakel::keys
