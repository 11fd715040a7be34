// The chain's rules, without Kafka: an intact chain verifies, and each kind of tampering is found
// as what it is, where it is: changed, removed, inserted or reordered entries, and entries
// unsigned, badly signed, or signed by a key that is not their writer's.
#include "libs/audit/verify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "libs/audit/entry.h"
#include "libs/audit/signing.h"
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

// Each writer's own key, and the keys the verifier trusts: those of the writers below.
const SigningKey& KeyOf(const std::string& writer) {
  static std::map<std::string, SigningKey> keys;
  auto it = keys.find(writer);
  if (it == keys.end()) it = keys.emplace(writer, SigningKey::Generate()).first;
  return it->second;
}
TrustedKeys Trusted() {
  TrustedKeys trusted;
  for (const char* writer : {"inbox-mjd", "inbox-gemeente", "intake"}) {
    EXPECT_TRUE(trusted.Add(writer, KeyOf(writer).public_key()).ok());
  }
  return trusted;
}

// The next entry of a chain at `head`, as a writer links and signs it with `key`.
v1::AuditEntry Next(const std::string& writer, Head& head, const SigningKey& key,
                    const std::string& reader = "mjd") {
  const std::uint64_t i = head.next_sequence;
  v1::AuditSubject subject;
  subject.set_referral_id("r-" + std::to_string(i));
  subject.add_assignment_ids("a-" + std::to_string(i) + "-0");
  v1::AuditEntry entry = NewEntry(OrganisationActor(reader), kAssignmentRead, subject,
                                  "GetAssignment", At(1700000000 + static_cast<std::int64_t>(i)));
  Link(entry, writer, head);
  Sign(entry, key);
  return entry;
}

// A chain of `n` entries by one writer, as a writer links and signs them (with its own key, unless
// told otherwise).
std::vector<v1::AuditEntry> Chain(const std::string& writer, int n,
                                  const SigningKey* key = nullptr) {
  std::vector<v1::AuditEntry> chain;
  Head head;
  for (int i = 0; i < n; ++i) chain.push_back(Next(writer, head, key ? *key : KeyOf(writer)));
  return chain;
}

Report Verify(const std::vector<v1::AuditEntry>& entries, TrustedKeys trusted = Trusted()) {
  Verifier verifier(std::move(trusted));
  for (std::size_t i = 0; i < entries.size(); ++i) {
    verifier.AddRecord("offset " + std::to_string(i), entries[i].writer(),
                       entries[i].SerializeAsString(), AuditTopic(entries[i].writer()));
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
  EXPECT_EQ(report.writers[0].signed_by_writer, 5u);
  EXPECT_EQ(report.writers[1].entries, 3u);
  EXPECT_EQ(report.writers[1].signed_by_writer, 3u);
  EXPECT_THAT(ReportText(report), HasSubstr("inbox-mjd: 5 entries checked (5 signed by its key)"));
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
  // Its signature was over the old hash; and the next entry names the old hash.
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kBadSignature, Problem::kBrokenLink));
  EXPECT_EQ(report.findings[0].sequence, 2u);
  EXPECT_THAT(report.findings[0].Text(),
              HasSubstr("inbox-mjd seq 2 (offset 2): bad signature: its signature does not "
                        "verify with the key it names (" +
                        Hex(KeyOf("inbox-mjd").public_key()).substr(0, 16) + "…)"));
  EXPECT_EQ(report.findings[1].sequence, 3u);
  EXPECT_THAT(report.findings[1].detail, HasSubstr("sequence 2 (offset 2)"));
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
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kBadSignature, Problem::kInsertedEntry));
  EXPECT_EQ(report.findings[1].sequence, 2u);
  EXPECT_EQ(report.findings[1].position, "offset 4");
  EXPECT_THAT(report.findings[1].detail, HasSubstr("is there already (offset 2)"));
  EXPECT_THAT(report.findings[1].detail, HasSubstr("organisation gemeente"));
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
  Verifier verifier(Trusted());
  verifier.AddRecord("offset 0", "inbox-mjd", entries[0].SerializeAsString(),
                     "schakel.audit.inbox-mjd");
  verifier.AddRecord("offset 1", "intake", entries[1].SerializeAsString(),
                     "schakel.audit.inbox-mjd");
  verifier.AddRecord("offset 2", "x", "\xff\xff not protobuf", "schakel.audit.inbox-mjd");
  const Report report = verifier.Finish();
  EXPECT_THAT(Problems(report), ElementsAre(Problem::kWrongKey, Problem::kUndecodable));
  EXPECT_FALSE(report.ok());
}

// Only a writer may write its own topic (the broker's ACLs), so an entry in another's topic was put
// there by someone who got round them: named even when it is well linked and signed.
TEST(AuditChainTest, AnEntryInAnotherWritersTopicIsFound) {
  const std::vector<v1::AuditEntry> mjd = Chain("inbox-mjd", 2);
  const std::vector<v1::AuditEntry> ggd = Chain("inbox-ggd", 1);
  Verifier verifier(Trusted());
  verifier.AddRecord("schakel.audit.inbox-mjd offset 0", "inbox-mjd", mjd[0].SerializeAsString(),
                     "schakel.audit.inbox-mjd");
  verifier.AddRecord("schakel.audit.inbox-mjd offset 1", "inbox-ggd", ggd[0].SerializeAsString(),
                     "schakel.audit.inbox-mjd");
  verifier.AddRecord("schakel.audit.inbox-mjd offset 2", "inbox-mjd", mjd[1].SerializeAsString(),
                     "schakel.audit.inbox-mjd");
  const Report report = verifier.Finish();
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kWrongTopic));
  EXPECT_EQ(report.findings[0].writer, "inbox-ggd");
  EXPECT_EQ(report.findings[0].Text(),
            "inbox-ggd seq 0 (schakel.audit.inbox-mjd offset 1): wrong topic: in "
            "schakel.audit.inbox-mjd, not in its writer's own schakel.audit.inbox-ggd");
}

TEST(AuditChainTest, AnUnknownSchemaIsRefused) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 1);
  entries[0].set_schema_version(2);
  entries[0].set_hash(EntryHash(entries[0]));
  Sign(entries[0], KeyOf("inbox-mjd"));
  EXPECT_THAT(Problems(Verify(entries)), ElementsAre(Problem::kUnknownSchema));
}

TEST(AuditSignatureTest, AnEntryReSignedByAnotherWritersKeyIsNamed) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 4);
  Sign(entries[2], KeyOf("inbox-gemeente"));
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kNotWritersKey));
  EXPECT_EQ(report.findings[0].sequence, 2u);
  EXPECT_EQ(report.findings[0].Text(),
            "inbox-mjd seq 2 (offset 2): not the writer's key: signed with the key of "
            "inbox-gemeente (" +
                Hex(KeyOf("inbox-gemeente").public_key()).substr(0, 16) +
                "…), not with one of inbox-mjd: inbox-gemeente wrote it into inbox-mjd's chain");
  EXPECT_EQ(report.writers[0].signed_by_writer, 3u);
  EXPECT_FALSE(report.writers[0].ok);
}

TEST(AuditSignatureTest, AnEntryAppendedByAnotherWriterIsFoundThoughItLinksWell) {
  // What the hashes alone could not find: inbox-gemeente links a well-formed entry after the head
  // of MJD's chain, signed with the only key it has: its own.
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 3);
  Head head{3, entries.back().hash()};
  entries.push_back(Next("inbox-mjd", head, KeyOf("inbox-gemeente"), "gemeente"));
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kNotWritersKey));
  EXPECT_EQ(report.findings[0].sequence, 3u);
  EXPECT_THAT(report.findings[0].detail, HasSubstr("signed with the key of inbox-gemeente"));
}

TEST(AuditSignatureTest, AnAlteredFieldBreaksTheSignatureEvenWithItsHashRecomputed) {
  // The last entry: no next link to break, only the signature tells.
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 3);
  entries[2].mutable_subject()->set_referral_id("r-other");
  entries[2].set_hash(EntryHash(entries[2]));
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kBadSignature));
  EXPECT_EQ(report.findings[0].sequence, 2u);
  EXPECT_THAT(report.findings[0].detail, HasSubstr("changed and re-hashed after it was signed"));
  // Not re-hashed: a changed entry, as before.
  entries = Chain("inbox-mjd", 3);
  entries[2].mutable_subject()->set_referral_id("r-other");
  EXPECT_THAT(Problems(Verify(entries)), ElementsAre(Problem::kChangedEntry));
  // A changed byte in the signature itself.
  entries = Chain("inbox-mjd", 3);
  std::string signature = entries[1].signature();
  signature[10] = static_cast<char>(signature[10] ^ 1);
  entries[1].set_signature(signature);
  const Report flipped = Verify(entries);
  ASSERT_THAT(Problems(flipped), ElementsAre(Problem::kBadSignature));
  EXPECT_EQ(flipped.findings[0].sequence, 1u);
}

TEST(AuditSignatureTest, AnUnsignedEntryIsFound) {
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 4);
  entries[3].clear_signature();
  entries[3].clear_signing_key();
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kUnsigned));
  EXPECT_EQ(report.findings[0].Text(),
            "inbox-mjd seq 3 (offset 3): unsigned entry: no signature (written before signatures, "
            "or by a writer started without --audit-signing-key)");
  // A key without a signature is a bad signature, not an unsigned entry.
  entries = Chain("inbox-mjd", 4);
  entries[3].clear_signature();
  EXPECT_THAT(Problems(Verify(entries)), ElementsAre(Problem::kBadSignature));
}

TEST(AuditSignatureTest, AChainBegunBeforeSignaturesIsOneFindingPerUnsignedRun) {
  // Entries 0 to 2 from before signatures, 3 and 4 signed, 5 unsigned again.
  std::vector<v1::AuditEntry> entries = Chain("inbox-mjd", 6);
  for (int i : {0, 1, 2, 5}) {
    entries[i].clear_signature();
    entries[i].clear_signing_key();
  }
  const Report report = Verify(entries);
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kUnsigned, Problem::kUnsigned));
  EXPECT_EQ(report.findings[0].sequence, 0u);
  EXPECT_THAT(report.findings[0].detail,
              HasSubstr("no signature, nor on the 2 entries after it, to sequence 2 (offset 2)"));
  EXPECT_EQ(report.findings[1].sequence, 5u);
  EXPECT_EQ(report.writers[0].signed_by_writer, 2u);
}

TEST(AuditSignatureTest, AChainWrittenByAnImpostorWithAKeyOfItsOwnIsFound) {
  // A whole chain rewritten from 0, well linked and signed, but with a self-made key.
  const SigningKey impostor = SigningKey::Generate();
  const Report report = Verify(Chain("inbox-mjd", 3, &impostor));
  ASSERT_THAT(Problems(report), ElementsAre(Problem::kNotWritersKey, Problem::kNotWritersKey,
                                            Problem::kNotWritersKey));
  EXPECT_EQ(report.findings[0].Text(),
            "inbox-mjd seq 0 (offset 0): not the writer's key: signed "
            "with key " +
                Hex(impostor.public_key()).substr(0, 16) +
                "…, which is no trusted writer's key: a key of "
                "someone's own making");
  EXPECT_EQ(report.writers[0].signed_by_writer, 0u);
  EXPECT_THAT(ReportText(report),
              HasSubstr("inbox-mjd: 3 entries checked (0 signed by its key), head sequence 2"));
  EXPECT_THAT(ReportText(report), HasSubstr("3 records, 1 chains: 3 problems"));
  // A writer nobody trusts a key for (an invented one): said so.
  const Report invented = Verify(Chain("inbox-evil", 1, &impostor));
  ASSERT_THAT(Problems(invented), ElementsAre(Problem::kNotWritersKey));
  EXPECT_THAT(invented.findings[0].detail,
              HasSubstr("(and no key is trusted for inbox-evil at all)"));
}

TEST(AuditSignatureTest, WithoutTrustedKeysNoSignerIsKnown) {
  const Report report = Verify(Chain("intake", 2), TrustedKeys());
  EXPECT_THAT(Problems(report), ElementsAre(Problem::kNotWritersKey, Problem::kNotWritersKey));
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
