// The audit stream end to end, on a broker of its own (the test forges entries into the topic,
// which must not reach other tests): the real intake, router and inboxes record a short scenario,
// an operator's `schakelctl audit verify` finds every chain intact and lists who did what; a
// restarted inbox continues its chain; the broker refuses one writer (the municipality's inbox,
// with its own Kafka identity) writing another's chain's topic, and an entry it links well into
// that chain but can only put in its own topic is named; a forged entry in a chain's topic (by
// someone with the broker's admin rights), and a deleted or changed line in an export, are each
// found and named.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "libs/audit/entry.h"
#include "libs/audit/signing.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"
#include "schakel/v1/audit.pb.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "tests/support/local_kafka.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::RunCommand;
using schakel::testing::TestNetwork;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kSource = SCHAKEL_SOURCE_DIR;
const std::string kBinary = SCHAKEL_BINARY_DIR;
const std::string kNetworkFile = kSource + "/deploy/local/network.yaml";
const std::string kSchakelctl = kBinary + "/tools/schakelctl/schakelctl";

// How many entries verify's output counts for "<action> by <actor>" (0 when it names none).
int Count(const std::string& output, const std::string& what) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex("    " + what + ": ([0-9]+)\n"))) return 0;
  return std::stoi(match[1]);
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class AuditE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("schakel-audit-broker-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    kafka_ = std::make_unique<schakel::testing::LocalKafka>(dir_ / "kafka", 1);
    const absl::Status started = kafka_->Start();
    ASSERT_TRUE(started.ok()) << started;
    net_ = std::make_unique<TestNetwork>("audit", kNetworkFile, kafka_->bootstrap());
    ASSERT_TRUE(net_->Prepare());
    net_->AddInboxes();
    net_->AddRouter("audit-1");
    net_->AddIntake();
    ASSERT_TRUE(net_->StartAll());
  }

  void TearDown() override {
    net_.reset();
    kafka_.reset();
    std::filesystem::remove_all(dir_);
  }

  // `schakelctl audit verify [args]`: its exit status, and its output in *output.
  int Verify(std::string* output, const std::vector<std::string>& args = {}) {
    // The writers' public keys, as deploy/local/pki made them for this test run's services.
    std::vector<std::string> argv = {kSchakelctl,
                                     "audit",
                                     "verify",
                                     "--kafka",
                                     kafka_->bootstrap(),
                                     "--audit-keys",
                                     (schakel::testing::TestPki() / "audit").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, output);
  }

  // Waits until verify's output holds every one of `wanted` (the writers publish in the
  // background).
  ::testing::AssertionResult VerifyShows(const std::vector<std::string>& wanted,
                                         std::string* output) {
    const bool shown = schakel::testing::Eventually(
        [&] {
          Verify(output);
          for (const std::string& w : wanted) {
            if (output->find(w) == std::string::npos) return false;
          }
          return true;
        },
        std::chrono::seconds(60));
    if (shown) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "verify did not show all of it:\n" << *output;
  }

  grpc::Status Get(const std::string& id) {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "mjd");
    v1::GetAssignmentRequest request;
    request.set_assignment_id(id);
    v1::Assignment assignment;
    return net_->Inbox("mjd")->GetAssignment(&context, request, &assignment);
  }

  std::filesystem::path dir_;
  std::unique_ptr<schakel::testing::LocalKafka> kafka_;
  std::unique_ptr<TestNetwork> net_;
};

TEST_F(AuditE2eTest, ReadsAndChangesAreChainedAndTamperingIsFound) {
  // The scenario: Terwille submits; MJD lists, reads, watches and accepts its need.
  v1::SubmitReferralResponse submitted;
  const grpc::Status status =
      net_->Submit(schakel::testing::SeedReferral(), "terwille", &submitted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::string debt = submitted.assignment_ids(0);  // MJD's
  std::optional<v1::Assignment> received =
      net_->WaitForStatus("mjd", debt, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(received.has_value());
  ASSERT_TRUE(Get(debt).ok());
  {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "mjd");
    v1::ListAssignmentsRequest request;
    v1::ListAssignmentsResponse response;
    ASSERT_TRUE(net_->Inbox("mjd")->ListAssignments(&context, request, &response).ok());
  }
  {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "mjd");
    auto reader = net_->Inbox("mjd")->WatchAssignments(&context, v1::WatchAssignmentsRequest());
    v1::AssignmentChange change;
    ASSERT_TRUE(reader->Read(&change));
    context.TryCancel();
    while (reader->Read(&change)) {
    }
    reader->Finish().IgnoreError();
  }
  v1::Assignment accepted;
  ASSERT_TRUE(net_->Accept("mjd", *received, &accepted).ok());
  // Someone else's inbox refuses, and nothing is recorded for a refusal.
  {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "gemeente");
    v1::GetAssignmentRequest request;
    request.set_assignment_id(debt);
    v1::Assignment assignment;
    EXPECT_EQ(net_->Inbox("mjd")->GetAssignment(&context, request, &assignment).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }

  // One command: every chain intact, with who did what.
  std::string output;
  // (Waiting for the assignment read it too, once it was there.)
  ASSERT_TRUE(VerifyShows(
      {"inbox-mjd: ", "assignment.read by organisation mjd: ",
       "assignment.list by organisation mjd: 1",
       "assignment.watch by organisation mjd: ", "status.changed by organisation mjd: 2",
       "intake: ", "referral.submitted by organisation terwille: 1",
       "inbox-gemeente: ", "inbox-leger-des-heils: "},
      &output));
  EXPECT_EQ(Verify(&output), 0) << output;
  EXPECT_THAT(output, HasSubstr("chains: OK"));
  EXPECT_THAT(output, Not(HasSubstr("PROBLEM")));
  EXPECT_THAT(output, Not(HasSubstr("read by organisation gemeente")));  // its refused read

  const int reads = Count(output, "assignment.read by organisation mjd");
  EXPECT_GE(reads, 2);

  // A read answered just before a crash is not lost, and the restarted inbox continues its chain
  // where it ends.
  schakel::testing::Service& inbox = net_->Find("inbox-mjd");
  ASSERT_TRUE(Get(debt).ok());
  EXPECT_EQ(inbox.process->Kill(SIGKILL), 128 + SIGKILL);
  ASSERT_TRUE(net_->Restart(inbox));
  ASSERT_TRUE(Get(debt).ok());
  ASSERT_TRUE(VerifyShows(
      {"assignment.read by organisation mjd: " + std::to_string(reads + 2) + "\n"}, &output));
  EXPECT_EQ(Verify(&output), 0) << output;

  // An archived copy verifies; a deleted line or a changed byte in it does not.
  const std::filesystem::path exported = dir_ / "audit.jsonl";
  ASSERT_EQ(RunCommand({"/bin/sh", "-c",
                        kSchakelctl + " audit export --kafka " + kafka_->bootstrap() + " > " +
                            exported.string()},
                       &output),
            0)
      << output;
  EXPECT_EQ(Verify(&output, {"--file", exported.string()}), 0) << output;
  std::vector<std::string> lines;
  {
    std::istringstream in(ReadFile(exported));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
  }
  // The second entry of MJD's inbox chain.
  std::size_t second = lines.size();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("\"writer\":\"inbox-mjd\"") != std::string::npos &&
        lines[i].find("\"sequence\":\"1\"") != std::string::npos) {
      second = i;
    }
  }
  ASSERT_LT(second, lines.size()) << ReadFile(exported);
  auto write = [&](const std::filesystem::path& path, const std::vector<std::string>& content) {
    std::ofstream out(path);
    for (const std::string& line : content) out << line << "\n";
  };
  std::vector<std::string> without = lines;
  without.erase(without.begin() + static_cast<std::ptrdiff_t>(second));
  write(dir_ / "deleted.jsonl", without);
  EXPECT_EQ(Verify(&output, {"--file", (dir_ / "deleted.jsonl").string()}), 1) << output;
  EXPECT_THAT(output, HasSubstr("inbox-mjd seq 2 (line " + std::to_string(second + 1) +
                                "): missing entries: sequence 1 is missing"));
  std::vector<std::string> changed = lines;
  const std::size_t at = changed[second].find("\"assignment.");
  ASSERT_NE(at, std::string::npos) << changed[second];
  changed[second][at + 1] = 'A';  // "Assignment.…": one byte
  write(dir_ / "changed.jsonl", changed);
  EXPECT_EQ(Verify(&output, {"--file", (dir_ / "changed.jsonl").string()}), 1) << output;
  EXPECT_THAT(output, HasSubstr("inbox-mjd seq 1 (line " + std::to_string(second + 1) +
                                "): changed entry"));

  // The municipality's inbox, compromised, appends a read of MJD's to MJD's chain, with its own
  // Kafka identity and the only signing key it has, its own. The broker refuses it MJD's topic;
  // the entry, well linked after MJD's head, can only go into the municipality's own topic, where
  // verify names it and leaves MJD's chain intact.
  {
    v1::AuditEntry head;
    const absl::Status read_head =
        kafka::ReadToEnd(kafka_->bootstrap(), audit::AuditTopic("inbox-mjd"), {0},
                         std::chrono::seconds(30), [&](const kafka::Record& record, bool) {
                           v1::AuditEntry entry;
                           if (entry.ParseFromString(record.value) &&
                               (head.writer().empty() || entry.sequence() > head.sequence())) {
                             head = entry;
                           }
                         });
    ASSERT_TRUE(read_head.ok()) << read_head;
    ASSERT_EQ(head.writer(), "inbox-mjd");
    ASSERT_EQ(Verify(&output), 0) << output;  // intact up to here
    audit::Head after_head{head.sequence() + 1, head.hash()};
    v1::AuditEntry appended = audit::NewEntry(
        audit::OrganisationActor("mjd"), audit::kAssignmentRead,
        audit::SubjectOf({.referral_id = submitted.referral_id(), .assignment_ids = {debt}}),
        "GetAssignment");
    audit::Link(appended, "inbox-mjd", after_head);
    absl::StatusOr<audit::SigningKey> gemeente_key = audit::SigningKey::ReadFile(
        (schakel::testing::TestPki() / "audit" / "inbox-gemeente.key").string());
    ASSERT_TRUE(gemeente_key.ok()) << gemeente_key.status();
    audit::Sign(appended, *gemeente_key);
    absl::StatusOr<kafka::Properties> gemeente_kafka =
        kafka::ReadClientConfigFile(schakel::testing::TestKafkaConfig("inbox-gemeente"));
    ASSERT_TRUE(gemeente_kafka.ok()) << gemeente_kafka.status();
    absl::StatusOr<std::unique_ptr<kafka::Producer>> compromised =
        kafka::Producer::Create({.bootstrap_servers = kafka_->bootstrap(),
                                 .client_id = "inbox-gemeente",
                                 .delivery_timeout = std::chrono::seconds(15),
                                 .extra = *gemeente_kafka});
    ASSERT_TRUE(compromised.ok()) << compromised.status();
    auto publish = [&](const std::string& topic) {
      std::promise<absl::Status> acknowledged;
      (*compromised)
          ->Publish(topic, "inbox-mjd", appended.SerializeAsString(),
                    [&acknowledged](absl::Status s) { acknowledged.set_value(std::move(s)); });
      return acknowledged.get_future().get();
    };
    const absl::Status into_mjds = publish(audit::AuditTopic("inbox-mjd"));
    EXPECT_FALSE(into_mjds.ok()) << "the broker let the municipality's inbox write MJD's chain";
    EXPECT_THAT(std::string(into_mjds.message()), HasSubstr("uthoriz"));
    const absl::Status into_own = publish(audit::AuditTopic("inbox-gemeente"));
    (*compromised)->Close(std::chrono::seconds(5));
    ASSERT_TRUE(into_own.ok()) << "the broker refused the municipality's own topic: " << into_own;

    EXPECT_EQ(Verify(&output), 1) << output;
    EXPECT_THAT(output, HasSubstr("PROBLEM inbox-mjd seq " + std::to_string(appended.sequence()) +
                                  " (schakel.audit.inbox-gemeente offset "));
    EXPECT_THAT(output, HasSubstr("): wrong topic: in schakel.audit.inbox-gemeente, not in its "
                                  "writer's own schakel.audit.inbox-mjd"));
    // MJD's chain is what is in MJD's topic: intact, every entry signed by MJD's key.
    EXPECT_THAT(output,
                HasSubstr("inbox-mjd: " + std::to_string(head.sequence() + 1) +
                          " entries checked (" + std::to_string(head.sequence() + 1) +
                          " signed by its key), head sequence " + std::to_string(head.sequence())));
  }

  // A rogue producer with the broker's admin rights copies MJD's read, names the municipality as
  // the reader, recomputes the hash, and produces it into MJD's topic: verify names it.
  v1::AuditEntry forged;
  std::int64_t original_offset = -1;
  const absl::Status read =
      kafka::ReadToEnd(kafka_->bootstrap(), audit::AuditTopic("inbox-mjd"), {0},
                       std::chrono::seconds(30), [&](const kafka::Record& record, bool) {
                         v1::AuditEntry entry;
                         if (entry.ParseFromString(record.value) && entry.writer() == "inbox-mjd" &&
                             entry.action() == audit::kAssignmentRead && original_offset < 0) {
                           forged = entry;
                           original_offset = record.offset;
                         }
                       });
  ASSERT_TRUE(read.ok()) << read;
  ASSERT_GE(original_offset, 0);
  forged.mutable_actor()->set_id("gemeente");
  forged.set_hash(audit::EntryHash(forged));
  {
    absl::StatusOr<std::unique_ptr<kafka::Producer>> rogue =
        kafka::Producer::Create({.bootstrap_servers = kafka_->bootstrap(),
                                 .client_id = "rogue",
                                 .delivery_timeout = std::chrono::seconds(15),
                                 .extra = {}});
    ASSERT_TRUE(rogue.ok()) << rogue.status();
    std::promise<absl::Status> acknowledged;
    (*rogue)->Publish(audit::AuditTopic("inbox-mjd"), "inbox-mjd", forged.SerializeAsString(),
                      [&acknowledged](absl::Status s) { acknowledged.set_value(std::move(s)); });
    ASSERT_TRUE(acknowledged.get_future().get().ok());
    (*rogue)->Close(std::chrono::seconds(5));
  }
  EXPECT_EQ(Verify(&output), 1) << output;
  EXPECT_THAT(output, HasSubstr("inbox-mjd: "));
  EXPECT_THAT(output, HasSubstr("BROKEN"));
  EXPECT_THAT(output, HasSubstr("inbox-mjd seq " + std::to_string(forged.sequence())));
  EXPECT_THAT(output, HasSubstr("inserted entry: sequence " + std::to_string(forged.sequence()) +
                                " is there already (schakel.audit.inbox-mjd offset " +
                                std::to_string(original_offset) +
                                "); this one differs: organisation gemeente"));
  // Its signature was MJD's, over the hash before the change.
  EXPECT_THAT(output, HasSubstr("): bad signature: its signature does not verify with the key it "
                                "names (" +
                                audit::Hex(forged.signing_key()).substr(0, 16) + "…)"));
  EXPECT_THAT(output, HasSubstr("intake: "));  // the other chains are still checked
}

}  // namespace
}  // namespace schakel
