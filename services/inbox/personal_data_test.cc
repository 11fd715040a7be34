#include "services/inbox/personal_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "libs/privacy/sealed.h"
#include "services/inbox/erasure_consumer.h"
#include "services/inbox/ingest.h"
#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using ::schakel::inbox::testing::kOrg;
using ::schakel::inbox::testing::MakeEvent;
using ::schakel::inbox::testing::MakeRecord;
using ::schakel::inbox::testing::SentStatus;
using ::schakel::inbox::testing::TempStore;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The key service behind our own interface: one client key, which it may refuse.
class FakeKeys final : public privacy::AssignmentKeySource {
 public:
  FakeKeys() {
    key_.set_key_id("k-1");
    key_.set_key(privacy::NewDataKey());
  }
  absl::StatusOr<v1::DataKey> AssignmentKey(const std::string& assignment_id,
                                            const std::string& key_id) override {
    asked.push_back(assignment_id + " " + key_id);
    if (!answer.ok()) return answer;
    return key_;
  }
  std::vector<absl::StatusOr<v1::DataKey>> AssignmentKeys(
      std::span<const privacy::AssignmentKeyAsk> asks) override {
    batches.push_back(asks.size());
    return AssignmentKeySource::AssignmentKeys(asks);
  }
  // Seals `event`'s personal data as intake does.
  void Seal(v1::AssignmentRequested& event, const std::string& name, const std::string& details) {
    const std::string& referral = event.meta().referral_id();
    v1::ClientDetails client;
    client.set_name(name);
    client.set_contact("06-12345678");
    *event.mutable_sealed_client() = *privacy::Seal(
        key_.key_id(), key_.key(), privacy::ClientContext(referral), client.SerializeAsString());
    *event.mutable_sealed_need_details() = *privacy::Seal(
        key_.key_id(), key_.key(), privacy::NeedContext(referral, event.need_index()), details);
    event.clear_need_details();
  }

  const v1::DataKey& key() const { return key_; }

  absl::Status answer = absl::OkStatus();
  std::vector<std::string> asked;
  std::vector<std::size_t> batches;  // the size of each AssignmentKeys call

 private:
  v1::DataKey key_;
};

TEST(OpenPersonalDataTest, OpensTheClientAndTheNeedWithTheClientsKey) {
  FakeKeys keys;
  v1::AssignmentRequested event = MakeEvent("r-1", 1, "debt", 100);
  keys.Seal(event, "Marker Annabel", "schuld bij MARKERBANK");
  v1::Assignment assignment;
  ASSERT_TRUE(OpenPersonalData(event, &keys, assignment).ok());
  EXPECT_THAT(keys.asked, ElementsAre("a-r-1-1 k-1"));
  EXPECT_EQ(assignment.client_name(), "Marker Annabel");
  EXPECT_EQ(assignment.client_contact(), "06-12345678");
  EXPECT_EQ(assignment.need_details(), "schuld bij MARKERBANK");
  EXPECT_FALSE(assignment.erased());
}

TEST(OpenPersonalDataTest, NothingSealedNeedsNoKey) {
  FakeKeys keys;
  v1::Assignment assignment;
  ASSERT_TRUE(OpenPersonalData(MakeEvent("r-1", 0, "debt", 100), &keys, assignment).ok());
  EXPECT_THAT(keys.asked, IsEmpty());
  ASSERT_TRUE(OpenPersonalData(MakeEvent("r-1", 0, "debt", 100), nullptr, assignment).ok());
}

TEST(OpenPersonalDataTest, AnErasedClientIsStoredErased) {
  FakeKeys keys;
  v1::AssignmentRequested event = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(event, "Marker Annabel", "details");
  keys.answer = absl::FailedPreconditionError("key service: erased");
  v1::Assignment assignment;
  ASSERT_TRUE(OpenPersonalData(event, &keys, assignment).ok());
  EXPECT_TRUE(assignment.erased());
  EXPECT_EQ(assignment.client_name(), "");
  EXPECT_EQ(assignment.need_details(), "");
}

TEST(OpenPersonalDataTest, AKeyTheKeyServiceNeverMadeLeavesTheAssignmentWithoutPersonalData) {
  FakeKeys keys;
  v1::AssignmentRequested event = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(event, "Marker Annabel", "details");
  keys.answer = absl::NotFoundError("key service: key k-1 is not known here");
  v1::Assignment assignment;
  ASSERT_TRUE(OpenPersonalData(event, &keys, assignment).ok());
  EXPECT_TRUE(assignment.personal_data_unavailable());
  EXPECT_FALSE(assignment.erased());
  EXPECT_EQ(assignment.client_name(), "");
  EXPECT_EQ(assignment.need_details(), "");
}

TEST(OpenPersonalDataTest, NoKeyYetIsUnavailableAndAMisplacedFieldIsDataLoss) {
  FakeKeys keys;
  v1::AssignmentRequested event = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(event, "Marker Annabel", "details");
  v1::Assignment assignment;
  EXPECT_EQ(OpenPersonalData(event, nullptr, assignment).code(), absl::StatusCode::kUnavailable);
  keys.answer = absl::PermissionDeniedError("key service: not yours");
  EXPECT_EQ(OpenPersonalData(event, &keys, assignment).code(), absl::StatusCode::kUnavailable);
  keys.answer = absl::OkStatus();
  // The sealed details of need 0 moved to need 1 (or another referral) do not open.
  v1::AssignmentRequested moved = event;
  moved.set_need_index(1);
  absl::Status status = OpenPersonalData(moved, &keys, assignment);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(assignment.need_details(), "");
}

TEST(IngestPersonalDataTest, TheInboxStoresTheOpenedTextAndWaitsForTheKey) {
  TempStore temp;
  FakeKeys keys;
  AssignmentIngest ingest(kOrg, temp.store());
  ingest.UseKeys(&keys);
  v1::AssignmentRequested event = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(event, "Marker Annabel", "schuld bij MARKERBANK");
  keys.answer = absl::UnavailableError("key service: connection refused");
  EXPECT_EQ(ingest.Ingest(MakeRecord(event)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*temp.store().Count(), 0) << "not done: the record comes again";
  keys.answer = absl::OkStatus();
  ASSERT_EQ(*ingest.Ingest(MakeRecord(event)), IngestOutcome::kStored);
  absl::StatusOr<v1::Assignment> stored = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->client_name(), "Marker Annabel");
  EXPECT_EQ(stored->need_details(), "schuld bij MARKERBANK");
  // A sealed field that does not open: the record is unusable (dead letter), not retried forever.
  v1::AssignmentRequested damaged = MakeEvent("r-2", 0, "debt", 100);
  keys.Seal(damaged, "X", "Y");
  damaged.mutable_sealed_need_details()->mutable_ciphertext()->back() ^= 1;
  EXPECT_EQ(*ingest.Ingest(MakeRecord(damaged)), IngestOutcome::kRejected);
}

TEST(IngestPersonalDataTest, ABatchAsksForTheKeysOfAllItsSealedOffersTogether) {
  TempStore temp;
  FakeKeys keys;
  AssignmentIngest ingest(kOrg, temp.store());
  ingest.UseKeys(&keys);
  v1::AssignmentRequested anna = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(anna, "Marker Annabel", "schuld");
  v1::AssignmentRequested plain = MakeEvent("r-2", 0, "income", 101);  // nothing sealed
  v1::AssignmentRequested bram = MakeEvent("r-3", 1, "housing", 102);
  keys.Seal(bram, "Bram", "kamer gezocht");
  const std::vector<kafka::Record> records = {MakeRecord(anna, 1), MakeRecord(plain, 2),
                                              MakeRecord(bram, 3)};
  absl::StatusOr<std::vector<IngestResult>> results = ingest.IngestBatch(records);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 3u);
  for (const IngestResult& result : *results) EXPECT_EQ(result.outcome, IngestOutcome::kStored);
  EXPECT_THAT(keys.batches, ElementsAre(2u)) << "one call for both sealed offers";
  EXPECT_THAT(keys.asked, ElementsAre("a-r-1-0 k-1", "a-r-3-1 k-1"));
  EXPECT_EQ(temp.store().Get("a-r-1-0")->client_name(), "Marker Annabel");
  EXPECT_EQ(temp.store().Get("a-r-2-0")->need_details(),
            "Needs help with a letter from the tax office");
  EXPECT_EQ(temp.store().Get("a-r-3-1")->need_details(), "kamer gezocht");

  // One key that cannot be had now holds up the whole batch (it comes again), the others too.
  v1::AssignmentRequested carla = MakeEvent("r-4", 0, "debt", 103);
  keys.Seal(carla, "Carla", "x");
  keys.answer = absl::UnavailableError("key service: connection refused");
  const std::vector<kafka::Record> again = {MakeRecord(carla, 4)};
  EXPECT_EQ(ingest.IngestBatch(again).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(temp.store().Get("a-r-4-0").status().code(), absl::StatusCode::kNotFound);
}

std::string Files(const std::filesystem::path& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    all += std::string(std::istreambuf_iterator<char>(in), {});
  }
  return all;
}

TEST(ErasureTest, PurgesTheClientsPersonalDataAndKeepsTheAssignments) {
  TempStore temp;
  FakeKeys keys;
  AssignmentIngest ingest(kOrg, temp.store());
  ingest.UseKeys(&keys);
  v1::AssignmentRequested anna = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(anna, "Marker Annabel", "schuld bij MARKERBANK");
  v1::AssignmentRequested other = MakeEvent("r-2", 0, "income", 101);
  other.set_client_pseudonym("p-other");
  keys.Seal(other, "Bram", "uitkering");
  ASSERT_EQ(*ingest.Ingest(MakeRecord(anna)), IngestOutcome::kStored);
  ASSERT_EQ(*ingest.Ingest(MakeRecord(other, 8)), IngestOutcome::kStored);
  const std::int64_t before = *temp.store().LastSequence();
  ASSERT_NE(Files(temp.dir()).find("MARKERBANK"), std::string::npos);

  v1::ClientErased erased;
  erased.set_client_pseudonym(anna.client_pseudonym());
  absl::StatusOr<std::size_t> purged = ApplyErasure(temp.store(), erased.SerializeAsString());
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1u);
  const v1::Assignment gone = *temp.store().Get("a-r-1-0");
  EXPECT_TRUE(gone.erased());
  EXPECT_EQ(gone.client_name(), "");
  EXPECT_EQ(gone.client_contact(), "");
  EXPECT_EQ(gone.need_details(), "");
  EXPECT_EQ(gone.status(), v1::ASSIGNMENT_STATUS_RECEIVED) << "the assignment itself stays";
  EXPECT_EQ(temp.store().Get("a-r-2-0")->client_name(), "Bram");
  // Watchers learn it: one new change; no change in the feed still holds the old text.
  std::vector<store::StoredChange> changes = *temp.store().ChangesAfter(0, 100);
  EXPECT_EQ(*temp.store().LastSequence(), before + 1);
  for (const store::StoredChange& c : changes) {
    EXPECT_EQ(c.assignment.need_details().find("MARKERBANK"), std::string::npos);
    EXPECT_EQ(c.assignment.client_name().find("Annabel"), std::string::npos);
  }
  // Nor do the database's files (rewritten rows overwritten, the WAL checkpointed).
  const std::string files = Files(temp.dir());
  EXPECT_EQ(files.find("MARKERBANK"), std::string::npos);
  EXPECT_EQ(files.find("Marker Annabel"), std::string::npos);
  EXPECT_NE(files.find("uitkering"), std::string::npos) << "the other client's data stays";
  // Again: nothing left to erase.
  EXPECT_EQ(*ApplyErasure(temp.store(), erased.SerializeAsString()), 0u);
  EXPECT_EQ(ApplyErasure(temp.store(), "\xff\xff").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The status events an inbox has queued for the router (schakel.from.<org>).
std::vector<v1::AssignmentStatusChanged> StatusEvents(TempStore& temp) {
  std::vector<v1::AssignmentStatusChanged> events;
  const std::vector<store::OutboxEntry> outbox = temp.store().PendingOutbox(1000).value();
  for (const store::OutboxEntry& entry : outbox) {
    if (std::optional<v1::AssignmentStatusChanged> sent = SentStatus(entry.event)) {
      events.push_back(*std::move(sent));
    }
  }
  return events;
}

// The owner declines a-r-1-0 with `reason`, as InboxService does (the key read first).
void Decline(TempStore& temp, const std::string& reason) {
  absl::StatusOr<v1::Assignment> current = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(current.ok()) << current.status();
  Step step;
  step.transition.to = v1::ASSIGNMENT_STATUS_REJECTED;
  step.transition.actor = referral::Actor::kOwner;
  step.transition.reason = reason;
  step.by = kOrg;
  step.key = *temp.store().GetKey("a-r-1-0");
  ASSERT_TRUE(temp.store()
                  .Apply("a-r-1-0", current->version(),
                         [&step](const v1::Assignment& now) { return MakeChange(now, step); })
                  .ok());
}

TEST(TypedTextTest, TheOwnersReasonTravelsSealedWithTheClientsKeyAndARebuildOpensIt) {
  TempStore temp;
  FakeKeys keys;
  AssignmentIngest ingest(kOrg, temp.store());
  ingest.UseKeys(&keys);
  v1::AssignmentRequested offer = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(offer, "Marker Annabel", "details");
  ASSERT_EQ(*ingest.Ingest(MakeRecord(offer)), IngestOutcome::kStored);
  // The key that opened the offer is kept with it.
  ASSERT_TRUE(temp.store().GetKey("a-r-1-0")->has_value());
  EXPECT_EQ((*temp.store().GetKey("a-r-1-0"))->key_id, "k-1");

  ASSERT_NO_FATAL_FAILURE(Decline(temp, "Annabel is opgenomen in het UMCG"));
  EXPECT_EQ(temp.store().Get("a-r-1-0")->status_reason(), "Annabel is opgenomen in het UMCG");
  std::vector<v1::AssignmentStatusChanged> events = StatusEvents(temp);
  ASSERT_EQ(events.size(), 2u);  // received, rejected
  const v1::AssignmentStatusChanged& rejected = events[1];
  EXPECT_EQ(rejected.reason(), "");
  EXPECT_EQ(rejected.sealed_reason().key_id(), "k-1");
  EXPECT_EQ(*privacy::Open(rejected.sealed_reason(), keys.key().key(),
                           privacy::StatusReasonContext("r-1", "a-r-1-0", 3)),
            "Annabel is opgenomen in het UMCG");
  const std::vector<store::OutboxEntry> outbox = temp.store().PendingOutbox(1000).value();
  for (const store::OutboxEntry& entry : outbox) {
    EXPECT_EQ(entry.event.value.find("UMCG"), std::string::npos) << entry.event.topic;
  }

  // A new database rebuilds from the topic: the offer, then its own sealed status changes.
  TempStore rebuilt;
  AssignmentIngest replay(kOrg, rebuilt.store());
  replay.UseKeys(&keys);
  ASSERT_TRUE(replay.ReplayUntil({{2, 100}}).ok());  // MakeRecord's partition
  ASSERT_EQ(*replay.Ingest(MakeRecord(offer, 1)), IngestOutcome::kStored);
  std::int64_t offset = 2;
  for (const v1::AssignmentStatusChanged& change : events) {
    v1::InboxEvent echo;
    *echo.mutable_status_changed() = change;
    kafka::Record record = MakeRecord(offer, offset++);
    record.value = echo.SerializeAsString();
    ASSERT_EQ(*replay.Ingest(record), IngestOutcome::kStored);
  }
  absl::StatusOr<v1::Assignment> restored = rebuilt.store().Get("a-r-1-0");
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(restored->status_reason(), "Annabel is opgenomen in het UMCG");
  EXPECT_EQ(restored->history(2).reason(), "Annabel is opgenomen in het UMCG");

  // A sealed reason moved to another change does not open: that record is unusable.
  v1::AssignmentStatusChanged moved = events[1];
  moved.set_version(4);
  moved.set_to_status(v1::ASSIGNMENT_STATUS_REJECTED);
  v1::InboxEvent echo;
  *echo.mutable_status_changed() = moved;
  kafka::Record record = MakeRecord(offer, offset++);
  record.value = echo.SerializeAsString();
  EXPECT_EQ(*replay.Ingest(record), IngestOutcome::kRejected);
}

TEST(TypedTextTest, ASealedCancelReasonIsOpenedForTheOwnerAndSealedAgainForTheReferrer) {
  TempStore temp;
  FakeKeys keys;
  AssignmentIngest ingest(kOrg, temp.store());
  ingest.UseKeys(&keys);
  v1::AssignmentRequested offer = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(offer, "Marker Annabel", "details");
  ASSERT_EQ(*ingest.Ingest(MakeRecord(offer)), IngestOutcome::kStored);

  v1::CancelRequested cancel;
  cancel.mutable_meta()->set_schema_version(1);
  cancel.mutable_meta()->set_referral_id("r-1");
  cancel.mutable_meta()->set_assignment_id("a-r-1-0");
  cancel.set_organisation(kOrg);
  cancel.set_referring_organisation(offer.referring_organisation());
  *cancel.mutable_sealed_reason() =
      *privacy::Seal("k-1", keys.key().key(), privacy::CancelReasonContext("r-1", "a-r-1-0"),
                     "Annabel woont nu bij haar zus");
  v1::InboxEvent wrapper;
  *wrapper.mutable_cancel_requested() = cancel;
  kafka::Record record = MakeRecord(offer, 9);
  record.value = wrapper.SerializeAsString();
  ASSERT_EQ(*ingest.Ingest(record), IngestOutcome::kStored);

  absl::StatusOr<v1::Assignment> cancelled = temp.store().Get("a-r-1-0");
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status(), v1::ASSIGNMENT_STATUS_CANCELLED);
  EXPECT_EQ(cancelled->status_reason(), "Annabel woont nu bij haar zus");
  std::vector<v1::AssignmentStatusChanged> events = StatusEvents(temp);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].by(), offer.referring_organisation());
  EXPECT_EQ(events[1].reason(), "");
  EXPECT_EQ(*privacy::Open(events[1].sealed_reason(), keys.key().key(),
                           privacy::StatusReasonContext("r-1", "a-r-1-0", 3)),
            "Annabel woont nu bij haar zus");

  // Sealed for another assignment: refused, not applied.
  TempStore other;
  AssignmentIngest second(kOrg, other.store());
  second.UseKeys(&keys);
  ASSERT_EQ(*second.Ingest(MakeRecord(offer)), IngestOutcome::kStored);
  *cancel.mutable_sealed_reason() = *privacy::Seal(
      "k-1", keys.key().key(), privacy::CancelReasonContext("r-1", "a-r-1-1"), "moved here");
  *wrapper.mutable_cancel_requested() = cancel;
  record.value = wrapper.SerializeAsString();
  EXPECT_EQ(*second.Ingest(record), IngestOutcome::kRejected);
  EXPECT_EQ(other.store().Get("a-r-1-0")->status(), v1::ASSIGNMENT_STATUS_RECEIVED);
}

TEST(ErasureTest, PurgesWhatPeopleTypedAndTheInboxsCopyOfTheKey) {
  TempStore temp;
  FakeKeys keys;
  AssignmentIngest ingest(kOrg, temp.store());
  ingest.UseKeys(&keys);
  v1::AssignmentRequested offer = MakeEvent("r-1", 0, "debt", 100);
  keys.Seal(offer, "Marker Annabel", "details");
  ASSERT_EQ(*ingest.Ingest(MakeRecord(offer)), IngestOutcome::kStored);
  ASSERT_NO_FATAL_FAILURE(Decline(temp, "MARKERREASON: Annabel is opgenomen"));
  ASSERT_NE(Files(temp.dir()).find("MARKERREASON"), std::string::npos);

  v1::ClientErased erased;
  erased.set_client_pseudonym(offer.client_pseudonym());
  ASSERT_EQ(*ApplyErasure(temp.store(), erased.SerializeAsString()), 1u);
  const v1::Assignment gone = *temp.store().Get("a-r-1-0");
  EXPECT_EQ(gone.status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(gone.status_reason(), "");
  for (const v1::StatusChange& change : gone.history()) EXPECT_EQ(change.reason(), "");
  EXPECT_FALSE(temp.store().GetKey("a-r-1-0")->has_value());
  EXPECT_EQ(Files(temp.dir()).find("MARKERREASON"), std::string::npos);
}

}  // namespace
}  // namespace schakel::inbox
