// The broker itself keeps each organisation to its own: with the Kafka identity of organisation A
// (its inbox service's certificate, or A's own as a partner would use it), reading B's topic,
// joining B's consumer group or writing a topic A may not write is refused by the broker with the
// specific authorization error, while A's own topic and group work. Runs against the broker of
// tests/run (mTLS, StandardAuthorizer, deny unless allowed) with the ACLs of `schakelctl access`.
#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "libs/audit/entry.h"
#include "libs/audit/writer.h"
#include "libs/kafka/admin.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using testing::RunCommand;
using testing::TestKafka;
using testing::TestKafkaConfig;
using testing::TestPki;

const std::string kBinary = SCHAKEL_BINARY_DIR;

// Two organisations of their own (unique per run), with their topics and the network's ACLs.
class KafkaAccessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string suffix = std::to_string(::getpid());
    a_ = "acla" + suffix;
    b_ = "aclb" + suffix;
    dir_ = std::filesystem::temp_directory_path() / ("schakel-acl-" + suffix);
    std::filesystem::create_directories(dir_);
    network_file_ = (dir_ / "network.yaml").string();
    std::ofstream(network_file_)
        << "version: 1\n"
        // 3 partitions like every test network: the topics all networks share (submitted, status,
        // ...) are made by whichever test runs first, and the others read them with that count.
        << "topics: {partitions: 3, replication_factor: 1}\n"
        << "sla: {urgent: 4h, normal: 3d}\n"
        << "needs:\n  - {id: housing, name: Housing}\n"
        << "regions:\n  - {id: stad, name: City}\n"
        << "languages: [nl]\n"
        << "organisations:\n"
        << "  - {id: " << a_ << ", name: A, needs: [housing], regions: [stad], languages: [nl]}\n"
        << "  - {id: " << b_ << ", name: B, needs: [housing], regions: [stad], languages: [nl]}\n";
    // Certificates (deploy/local/pki), then topics and ACLs as the admin (schakelctl).
    ASSERT_TRUE(testing::EnsureTestPki(network_file_));
    const std::string schakelctl = kBinary + "/tools/schakelctl/schakelctl";
    std::string output;
    ASSERT_EQ(RunCommand({schakelctl, "--kafka-config", TestKafkaConfig("admin"), "topics",
                          "create", "--network", network_file_, "--kafka", TestKafka()},
                         &output),
              0)
        << output;
    ASSERT_EQ(RunCommand({schakelctl, "--kafka-config", TestKafkaConfig("admin"), "access", "apply",
                          "--network", network_file_, "--kafka", TestKafka(), "--kafka-jars",
                          std::string(SCHAKEL_SOURCE_DIR) + "/.cache/kafka/libs", "--java-config",
                          (TestPki() / "kafka" / "admin.java.properties").string()},
                         &output),
              0)
        << output;
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  // A librdkafka configuration with the identity in `properties_file`.
  static std::unique_ptr<RdKafka::Conf> ConfAs(const std::string& properties_file) {
    absl::StatusOr<kafka::Properties> identity = kafka::ReadClientConfigFile(properties_file);
    EXPECT_TRUE(identity.ok()) << identity.status();
    std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
    std::string error;
    kafka::Properties props = identity.ok() ? *identity : kafka::Properties{};
    props["bootstrap.servers"] = TestKafka();
    props["log_level"] = "0";  // the refusals are what this test expects
    for (const auto& [key, value] : props) {
      EXPECT_EQ(conf->set(key, value, error), RdKafka::Conf::CONF_OK) << key << ": " << error;
    }
    return conf;
  }

  // The first error a consumer in `group` subscribed to `topic` gets (ERR_NO_ERROR when it reads
  // a record, ERR__TIMED_OUT when nothing happens in time).
  static RdKafka::ErrorCode Consume(const std::string& identity, const std::string& group,
                                    const std::string& topic) {
    std::unique_ptr<RdKafka::Conf> conf = ConfAs(identity);
    std::string error;
    conf->set("group.id", group, error);
    conf->set("auto.offset.reset", "earliest", error);
    conf->set("enable.auto.commit", "false", error);
    std::unique_ptr<RdKafka::KafkaConsumer> consumer(
        RdKafka::KafkaConsumer::create(conf.get(), error));
    if (!consumer) {
      ADD_FAILURE() << error;
      return RdKafka::ERR__FAIL;
    }
    consumer->subscribe({topic});
    RdKafka::ErrorCode result = RdKafka::ERR__TIMED_OUT;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < give_up) {
      std::unique_ptr<RdKafka::Message> m(consumer->consume(200));
      if (m->err() == RdKafka::ERR__TIMED_OUT || m->err() == RdKafka::ERR__PARTITION_EOF) continue;
      result = m->err();
      break;
    }
    consumer->close();
    return result;
  }

  // The delivery result of one record to `topic`. The broker is shared with the other tests, whose
  // consumers read every record of the shared topics: on the status topic and an organisation's own
  // topic it is a well-formed event of a made-up referral (a status change nobody waits for),
  // elsewhere a marker.
  static RdKafka::ErrorCode Produce(const std::string& identity, const std::string& topic) {
    std::string value = "acl-test";
    const bool from_organisation = !topology::FromTopicOrganisation(topic).empty();
    if (from_organisation || topic == topology::kStatusTopic) {
      // A well-formed change (of an assignment nobody offered), as an organisation's inbox sends
      // it (or, on the status topic, as the old inboxes did).
      v1::AssignmentStatusChanged event;
      event.mutable_meta()->set_schema_version(1);
      event.mutable_meta()->set_event_id("e-acl-test-" + std::to_string(::getpid()));
      event.mutable_meta()->set_referral_id("r-acl-test-" + std::to_string(::getpid()));
      event.mutable_meta()->set_assignment_id("a-acl-test-" + std::to_string(::getpid()) + "-0");
      event.set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
      event.set_to_status(v1::ASSIGNMENT_STATUS_RECEIVED);
      event.set_version(2);
      v1::OrganisationEvent sent;
      *sent.mutable_status_changed() = event;
      value = from_organisation ? sent.SerializeAsString() : event.SerializeAsString();
    }
    return Produce(identity, topic, "", value);
  }

  // The delivery result of one record (`key` empty: none).
  static RdKafka::ErrorCode Produce(const std::string& identity, const std::string& topic,
                                    const std::string& key, const std::string& value) {
    struct Report : RdKafka::DeliveryReportCb {
      RdKafka::ErrorCode err = RdKafka::ERR__TIMED_OUT;
      bool done = false;
      void dr_cb(RdKafka::Message& m) override {
        err = m.err();
        done = true;
      }
    } report;
    std::unique_ptr<RdKafka::Conf> conf = ConfAs(identity);
    std::string error;
    conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(&report), error);
    conf->set("message.timeout.ms", "20000", error);
    std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
    if (!producer) {
      ADD_FAILURE() << error;
      return RdKafka::ERR__FAIL;
    }
    const RdKafka::ErrorCode queued =
        producer->produce(topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
                          const_cast<char*>(value.data()), value.size(),
                          key.empty() ? nullptr : key.data(), key.size(), 0, nullptr);
    if (queued != RdKafka::ERR_NO_ERROR) return queued;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!report.done && std::chrono::steady_clock::now() < give_up) producer->poll(100);
    return report.err;
  }

  // The error init_transactions gets as `identity` with transactional id `id` (ERR_NO_ERROR when
  // the broker lets it own that id). Nothing is produced.
  static RdKafka::ErrorCode InitTransactions(const std::string& identity, const std::string& id) {
    std::unique_ptr<RdKafka::Conf> conf = ConfAs(identity);
    std::string error;
    EXPECT_EQ(conf->set("transactional.id", id, error), RdKafka::Conf::CONF_OK) << error;
    std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
    if (!producer) {
      ADD_FAILURE() << error;
      return RdKafka::ERR__FAIL;
    }
    std::unique_ptr<RdKafka::Error> failed(producer->init_transactions(30000));
    return failed ? failed->code() : RdKafka::ERR_NO_ERROR;
  }

  static std::string Inbox(const std::string& org) { return topology::InboxTopic(org); }
  static std::string Group(const std::string& org) { return Inbox(org) + ".acl-test"; }
  // The inbox service's identity, and the partner's own certificate (CN
  // <org>.organisation.schakel).
  static std::string ServiceIdentity(const std::string& org) {
    return TestKafkaConfig("inbox-" + org);
  }
  static std::string PartnerIdentity(const std::string& org) {
    const std::string file = (dir_ / (org + "-partner.properties")).string();
    const std::filesystem::path base = TestPki() / "organisations" / org;
    std::ofstream(file) << "security.protocol=SSL\n"
                        << "ssl.ca.location=" << (TestPki() / "ca.pem").string() << "\n"
                        << "ssl.certificate.location=" << base.string() << ".pem\n"
                        << "ssl.key.location=" << base.string() << ".key\n";
    return file;
  }

  static std::string a_, b_, network_file_;
  static std::filesystem::path dir_;
};

std::string KafkaAccessTest::a_;
std::string KafkaAccessTest::b_;
std::string KafkaAccessTest::network_file_;
std::filesystem::path KafkaAccessTest::dir_;

TEST_F(KafkaAccessTest, OwnTopicAndGroupWork) {
  EXPECT_EQ(Produce(ServiceIdentity(a_), Inbox(a_)), RdKafka::ERR_NO_ERROR);
  EXPECT_EQ(Consume(ServiceIdentity(a_), Group(a_), Inbox(a_)), RdKafka::ERR_NO_ERROR);
  EXPECT_EQ(Produce(ServiceIdentity(a_), topology::FromTopic(a_)), RdKafka::ERR_NO_ERROR);
}

TEST_F(KafkaAccessTest, ReadingAnotherOrganisationsTopicIsRefused) {
  // B's topic has a record, so a reader that were allowed would get it.
  ASSERT_EQ(Produce(ServiceIdentity(b_), Inbox(b_)), RdKafka::ERR_NO_ERROR);
  EXPECT_EQ(Consume(ServiceIdentity(a_), Group(a_), Inbox(b_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
}

TEST_F(KafkaAccessTest, JoiningAnotherOrganisationsGroupIsRefused) {
  EXPECT_EQ(Consume(ServiceIdentity(a_), Group(b_), Inbox(a_)),
            RdKafka::ERR_GROUP_AUTHORIZATION_FAILED);
}

TEST_F(KafkaAccessTest, WritingWhatItMayNotWriteIsRefused) {
  EXPECT_EQ(Produce(ServiceIdentity(a_), std::string(topology::kSubmittedTopic)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(ServiceIdentity(a_), Inbox(b_)), RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  // Another organisation's own outgoing topic, where A would speak in B's name, and the facts
  // only the router writes.
  EXPECT_EQ(Produce(ServiceIdentity(a_), topology::FromTopic(b_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(PartnerIdentity(a_), topology::FromTopic(b_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(ServiceIdentity(a_), std::string(topology::kStatusTopic)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(TestKafkaConfig("operator"), std::string(topology::kStatusTopic)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
}

// A dead letter's topic proves which consumer set it aside: an organisation writes its own
// dead-letter topic and no other (not the router's, which would make ops re-drive what it names
// as the router's input, nor another organisation's).
TEST_F(KafkaAccessTest, EachConsumerWritesOnlyItsOwnDeadLetterTopic) {
  EXPECT_EQ(Produce(ServiceIdentity(a_), topology::DeadLetterTopic("inbox-" + a_)),
            RdKafka::ERR_NO_ERROR);
  for (const std::string& identity : {ServiceIdentity(a_), PartnerIdentity(a_)}) {
    SCOPED_TRACE(identity);
    EXPECT_EQ(Produce(identity, topology::DeadLetterTopic("router")),
              RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
    EXPECT_EQ(Produce(identity, topology::DeadLetterTopic("intake")),
              RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
    EXPECT_EQ(Produce(identity, topology::DeadLetterTopic("inbox-" + b_)),
              RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  }
  // Nor does the router write an inbox's.
  EXPECT_EQ(Produce(TestKafkaConfig("router"), topology::DeadLetterTopic("inbox-" + a_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
}

// Operators' Kafka rights are read-only: reassignments and redrives go through ops' API.
TEST_F(KafkaAccessTest, TheOperatorWritesNoTopic) {
  const std::string op = TestKafkaConfig("operator");
  for (const std::string& topic :
       {Inbox(a_), std::string(topology::kSubmittedTopic), std::string(topology::kReassignTopic),
        std::string(topology::kStatusTopic), std::string(topology::kCancellationsTopic),
        std::string(topology::kUnroutableTopic), topology::DeadLetterTopic("router"),
        topology::AuditTopic("ops")}) {
    SCOPED_TRACE(topic);
    EXPECT_EQ(Produce(op, topic), RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  }
  // What it reads, it still reads: every consumer's dead letters (B's has a record now).
  ASSERT_EQ(Produce(ServiceIdentity(b_), topology::DeadLetterTopic("inbox-" + b_)),
            RdKafka::ERR_NO_ERROR);
  absl::StatusOr<kafka::Properties> identity = kafka::ReadClientConfigFile(op);
  ASSERT_TRUE(identity.ok()) << identity.status();
  int letters = 0;
  const absl::Status read = kafka::ReadToEnd(
      TestKafka(), topology::DeadLetterTopic("inbox-" + b_), {0, 1, 2}, std::chrono::seconds(30),
      [&](const kafka::Record&, bool) { ++letters; }, *identity);
  EXPECT_TRUE(read.ok()) << read;
  EXPECT_GE(letters, 1);
}

// Issue 18: the broker proves who connected, not who wrote a record, so each organisation's load
// reports are on a topic of its own that nobody else may write: the topic tells the router whose
// report it is. A (with its inbox's identity or its own certificate) cannot put a report on B's
// load topic, and B's topic holds B's own report only, before and after.
TEST_F(KafkaAccessTest, OnlyAnOrganisationWritesItsOwnLoadTopic) {
  auto report = [](const std::string& organisation, std::int64_t open) {
    v1::InboxLoad load;
    load.set_organisation(organisation);
    load.set_open(open);
    return load.SerializeAsString();
  };
  // What B's load topic holds: "<key>:<organisation>:<open>" per record.
  auto on_b_topic = [] {
    std::vector<std::string> seen;
    for (const kafka::Record& r : testing::ReadWholeTopic(TestKafka(), topology::LoadTopic(b_))) {
      v1::InboxLoad load;
      seen.push_back(load.ParseFromString(r.value)
                         ? r.key + ":" + load.organisation() + ":" + std::to_string(load.open())
                         : r.key + ":unreadable");
    }
    return seen;
  };
  ASSERT_EQ(Produce(ServiceIdentity(b_), topology::LoadTopic(b_), b_, report(b_, 2)),
            RdKafka::ERR_NO_ERROR);
  const std::vector<std::string> before = on_b_topic();
  ASSERT_EQ(before, std::vector<std::string>{b_ + ":" + b_ + ":2"});

  EXPECT_EQ(Produce(ServiceIdentity(a_), topology::LoadTopic(b_), b_, report(b_, 1 << 30)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(PartnerIdentity(a_), topology::LoadTopic(b_), b_, report(b_, 1 << 30)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  // Nor may the services that read it (or the operators) write it.
  for (const char* reader : {"router", "ops", "operator"}) {
    EXPECT_EQ(Produce(TestKafkaConfig(reader), topology::LoadTopic(b_), b_, report(b_, 1 << 30)),
              RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED)
        << reader;
  }
  EXPECT_EQ(on_b_topic(), before);
  // A's own load topic is A's to write (what it claims there, the readers check: load_view_test).
  EXPECT_EQ(Produce(ServiceIdentity(a_), topology::LoadTopic(a_), a_, report(a_, 1)),
            RdKafka::ERR_NO_ERROR);
  // The shared load topic of before is not created any more.
  absl::StatusOr<std::vector<std::string>> shared =
      kafka::ListTopics(TestKafka(), "schakel.inbox.load", std::chrono::seconds(20));
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(std::count(shared->begin(), shared->end(), "schakel.inbox.load"), 0);
}

TEST_F(KafkaAccessTest, APartnersOwnCertificateHasTheSameRights) {
  ASSERT_EQ(Produce(ServiceIdentity(a_), Inbox(a_)), RdKafka::ERR_NO_ERROR);
  EXPECT_EQ(Consume(PartnerIdentity(a_), Group(a_) + ".partner", Inbox(a_)), RdKafka::ERR_NO_ERROR);
  EXPECT_EQ(Consume(PartnerIdentity(a_), Group(a_) + ".partner", Inbox(b_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Consume(PartnerIdentity(a_), Group(b_), Inbox(a_)),
            RdKafka::ERR_GROUP_AUTHORIZATION_FAILED);
}

TEST_F(KafkaAccessTest, EachAuditWriterOwnsOnlyItsOwnChain) {
  // An inbox keeps its chain "inbox-<org>" (the transactional id fences any other writer of it)...
  EXPECT_EQ(InitTransactions(ServiceIdentity(a_), "schakel-audit-inbox-" + a_),
            RdKafka::ERR_NO_ERROR);
  // ...and cannot take another organisation's chain or a service's.
  EXPECT_EQ(InitTransactions(ServiceIdentity(a_), "schakel-audit-inbox-" + b_),
            RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  EXPECT_EQ(InitTransactions(ServiceIdentity(a_), "schakel-audit-keys"),
            RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  // The router records nothing: no chain, and no write to the audit topic (refused, so nothing
  // lands on the shared topic that other tests verify).
  EXPECT_EQ(InitTransactions(TestKafkaConfig("router"), "schakel-audit-router"),
            RdKafka::ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(TestKafkaConfig("router"), topology::AuditTopic("inbox-" + a_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
}

// Each chain has a topic of its own: an inbox writes and reads its own chain (through the audit
// writer the service runs, with the service's Kafka identity and audit key), but not another's,
// which would tell it which other organisations serve a client it serves (key.granted).
TEST_F(KafkaAccessTest, AnInboxKeepsItsOwnAuditTopicAndReadsNoOther) {
  for (const std::string& org : {a_, b_}) {
    SCOPED_TRACE(org);
    const std::string writer = "inbox-" + org;
    absl::StatusOr<kafka::Properties> identity = kafka::ReadClientConfigFile(ServiceIdentity(org));
    ASSERT_TRUE(identity.ok()) << identity.status();
    absl::StatusOr<std::shared_ptr<const audit::SigningKey>> key =
        audit::LoadSigningKey((TestPki() / "audit" / (writer + ".key")).string(), writer);
    ASSERT_TRUE(key.ok()) << key.status();
    audit::ChainWriterOptions options;
    options.bootstrap_servers = TestKafka();
    options.writer = writer;
    options.extra = *identity;
    options.signing_key = *key;
    audit::AuditLog log(options);
    log.Start();
    const absl::Status recorded = log.RecordAndWait(
        audit::NewEntry(audit::OrganisationActor(org), audit::kAssignmentList, {}, "acl test"),
        std::chrono::seconds(60));
    ASSERT_TRUE(recorded.ok()) << recorded;
    log.Stop();
  }
  // A's own chain: readable with A's identity (it has the entry just written)...
  EXPECT_EQ(Consume(ServiceIdentity(a_), Group(a_) + ".audit", topology::AuditTopic("inbox-" + a_)),
            RdKafka::ERR_NO_ERROR);
  // ...B's, and the key service's, are not, though B's has an entry too; nor may A write B's.
  EXPECT_EQ(Consume(ServiceIdentity(a_), Group(a_) + ".audit", topology::AuditTopic("inbox-" + b_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Consume(ServiceIdentity(a_), Group(a_) + ".audit", topology::AuditTopic("keys")),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(ServiceIdentity(a_), topology::AuditTopic("inbox-" + b_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  // A partner given A's own certificate gets no more.
  EXPECT_EQ(Consume(PartnerIdentity(a_), Group(a_) + ".partner-audit",
                    topology::AuditTopic("inbox-" + b_)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
}

// Upgrading from the version where every inbox wrote the shared status and forwarding topics: the
// old rights stay on a running broker (ACLs only add up) until `access apply --exact` removes
// them, and the old forwarding topic goes only once the router has read it to the end.
TEST_F(KafkaAccessTest, AnUpgradeRemovesTheOldRightsAndRetiresTheDrainedOldTopic) {
  const std::string schakelctl = kBinary + "/tools/schakelctl/schakelctl";
  const std::string forwarding = "schakel.assignments.forwarding";
  // The network as the old version left it: A may write the facts and the forwarding topic, and a
  // forward request of A's waits there for the router.
  ASSERT_TRUE(kafka::EnsureTopics(TestKafka(), {{forwarding, 3, 1}}, std::chrono::seconds(15),
                                  *kafka::ReadClientConfigFile(TestKafkaConfig("admin")))
                  .ok());
  const std::string principal = "User:inbox-" + a_;
  ASSERT_TRUE(
      kafka::CreateAcls(TestKafka(),
                        {{principal, "topic", std::string(topology::kStatusTopic), false, "Write"},
                         {principal, "topic", forwarding, false, "Write"}},
                        std::chrono::seconds(15))
          .ok());
  ASSERT_EQ(Produce(ServiceIdentity(a_), forwarding), RdKafka::ERR_NO_ERROR);
  ASSERT_EQ(Produce(ServiceIdentity(a_), std::string(topology::kStatusTopic)),
            RdKafka::ERR_NO_ERROR);

  // Not drained yet: the topic stays, and the operator is told why.
  std::string output;
  const std::vector<std::string> retire = {
      schakelctl,    "--kafka-config", TestKafkaConfig("admin"),
      "topics",      "retire",         "--network",
      network_file_, "--kafka",        TestKafka()};
  EXPECT_EQ(RunCommand(retire, &output), 1) << output;
  EXPECT_NE(output.find(forwarding + ": kept: schakel.router has "), std::string::npos) << output;
  absl::StatusOr<std::vector<std::string>> topics =
      kafka::ListTopics(TestKafka(), forwarding, std::chrono::seconds(15),
                        *kafka::ReadClientConfigFile(TestKafkaConfig("admin")));
  ASSERT_TRUE(topics.ok()) << topics.status();
  EXPECT_EQ(*topics, std::vector<std::string>{forwarding});

  // The old router reads it to the end (its group commits the end of every partition)...
  {
    std::unique_ptr<RdKafka::Conf> conf = ConfAs(TestKafkaConfig("admin"));
    std::string error;
    conf->set("group.id", "schakel.router", error);
    conf->set("enable.auto.commit", "false", error);
    std::unique_ptr<RdKafka::KafkaConsumer> router(
        RdKafka::KafkaConsumer::create(conf.get(), error));
    ASSERT_TRUE(router) << error;
    std::vector<RdKafka::TopicPartition*> ends;
    for (int p = 0; p < 3; ++p) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      ASSERT_EQ(router->query_watermark_offsets(forwarding, p, &low, &high, 10000),
                RdKafka::ERR_NO_ERROR);
      ends.push_back(RdKafka::TopicPartition::create(forwarding, p, high));
    }
    EXPECT_EQ(router->commitSync(ends), RdKafka::ERR_NO_ERROR);
    RdKafka::TopicPartition::destroy(ends);
    router->close();
  }
  // ...and then it goes.
  EXPECT_EQ(RunCommand(retire, &output), 0) << output;
  EXPECT_NE(output.find(forwarding + ": deleted"), std::string::npos) << output;
  EXPECT_TRUE(schakel::testing::Eventually(
      [&] {
        topics = kafka::ListTopics(TestKafka(), forwarding, std::chrono::seconds(15),
                                   *kafka::ReadClientConfigFile(TestKafkaConfig("admin")));
        return topics.ok() && topics->empty();
      },
      std::chrono::seconds(30)));

  // The old rights go with `access apply --exact`; A's own topic stays A's.
  ASSERT_EQ(RunCommand({schakelctl, "--kafka-config", TestKafkaConfig("admin"), "access", "apply",
                        "--exact", "--network", network_file_, "--kafka", TestKafka(),
                        "--kafka-jars", std::string(SCHAKEL_SOURCE_DIR) + "/.cache/kafka/libs",
                        "--java-config", (TestPki() / "kafka" / "admin.java.properties").string()},
                       &output),
            0)
      << output;
  EXPECT_NE(output.find("removing " + principal + "\tWrite\ttopic\t" +
                        std::string(topology::kStatusTopic)),
            std::string::npos)
      << output;
  EXPECT_EQ(Produce(ServiceIdentity(a_), std::string(topology::kStatusTopic)),
            RdKafka::ERR_TOPIC_AUTHORIZATION_FAILED);
  EXPECT_EQ(Produce(ServiceIdentity(a_), topology::FromTopic(a_)), RdKafka::ERR_NO_ERROR);
}

TEST_F(KafkaAccessTest, WithoutACertificateNothingConnects) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  conf->set("bootstrap.servers", TestKafka(), error);
  conf->set("log_level", "0", error);
  std::unique_ptr<RdKafka::Producer> plaintext(RdKafka::Producer::create(conf.get(), error));
  ASSERT_TRUE(plaintext);
  RdKafka::Metadata* metadata = nullptr;
  EXPECT_NE(plaintext->metadata(true, nullptr, &metadata, 3000), RdKafka::ERR_NO_ERROR);
  delete metadata;
}

}  // namespace
}  // namespace schakel
