// The whole network end to end: the real intake, router and six inbox binaries on free ports
// against the broker tests/run started. The seed scenario's needs each land in exactly the right
// inbox; refused referrals appear nowhere; SIGTERM stops every service cleanly.
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::RunCommand;
using schakel::testing::Service;
using schakel::testing::TestNetwork;

const std::string kSource = SCHAKEL_SOURCE_DIR;
const std::string kBinary = SCHAKEL_BINARY_DIR;
const std::string kNetworkFile = kSource + "/deploy/local/network.yaml";

class NetworkE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    net_ = new TestNetwork("e2e", kNetworkFile);
    ASSERT_TRUE(net_->Prepare());
    net_->AddInboxes();
    net_->AddRouter("1");
    net_->AddIntake();
    ASSERT_TRUE(net_->StartAll());
    kafka_ = &net_->kafka();
    network_ = &net_->network();
  }

  // Ordered and clean: every service exits 0 on SIGTERM (TestNetwork checks).
  static void TearDownTestSuite() { delete net_; }

  static const Service& Find(const std::string& name) { return net_->Find(name); }

  // Every assignment in an organisation's inbox.
  static std::vector<v1::Assignment> Inbox(const std::string& org) {
    auto stub =
        v1::InboxService::NewStub(schakel::testing::TestChannel(Find("inbox-" + org).address));
    std::vector<v1::Assignment> all;
    v1::ListAssignmentsRequest request;
    request.set_page_size(500);
    do {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      schakel::testing::PrepareCall(context, org);
      v1::ListAssignmentsResponse response;
      const grpc::Status status = stub->ListAssignments(&context, request, &response);
      EXPECT_TRUE(status.ok()) << org << ": " << status.error_message();
      if (!status.ok()) break;
      all.insert(all.end(), response.assignments().begin(), response.assignments().end());
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    return all;
  }

  // (need code) of the referral's assignments in each inbox, once `expected` of them have arrived
  // everywhere together (or the wait ran out).
  static std::map<std::string, std::vector<std::string>> WaitForReferral(
      const std::string& referral_id, std::size_t expected) {
    std::map<std::string, std::vector<std::string>> found;
    for (int attempt = 0; attempt < 120; ++attempt) {
      found.clear();
      std::size_t total = 0;
      for (const routing::Organisation& org : network_->organisations) {
        for (const v1::Assignment& a : Inbox(org.id)) {
          if (a.referral_id() == referral_id) {
            found[org.id].push_back(a.need_code());
            ++total;
          }
        }
      }
      if (total >= expected) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    return found;
  }

  static grpc::Status Submit(const v1::Referral& referral, const std::string& as,
                             v1::SubmitReferralResponse* response) {
    auto stub = v1::IntakeService::NewStub(schakel::testing::TestChannel(Find("intake").address));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    schakel::testing::PrepareCall(context, as, std::chrono::seconds(15));
    v1::SubmitReferralRequest request;
    *request.mutable_referral() = referral;
    return stub->SubmitReferral(&context, request, response);
  }

  static inline TestNetwork* net_ = nullptr;
  static inline const std::string* kafka_ = nullptr;
  static inline const routing::Network* network_ = nullptr;
};

TEST_F(NetworkE2eTest, SeedScenarioReachesExactlyTheResponsibleInboxes) {
  // The demo's referral, submitted with the operators' CLI as Terwille.
  std::string output;
  ASSERT_EQ(RunCommand({kBinary + "/tools/schakelctl/schakelctl", "--pki",
                        schakel::testing::TestPki().string(), "submit", "--as", "terwille",
                        "--file", kSource + "/deploy/local/demo/seed-referral.json", "--intake",
                        Find("intake").address},
                       &output),
            0)
      << output;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(output, match, std::regex("referral (r-[0-9a-f]{24}) accepted")))
      << output;
  const std::string referral_id = match[1];

  const auto found = WaitForReferral(referral_id, 3);
  const std::map<std::string, std::vector<std::string>> expected = {
      {"mjd", {"debt"}}, {"gemeente", {"income"}}, {"leger-des-heils", {"housing"}}};
  EXPECT_EQ(found, expected);

  // The municipality sees its own need only, with its details; the pseudonym instead of the client
  // code.
  for (const v1::Assignment& a : Inbox("gemeente")) {
    if (a.referral_id() != referral_id) continue;
    EXPECT_EQ(a.status(), v1::ASSIGNMENT_STATUS_RECEIVED);
    EXPECT_EQ(a.referring_organisation(), "terwille");
    EXPECT_EQ(a.need_details(), "Heeft tijdelijk een uitkering nodig tijdens het uitstappen.");
    EXPECT_TRUE(std::regex_match(a.client_pseudonym(), std::regex("^p-[0-9a-f]{32}$")));
  }
  // No client code anywhere in Kafka.
  EXPECT_FALSE(
      schakel::testing::AnyRecordContains(*kafka_, topology::AllTopics(*network_), "TW-DEMO-0001"));
}

// The value of one sample in Prometheus text ("name{labels} value"), or -1 when it is not there.
double Sample(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

// The value of a counter, 0 before its first increment.
double Counter(const std::string& text, const std::string& series) {
  return std::max(0.0, Sample(text, series));
}

TEST_F(NetworkE2eTest, MetricsAfterTheSeedScenarioCountWhatHappened) {
  const std::string kHandled =
      "schakel_grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"SubmitReferral\","
      "grpc_service=\"schakel.v1.IntakeService\"}";
  const std::string kTimed =
      "schakel_grpc_server_handling_seconds_count{grpc_method=\"SubmitReferral\","
      "grpc_service=\"schakel.v1.IntakeService\"}";
  const std::string kProduced =
      "schakel_kafka_produced_total{topic=\"schakel.referrals.submitted\"}";
  const std::string before = schakel::testing::ScrapeMetrics(Find("intake").metrics_address);
  ASSERT_FALSE(before.empty()) << "intake serves no metrics at " << Find("intake").metrics_address;

  // The seed referral, for a client of its own (the same client twice would be linked, not
  // offered).
  std::ifstream in(kSource + "/deploy/local/demo/seed-referral.json");
  std::stringstream json;
  json << in.rdbuf();
  v1::Referral referral;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.str(), &referral).ok());
  referral.mutable_client()->set_client_code("TW-METRICS-0001");
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(referral, "terwille", &submitted).ok());
  ASSERT_EQ(WaitForReferral(submitted.referral_id(), 3).size(), 3u);

  // Intake: this test's one call and one event, on top of what earlier tests in this process did.
  const std::string intake = schakel::testing::ScrapeMetrics(Find("intake").metrics_address);
  EXPECT_EQ(Counter(intake, kHandled) - Counter(before, kHandled), 1) << intake;
  EXPECT_EQ(Counter(intake, kTimed) - Counter(before, kTimed), 1);
  EXPECT_EQ(Counter(intake, kProduced) - Counter(before, kProduced), 1);
  EXPECT_EQ(Sample(intake, "schakel_kafka_reachable"), 1);
  EXPECT_GE(Sample(intake, "schakel_kafka_consumed_total{topic=\"schakel.referrals.submitted\"}"),
            1);

  // The router read the submission and offered the debt need to MJD (in a committed transaction).
  const std::string router = schakel::testing::ScrapeMetrics(Find("router-1").metrics_address);
  EXPECT_GE(Sample(router, "schakel_kafka_consumed_total{topic=\"schakel.referrals.submitted\"}"),
            1)
      << router;
  EXPECT_GE(Sample(router, "schakel_kafka_produced_total{topic=\"schakel.inbox.mjd\"}"), 1);

  // MJD's inbox: the gauge matches what the inbox itself lists (the shared test broker's topic may
  // hold assignments of earlier tests, which a new inbox database reads too).
  std::size_t received_debt = 0;
  for (const v1::Assignment& a : Inbox("mjd")) {
    if (a.need_code() == "debt" && a.status() == v1::ASSIGNMENT_STATUS_RECEIVED) ++received_debt;
  }
  const std::string mjd = schakel::testing::ScrapeMetrics(Find("inbox-mjd").metrics_address);
  EXPECT_GE(received_debt, 1u);
  EXPECT_EQ(
      Sample(mjd,
             "schakel_inbox_assignments{need=\"debt\",organisation=\"mjd\",status=\"received\"}"),
      static_cast<double>(received_debt))
      << mjd;
  // The "received" status change goes out through the inbox's outbox relay, a moment after it is
  // stored.
  std::string relayed;
  EXPECT_TRUE(schakel::testing::Eventually(
      [&] {
        relayed = schakel::testing::ScrapeMetrics(Find("inbox-mjd").metrics_address);
        return Sample(relayed, "schakel_kafka_produced_total{topic=\"schakel.from.mjd\"}") >= 1;
      },
      std::chrono::seconds(20)))
      << relayed;

  // The inbox's consumer reports its lag on its own topic (librdkafka statistics, every 5 s), for
  // the partitions its group has committed on (the referral's partition at least).
  std::string lagging;
  EXPECT_TRUE(schakel::testing::Eventually(
      [&] {
        lagging = schakel::testing::ScrapeMetrics(Find("inbox-mjd").metrics_address);
        return std::regex_search(
            lagging,
            std::regex("\nschakel_kafka_consumer_lag\\{partition=\"[0-2]\",topic=\"schakel\\."
                       "inbox\\.mjd\"\\} [0-9]+\n"));
      },
      std::chrono::seconds(20)))
      << lagging;

  // No personal data in any label: the client code and the need details are nowhere.
  for (const std::string& text : {intake, router, mjd}) {
    EXPECT_EQ(text.find("TW-METRICS-0001"), std::string::npos);
    EXPECT_EQ(text.find("uitkering"), std::string::npos);
  }
}

TEST_F(NetworkE2eTest, RefusedReferralsAppearNowhere) {
  v1::Referral base;
  base.mutable_client()->set_client_code("E2E-1");
  base.add_needs()->set_code("health");
  base.set_urgency(v1::URGENCY_URGENT);
  base.set_region("groningen-ommeland");
  base.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  base.mutable_sharing()->add_organisations("ggd");

  const std::string marker = "refused-marker-" + std::to_string(::getpid());
  v1::Referral unknown_need = base;
  unknown_need.add_needs()->set_code("astrology");
  unknown_need.mutable_needs(0)->set_details(marker);
  v1::SubmitReferralResponse response;
  grpc::Status status = Submit(unknown_need, "mjd", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "referral.needs[1].code: unknown need 'astrology'");

  v1::Referral no_permission = base;
  no_permission.clear_sharing();
  no_permission.mutable_needs(0)->set_details(marker);
  status = Submit(no_permission, "mjd", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "referral.sharing: the client's sharing permission is required");

  // A valid referral after them has travelled all the way: had the refused ones been published,
  // they would be in Kafka by now too.
  ASSERT_TRUE(Submit(base, "mjd", &response).ok());
  const auto found = WaitForReferral(response.referral_id(), 1);
  EXPECT_EQ(found, (std::map<std::string, std::vector<std::string>>{{"ggd", {"health"}}}));
  EXPECT_FALSE(
      schakel::testing::AnyRecordContains(*kafka_, topology::AllTopics(*network_), marker));
  for (const routing::Organisation& org : network_->organisations) {
    for (const v1::Assignment& a : Inbox(org.id)) EXPECT_NE(a.need_details(), marker) << org.id;
  }
}

// Calls one lifecycle action on an organisation's inbox, as that organisation.
v1::Assignment Act(const std::string& address, const std::string& org, const std::string& action,
                   const v1::Assignment& current, const std::string& text = "") {
  auto stub = v1::InboxService::NewStub(schakel::testing::TestChannel(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  schakel::testing::PrepareCall(context, org);
  v1::ChangeAssignmentRequest request;
  request.set_assignment_id(current.assignment_id());
  request.set_expected_version(current.version());
  v1::Assignment changed;
  grpc::Status status;
  if (action == "accept") {
    status = stub->Accept(&context, request, &changed);
  } else if (action == "start") {
    status = stub->Start(&context, request, &changed);
  } else if (action == "complete") {
    request.set_outcome(text);
    status = stub->Complete(&context, request, &changed);
  } else {
    ADD_FAILURE() << "unknown action " << action;
  }
  EXPECT_TRUE(status.ok()) << org << " " << action << ": " << status.error_message();
  return changed;
}

TEST_F(NetworkE2eTest, SeedScenarioThroughToTheEndIsSeenByTheReferrer) {
  v1::Referral referral;
  referral.mutable_client()->set_client_code("LOOP-1");
  for (const char* code : {"debt", "income", "housing"}) referral.add_needs()->set_code(code);
  referral.set_urgency(v1::URGENCY_NORMAL);
  referral.set_region("groningen-stad");
  referral.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  for (const char* org : {"gemeente", "leger-des-heils", "mjd"}) {
    referral.mutable_sharing()->add_organisations(org);
  }
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(referral, "terwille", &submitted).ok());
  ASSERT_EQ(WaitForReferral(submitted.referral_id(), 3).size(), 3u);

  // Each organisation accepts, starts and completes its part.
  for (const std::string org : {"mjd", "gemeente", "leger-des-heils"}) {
    for (const v1::Assignment& a : Inbox(org)) {
      if (a.referral_id() != submitted.referral_id()) continue;
      EXPECT_EQ(a.status(), v1::ASSIGNMENT_STATUS_RECEIVED);
      const std::string address = Find("inbox-" + org).address;
      v1::Assignment done =
          Act(address, org, "complete", Act(address, org, "start", Act(address, org, "accept", a)),
              "help given by " + org);
      EXPECT_EQ(done.status(), v1::ASSIGNMENT_STATUS_COMPLETED);
      EXPECT_EQ(done.version(), 5u);
    }
  }

  // The referrer sees every step, in order, and the referral as done.
  auto intake = v1::IntakeService::NewStub(schakel::testing::TestChannel(Find("intake").address));
  v1::ReferralStatus status;
  for (int attempt = 0; attempt < 120 && !status.done(); ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    schakel::testing::PrepareCall(context, "terwille");
    v1::GetReferralRequest request;
    request.set_referral_id(submitted.referral_id());
    status.Clear();
    const grpc::Status got = intake->GetReferral(&context, request, &status);
    if (!got.ok() && got.error_code() != grpc::StatusCode::NOT_FOUND) FAIL() << got.error_message();
    if (!status.done()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  ASSERT_TRUE(status.done());
  ASSERT_EQ(status.needs_size(), 3);
  const std::map<std::string, std::string> owner = {
      {"debt", "mjd"}, {"income", "gemeente"}, {"housing", "leger-des-heils"}};
  for (const v1::NeedStatus& need : status.needs()) {
    EXPECT_EQ(need.organisation(), owner.at(need.need_code()));
    EXPECT_EQ(need.status(), v1::ASSIGNMENT_STATUS_COMPLETED);
    EXPECT_EQ(need.outcome(), "help given by " + owner.at(need.need_code()));
    std::vector<v1::AssignmentStatus> steps;
    for (const v1::ReferralEvent& e : need.history()) steps.push_back(e.to_status());
    EXPECT_EQ(steps, (std::vector<v1::AssignmentStatus>{
                         v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_RECEIVED,
                         v1::ASSIGNMENT_STATUS_ACCEPTED, v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                         v1::ASSIGNMENT_STATUS_COMPLETED}))
        << need.need_code();
  }
  // Another organisation cannot see it, and cannot tell whether it exists.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  schakel::testing::PrepareCall(context, "mjd");
  v1::GetReferralRequest request;
  request.set_referral_id(submitted.referral_id());
  v1::ReferralStatus other;
  EXPECT_EQ(intake->GetReferral(&context, request, &other).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace schakel
