// Re-driving dead letters through ops, on a broker of its own (so every topic's content is exact):
// the real inboxes of two organisations (Terwille and MJD), the key service and the ops service.
//   - A genuine dead letter (a poison record on Terwille's topic, set aside by its inbox) is
//     re-driven by an operator with `schakelctl dlq redrive` (ops' API, the operator's
//     certificate): the original's exact key and value are on Terwille's topic once more, the
//     redrive is in ops' audit chain with the operator's name, and a second redrive is refused,
//     also after ops restarted.
//   - Dead letters Terwille plants on its own dead-letter topic (the only one it may write): one
//     naming MJD's topic, one holding a forged copy of a record on its own topic. Both are
//     refused with the reason, and nothing is published: MJD's topic and inbox, and Terwille's
//     topic, are as they were.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "libs/kafka/client_config.h"
#include "libs/kafka/producer.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/audit.pb.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/local_kafka.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::Eventually;
using schakel::testing::ReadWholeTopic;
using schakel::testing::RunCommand;
using schakel::testing::TestKafkaConfig;
using schakel::testing::TestNetwork;
using schakel::testing::TestPki;

const std::string kSource = SCHAKEL_SOURCE_DIR;
const std::string kBinary = SCHAKEL_BINARY_DIR;
const std::string kNetworkFile = kSource + "/tests/e2e/data/redrive-network.yaml";
const std::string kSchakelctl = kBinary + "/tools/schakelctl/schakelctl";

class RedriveE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() /
           ("schakel-redrive-broker-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    kafka_ = new schakel::testing::LocalKafka(dir_ / "kafka", 1);
    const absl::Status started = kafka_->Start();
    ASSERT_TRUE(started.ok()) << started;
    net_ = new TestNetwork("redrive", kNetworkFile, kafka_->bootstrap());
    ASSERT_TRUE(net_->Prepare());
    net_->AddInboxes();
    net_->AddOps();
    ASSERT_TRUE(net_->StartAll());
  }
  static void TearDownTestSuite() {
    delete net_;
    delete kafka_;
    net_ = nullptr;
    kafka_ = nullptr;
    std::filesystem::remove_all(dir_);
  }
  void SetUp() override {
    ASSERT_NE(net_, nullptr);
    ASSERT_TRUE(net_->Find("ops").process && net_->Find("ops").process->running());
  }

  // Publishes one record as `principal` (its Kafka identity); the broker's answer.
  static absl::Status Publish(const std::string& principal, const std::string& topic,
                              const std::string& key, const std::string& value) {
    absl::StatusOr<kafka::Properties> identity =
        kafka::ReadClientConfigFile(TestKafkaConfig(principal));
    if (!identity.ok()) return identity.status();
    absl::StatusOr<std::unique_ptr<kafka::Producer>> producer =
        kafka::Producer::Create({.bootstrap_servers = net_->kafka(),
                                 .client_id = "redrive-test",
                                 .delivery_timeout = std::chrono::seconds(15),
                                 .extra = *identity});
    if (!producer.ok()) return producer.status();
    std::promise<absl::Status> acknowledged;
    (*producer)->Publish(topic, key, value,
                         [&acknowledged](absl::Status s) { acknowledged.set_value(s); });
    const absl::Status status = acknowledged.get_future().get();
    (*producer)->Close(std::chrono::seconds(5));
    return status;
  }

  // The records of `topic` whose key is `key`.
  static std::vector<kafka::Record> WithKey(const std::string& topic, const std::string& key) {
    std::vector<kafka::Record> out;
    for (kafka::Record& r : ReadWholeTopic(net_->kafka(), topic)) {
      if (r.key == key) out.push_back(std::move(r));
    }
    return out;
  }

  static std::string Place(const kafka::Record& r) {
    return r.topic + "/" + std::to_string(r.partition) + "/" + std::to_string(r.offset);
  }

  // schakelctl as the test network's operator (certificate and Kafka identity "operator").
  static int Schakelctl(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> command = {kSchakelctl, "--pki", TestPki().string(), "--kafka-config",
                                        TestKafkaConfig("operator")};
    command.insert(command.end(), args.begin(), args.end());
    return RunCommand(command, output);
  }
  static int Redrive(const std::string& place, std::string* output) {
    return Schakelctl({"dlq", "redrive", place, "--ops", net_->Find("ops").console_address},
                      output);
  }

  // The ops chain's redrive entries for the dead letter at `place`.
  static std::vector<v1::AuditEntry> Redrives(const std::string& place) {
    std::vector<v1::AuditEntry> out;
    for (const kafka::Record& r : ReadWholeTopic(net_->kafka(), topology::AuditTopic("ops"))) {
      v1::AuditEntry entry;
      if (entry.ParseFromString(r.value) && entry.action() == "deadletter.redriven" &&
          entry.reason() == "redrive " + place) {
        out.push_back(entry);
      }
    }
    return out;
  }

  // What MJD's inbox holds, as MJD sees it.
  static int MjdAssignments() {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "mjd");
    v1::ListAssignmentsRequest request;
    request.set_page_size(500);
    v1::ListAssignmentsResponse response;
    const grpc::Status status = net_->Inbox("mjd")->ListAssignments(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.assignments_size();
  }

  static std::filesystem::path dir_;
  static schakel::testing::LocalKafka* kafka_;
  static TestNetwork* net_;
};

std::filesystem::path RedriveE2eTest::dir_;
schakel::testing::LocalKafka* RedriveE2eTest::kafka_ = nullptr;
TestNetwork* RedriveE2eTest::net_ = nullptr;

TEST_F(RedriveE2eTest, AGenuineDeadLetterIsRedrivenOnceWithTheOriginalBytesAndAudited) {
  const std::string key = "poison-genuine";
  const std::string poison = std::string("\xff\xfe not an InboxEvent", 20);
  const std::string terwille = topology::InboxTopic("terwille");
  ASSERT_TRUE(Publish("admin", terwille, key, poison).ok());

  // Terwille's inbox set it aside on its own dead-letter topic.
  std::vector<kafka::Record> letters;
  ASSERT_TRUE(Eventually(
      [&] {
        letters.clear();
        for (kafka::Record& r :
             ReadWholeTopic(net_->kafka(), topology::DeadLetterTopic("inbox-terwille"))) {
          v1::DeadLetter letter;
          if (letter.ParseFromString(r.value) && letter.key() == key) letters.push_back(r);
        }
        return letters.size() == 1;
      },
      std::chrono::seconds(60)));
  const std::string place = Place(letters[0]);
  const std::vector<kafka::Record> before = ReadWholeTopic(net_->kafka(), terwille);

  // The operator lists it (with the operator's read-only Kafka identity)...
  std::string output;
  ASSERT_EQ(
      Schakelctl({"dlq", "list", "--network", kNetworkFile, "--kafka", net_->kafka()}, &output), 0)
      << output;
  EXPECT_NE(output.find(place), std::string::npos) << output;
  EXPECT_EQ(output.find("not an InboxEvent"), std::string::npos) << "never the payload";

  // ...and re-drives it through ops.
  ASSERT_EQ(Redrive(place, &output), 0) << output;
  EXPECT_NE(output.find("re-driven " + place), std::string::npos) << output;
  const std::vector<kafka::Record> after = ReadWholeTopic(net_->kafka(), terwille);
  ASSERT_EQ(after.size(), before.size() + 1);
  const std::vector<kafka::Record> copies = WithKey(terwille, key);
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_EQ(copies[1].value, poison) << "the original's bytes, once more";
  // Still poison: the inbox sets it aside again (so it read it).
  EXPECT_TRUE(Eventually(
      [&] {
        int count = 0;
        for (const kafka::Record& r :
             ReadWholeTopic(net_->kafka(), topology::DeadLetterTopic("inbox-terwille"))) {
          v1::DeadLetter letter;
          if (letter.ParseFromString(r.value) && letter.key() == key) ++count;
        }
        return count == 2;
      },
      std::chrono::seconds(60)));

  // In ops' audit chain, by the operator the certificate names.
  std::vector<v1::AuditEntry> audited = Redrives(place);
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_EQ(audited[0].writer(), "ops");
  EXPECT_EQ(audited[0].actor().kind(), v1::AuditActor::OPERATOR);
  EXPECT_EQ(audited[0].actor().id(), "console:operator");
  EXPECT_EQ(audited[0].subject().organisation(), "terwille");

  // The list says so.
  ASSERT_EQ(
      Schakelctl({"dlq", "list", "--network", kNetworkFile, "--kafka", net_->kafka()}, &output), 0)
      << output;
  EXPECT_NE(output.find(place), std::string::npos) << output;
  EXPECT_NE(output.find(" by console:operator\n"), std::string::npos) << output;
  EXPECT_NE(output.find("    re-driven "), std::string::npos) << output;

  // Once: a second redrive is refused, naming the first, and publishes nothing...
  EXPECT_EQ(Redrive(place, &output), 1) << output;
  EXPECT_NE(output.find(place + " was re-driven at "), std::string::npos) << output;
  EXPECT_NE(output.find(" by console:operator; a dead letter is re-driven once"), std::string::npos)
      << output;
  // ...also after ops restarted (it finds the first in its audit chain).
  schakel::testing::Service& ops = net_->Find("ops");
  ASSERT_EQ(ops.process->Stop(), 0);
  ASSERT_TRUE(net_->Restart(ops));
  ASSERT_TRUE(Eventually(
      [&] {
        Redrive(place, &output);
        return output.find("re-driven at ") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << output;
  EXPECT_EQ(ReadWholeTopic(net_->kafka(), terwille).size(), after.size());
  EXPECT_EQ(Redrives(place).size(), 1u);
}

TEST_F(RedriveE2eTest, DeadLettersTerwillePlantsAreRefusedAndChangeNothing) {
  const std::string mjd = topology::InboxTopic("mjd");
  const std::string terwille = topology::InboxTopic("terwille");
  const std::string terwille_letters = topology::DeadLetterTopic("inbox-terwille");
  // A record on Terwille's own topic, which the planted letter will claim is something else.
  const std::string key = "genuine-record";
  ASSERT_TRUE(Publish("admin", terwille, key, "what really is there").ok());
  const std::vector<kafka::Record> genuine = WithKey(terwille, key);
  ASSERT_EQ(genuine.size(), 1u);

  // Terwille may not write another consumer's dead-letter topic at all...
  v1::DeadLetter offer;
  offer.set_topic(mjd);
  offer.set_partition(0);
  offer.set_offset(0);
  offer.set_key("r-planted");
  offer.set_value("an offer of a need to MJD, made up by Terwille");
  offer.set_consumer("inbox-mjd");
  offer.set_reason("please redrive");
  EXPECT_FALSE(Publish("inbox-terwille", topology::DeadLetterTopic("router"), "planted",
                       offer.SerializeAsString())
                   .ok());
  EXPECT_FALSE(Publish("inbox-terwille", topology::DeadLetterTopic("inbox-mjd"), "planted",
                       offer.SerializeAsString())
                   .ok());
  // ...only its own, where it plants one naming MJD's topic and one with a forged copy.
  ASSERT_TRUE(
      Publish("inbox-terwille", terwille_letters, "planted-mjd", offer.SerializeAsString()).ok());
  v1::DeadLetter forged;
  forged.set_topic(terwille);
  forged.set_partition(genuine[0].partition);
  forged.set_offset(genuine[0].offset);
  forged.set_key(key);
  forged.set_value("a forged record in place of the genuine one");
  forged.set_consumer("inbox-terwille");
  forged.set_reason("please redrive");
  ASSERT_TRUE(
      Publish("inbox-terwille", terwille_letters, "planted-forged", forged.SerializeAsString())
          .ok());
  const std::string planted_mjd = Place(WithKey(terwille_letters, "planted-mjd").at(0));
  const std::string planted_forged = Place(WithKey(terwille_letters, "planted-forged").at(0));

  const std::size_t mjd_records = ReadWholeTopic(net_->kafka(), mjd).size();
  const std::size_t terwille_records = ReadWholeTopic(net_->kafka(), terwille).size();
  const int mjd_assignments = MjdAssignments();

  std::string output;
  EXPECT_EQ(Redrive(planted_mjd, &output), 1) << output;
  EXPECT_NE(output.find("refused: the dead letter names schakel.inbox.mjd/0/0, but "
                        "schakel.inbox.mjd is not an input of inbox-terwille, whose dead-letter "
                        "topic it is on (inbox-terwille reads schakel.inbox.terwille, "
                        "schakel.clients.erasures); nothing was published"),
            std::string::npos)
      << output;
  EXPECT_EQ(Redrive(planted_forged, &output), 1) << output;
  EXPECT_NE(output.find("refused: the dead letter's value differs from the record's at " +
                        Place(genuine[0]) +
                        " (the dead letter was planted or altered); nothing was published"),
            std::string::npos)
      << output;

  // Nothing was published, and MJD's inbox is as it was.
  EXPECT_EQ(ReadWholeTopic(net_->kafka(), mjd).size(), mjd_records);
  EXPECT_EQ(ReadWholeTopic(net_->kafka(), terwille).size(), terwille_records);
  EXPECT_EQ(WithKey(terwille, key).size(), 1u);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(MjdAssignments(), mjd_assignments);
  EXPECT_TRUE(Redrives(planted_mjd).empty());
  EXPECT_TRUE(Redrives(planted_forged).empty());
}

}  // namespace
}  // namespace schakel
