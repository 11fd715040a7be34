// Personal data end to end, with the real key service, intake, router, inboxes and ops on the
// broker tests/run started: a referral with a marker name, BSN, contact and need details travels
// sealed (no topic holds any of them in clear), each organisation opens only its own need (an offer
// outside the client's sharing permission, even when the router's own status topic says so, opens
// nothing), nothing of it reaches a log line, a metric or another database; an operator's erasure
// destroys the client's keys, purges every inbox (the assignments stay, marked erased, and work on
// them goes on), and what is still on Kafka can no longer be opened. The key service's audit chain
// holds every key it handed to an organisation and the erasure (by the operator), and `schakelctl
// audit verify` finds every chain intact.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <set>
#include <thread>

#include "libs/kafka/admin.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/producer.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/audit.pb.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "schakel/v1/keys.grpc.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::Eventually;
using schakel::testing::TestChannel;
using schakel::testing::TestNetwork;

const std::string kNetworkFile = std::string(SCHAKEL_SOURCE_DIR) + "/deploy/local/network.yaml";
const std::string kSchakelctl = std::string(SCHAKEL_BINARY_DIR) + "/tools/schakelctl/schakelctl";

// What must never be seen outside the organisations that take the needs.
const std::string kName = "Markeranna Zwaluwstaart";
const std::string kBsn = "731946285";
const std::string kContact = "markeranna@example.invalid";
const std::map<std::string, std::string> kDetails = {
    {"debt", "MARKERDEBT schulden bij de Zwaluwbank"},
    {"income", "MARKERINCOME uitkering aangevraagd"},
    {"housing", "MARKERHOUSING slaapt bij een vriendin"}};

// What an owner types about its assignment (a reason to put it on hold) may name the client too.
const std::string kTypedReason = "MARKERTYPED Markeranna ligt in het Martini Ziekenhuis";
// What the referrer types as its reason to cancel: sealed on every topic, shown only by the owner's
// inbox. Not among Markers(): the owner's inbox keeps what it opened in its own database.
const std::string kCancelReason = "MARKERCANCEL cliente is verhuisd naar Zwaluwdorp";

std::vector<std::string> Markers() {
  std::vector<std::string> all = {kName, "Zwaluwstaart", kBsn, kContact, "MARKERTYPED"};
  for (const auto& [code, details] : kDetails) all.push_back(details.substr(0, 12));
  return all;
}

// The first marker found in `text`, or empty.
std::string MarkerIn(const std::string& text) {
  for (const std::string& m : Markers()) {
    if (text.find(m) != std::string::npos) return m;
  }
  return "";
}

std::string FileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class PrivacyE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    net_ = std::make_unique<TestNetwork>("privacy", kNetworkFile);
    ASSERT_TRUE(net_->Prepare());
    net_->LogJson();
    net_->AddInboxes();
    net_->AddRouter("1");
    net_->AddIntake();
    net_->AddOps();
    ASSERT_TRUE(net_->StartAll());
  }

  v1::Referral MarkedReferral() {
    v1::Referral r;
    r.mutable_client()->set_bsn(kBsn);
    r.mutable_client()->set_name(kName);
    r.mutable_client()->set_contact(kContact);
    for (const char* code : {"debt", "income", "housing"}) {
      v1::NeedRequest* need = r.add_needs();
      need->set_code(code);
      need->set_details(kDetails.at(code));
    }
    r.set_urgency(v1::URGENCY_NORMAL);
    r.set_region("groningen-stad");
    r.add_languages("nl");
    r.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
    for (const char* org : {"gemeente", "leger-des-heils", "mjd", "terwille"}) {
      r.mutable_sharing()->add_organisations(org);
    }
    return r;
  }

  // The assignment `id` as `org` sees it, once `ready` holds.
  std::optional<v1::Assignment> WaitFor(const std::string& org, const std::string& id,
                                        const std::function<bool(const v1::Assignment&)>& ready) {
    std::optional<v1::Assignment> found;
    Eventually([&] {
      v1::Assignment a;
      if (!net_->Get(org, id, &a).ok() || !ready(a)) return false;
      found = a;
      return true;
    });
    return found;
  }

  // Every record of every topic, key and value, read raw (as kcat would, uncommitted too).
  std::vector<std::pair<std::string, std::string>> EveryRecord() {
    std::vector<std::pair<std::string, std::string>> all;
    std::vector<std::int32_t> every;
    for (int p = 0; p < net_->network().topics.partitions; ++p) every.push_back(p);
    std::vector<std::string> topics = topology::AllTopics(net_->network());
    // Every audit chain's topic, the network's own and any other writer's (intake-<n>).
    absl::StatusOr<std::vector<std::string>> audit_topics = kafka::ListTopics(
        net_->kafka(), std::string(topology::kAuditTopicPrefix), std::chrono::seconds(20));
    EXPECT_TRUE(audit_topics.ok()) << audit_topics.status();
    if (audit_topics.ok()) topics.insert(topics.end(), audit_topics->begin(), audit_topics->end());
    for (const std::string& topic : topics) {
      // An audit chain's topic has one partition (libs/routing/topics.h).
      const std::vector<std::int32_t> partitions =
          topic.rfind(topology::kAuditTopicPrefix, 0) == 0 ? std::vector<std::int32_t>{0} : every;
      absl::Status read = kafka::ReadToEnd(
          net_->kafka(), topic, partitions, std::chrono::seconds(20),
          [&](const kafka::Record& r, bool) { all.emplace_back(topic, r.key + "|" + r.value); },
          {{"isolation.level", "read_uncommitted"}});
      EXPECT_TRUE(read.ok()) << topic << ": " << read;
    }
    return all;
  }

  // The key service's audit entries (chain "keys") about `referral`, in chain order.
  std::vector<v1::AuditEntry> KeysEntriesAbout(const std::string& referral) {
    std::vector<v1::AuditEntry> entries;
    const absl::Status read =
        kafka::ReadToEnd(net_->kafka(), topology::AuditTopic("keys"), {0}, std::chrono::seconds(60),
                         [&](const kafka::Record& r, bool tombstone) {
                           v1::AuditEntry entry;
                           if (tombstone || r.key != "keys" || !entry.ParseFromString(r.value))
                             return;
                           if (entry.subject().referral_id() == referral) entries.push_back(entry);
                         });
    EXPECT_TRUE(read.ok()) << read;
    return entries;
  }

  std::unique_ptr<TestNetwork> net_;
};

TEST_F(PrivacyE2eTest, SealedOnEveryTopicOpenedOnlyByItsOwnerAndErasedForGood) {
  v1::SubmitReferralResponse submitted;
  grpc::Status status = net_->Submit(MarkedReferral(), "terwille", &submitted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(submitted.assignment_ids_size(), 3);
  const std::string referral = submitted.referral_id();
  // The seed routing: debt to MJD, income to the municipality, housing to the Salvation Army.
  const std::map<std::string, std::pair<std::string, std::string>> owners = {
      {"debt", {"mjd", submitted.assignment_ids(0)}},
      {"income", {"gemeente", submitted.assignment_ids(1)}},
      {"housing", {"leger-des-heils", submitted.assignment_ids(2)}}};

  // Each owner opens the client's details and its own need's details, nothing else.
  for (const auto& [code, owner] : owners) {
    std::optional<v1::Assignment> a = WaitFor(owner.first, owner.second, [](const auto& x) {
      return x.status() == v1::ASSIGNMENT_STATUS_RECEIVED;
    });
    ASSERT_TRUE(a) << code << " never reached " << owner.first;
    EXPECT_EQ(a->client_name(), kName);
    EXPECT_EQ(a->client_contact(), kContact);
    EXPECT_EQ(a->need_details(), kDetails.at(code));
    EXPECT_FALSE(a->erased());
    for (const auto& [other, details] : kDetails) {
      if (other != code) {
        EXPECT_EQ(a->DebugString().find(details.substr(0, 12)), std::string::npos);
      }
    }
  }

  // What an owner types travels sealed too: MJD puts the debt need on hold with a reason that names
  // the client. Its own inbox keeps the text; the referrer (Terwille) reads it through intake,
  // which opens it with the client's key — by then it has been through Kafka.
  {
    v1::Assignment debt =
        *WaitFor("mjd", owners.at("debt").second, [](const auto&) { return true; });
    v1::Assignment debt_accepted;
    ASSERT_TRUE(net_->Accept("mjd", debt, &debt_accepted).ok());
    // On hold is a pause in work that has started.
    v1::Assignment debt_started;
    {
      grpc::ClientContext context;
      schakel::testing::PrepareCall(context, "mjd");
      v1::ChangeAssignmentRequest request;
      request.set_assignment_id(debt_accepted.assignment_id());
      request.set_expected_version(debt_accepted.version());
      status = net_->Inbox("mjd")->Start(&context, request, &debt_started);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "mjd");
    v1::ChangeAssignmentRequest request;
    request.set_assignment_id(debt_started.assignment_id());
    request.set_expected_version(debt_started.version());
    request.set_reason(kTypedReason);
    v1::Assignment on_hold;
    status = net_->Inbox("mjd")->PutOnHold(&context, request, &on_hold);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(on_hold.status_reason(), kTypedReason);
  }
  std::string referrer_sees;
  const std::optional<v1::ReferralStatus> seen =
      net_->WaitForReferral("terwille", referral, [&](const v1::ReferralStatus& r) {
        for (const v1::NeedStatus& need : r.needs()) {
          for (const v1::ReferralEvent& e : need.history()) {
            if (e.to_status() == v1::ASSIGNMENT_STATUS_ON_HOLD) {
              referrer_sees = e.reason();
              return true;
            }
          }
        }
        return false;
      });
  ASSERT_TRUE(seen) << "the referrer never saw the debt need on hold";
  EXPECT_EQ(referrer_sees, kTypedReason);

  // The referrer (Terwille) asks to cancel the debt need with a reason of its own; work has started
  // (on hold), so MJD decides: its inbox shows the request with the reason, opened with its key.
  const std::string debt_id = owners.at("debt").second;
  {
    auto intake = net_->Intake();
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "terwille");
    v1::CancelAssignmentRequest request;
    request.set_assignment_id(debt_id);
    request.set_reason(kCancelReason);
    v1::CancelAssignmentResponse cancelled;
    status = intake->CancelAssignment(&context, request, &cancelled);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  std::optional<v1::Assignment> asked = WaitFor(
      "mjd", debt_id, [](const auto& x) { return x.cancellation_requested() == kCancelReason; });
  EXPECT_TRUE(asked) << "MJD's inbox never showed the cancellation request with its reason";
  if (asked) {
    EXPECT_EQ(asked->status(), v1::ASSIGNMENT_STATUS_ON_HOLD);
  }

  // No topic holds any of it in clear: not the client's data, not what people typed.
  const auto records = EveryRecord();
  EXPECT_GT(records.size(), 10u);
  bool cancellation_seen = false;
  for (const auto& [topic, bytes] : records) {
    EXPECT_EQ(MarkerIn(bytes), "") << "in clear on " << topic;
    EXPECT_EQ(bytes.find("MARKERCANCEL"), std::string::npos)
        << "MARKERCANCEL in clear on " << topic;
    cancellation_seen = cancellation_seen || topic == topology::kCancellationsTopic;
  }
  EXPECT_TRUE(cancellation_seen) << "the cancellation never reached its topic";

  // The key service hands the key only to the organisation the assignment was offered to.
  auto keys = v1::KeyService::NewStub(TestChannel(net_->keys_address(), "mjd"));
  v1::InboxEvent offer;
  for (const auto& [topic, bytes] : records) {
    if (topic != "schakel.inbox.mjd") continue;
    v1::InboxEvent e;
    if (e.ParseFromString(bytes.substr(bytes.find('|') + 1)) && e.has_requested() &&
        e.requested().meta().referral_id() == referral) {
      offer = e;
    }
  }
  ASSERT_TRUE(offer.has_requested());
  const std::string key_id = offer.requested().sealed_need_details().key_id();
  ASSERT_FALSE(key_id.empty());
  const auto key_for = [&](const std::string& holder, const std::string& assignment,
                           v1::DataKey* key) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::AssignmentKeyRequest request;
    request.set_assignment_id(assignment);
    request.set_key_id(key_id);
    return v1::KeyService::NewStub(TestChannel(net_->keys_address(), holder))
        ->AssignmentKey(&context, request, key);
  };
  v1::DataKey key;
  EXPECT_TRUE(key_for("mjd", owners.at("debt").second, &key).ok());
  EXPECT_EQ(key_for("ggd", owners.at("debt").second, &key).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(key_for("mjd", owners.at("income").second, &key).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // The GGD's inbox may not write the status topic, whose offers the key service grants keys on
  // (only the router writes it): an offer of MJD's assignment to the GGD forged there is refused
  // and grants nothing.
  {
    absl::StatusOr<kafka::Properties> as_ggd =
        kafka::ReadClientConfigFile(schakel::testing::TestKafkaConfig("inbox-ggd"));
    ASSERT_TRUE(as_ggd.ok()) << as_ggd.status();
    absl::StatusOr<std::unique_ptr<kafka::Producer>> forger = kafka::Producer::Create(
        {.bootstrap_servers = net_->kafka(), .client_id = "forger", .extra = *as_ggd});
    ASSERT_TRUE(forger.ok()) << forger.status();
    v1::AssignmentStatusChanged forged;
    forged.mutable_meta()->set_schema_version(1);
    forged.mutable_meta()->set_event_id("e-forged");
    forged.mutable_meta()->set_referral_id(referral);
    forged.mutable_meta()->set_assignment_id(owners.at("debt").second);
    forged.set_organisation("ggd");
    forged.set_to_status(v1::ASSIGNMENT_STATUS_REQUESTED);
    forged.set_version(1);
    forged.set_by("network");
    std::promise<absl::Status> on_status;
    (*forger)->Publish(topology::kStatusTopic, referral, forged.SerializeAsString(),
                       [&](absl::Status s) { on_status.set_value(s); });
    EXPECT_FALSE(on_status.get_future().get().ok()) << "the broker let the GGD write the facts";
    (*forger)->Close(std::chrono::seconds(5));
    EXPECT_EQ(key_for("ggd", owners.at("debt").second, &key).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    // The owner's own key is untouched.
    EXPECT_TRUE(key_for("mjd", owners.at("debt").second, &key).ok());
  }

  // Even the router's own offer does not open what the client's sharing permission does not allow:
  // a forward of MJD's debt need to the GGD (not named by the client: its next assignment, offered
  // on the status topic), written with the router's identity as a router with a bug would, still
  // gets the GGD no key, because the key service checks the permission intake gave it, not what
  // the router says.
  {
    const std::string forwarded = owners.at("debt").second + ".1";
    absl::StatusOr<kafka::Properties> as_router =
        kafka::ReadClientConfigFile(schakel::testing::TestKafkaConfig("router"));
    ASSERT_TRUE(as_router.ok()) << as_router.status();
    absl::StatusOr<std::unique_ptr<kafka::Producer>> buggy = kafka::Producer::Create(
        {.bootstrap_servers = net_->kafka(), .client_id = "buggy-router", .extra = *as_router});
    ASSERT_TRUE(buggy.ok()) << buggy.status();
    v1::AssignmentStatusChanged offer_outside;
    offer_outside.mutable_meta()->set_schema_version(1);
    offer_outside.mutable_meta()->set_event_id("e-outside-sharing");
    offer_outside.mutable_meta()->set_referral_id(referral);
    offer_outside.mutable_meta()->set_assignment_id(forwarded);
    offer_outside.set_organisation("ggd");
    offer_outside.set_to_status(v1::ASSIGNMENT_STATUS_REQUESTED);
    offer_outside.set_version(1);
    offer_outside.set_by("network");
    std::promise<absl::Status> delivered;
    (*buggy)->Publish(topology::kStatusTopic, referral, offer_outside.SerializeAsString(),
                      [&](absl::Status s) { delivered.set_value(s); });
    const absl::Status written = delivered.get_future().get();
    (*buggy)->Close(std::chrono::seconds(5));
    ASSERT_TRUE(written.ok()) << "the router's identity could not write the status topic: "
                              << written;
    // Refused either way; counted once the key service has the offer (it waits up to 5 s for it,
    // so one ask is normally enough).
    bool counted = false;
    for (int ask = 0; ask < 3 && !counted; ++ask) {
      EXPECT_EQ(key_for("ggd", forwarded, &key).error_code(), grpc::StatusCode::PERMISSION_DENIED);
      counted = schakel::testing::ScrapeMetrics(net_->Find("keys").metrics_address)
                    .find("\nschakel_keys_refused_outside_sharing_total 1\n") != std::string::npos;
    }
    EXPECT_TRUE(counted) << "the key service never counted the refusal outside the permission";
    EXPECT_TRUE(key_for("mjd", owners.at("debt").second, &key).ok());
  }

  // The municipality starts work on its need before the erasure.
  v1::Assignment income =
      *WaitFor("gemeente", owners.at("income").second, [](const auto&) { return true; });
  v1::Assignment accepted;
  ASSERT_TRUE(net_->Accept("gemeente", income, &accepted).ok());

  // Erasure: an organisation may not; an operator may.
  v1::EraseClientRequest erase;
  erase.set_referral_id(referral);
  erase.set_reason("request of the client (art. 17 GDPR)");
  v1::EraseClientResponse erased;
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    EXPECT_EQ(keys->EraseClient(&context, erase, &erased).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    status = v1::KeyService::NewStub(TestChannel(net_->keys_address(), "operator:operator"))
                 ->EraseClient(&context, erase, &erased);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  EXPECT_EQ(erased.keys_destroyed(), 1u);

  // Every inbox purges the client; the assignments stay, marked erased.
  for (const auto& [code, owner] : owners) {
    std::optional<v1::Assignment> a =
        WaitFor(owner.first, owner.second, [](const auto& x) { return x.erased(); });
    ASSERT_TRUE(a) << code << " was not erased at " << owner.first;
    EXPECT_EQ(a->client_name(), "");
    EXPECT_EQ(a->client_contact(), "");
    EXPECT_EQ(a->need_details(), "");
    EXPECT_EQ(a->need_code(), code);
  }
  // The key is gone: what is on Kafka stays sealed for good.
  grpc::Status gone = key_for("mjd", owners.at("debt").second, &key);
  EXPECT_EQ(gone.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(gone.error_message(),
            "erased: the client of " + owners.at("debt").second + " has been erased");
  // Work goes on: the municipality finishes its need.
  v1::Assignment current =
      *WaitFor("gemeente", owners.at("income").second, [](const auto& x) { return x.erased(); });
  {
    auto inbox = net_->Inbox("gemeente");
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "gemeente");
    v1::ChangeAssignmentRequest request;
    request.set_assignment_id(current.assignment_id());
    request.set_expected_version(current.version());
    v1::Assignment started;
    status = inbox->Start(&context, request, &started);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(started.status(), v1::ASSIGNMENT_STATUS_IN_PROGRESS);
    EXPECT_TRUE(started.erased());
  }

  // The audit stream: every chain intact and signed by its writer's key, checked with the
  // operator's own Kafka identity, and the key service's chain holds each key it handed out for
  // this client, then the erasure.
  std::string verified;
  EXPECT_EQ(schakel::testing::RunCommand(
                {kSchakelctl, "--kafka-config", schakel::testing::TestKafkaConfig("operator"),
                 "audit", "verify", "--kafka", net_->kafka(), "--audit-keys",
                 (schakel::testing::TestPki() / "audit").string()},
                &verified),
            0)
      << verified;
  EXPECT_THAT(verified, ::testing::HasSubstr("chains: OK"));
  EXPECT_THAT(verified, ::testing::HasSubstr("keys: "));
  EXPECT_THAT(verified, ::testing::HasSubstr("client.erased by operator operator: "));
  EXPECT_THAT(verified, ::testing::HasSubstr("key.granted by organisation mjd: "));
  // Intake recorded that it opened MJD's reason for Terwille before showing it.
  EXPECT_THAT(verified, ::testing::HasSubstr("referral.read by organisation terwille: "));
  const std::vector<v1::AuditEntry> audited = KeysEntriesAbout(referral);
  std::map<std::string, std::set<std::string>> granted;  // assignment -> organisations
  std::uint64_t last_grant = 0;
  const v1::AuditEntry* erasure = nullptr;
  for (const v1::AuditEntry& entry : audited) {
    EXPECT_EQ(entry.writer(), "keys");
    EXPECT_EQ(MarkerIn(entry.DebugString()), "");
    if (entry.action() == "key.granted") {
      EXPECT_EQ(entry.actor().kind(), v1::AuditActor::ORGANISATION);
      ASSERT_EQ(entry.subject().assignment_ids_size(), 1);
      EXPECT_EQ(entry.subject().client_pseudonym(), erased.client_pseudonym());
      EXPECT_EQ(entry.reason(), "open offered assignment");
      granted[entry.subject().assignment_ids(0)].insert(entry.actor().id());
      last_grant = std::max(last_grant, entry.sequence());
    } else if (entry.action() == "client.erased") {
      erasure = &entry;
    }
  }
  // Each owner's inbox opened its own need (and MJD asked once more itself); nobody else got one.
  for (const auto& [code, owner] : owners) {
    EXPECT_EQ(granted[owner.second], std::set<std::string>{owner.first}) << code;
  }
  EXPECT_EQ(granted.size(), owners.size());
  ASSERT_NE(erasure, nullptr);
  EXPECT_EQ(erasure->actor().kind(), v1::AuditActor::OPERATOR);
  EXPECT_EQ(erasure->actor().id(), "operator");
  EXPECT_EQ(erasure->subject().client_pseudonym(), erased.client_pseudonym());
  EXPECT_THAT(erasure->reason(), ::testing::StartsWith("EraseClient (reason: ClientErased e-"));
  // The operator's typed reason stays on the erasures topic, never in the unerasable audit stream.
  EXPECT_EQ(erasure->reason().find(erase.reason()), std::string::npos);
  EXPECT_GT(erasure->sequence(), last_grant);
  EXPECT_GE(erasure->at().seconds(), erased.erased_at().seconds());

  // Nothing of it in any log line, metric, or database file (the inboxes' after the purge).
  for (const auto& entry : std::filesystem::directory_iterator(net_->dir())) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file()) continue;
    const std::string text = FileText(entry.path());
    EXPECT_EQ(MarkerIn(text), "") << "in " << name;
    // The cancellation reason: only in the owner's own database.
    if (name.starts_with("inbox-mjd.db")) continue;
    EXPECT_EQ(text.find("MARKERCANCEL"), std::string::npos) << "MARKERCANCEL in " << name;
  }
  for (const char* service : {"keys", "intake", "router-1", "inbox-mjd", "inbox-gemeente", "ops"}) {
    const std::string metrics =
        schakel::testing::ScrapeMetrics(net_->Find(service).metrics_address);
    EXPECT_FALSE(metrics.empty()) << service;
    EXPECT_EQ(MarkerIn(metrics), "") << "in the metrics of " << service;
  }
}

// Issue 18 ("authorship the broker proves"): Terwille knows the referral's id from its own offer
// and holds its own certificate and Kafka identity. It cannot write the facts (the status topic)
// or the Salvation Army's own topic: the broker refuses both. On its own topic it sends the
// Salvation Army's decline of the shelter need and a forward of it to itself: the router knows
// the author from the topic and dead-letters both. Terwille never gets the shelter need or its
// key, the Salvation Army's assignment and the referrer's view stay as they were, and the
// Salvation Army's own forward goes through.
TEST_F(PrivacyE2eTest, AForgedDeclineAndForwardOfAnotherOrganisationsNeedAreRefused) {
  v1::Referral referral = MarkedReferral();
  referral.clear_needs();
  for (const char* code : {"shelter", "exit-programme"}) {
    v1::NeedRequest* need = referral.add_needs();
    need->set_code(code);
    need->set_details(std::string("MARKERFORGE details for ") + code);
  }
  v1::SubmitReferralResponse submitted;
  grpc::Status status = net_->Submit(referral, "gemeente", &submitted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(submitted.assignment_ids_size(), 2);
  // Shelter goes to the Salvation Army (the network's preference), the exit programme to Terwille
  // (first in the file of the two that take it).
  const std::string shelter = submitted.assignment_ids(0);
  const std::string exit_programme = submitted.assignment_ids(1);
  std::optional<v1::Assignment> owned =
      net_->WaitForStatus("leger-des-heils", shelter, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(owned);
  ASSERT_TRUE(net_->WaitForStatus("terwille", exit_programme, v1::ASSIGNMENT_STATUS_RECEIVED));
  const std::string next = shelter + ".1";  // referral::NextAssignmentId(shelter)
  const auto referral_as = [&](const std::string& org, v1::ReferralStatus* out) {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, org);
    v1::GetReferralRequest request;
    request.set_referral_id(submitted.referral_id());
    return net_->Intake()->GetReferral(&context, request, out);
  };
  // The referrer's view once both receipts reached it (the router publishes them as facts): from
  // then on nothing in it changes until the Salvation Army acts.
  v1::ReferralStatus view_before;
  ASSERT_TRUE(Eventually([&] {
    view_before.Clear();
    if (!referral_as("gemeente", &view_before).ok() || view_before.needs_size() != 2) return false;
    return std::all_of(
        view_before.needs().begin(), view_before.needs().end(),
        [](const v1::NeedStatus& need) { return need.status() == v1::ASSIGNMENT_STATUS_RECEIVED; });
  }));

  // Terwille forges, with its own certificate, as the Salvation Army's inbox would write them.
  absl::StatusOr<kafka::Properties> as_terwille =
      kafka::ReadClientConfigFile(schakel::testing::TestKafkaConfig("inbox-terwille"));
  ASSERT_TRUE(as_terwille.ok()) << as_terwille.status();
  absl::StatusOr<std::unique_ptr<kafka::Producer>> forger =
      kafka::Producer::Create({.bootstrap_servers = net_->kafka(),
                               .client_id = "forger",
                               .delivery_timeout = std::chrono::seconds(15),
                               .extra = *as_terwille});
  ASSERT_TRUE(forger.ok()) << forger.status();
  v1::AssignmentStatusChanged declined;
  declined.mutable_meta()->set_schema_version(1);
  declined.mutable_meta()->set_event_id("e-forged-decline");
  declined.mutable_meta()->set_referral_id(submitted.referral_id());
  declined.mutable_meta()->set_assignment_id(shelter);
  declined.set_organisation("leger-des-heils");
  declined.set_from_status(v1::ASSIGNMENT_STATUS_RECEIVED);
  declined.set_to_status(v1::ASSIGNMENT_STATUS_REJECTED);
  declined.set_version(owned->version() + 1);
  declined.set_by("leger-des-heils");
  declined.set_need_code("shelter");
  // Attack 1 of the issue too: a fact naming Terwille as the referrer would take the referral
  // over in intake's view.
  declined.set_referring_organisation("terwille");
  declined.set_forward_to("terwille");
  v1::ForwardRequested forward;
  *forward.mutable_meta() = declined.meta();
  forward.mutable_meta()->set_event_id("e-forged-forward");
  forward.set_from_organisation("terwille");
  forward.set_to_organisation("terwille");
  v1::AssignmentRequested* proposed = forward.mutable_proposed();
  proposed->set_organisation("terwille");
  proposed->set_need_code("shelter");
  *proposed->mutable_sharing() = referral.sharing();
  v1::OrganisationEvent sent_decline;
  *sent_decline.mutable_status_changed() = declined;
  v1::OrganisationEvent sent_forward;
  *sent_forward.mutable_forward_requested() = forward;
  const auto publish = [&](const std::string& topic, const std::string& value) {
    std::promise<absl::Status> done;
    (*forger)->Publish(topic, submitted.referral_id(), value,
                       [&](absl::Status s) { done.set_value(s); });
    return done.get_future().get();
  };
  // The facts and the Salvation Army's own topic: refused by the broker.
  EXPECT_FALSE(publish(std::string(topology::kStatusTopic), declined.SerializeAsString()).ok())
      << "the broker let Terwille write the status topic";
  EXPECT_FALSE(
      publish(topology::FromTopic("leger-des-heils"), sent_decline.SerializeAsString()).ok())
      << "the broker let Terwille write the Salvation Army's own topic";
  // Its own topic: the broker takes them; the router refuses them.
  ASSERT_TRUE(publish(topology::FromTopic("terwille"), sent_decline.SerializeAsString()).ok());
  ASSERT_TRUE(publish(topology::FromTopic("terwille"), sent_forward.SerializeAsString()).ok());
  (*forger)->Close(std::chrono::seconds(5));

  // The router read both and refused both: they are in the dead letters, saying why. (Not fatal:
  // what follows shows what a router that took them would have done.)
  std::map<std::string, std::string> refused;  // value -> reason
  EXPECT_TRUE(Eventually([&] {
    refused.clear();
    for (const kafka::Record& r :
         schakel::testing::ReadWholeTopic(net_->kafka(), topology::DeadLetterTopic("router"))) {
      v1::DeadLetter letter;
      if (!letter.ParseFromString(r.value) || letter.consumer() != "router") continue;
      if (letter.value() == sent_decline.SerializeAsString() ||
          letter.value() == sent_forward.SerializeAsString()) {
        refused[letter.value()] = letter.reason();
      }
    }
    return refused.size() == 2;
  })) << "refused: "
      << refused.size();
  EXPECT_EQ(refused[sent_decline.SerializeAsString()],
            "organisation: says 'leger-des-heils' on schakel.from.terwille");
  EXPECT_EQ(refused[sent_forward.SerializeAsString()],
            "assignment " + shelter + " is not offered to terwille: only its owner changes it");

  EXPECT_THAT(schakel::testing::ScrapeMetrics(net_->Find("router-1").metrics_address),
              ::testing::HasSubstr("\nschakel_router_unauthorised_total 2\n"));

  // The referral is still the municipality's, as it was; Terwille cannot read it.
  v1::ReferralStatus view_after;
  ASSERT_TRUE(referral_as("gemeente", &view_after).ok());
  EXPECT_EQ(view_after.SerializeAsString(), view_before.SerializeAsString());
  v1::ReferralStatus taken_over;
  EXPECT_EQ(referral_as("terwille", &taken_over).error_code(), grpc::StatusCode::NOT_FOUND);

  // Nothing came of them: no offer of the shelter need to Terwille, no key for it, and the
  // Salvation Army's assignment is as it was.
  v1::Assignment taken;
  EXPECT_EQ(net_->Get("terwille", next, &taken).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::Assignment still;
  ASSERT_TRUE(net_->Get("leger-des-heils", shelter, &still).ok());
  EXPECT_EQ(still.status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_EQ(still.version(), owned->version());
  std::string key_id;  // the client's key, which Terwille holds for its own need
  for (const kafka::Record& r :
       schakel::testing::ReadWholeTopic(net_->kafka(), topology::InboxTopic("terwille"))) {
    v1::InboxEvent e;
    if (e.ParseFromString(r.value) && e.has_requested()) {
      EXPECT_NE(e.requested().meta().assignment_id(), next) << "the shelter need reached Terwille";
      if (e.requested().meta().assignment_id() == exit_programme) {
        key_id = e.requested().sealed_client().key_id();
      }
    }
  }
  ASSERT_FALSE(key_id.empty());
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::AssignmentKeyRequest request;
    request.set_assignment_id(next);
    request.set_key_id(key_id);
    v1::DataKey key;
    EXPECT_EQ(v1::KeyService::NewStub(TestChannel(net_->keys_address(), "terwille"))
                  ->AssignmentKey(&context, request, &key)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }

  // The Salvation Army's own forward, from its own topic, is acted on: Terwille gets the need.
  {
    grpc::ClientContext context;
    schakel::testing::PrepareCall(context, "leger-des-heils");
    v1::ForwardAssignmentRequest request;
    request.set_assignment_id(shelter);
    request.set_expected_version(still.version());
    request.set_to_organisation("terwille");
    request.set_reason("our rooms are full tonight");
    v1::Assignment forwarded;
    status = net_->Inbox("leger-des-heils")->Forward(&context, request, &forwarded);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  std::optional<v1::Assignment> offered =
      net_->WaitForStatus("terwille", next, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(offered) << "the owner's own forward did not reach Terwille";
  EXPECT_EQ(offered->need_details(), "MARKERFORGE details for shelter");
}

// Issue 18 ("authorship the broker proves"): the broker lets Terwille write its own load topic only
// (tests/integration/kafka_access_test.cc), but what it writes there it chooses. It reports there,
// keyed and worded as MJD's inbox would, that MJD has 2^30 open assignments (MJD's capacity is 40):
// a router that believed it would offer MJD nothing more. The router takes the author from the
// topic, ignores the report (counted, and a warning naming the topic and the claimed id only) and
// goes on offering debt needs to MJD.
TEST_F(PrivacyE2eTest, AForgedLoadReportOnTheForgersOwnTopicDoesNotChangeRouting) {
  const std::string run = std::to_string(::getpid());
  auto debt = [&](const std::string& client_code) {
    v1::Referral r;
    r.mutable_client()->set_client_code(client_code);
    v1::NeedRequest* need = r.add_needs();
    need->set_code("debt");
    need->set_details("MARKERDEBT load test");
    r.set_urgency(v1::URGENCY_NORMAL);
    r.set_region("groningen-stad");
    r.add_languages("nl");
    r.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
    for (const char* org : {"gemeente", "mjd", "terwille"})
      r.mutable_sharing()->add_organisations(org);
    return r;
  };
  // Before: the debt need goes to MJD (the only organisation that takes debt).
  v1::SubmitReferralResponse before;
  grpc::Status status = net_->Submit(debt("LOAD-BEFORE-" + run), "gemeente", &before);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(before.assignment_ids_size(), 1);
  ASSERT_TRUE(net_->WaitForStatus("mjd", before.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED));

  // Terwille, with its own Kafka identity, on its own load topic.
  absl::StatusOr<kafka::Properties> as_terwille =
      kafka::ReadClientConfigFile(schakel::testing::TestKafkaConfig("inbox-terwille"));
  ASSERT_TRUE(as_terwille.ok()) << as_terwille.status();
  absl::StatusOr<std::unique_ptr<kafka::Producer>> forger = kafka::Producer::Create(
      {.bootstrap_servers = net_->kafka(), .client_id = "forger", .extra = *as_terwille});
  ASSERT_TRUE(forger.ok()) << forger.status();
  v1::InboxLoad forged;
  forged.set_organisation("mjd");
  forged.set_open(1 << 30);
  forged.set_consumer_group("schakel.inbox.mjd.forged");
  auto forge = [&] {
    std::promise<absl::Status> delivered;
    (*forger)->Publish(topology::LoadTopic("terwille"), "mjd", forged.SerializeAsString(),
                       [&](absl::Status s) { delivered.set_value(s); });
    return delivered.get_future().get();
  };
  ASSERT_TRUE(forge().ok()) << "the broker refused Terwille its own topic";

  // The router read it and did not believe it.
  schakel::testing::Service& router = net_->Find("router-1");
  auto forged_count = [&] {
    const std::string metrics = schakel::testing::ScrapeMetrics(router.metrics_address);
    const std::string name = "\nschakel_router_forged_load_reports_total ";
    const std::size_t at = metrics.find(name);
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + name.size()));
  };
  // (Not fatal: what follows shows what a router that believed it would have done.)
  EXPECT_TRUE(Eventually([&] { return forged_count() >= 1; }))
      << "the router never counted the forged report: " << forged_count();
  const std::string log = router.process->ReadLog();
  EXPECT_NE(log.find("load report on schakel.load.terwille ignored"), std::string::npos);
  EXPECT_EQ(MarkerIn(log), "");
  // Once more just before the referral, so that it is the latest word on MJD's load when the need
  // is routed (MJD's inbox reports its own count again at least every minute, which a router that
  // believed the forgery would take too: a real attacker repeats it).
  ASSERT_TRUE(forge().ok());
  (*forger)->Close(std::chrono::seconds(5));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // the router reads it within ~200 ms

  // After: a new client's debt need still goes to MJD, not to the unroutable queue.
  v1::SubmitReferralResponse after;
  status = net_->Submit(debt("LOAD-AFTER-" + run), "gemeente", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(after.assignment_ids_size(), 1);
  std::optional<v1::Assignment> offered =
      net_->WaitForStatus("mjd", after.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(offered) << "MJD was not offered the debt need after the forged load report";
  EXPECT_EQ(offered->need_code(), "debt");
  for (const kafka::Record& r :
       schakel::testing::ReadWholeTopic(net_->kafka(), std::string(topology::kUnroutableTopic))) {
    v1::ReferralUnroutable unroutable;
    if (unroutable.ParseFromString(r.value)) {
      EXPECT_NE(unroutable.meta().referral_id(), after.referral_id()) << "debt went unroutable";
    }
  }
  EXPECT_GE(forged_count(), 2);
}

}  // namespace
}  // namespace schakel
