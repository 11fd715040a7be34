// The referrer's view of its referrals (the closed loop): folded from the events on Kafka —
// ReferralSubmitted, AssignmentStatusChanged and ReferralUnroutable — into one ReferralStatus per
// referral, kept in intake's own SQLite file so a restart does not lose it. What people typed about
// an assignment (sealed status reasons and outcomes) is kept sealed, as it came: the view never
// holds it in clear; intake opens it only to answer the referrer (sealed_text.h).
//
// Events of one referral arrive on different partitions, so in any order; the fold is built for
// that: each (assignment, version) is applied once, a need's current assignment is the newest of
// its chain (a-…-0 < a-…-0.1 < a-…-0.2), and a status event for a referral not seen yet creates it.
//
// The file is the only copy: nothing of a referral stays in memory after the call that read or
// wrote it, so intake's memory does not grow with the referrals it has seen (issue 20). Reads go
// through their own connection to the file (write-ahead log), so they never wait for a write's
// fsync; SQLite's page cache is the bounded cache.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/sqlite/sqlite.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/intake.pb.h"

namespace schakel::intake {

// The pure fold, no I/O. Each Apply returns true when the referral changed.
bool ApplySubmitted(const v1::ReferralSubmitted& event, v1::ReferralStatus* referral);
bool ApplyStatus(const v1::AssignmentStatusChanged& event, v1::ReferralStatus* referral);
bool ApplyUnroutable(const v1::ReferralUnroutable& event, v1::ReferralStatus* referral);

// The referral an assignment id belongs to: "a-<hex>-<n>[.<k>]" -> "r-<hex>"; empty when the id
// does not have that form.
std::string ReferralIdOf(const std::string& assignment_id);

class ReferralView {
 public:
  // Opens (creating) the SQLite file and loads what it holds.
  static absl::StatusOr<std::unique_ptr<ReferralView>> Open(const std::string& path);
  ~ReferralView();

  // Applies one Kafka record by topic; durable when it returns. Unknown or undecodable records are
  // INVALID_ARGUMENT (the caller logs and skips them).
  absl::Status ApplyRecord(const std::string& topic, const std::string& value);

  // Applies several records and stores what they changed in one SQLite transaction (one fsync for
  // the batch instead of one per record: the consumer keeps up with a busy intake). `results` gets
  // one status per record, as ApplyRecord would return it for that record alone. The returned
  // status is the store's: when it is not OK (UNAVAILABLE: busy or full), none of the records is
  // applied, and `results` says nothing; call again with them.
  struct RecordRef {
    const std::string& topic;
    const std::string& value;
  };
  absl::Status ApplyRecords(const std::vector<RecordRef>& records,
                            std::vector<absl::Status>* results);

  // Only the referring organisation's own referrals: another's is NOT_FOUND, as is a missing one.
  absl::StatusOr<v1::ReferralStatus> Get(const std::string& referring_organisation,
                                         const std::string& referral_id);
  // The organisation's referrals, newest first; page_token is the last referral id of the previous
  // page.
  absl::StatusOr<v1::ListReferralsResponse> List(const std::string& referring_organisation,
                                                 int page_size, const std::string& page_token);

  // The need of one of the organisation's referrals whose history holds `assignment_id`. Another
  // organisation's assignment is NOT_FOUND "assignment not found", as is a missing one.
  absl::StatusOr<v1::NeedStatus> FindAssignment(const std::string& referring_organisation,
                                                const std::string& assignment_id);

  // The organisation's referral with the digest of the request that made it (empty when the view
  // has not seen its submission); nullopt when the view does not know the referral.
  struct Submitted {
    v1::ReferralStatus status;
    std::string request_digest;
  };
  std::optional<Submitted> FindSubmitted(const std::string& referring_organisation,
                                         const std::string& referral_id);

  // The key the referral's client data was sealed with (ReferralSubmitted.sealed_client; empty when
  // the view has not seen it sealed) and the client's pseudonym (empty when not seen); nullopt
  // when the view does not know the referral.
  struct ClientKeyRef {
    std::string key_id{};
    std::string client_pseudonym{};
  };
  std::optional<ClientKeyRef> ClientKeyOf(const std::string& referral_id);

  // An open need (not final, not unroutable, not itself linked) of the same client for the same
  // need code, in any organisation's referrals: what a new referral's need is linked to.
  std::optional<v1::LinkedNeed> FindOpen(const std::string& client_pseudonym,
                                         const std::string& need_code);

  // Called (outside the lock) with every changed referral; returns a handle for Unsubscribe.
  using Listener = std::function<void(const std::string& referring_organisation,
                                      const v1::ReferralStatus& referral)>;
  int Subscribe(Listener listener);
  void Unsubscribe(int handle);

 private:
  // A referral as the file keeps it: its ReferralStatus serialized, with what lookups need beside.
  struct Entry {
    std::string referring_organisation;
    std::string client_pseudonym;  // kept out of ReferralStatus: the referrer never sees it
    std::string request_digest;
    std::string client_key_id;  // ReferralSubmitted.sealed_client.key_id
    std::string body;           // the serialized v1::ReferralStatus
    v1::ReferralStatus Status() const;
  };
  struct Changed {
    std::string referring_organisation;
    v1::ReferralStatus status;
  };
  // A connection to the file with its statements, prepared once (every call and every folded
  // record uses them).
  struct Connection {
    static absl::StatusOr<Connection> Open(sqlite::Database db);
    sqlite::Database db;
    sqlite::Statement load;        // a referral by id
    sqlite::Statement save;        // a referral stored
    sqlite::Statement by_client;   // a client's referrals, oldest first
    sqlite::Statement page_start;  // where a page token's referral stands
    sqlite::Statement first_page;  // an organisation's newest referrals
    sqlite::Statement next_page;   // those after a token's referral
  };
  ReferralView(Connection writer, std::optional<Connection> reader);
  // Runs `read` on the reading connection (the writing one for a database in memory, which has
  // no second connection).
  template <typename Read>
  auto Reading(Read read) ABSL_LOCKS_EXCLUDED(read_mu_, apply_mu_);
  // In the writer's open transaction: folds one record into its referral and stores it when it
  // changed; `changed` gets the referral as it is afterwards.
  // (Called with apply_mu_ held; it touches nothing but the transaction.)
  static absl::Status Fold(Connection& writer, sqlite::Transaction& tx, const std::string& topic,
                           const std::string& value, std::vector<Changed>* changed);

  // Serialises appliers (the view's consumer thread, tests) and guards the writing connection.
  absl::Mutex apply_mu_;
  Connection writer_ ABSL_GUARDED_BY(apply_mu_);
  // The reading connection (none for a database in memory).
  absl::Mutex read_mu_;
  std::optional<Connection> reader_ ABSL_GUARDED_BY(read_mu_);
  absl::Mutex listeners_mu_;
  std::map<int, Listener> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  int next_listener_ ABSL_GUARDED_BY(listeners_mu_) = 1;
};

}  // namespace schakel::intake
