// From the organisation's Kafka topic into its database: each record of schakel.inbox.<org> (an
// AssignmentRequested, keyed by assignment id) becomes one stored Assignment, received at once: it
// is stored as RECEIVED (version 2) together with the AssignmentStatusChanged event that tells the
// network so, in one transaction (the outbox relay publishes the event). A record is stored,
// found to be there already (Kafka redelivers), or rejected because it is unusable; a rejected
// record is logged without its payload, counted and skipped, so that one bad record never blocks
// the inbox. The consumer hands over a batch of records at a time, and everything a batch changes
// is written in one SQLite transaction.
//
// The topic also carries the referring organisation's requests to cancel (CancelRequested, routed
// here by the router). Until work has started the assignment is cancelled by the referrer through
// the lifecycle like any other change; after that only the request is recorded
// (Assignment.cancellation_requested, a new version in the changes feed) and the owner answers.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/privacy/key_client.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/inbox.pb.h"
#include "services/inbox/store/inbox_store.h"
#include "services/inbox/transition.h"

namespace schakel::inbox {

// What an inbox records as a referrer's reason to cancel when the reason came sealed with a key it
// does not hold (the client was erased, or the offer came before the inbox kept keys).
inline constexpr char kUnreadableCancelReason[] =
    "(the referring organisation's reason cannot be opened here)";

// The version of the AssignmentRequested schema this inbox reads (EventMeta.schema_version).
inline constexpr std::uint32_t kAssignmentRequestedSchemaVersion = 1;

enum class IngestOutcome { kStored, kDuplicate, kRejected };
std::string_view IngestOutcomeName(IngestOutcome outcome);

// What became of one record, with why when it was rejected (for its dead letter; the reason names
// fields, never their contents).
struct IngestResult {
  IngestOutcome outcome = IngestOutcome::kRejected;
  std::string rejection;
};

struct IngestCounts {
  std::uint64_t stored = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t rejected = 0;
};

// The assignment a record offers `organisation`, as the router offered it: status REQUESTED,
// version 1, requested and updated at the event's time, its history the one step to REQUESTED by
// the network, forwarded_from and sharing from the event. INVALID_ARGUMENT with the reason when
// the record is unusable; the reason names fields, never their contents.
absl::StatusOr<schakel::v1::Assignment> AssignmentFromRecord(std::string_view organisation,
                                                             const kafka::Record& record);

class AssignmentIngest {
 public:
  // `store` (and `network`, when given) must outlive this object. `clock` gives the time the
  // assignment is received. With a network, the organisation's automatic rules from the network
  // file act on each new assignment right after it is received: "forward need X to Y" and "decline
  // when more than N are open". They go through the same lifecycle and leave the same trail as a
  // person would, with by = "network".
  AssignmentIngest(std::string organisation, store::InboxStore& store, Clock clock = SystemNow,
                   const routing::Network* network = nullptr);

  // Decides a batch of records (e.g. what one poll round gave), in order, and stores everything
  // they change in one SQLite transaction: one fsync for the batch instead of one or two per
  // record. It runs in two steps: each record is first prepared outside the transaction (decoded;
  // anything that may wait, such as a network call, belongs there), then all are decided and
  // written inside it, each seeing what the ones before it wrote. When it returns the results (one
  // per record, in order) all of it is durable and every record is done: their offsets may be
  // committed. An error means the store failed: nothing of the batch is stored, no count or replay
  // progress changed, and the whole batch must be tried again (it is decided again from scratch, so
  // a retry is as good as a first try, and a batch delivered again after a crash finds its records
  // stored and changes nothing).
  absl::StatusOr<std::vector<IngestResult>> IngestBatch(std::span<const kafka::Record> records);

  // A batch of one record (its rejection reason in last_rejection()).
  absl::StatusOr<IngestOutcome> Ingest(const kafka::Record& record);

  // Rebuild: a new, empty database replays the organisation's topic from the start. Records below
  // these end offsets (per partition, as the topic was when the inbox started) are history: an
  // assignment is stored as it was requested and its later steps are restored from the status
  // changes on the topic, without publishing anything or running the automatic rules again. When
  // the replay has reached every end, what is still only requested is received now (and the rules
  // act on it), as for a new assignment.
  absl::Status ReplayUntil(std::map<std::int32_t, std::int64_t> end_offsets);
  bool replaying() const { return !replay_end_.empty(); }

  // Where the keys of sealed personal data come from (services/keys); without it an offer with
  // sealed data is not done (UNAVAILABLE) and comes again. Must outlive this object.
  void UseKeys(privacy::AssignmentKeySource* keys) { keys_ = keys; }

  IngestCounts counts() const;
  // Why the last record Ingest rejected was rejected (the calling thread only).
  const std::string& last_rejection() const { return last_rejection_; }
  const std::string& organisation() const { return organisation_; }

 private:
  using Batch = store::InboxStore::Batch;
  // A record made ready for its decision outside the store's transaction.
  struct Prepared {
    const kafka::Record* record = nullptr;
    // The decoded value; empty when it did not parse (the decision rejects it).
    bool parsed = false;
    schakel::v1::InboxEvent event;
    // An offer's personal data, opened with the client's key from the key service (need_details,
    // client_name, client_contact, erased, personal_data_unavailable); `unopenable` says why a
    // sealed field does not open (the record is rejected).
    schakel::v1::Assignment personal;
    std::string unopenable;
    // The key that opened it, kept with the assignment to seal what the organisation types.
    std::optional<store::DataKey> key;
  };
  // Everything a record needs before the transaction: first each record decoded, then the personal
  // data of every sealed offer of the batch opened with keys asked for all at once (calls to the
  // key service). An error means "not now" (the batch is tried again), never "unusable": an
  // unusable record is rejected by Decide.
  static Prepared Decode(const kafka::Record& record);
  absl::Status OpenAll(std::vector<Prepared>& prepared) const;
  // Decides one prepared record inside the batch's transaction. An error means the store failed.
  absl::StatusOr<IngestResult> Decide(Batch& batch, const Prepared& prepared, bool replay);
  // Marks a requested assignment received (one status event) and lets the rules act on it.
  absl::Status Receive(Batch& batch, const schakel::v1::Assignment& requested);
  absl::Status FinishReplay(Batch& batch);
  // Partitions still replaying, with the offset where their history ends. Changed only once the
  // batch that moved it is durable.
  std::map<std::int32_t, std::int64_t> replay_end_;
  privacy::AssignmentKeySource* keys_ = nullptr;
  // A status change of one of our assignments coming back from our own topic: our own echo (nothing
  // to do), or, when the database was rebuilt, the next step to restore.
  absl::StatusOr<IngestResult> Restore(Batch& batch, const kafka::Record& record,
                                       const schakel::v1::AssignmentStatusChanged& change);
  // A referrer's request to cancel one of our assignments: cancelled (work has not started), the
  // request recorded (work has started), or nothing to do (final, or recorded already).
  absl::StatusOr<IngestResult> Cancel(Batch& batch, const kafka::Record& record,
                                      const schakel::v1::CancelRequested& cancel);
  // The router withdraws an assignment not accepted in time: cancelled when still waiting; an
  // acceptance that came first stands (the router learns it from the status topic).
  absl::StatusOr<IngestResult> Withdraw(Batch& batch, const kafka::Record& record,
                                        const schakel::v1::Withdrawal& withdrawal);
  // A new assignment (or, in a replay, one from the history).
  absl::StatusOr<IngestResult> Offer(Batch& batch, const Prepared& prepared, bool replay);
  IngestResult Rejected(const kafka::Record& record, std::string_view why) const;
  // The automatic rules for a newly received assignment. An error means the store failed.
  absl::Status ApplyRules(Batch& batch, const schakel::v1::Assignment& received);
  std::string last_rejection_;
  std::string organisation_;
  const routing::Network* network_;
  store::InboxStore& store_;
  Clock clock_;
  std::atomic<std::uint64_t> stored_{0};
  std::atomic<std::uint64_t> duplicates_{0};
  std::atomic<std::uint64_t> rejected_{0};
};

}  // namespace schakel::inbox
