// The audit writer against the real broker: two processes' writers with one writer id take turns on
// one chain instead of forking it, and a new writer continues a chain where it ends; every entry is
// signed with the writer's key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "libs/audit/entry.h"
#include "libs/audit/signing.h"
#include "libs/audit/verify.h"
#include "libs/audit/writer.h"
#include "libs/kafka/transactional_producer.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/test_network.h"

namespace schakel::audit {
namespace {

// A writer id no other test uses on the shared broker.
std::string UniqueWriter(const std::string& name) {
  return "test-" + name + "-" + std::to_string(::getpid());
}

// Each test writer's own signing key. Its public key goes where the test run's verifiers look
// (TestPki()/audit, as deploy/local/pki makes it for the services): other tests verify every chain
// on the shared broker, these too.
std::shared_ptr<const SigningKey> KeyOf(const std::string& writer) {
  static std::map<std::string, std::shared_ptr<const SigningKey>> keys;
  std::shared_ptr<const SigningKey>& key = keys[writer];
  if (!key) {
    key = std::make_shared<const SigningKey>(SigningKey::Generate());
    const std::filesystem::path dir = testing::TestPki() / "audit";
    std::filesystem::create_directories(dir);
    std::ofstream(dir / (writer + ".pub")) << PublicKeyPem(key->public_key());
  }
  return key;
}

// `writer`'s chain as it is in its topic now (which the writer made: nobody else does here),
// verified against its key.
Report ChainOf(const std::string& bootstrap, const std::string& writer) {
  TrustedKeys trusted;
  EXPECT_TRUE(trusted.Add(writer, KeyOf(writer)->public_key()).ok());
  Verifier verifier(std::move(trusted));
  const absl::Status read =
      kafka::ReadToEnd(bootstrap, AuditTopic(writer), {0}, std::chrono::seconds(60),
                       [&](const kafka::Record& record, bool) {
                         verifier.AddRecord("offset " + std::to_string(record.offset), record.key,
                                            record.value, record.topic);
                       });
  EXPECT_TRUE(read.ok()) << read;
  return verifier.Finish();
}

v1::AuditEntry Entry(const std::string& who, int n) {
  v1::AuditSubject subject;
  subject.add_assignment_ids("a-" + std::to_string(n));
  return NewEntry(OrganisationActor(who), kAssignmentRead, subject, "test");
}

ChainWriterOptions Options(const std::string& writer) {
  ChainWriterOptions options;
  options.bootstrap_servers = testing::TestKafka();
  options.writer = writer;
  options.signing_key = KeyOf(writer);
  options.idle_wait = std::chrono::milliseconds(20);
  options.initial_backoff = std::chrono::milliseconds(50);
  options.max_backoff = std::chrono::milliseconds(500);
  options.fenced_wait = std::chrono::milliseconds(1500);
  return options;
}

TEST(AuditWriterTest, TwoWritersWithOneIdTakeTurnsOnOneChain) {
  const std::string bootstrap = testing::TestKafka();
  const std::string writer = UniqueWriter("turns");
  AuditLog first(Options(writer));
  AuditLog second(Options(writer));
  first.Start();
  second.Start();
  constexpr int kEach = 3;
  std::atomic<int> failed{0};
  auto record = [&](AuditLog& log, const std::string& who) {
    for (int i = 0; i < kEach; ++i) {
      const absl::Status s = log.RecordAndWait(Entry(who, i), std::chrono::seconds(120));
      if (!s.ok()) {
        ++failed;
        ADD_FAILURE() << who << " " << i << ": " << s;
      }
    }
  };
  std::thread a([&] { record(first, "alpha"); });
  std::thread b([&] { record(second, "beta"); });
  a.join();
  b.join();
  first.Stop();
  second.Stop();
  ASSERT_EQ(failed.load(), 0);

  const Report report = ChainOf(bootstrap, writer);
  EXPECT_TRUE(report.ok()) << ReportText(report);
  ASSERT_EQ(report.writers.size(), 1u);
  EXPECT_EQ(report.writers[0].entries, 2u * kEach);
  EXPECT_EQ(report.writers[0].signed_by_writer, 2u * kEach);
  EXPECT_EQ(report.writers[0].last_sequence, 2u * kEach - 1);
  EXPECT_EQ(report.writers[0].actions.at("assignment.read by organisation alpha"),
            static_cast<std::uint64_t>(kEach));
  EXPECT_EQ(report.writers[0].actions.at("assignment.read by organisation beta"),
            static_cast<std::uint64_t>(kEach));
}

TEST(AuditWriterTest, ANewWriterContinuesTheChainWhereItEnds) {
  const std::string bootstrap = testing::TestKafka();
  const std::string writer = UniqueWriter("resume");
  for (int run = 0; run < 3; ++run) {
    AuditLog log(Options(writer));
    log.Start();
    for (int i = 0; i < 2; ++i) {
      const absl::Status s = log.RecordAndWait(Entry("mjd", i), std::chrono::seconds(60));
      ASSERT_TRUE(s.ok()) << s;
    }
    log.Stop();
  }
  const Report report = ChainOf(bootstrap, writer);
  EXPECT_TRUE(report.ok()) << ReportText(report);
  ASSERT_EQ(report.writers.size(), 1u);
  EXPECT_EQ(report.writers[0].entries, 6u);
  EXPECT_EQ(report.writers[0].signed_by_writer, 6u);
  EXPECT_EQ(report.writers[0].last_sequence, 5u);
}

}  // namespace
}  // namespace schakel::audit
