// The audit writer against the real broker: two processes' writers with one writer id take turns on
// one chain instead of forking it, and a new writer continues a chain where it ends; every entry is
// signed with the writer's key. A log whose queue is in the service's file answers before Kafka has
// the entry, and publishes what a stopped process left there.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "libs/audit/database_log.h"
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

// Appends and waits for its Done.
absl::Status AppendAndWait(Recorder& log, v1::AuditEntry entry) {
  std::promise<absl::Status> promise;
  std::future<absl::Status> result = promise.get_future();
  log.Append(std::move(entry), [&promise](absl::Status s) { promise.set_value(std::move(s)); });
  if (result.wait_for(std::chrono::seconds(30)) != std::future_status::ready) {
    return absl::DeadlineExceededError("no answer in 30 s");
  }
  return result.get();
}

TEST(AuditWriterTest, AnEntryInTheServicesFileIsAnsweredWithoutKafkaAndPublishedAfterARestart) {
  const std::string bootstrap = testing::TestKafka();
  const std::string writer = UniqueWriter("file");
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / (writer + "-queue.db");
  std::filesystem::remove(file);

  // No broker at all: the entries are committed to the file, and that is the answer.
  {
    ChainWriterOptions offline = Options(writer);
    offline.bootstrap_servers = "127.0.0.1:1";
    offline.kafka_timeout = std::chrono::milliseconds(300);
    offline.stop_timeout = std::chrono::milliseconds(300);
    absl::StatusOr<std::unique_ptr<DatabaseLog>> log =
        DatabaseLog::Open(file.string(), offline, /*max_waiting=*/3);
    ASSERT_TRUE(log.ok()) << log.status();
    (*log)->Start();
    for (int i = 0; i < 3; ++i) {
      const absl::Status s = AppendAndWait(**log, Entry("mjd", i));
      ASSERT_TRUE(s.ok()) << s;
    }
    EXPECT_EQ((*log)->waiting(), 3);
    // Full: refused at once, and nothing more is in the file.
    const absl::Status full = AppendAndWait(**log, Entry("mjd", 99));
    EXPECT_EQ(full.code(), absl::StatusCode::kUnavailable) << full;
    EXPECT_EQ((*log)->waiting(), 3);
    (*log)->Stop();
  }
  // The next process on the same file publishes what the first left, then its own entry after it.
  {
    absl::StatusOr<std::unique_ptr<DatabaseLog>> log =
        DatabaseLog::Open(file.string(), Options(writer));
    ASSERT_TRUE(log.ok()) << log.status();
    EXPECT_EQ((*log)->waiting(), 3);
    (*log)->Start();
    const absl::Status s = AppendAndWait(**log, Entry("mjd", 3));
    ASSERT_TRUE(s.ok()) << s;
    for (int i = 0; i < 600 && (*log)->waiting() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ((*log)->waiting(), 0);
    (*log)->Stop();
  }
  const Report report = ChainOf(bootstrap, writer);
  EXPECT_TRUE(report.ok()) << ReportText(report);
  ASSERT_EQ(report.writers.size(), 1u);
  EXPECT_EQ(report.writers[0].entries, 4u);
  EXPECT_EQ(report.writers[0].signed_by_writer, 4u);
  EXPECT_EQ(report.writers[0].last_sequence, 3u);
  // A third process finds the table empty: nothing is published twice.
  absl::StatusOr<std::unique_ptr<DatabaseLog>> again =
      DatabaseLog::Open(file.string(), Options(writer));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->waiting(), 0);
  std::filesystem::remove(file);
}

// A chain that lingers publishes what arrives after a batch only when the linger is over, all of it
// together; its callers were answered from the file long before.
TEST(AuditWriterTest, ALingeringChainHoldsWhatArrivesAfterABatchUntilTheLingerEnds) {
  const std::string writer = UniqueWriter("linger");
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / (writer + "-queue.db");
  std::filesystem::remove(file);
  ChainWriterOptions options = Options(writer);
  options.linger = std::chrono::seconds(5);
  absl::StatusOr<std::unique_ptr<DatabaseLog>> log = DatabaseLog::Open(file.string(), options);
  ASSERT_TRUE(log.ok()) << log.status();
  (*log)->Start();
  const auto published = [&] {
    for (int i = 0; i < 600 && (*log)->waiting() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return (*log)->waiting() == 0;
  };
  ASSERT_TRUE(AppendAndWait(**log, Entry("mjd", 0)).ok());
  ASSERT_TRUE(published());  // the first batch goes at once; the linger starts after it
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(AppendAndWait(**log, Entry("mjd", i)).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ((*log)->waiting(), 3);  // answered, and held back
  std::this_thread::sleep_for(std::chrono::seconds(5));
  for (int i = 0; i < 6000 && (*log)->waiting() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*log)->waiting(), 0);
  (*log)->Stop();
  const Report report = ChainOf(testing::TestKafka(), writer);
  EXPECT_TRUE(report.ok()) << ReportText(report);
  ASSERT_EQ(report.writers.size(), 1u);
  EXPECT_EQ(report.writers[0].entries, 4u);
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace schakel::audit
