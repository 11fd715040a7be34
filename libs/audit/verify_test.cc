// The chain's rules, without Kafka: an intact chain verifies, and each kind of tampering is found
// as what it is, where it is.
#include "libs/audit/verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "libs/audit/entry.h"
#include "libs/audit/writer.h"
#include "libs/service/identity.h"

namespace schakel::audit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

google::protobuf::Timestamp At(std::int64_t seconds) {
  google::protobuf::Timestamp at;
  at.set_seconds(seconds);
  return at;
}

// A chain of `n` entries by one writer, as a writer links them.
std::vector<v1::AuditEntry> Chain(const std::string& writer, int n) {
  std::vector<v1::AuditEntry> chain;
  Head head;
  for (int i = 0; i < n; ++i) {
    v1::AuditSubject subject;
    subject.set_referral_id("r-" + std::to_string(i));
    subject.add_assignment_ids("a-" + std::to_string(i) + "-0");
    v1::AuditEntry entry = NewEntry(OrganisationActor("mjd"), kAssignmentRead, subject,
                                    "GetAssignment", At(1700000000 + i));
    Link(entry, writer, head);
    chain.push_back(entry);
  }
  return chain;
}

Report Verify(const std::vector<v1::AuditEntry>& entries) {
  Verifier verifier;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    verifier.AddRecord("offset " + std::to_string(i), entries[i].writer(),
                       entries[i].SerializeAsString());
  }
  return verifier.Finish();
}

std::vector<Problem> Problems(const Report& report) {
  std::vector<Problem> problems;
  for (const Finding& f : report.findings) problems.push_back(f.problem);
  return problems;
}

TEST(AuditChainTest, LinkNumbersFromZeroAndNamesThePreviousHash) {
  const std::vector<v1::AuditEntry> chain = Chain("inbox-mjd", 3);
  EXPECT_EQ(chain[0].sequence(), 0u);
  EXPECT_EQ(chain[0].previous_hash(), std::string(kHashSize, '\0'));
  EXPECT_EQ(chain[1].previous_hash(), chain[0].hash());
  EXPECT_EQ(chain[2].previous_hash(), chain[1].hash());
  EXPECT_EQ(chain[2].sequence(), 2u);
  EXPECT_EQ(chain[0].hash().size(), kHashSize);
  EXPECT_EQ(EntryHash(chain[1]), chain[1].hash());
}

TEST(AuditChainTest, TheHashCoversEveryField) {
  const v1::AuditEntry original = Chain("inbox-mjd", 1)[0];
  std::vector<v1::AuditEntry> changed(11, original);
  changed[0].set_writer("inbox-x");
  changed[1].set_sequence(1);
  changed[2].set_previous_hash(std::string(kHashSize, '\1'));
  changed[3].mutable_at()->set_seconds(1);
  changed[4].mutable_at()->set_nanos(1);
  changed[5].mutable_actor()->set_kind(v1::AuditActor::OPERATOR);
  changed[6].mutable_actor()->set_id("gemeente");
  changed[7].set_action(kAssignmentList);
  changed[8].mutable_subject()->add_assignment_ids("a-x-1");
  changed[9].mutable_subject()->set_client_pseudonym("p");
  changed[10].set_reason("ListAssignments");
  for (const v1::AuditEntry& entry : changed) {
    EXPECT_NE(EntryHash(entry), original.hash()) << entry.ShortDebugString();
  }
  // Field boundaries count: moving bytes from one field to the next changes the hash.
  v1::AuditEntry a = original;
  v1::AuditEntry b = original;
  a.mutable_actor()->set_id("mj");
  a.set_action(std::string("d") + kAssignmentRead);
  b.mutable_actor()->set_id("mjd");
  b.set_action(kAssignmentRead);
  EXPECT_NE(EntryHash(a), EntryHash(b));
}

TEST(AuditChainTest, AnIntactChainVerifies) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 5);
  const std::vector<v1::AuditEntry> other = Chain("intake", 3);
  // Chains of several writers interleave in the topic.
  entries.insert(entries.begin() + 2, other.begin(), other.end());
  const Report report = Verify(entries);
  EXPECT_TRUE(report.ok()) << ReportText(report);
  ASSERT_EQ(report.writers.size(), 2u);
  EXPECT_EQ(report.writers[0].writer, "inbox-mjd");
  EXPECT_EQ(report.writers[0].entries, 5u);
  EXPECT_EQ(report.writers[0].last_sequence, 4u);
  EXPECT_EQ(report.writers[0].last_hash, Hex(entries.back().hash()));
  EXPECT_EQ(report.writers[0].actions.at("assignment.read by organisation mjd"), 5u);
  EXPECT_EQ(report.writers[1].entries, 3u);
  EXPECT_THAT(ReportText(report), HasSubstr("8 records, 2 chains: OK"));
}

TEST(AuditChainTest, AChangedFieldIsAChangedEntry) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 5);
  entries[2].mutable_actor()->set_id("gemeente");
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kChangedEntry));
  EXPECT_EQ(report.findings[0].sequence, 2u);
  EXPECT_EQ(report.findings[0].position, "offset 2");
  EXPECT_THAT(report.findings[0].Text(), HasSubstr("inbox-mjd seq 2 (offset 2): changed entry"));
}

TEST(AuditChainTest, AChangedEntryWithARecomputedHashBreaksTheNextLink) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 5);
  entries[2].set_reason("something else");
  entries[2].set_hash(EntryHash(entries[2]));
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kBrokenLink));
  EXPECT_EQ(report.findings[0].sequence, 3u);
  EXPECT_THAT(report.findings[0].detail, HasSubstr("sequence 2 (offset 2)"));
}

TEST(AuditChainTest, ARemovedEntryIsMissing) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 5);
  entries.erase(entries.begin() + 2);
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kMissingEntries));
  EXPECT_EQ(report.findings[0].sequence, 3u);
  EXPECT_THAT(report.findings[0].detail, HasSubstr("sequence 2 is missing"));
}

TEST(AuditChainTest, AnInsertedEntryIsFoundEvenWithAValidHash) {
  // A rogue producer copies entry 2, names another actor, and recomputes the hash.
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 5);
  v1::AuditEntry forged = entries[2];
  forged.mutable_actor()->set_id("gemeente");
  forged.set_hash(EntryHash(forged));
  entries.insert(entries.begin() + 4, forged);
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kInsertedEntry));
  EXPECT_EQ(report.findings[0].sequence, 2u);
  EXPECT_EQ(report.findings[0].position, "offset 4");
  EXPECT_THAT(report.findings[0].detail, HasSubstr("is there already (offset 2)"));
  EXPECT_THAT(report.findings[0].detail, HasSubstr("organisation gemeente"));
}

TEST(AuditChainTest, AnIdenticalCopyIsAnInsertedEntryToo) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 3);
  entries.push_back(entries[1]);
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kInsertedEntry));
  EXPECT_THAT(report.findings[0].detail, HasSubstr("identical copy"));
}

TEST(AuditChainTest, AReorderedPairIsOutOfOrder) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 5);
  std::swap(entries[1], entries[2]);
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kOutOfOrder));
  EXPECT_EQ(report.findings[0].sequence, 1u);
  EXPECT_THAT(report.findings[0].detail, HasSubstr("comes after sequence 2 (offset 1)"));
}

TEST(AuditChainTest, AChainNotStartingAtZeroIsFound) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 5);
  entries.erase(entries.begin(), entries.begin() + 2);
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kNotStartingAtZero));
  EXPECT_THAT(report.findings[0].detail, HasSubstr("entries 0 to 1 are missing"));
}

TEST(AuditChainTest, ForeignRecordsAreFound) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 2);
  Verifier verifier;
  verifier.AddRecord("offset 0", "inbox-mjd", entries[0].SerializeAsString());
  verifier.AddRecord("offset 1", "intake", entries[1].SerializeAsString());
  verifier.AddRecord("offset 2", "x", "\xff\xff not protobuf");
  const Report report = verifier.Finish();
  EXPECT_THAT(Problems(report), ElementsAre(Problem::kWrongKey, Problem::kUndecodable));
  EXPECT_FALSE(report.ok());
}

TEST(AuditChainTest, AnUnknownSchemaIsRefused) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 1);
  entries[0].set_schema_version(2);
  entries[0].set_hash(EntryHash(entries[0]));
  EXPECT_THAT(Problems(Verify(entries)), ElementsAre(Problem::kUnknownSchema));
}

// What a service writes: one call with the caller and the ids.
class FakeRecorder final : public Recorder {
 public:
  void Append(v1::AuditEntry entry, Done done) override {
    entries.push_back(std::move(entry));
    if (done) done(absl::OkStatus());
  }
  std::vector<v1::AuditEntry> entries;
};

TEST(AuditRecorderTest, OneCallRecordsTheCallerAndTheIds) {
  FakeRecorder audit;
  service::Caller caller;
  caller.kind = service::Caller::Kind::kOperator;
  caller.id = "alice";
  bool durable = false;
  audit.Record(caller, "client.erased", {.client_pseudonym = "p-1"}, "EraseClient",
               [&durable](absl::Status s) { durable = s.ok(); });
  audit.Record(OrganisationActor("mjd"), kAssignmentRead,
               {.referral_id = "r-1", .assignment_ids = {"a-r-1-0"}}, "GetAssignment");
  ASSERT_EQ(audit.entries.size(), 2u);
  EXPECT_TRUE(durable);
  EXPECT_EQ(ActorText(audit.entries[0].actor()), "operator alice");
  EXPECT_EQ(audit.entries[0].action(), "client.erased");
  EXPECT_EQ(audit.entries[0].subject().client_pseudonym(), "p-1");
  EXPECT_EQ(audit.entries[0].reason(), "EraseClient");
  EXPECT_GT(audit.entries[0].at().seconds(), 0);
  EXPECT_EQ(audit.entries[1].subject().assignment_ids(0), "a-r-1-0");
  EXPECT_EQ(audit.entries[1].subject().referral_id(), "r-1");
}

}  // namespace
}  // namespace schakel::audit
