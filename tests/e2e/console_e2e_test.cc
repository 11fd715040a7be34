// What an operator sees after the seed scenario: the ops service on a broker of its own (so every
// figure is exact), the real intake, router and six inboxes of the example network, then
//   - the console's JSON, `schakelctl queues` (with each inbox's lag) and the ops gauges;
//   - the console over HTTPS, for operators only: without a client certificate 401, with an
//     organisation's 403, on the real binary;
//   - the console in a real browser (Debian's Chromium driven by playwright-core,
//     tests/console/console_check.mjs) that presents the operator's certificate and trusts the
//     network's authority, as an operator's browser does: refused without it and with an
//     organisation's, then the figures on the page and a reassignment of the unroutable need
//     through the page's form; it saves a screenshot (build/console/console.png);
//   - the router acting on it: the need arrives in the chosen organisation's inbox, and the
//     decision is on the referral's timeline (schakelctl referral) and in the audit stream with
//     the operator who made it.
// Also: ops refuses schakelctl's reassignment outside the client's sharing permission.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "tests/support/local_kafka.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::Eventually;
using schakel::testing::HttpsRequest;
using schakel::testing::RunCommand;
using schakel::testing::TestNetwork;
using schakel::testing::TestTlsClient;

const std::string kSource = SCHAKEL_SOURCE_DIR;
const std::string kBinary = SCHAKEL_BINARY_DIR;
const std::string kNetworkFile = kSource + "/deploy/local/network.yaml";
const std::string kSchakelctl = kBinary + "/tools/schakelctl/schakelctl";

// A legal question for a client who allows only the municipality and Terwille: MJD, the only
// organisation for legal advice, is outside that permission, so nobody can take it.
v1::Referral LegalReferral() {
  v1::Referral referral;
  referral.mutable_client()->set_client_code("TW-CONSOLE-0002");
  v1::NeedRequest* need = referral.add_needs();
  need->set_code("legal");
  need->set_details("Vraag over een huurcontract.");
  referral.set_urgency(v1::URGENCY_NORMAL);
  referral.set_region("groningen-stad");
  referral.add_languages("nl");
  referral.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  referral.mutable_sharing()->add_organisations("gemeente");
  referral.mutable_sharing()->add_organisations("terwille");
  return referral;
}

class ConsoleE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("schakel-console-broker-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    kafka_ = std::make_unique<schakel::testing::LocalKafka>(dir_ / "kafka", 1);
    const absl::Status started = kafka_->Start();
    ASSERT_TRUE(started.ok()) << started;
    net_ = std::make_unique<TestNetwork>("console", kNetworkFile, kafka_->bootstrap());
    net_->LogJson();
    ASSERT_TRUE(net_->Prepare());
    net_->AddInboxes();
    net_->AddRouter("console-1");
    net_->AddIntake();
    net_->AddOps();
    ASSERT_TRUE(net_->StartAll());
  }

  void TearDown() override {
    net_.reset();
    kafka_.reset();
    std::filesystem::remove_all(dir_);
  }

  // As the test network's operator ("operator.operator.schakel", deploy/local/pki's default).
  nlohmann::json Overview() {
    const schakel::testing::HttpResponse r =
        HttpsRequest(net_->Find("ops").console_address, TestTlsClient("operator:operator"), "GET",
                     "/api/overview");
    EXPECT_EQ(r.status, 200) << r.body;
    const nlohmann::json o = nlohmann::json::parse(r.body, nullptr, false);
    return o.is_discarded() ? nlohmann::json::object() : o;
  }

  static const nlohmann::json* Organisation(const nlohmann::json& overview, const std::string& id) {
    for (const nlohmann::json& org : overview["organisations"]) {
      if (org["id"] == id) return &org;
    }
    return nullptr;
  }

  std::filesystem::path dir_;
  std::unique_ptr<schakel::testing::LocalKafka> kafka_;
  std::unique_ptr<TestNetwork> net_;
};

TEST_F(ConsoleE2eTest, AnOperatorSeesTheQueuesAndReassignsWhatNobodyCouldTake) {
  // The seed scenario: debt to MJD, income to the municipality, housing to the Salvation Army.
  v1::SubmitReferralResponse seed;
  ASSERT_TRUE(net_->Submit(schakel::testing::SeedReferral(), "terwille", &seed).ok());
  ASSERT_EQ(seed.assignment_ids_size(), 3);
  v1::SubmitReferralResponse legal;
  ASSERT_TRUE(net_->Submit(LegalReferral(), "terwille", &legal).ok());
  std::optional<v1::Assignment> debt =
      net_->WaitForStatus("mjd", seed.assignment_ids(0), v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(debt.has_value());
  v1::Assignment accepted;
  ASSERT_TRUE(net_->Accept("mjd", *debt, &accepted).ok());
  ASSERT_TRUE(
      net_->WaitForStatus("gemeente", seed.assignment_ids(1), v1::ASSIGNMENT_STATUS_RECEIVED));
  ASSERT_TRUE(net_->WaitForStatus("leger-des-heils", seed.assignment_ids(2),
                                  v1::ASSIGNMENT_STATUS_RECEIVED));

  // The console's figures, once the ops service has read everything (and each inbox's lag is 0).
  nlohmann::json overview;
  ASSERT_TRUE(Eventually(
      [&] {
        overview = Overview();
        const nlohmann::json* mjd = Organisation(overview, "mjd");
        const nlohmann::json* gemeente = Organisation(overview, "gemeente");
        return mjd != nullptr && gemeente != nullptr && (*mjd)["accepted"] == 1 &&
               (*mjd)["lag"] == 0 && (*gemeente)["lag"] == 0 && overview["unroutable"].size() == 1;
      },
      std::chrono::seconds(60)))
      << overview.dump(2);
  const nlohmann::json& mjd = *Organisation(overview, "mjd");
  EXPECT_EQ(mjd["waiting"], 0);
  EXPECT_EQ(mjd["overdue"], 0);
  EXPECT_EQ(mjd["in_progress"], 0);
  EXPECT_DOUBLE_EQ(mjd["offered_per_minute"].get<double>(), 0.2);  // one offer in five minutes
  EXPECT_DOUBLE_EQ(mjd["accepted_per_minute"].get<double>(), 0.2);
  EXPECT_EQ((*Organisation(overview, "gemeente"))["waiting"], 1);
  EXPECT_EQ((*Organisation(overview, "leger-des-heils"))["waiting"], 1);
  EXPECT_EQ((*Organisation(overview, "ggd"))["waiting"], 0);
  const nlohmann::json& unroutable = overview["unroutable"][0];
  EXPECT_EQ(unroutable["referral_id"], legal.referral_id());
  EXPECT_EQ(unroutable["need_index"], 0);
  EXPECT_EQ(unroutable["need_code"], "legal");
  EXPECT_EQ(unroutable["referring_organisation"], "terwille");
  EXPECT_EQ(unroutable["reassigned_to"], "");
  std::string mjd_reason;
  for (const nlohmann::json& p : unroutable["passed_over"]) {
    if (p["organisation"] == "mjd") mjd_reason = p["reason"];
  }
  EXPECT_EQ(mjd_reason, "not covered by the client's sharing permission")
      << unroutable["passed_over"].dump();
  EXPECT_EQ(overview["dead_letters"].size(), 0u);
  EXPECT_EQ(overview["kafka"]["reachable"], true);
  EXPECT_EQ(overview["operator"], "operator");
  // No personal data: neither client code nor any need's details.
  EXPECT_EQ(overview.dump().find("TW-"), std::string::npos);
  EXPECT_EQ(overview.dump().find("huurcontract"), std::string::npos);

  // Nobody else gets them: no certificate 401, an organisation's 403, and neither answer holds a
  // figure.
  const std::string console = net_->Find("ops").console_address;
  for (const std::string path : {"/", "/api/overview"}) {
    const schakel::testing::HttpResponse anonymous =
        HttpsRequest(console, TestTlsClient(), "GET", path);
    EXPECT_EQ(anonymous.status, 401) << path << ": " << anonymous.body;
    const schakel::testing::HttpResponse organisation =
        HttpsRequest(console, TestTlsClient("terwille"), "GET", path);
    EXPECT_EQ(organisation.status, 403) << path << ": " << organisation.body;
    for (const std::string& body : {anonymous.body, organisation.body}) {
      EXPECT_EQ(body.find("gemeente"), std::string::npos) << body;
      EXPECT_EQ(body.find(legal.referral_id()), std::string::npos) << body;
    }
  }
  const std::string reassign_body = nlohmann::json{
      {"referral_id", legal.referral_id()},
      {"need_index", 0},
      {"organisation", "gemeente"},
      {"reason", "not by an operator"}}.dump();
  EXPECT_EQ(HttpsRequest(console, TestTlsClient("terwille"), "POST", "/api/reassign", reassign_body)
                .status,
            403);
  EXPECT_EQ(HttpsRequest(console, TestTlsClient(), "POST", "/api/reassign", reassign_body).status,
            401);
  // Plain HTTP gets no answer at all.
  EXPECT_EQ(schakel::testing::HttpRequest(console, "GET", "/api/overview").status, 0);

  // The same figures from the command line, with each inbox's lag.
  std::string queues;
  ASSERT_EQ(
      RunCommand({kSchakelctl, "queues", "--network", kNetworkFile, "--kafka", kafka_->bootstrap()},
                 &queues),
      0)
      << queues;
  EXPECT_NE(queues.find("LAG"), std::string::npos) << queues;
  EXPECT_NE(queues.find(
                "mjd                             0        0         1            0       0      0"),
            std::string::npos)
      << queues;
  EXPECT_NE(queues.find(
                "gemeente                        1        0         0            0       0      0"),
            std::string::npos)
      << queues;

  // Outside the client's sharing permission, ops refuses schakelctl's request (and sends nothing).
  // schakelctl asks ops with the operator's certificate: it writes no Kafka topic itself.
  std::string refused;
  EXPECT_EQ(RunCommand({kSchakelctl, "--pki", schakel::testing::TestPki().string(), "unroutable",
                        "reassign", legal.referral_id(), "0", "mjd", "--reason",
                        "MJD is the legal desk", "--ops", console},
                       &refused),
            1);
  EXPECT_NE(refused.find("unroutable reassign: organisation: 'mjd' is not covered by the "
                         "client's sharing permission"),
            std::string::npos)
      << refused;

  // The browser: the figures on the page, then the reassignment through the form. The
  // municipality agreed to take the legal question at its desk.
  std::string install;
  ASSERT_EQ(RunCommand({"/bin/bash", kSource + "/tests/console/install"}, &install), 0) << install;
  const std::filesystem::path shots = std::filesystem::path(kBinary) / "console";
  std::filesystem::create_directories(shots);
  const nlohmann::json expect = {
      {"organisations",
       {{"mjd", {{"waiting", 0}, {"overdue", 0}, {"accepted", 1}, {"lag", 0}}},
        {"gemeente", {{"waiting", 1}, {"accepted", 0}}},
        {"leger-des-heils", {{"waiting", 1}}},
        {"ggd", {{"waiting", 0}, {"done", 0}}}}},
      {"unroutable",
       {{{"referral_id", legal.referral_id()}, {"need_index", 0}, {"need_code", "legal"}}}},
      {"dead_letters", 0},
      {"operator", "operator"},
      {"reassign",
       {{"referral_id", legal.referral_id()},
        {"need_index", 0},
        {"organisation", "gemeente"},
        {"reason", "agreed by phone: the municipality's desk answers legal questions"}}}};
  const std::string expect_file = (net_->dir() / "console-expect.json").string();
  std::ofstream(expect_file) << expect.dump(2);
  // The operator's browser: the network's authority trusted, the operator's certificate in it.
  const schakel::testing::TlsClientFiles operator_files = TestTlsClient("operator:operator");
  const schakel::testing::TlsClientFiles terwille_files = TestTlsClient("terwille");
  std::string browser;
  const int checked =
      RunCommand({"/usr/bin/env", "node", kSource + "/tests/console/console_check.mjs", "--url",
                  "https://" + console + "/", "--expect", expect_file, "--screenshot",
                  (shots / "console.png").string(), "--ca", operator_files.ca, "--cert",
                  operator_files.cert, "--key", operator_files.key, "--refused-cert",
                  terwille_files.cert, "--refused-key", terwille_files.key},
                 &browser);
  EXPECT_EQ(checked, 0) << browser;
  std::cout << browser;
  // The browser was refused without the operator's certificate, and with an organisation's.
  EXPECT_NE(browser.find("ok    without a client certificate: refused with 401"), std::string::npos)
      << browser;
  EXPECT_NE(browser.find("ok    with terwille.pem: refused with 403"), std::string::npos)
      << browser;
  EXPECT_NE(browser.find("ok    signed in: \"Operator operator\""), std::string::npos) << browser;

  // The router offered it to the municipality, continuing the unroutable need.
  const std::string next = legal.assignment_ids(0) + ".1";
  std::optional<v1::Assignment> offered =
      net_->WaitForStatus("gemeente", next, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(offered.has_value());
  EXPECT_EQ(offered->need_code(), "legal");
  EXPECT_EQ(offered->need_details(), "Vraag over een huurcontract.");

  // Operators see it done, and who decided, in the referral's timeline.
  std::string list;
  ASSERT_TRUE(Eventually(
      [&] {
        RunCommand(
            {kSchakelctl, "unroutable", "--network", kNetworkFile, "--kafka", kafka_->bootstrap()},
            &list);
        return list.find("    reassigned to gemeente\n") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << list;
  std::string timeline;
  ASSERT_EQ(RunCommand({kSchakelctl, "referral", legal.referral_id(), "--network", kNetworkFile,
                        "--kafka", kafka_->bootstrap()},
                       &timeline),
            0)
      << timeline;
  EXPECT_NE(timeline.find(legal.assignment_ids(0) +
                          "  REASSIGN to gemeente by console:operator  (\"agreed by phone: the "
                          "municipality's desk answers legal questions\")"),
            std::string::npos)
      << timeline;
  EXPECT_NE(
      timeline.find(next + "  legal  gemeente  UNSPECIFIED -> REQUESTED  by network  (continues " +
                    legal.assignment_ids(0) + " (unroutable; reassigned by console:operator))"),
      std::string::npos)
      << timeline;

  // The audit stream names the operator too (the ops service's chain).
  std::string audit;
  ASSERT_EQ(RunCommand({kSchakelctl, "audit", "export", "--kafka", kafka_->bootstrap()}, &audit), 0)
      << audit;
  std::vector<nlohmann::json> reassigned;
  std::istringstream audit_lines(audit);
  for (std::string line; std::getline(audit_lines, line);) {
    const nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("action", "") == "unroutable.reassigned") {
      reassigned.push_back(entry);
    }
  }
  ASSERT_EQ(reassigned.size(), 1u) << audit;
  EXPECT_EQ(reassigned[0]["writer"], "ops") << reassigned[0].dump();
  EXPECT_EQ(reassigned[0]["actor"]["kind"], "OPERATOR") << reassigned[0].dump();
  EXPECT_EQ(reassigned[0]["actor"]["id"], "console:operator") << reassigned[0].dump();
  EXPECT_EQ(reassigned[0]["subject"]["referral_id"], legal.referral_id()) << reassigned[0].dump();

  // The gauges: the legal need waits at the municipality; the unroutable queue is empty.
  std::string gauges;
  ASSERT_TRUE(Eventually(
      [&] {
        gauges = schakel::testing::ScrapeMetrics(net_->Find("ops").metrics_address);
        return gauges.find(
                   "schakel_assignments{need=\"legal\",organisation=\"gemeente\","
                   "state=\"waiting\"} 1") != std::string::npos;
      },
      std::chrono::seconds(30)))
      << gauges;
  EXPECT_NE(gauges.find("schakel_assignments{need=\"debt\",organisation=\"mjd\","
                        "state=\"accepted\"} 1"),
            std::string::npos)
      << gauges;
  EXPECT_EQ(gauges.find("schakel_unroutable_needs{"), std::string::npos) << gauges;
  EXPECT_NE(gauges.find("schakel_inbox_lag{organisation=\"mjd\"} 0"), std::string::npos) << gauges;
  EXPECT_EQ(gauges.find("TW-"), std::string::npos);

  // The logs: one JSON object per line, the ids of what happened as fields, no personal data.
  std::map<std::string, std::size_t> lines_naming_legal;
  for (const char* name : {"intake", "router-console-1", "inbox-gemeente", "ops"}) {
    const std::string log = net_->Find(name).process->ReadLog();
    std::istringstream in(log);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      const nlohmann::json entry = nlohmann::json::parse(line, nullptr, false);
      ASSERT_TRUE(entry.is_object()) << name << ": not a JSON line: " << line;
      EXPECT_TRUE(entry.contains("time") && entry.contains("level") && entry.contains("msg"))
          << line;
      EXPECT_EQ(entry.value("service", ""),
                name == std::string("router-console-1") ? std::string("router") : name)
          << line;
      if (entry.contains("referral_ids") &&
          entry["referral_ids"].dump().find(legal.referral_id()) != std::string::npos) {
        ++lines_naming_legal[name];
      }
    }
    for (const char* personal :
         {"TW-CONSOLE", "TW-DEMO", "huurcontract", "schulden", "uitkering"}) {
      EXPECT_EQ(log.find(personal), std::string::npos) << name << " logged " << personal;
    }
  }
  // The router logged the reassignment, the ops service sending it: both name the referral.
  EXPECT_GE(lines_naming_legal["router-console-1"], 1u);
  EXPECT_GE(lines_naming_legal["ops"], 1u);
}

}  // namespace
}  // namespace schakel
