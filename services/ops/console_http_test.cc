#include "services/ops/console_http.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/kafka_test_env.h"
#include "tests/support/test_network.h"

namespace schakel::ops {
namespace {

using schakel::testing::HttpRequest;
using schakel::testing::HttpResponse;

class ConsoleServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = "127.0.0.1:" + std::to_string(schakel::testing::FreePort());
    absl::StatusOr<std::unique_ptr<ConsoleServer>> server = ConsoleServer::Start(
        address_,
        [] {
          return nlohmann::json{{"organisations", nlohmann::json::array()}};
        },
        [this](const ReassignRequest& r) {
          asked_.push_back(r);
          return answer_;
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  HttpResponse Post(const std::string& body) {
    return HttpRequest(address_, "POST", "/api/reassign", body);
  }
  // The request exactly as given (HttpRequest sets its own headers).
  HttpResponse RawRequest(const std::string& request) {
    return schakel::testing::HttpExchange(address_, request);
  }

  std::string address_;
  std::unique_ptr<ConsoleServer> server_;
  std::vector<ReassignRequest> asked_;
  absl::Status answer_;
};

TEST_F(ConsoleServerTest, ServesThePageItsScriptAndTheOverview) {
  const HttpResponse page = HttpRequest(address_, "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.headers.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.body.find("<title>Schakel"), std::string::npos);
  const HttpResponse script = HttpRequest(address_, "GET", "/app.js");
  EXPECT_EQ(script.status, 200);
  // A module script runs only when served as JavaScript.
  EXPECT_NE(script.headers.find("Content-Type: text/javascript"), std::string::npos);
  EXPECT_NE(script.headers.find("Content-Security-Policy: default-src 'self'"), std::string::npos);
  const HttpResponse overview = HttpRequest(address_, "GET", "/api/overview");
  EXPECT_EQ(overview.status, 200);
  EXPECT_EQ(overview.body, R"({"organisations":[]})");
  EXPECT_EQ(HttpRequest(address_, "GET", "/../../etc/passwd").status, 404);
  EXPECT_EQ(HttpRequest(address_, "GET", "/nothing.js").status, 404);
}

TEST_F(ConsoleServerTest, AReassignmentIsHandedOnAndAccepted) {
  const HttpResponse r = Post(
      R"({"referral_id": "r-1", "need_index": 2, "organisation": "mjd", "reason": "by phone"})");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, R"({"requested":true})");
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].referral_id, "r-1");
  EXPECT_EQ(asked_[0].need_index, 2u);
  EXPECT_EQ(asked_[0].organisation, "mjd");
  EXPECT_EQ(asked_[0].reason, "by phone");
}

TEST_F(ConsoleServerTest, TheCheckersAnswerBecomesTheHttpStatus) {
  const std::string body =
      R"({"referral_id": "r-1", "need_index": 0, "organisation": "mjd", "reason": "x"})";
  answer_ = absl::NotFoundError("no need 0 of referral r-1 in the unroutable queue");
  HttpResponse r = Post(body);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"no need 0 of referral r-1 in the unroutable queue"})");
  answer_ = absl::FailedPreconditionError("reassigned already");
  EXPECT_EQ(Post(body).status, 409);
  answer_ = absl::UnavailableError("Kafka did not acknowledge the reassignment in time");
  EXPECT_EQ(Post(body).status, 503);
  answer_ = absl::InvalidArgumentError("organisation: 'x' is not in the network");
  EXPECT_EQ(Post(body).status, 400);
}

struct BadBody {
  std::string name;
  std::string body;
  std::string error;
};
void PrintTo(const BadBody& c, std::ostream* os) { *os << c.name; }

class BadBodyTest : public ConsoleServerTest, public ::testing::WithParamInterface<BadBody> {};

TEST_P(BadBodyTest, IsRefusedWithTheFieldAndNothingIsAsked) {
  const HttpResponse r = Post(GetParam().body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, nlohmann::json({{"error", GetParam().error}}).dump());
  EXPECT_TRUE(asked_.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadBodyTest,
    ::testing::Values(
        BadBody{"NotJson", "referral=r-1", "body: not a JSON object"},
        BadBody{"NotAnObject", "[1, 2]", "body: not a JSON object"},
        BadBody{"NoReferral", R"({"need_index": 0, "organisation": "mjd", "reason": "x"})",
                "referral_id: required"},
        BadBody{"ReferralNotText",
                R"({"referral_id": 7, "need_index": 0, "organisation": "mjd", "reason": "x"})",
                "referral_id: must be a string"},
        BadBody{"NoNeedIndex", R"({"referral_id": "r-1", "organisation": "mjd", "reason": "x"})",
                "need_index: required"},
        BadBody{"NegativeNeedIndex",
                R"({"referral_id": "r-1", "need_index": -1, "organisation": "mjd", "reason": "x"})",
                "need_index: must be a whole number from 0 to 1000"},
        BadBody{
            "NeedIndexAsText",
            R"({"referral_id": "r-1", "need_index": "1", "organisation": "mjd", "reason": "x"})",
            "need_index: must be a whole number from 0 to 1000"},
        BadBody{"NoOrganisation", R"({"referral_id": "r-1", "need_index": 0, "reason": "x"})",
                "organisation: required"},
        BadBody{"NoReason", R"({"referral_id": "r-1", "need_index": 0, "organisation": "mjd"})",
                "reason: required"}),
    [](const ::testing::TestParamInfo<BadBody>& param_info) { return param_info.param.name; });

TEST_F(ConsoleServerTest, AnOversizedBodyIsRefused) {
  const std::string body = R"({"referral_id": ")" + std::string(20'000, 'r') + R"("})";
  const HttpResponse r = Post(body);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, R"({"error":"body: at most 16384 bytes"})");
  EXPECT_TRUE(asked_.empty());
}

TEST_F(ConsoleServerTest, AnotherSitesPageCannotReassign) {
  const std::string body =
      R"({"referral_id": "r-1", "need_index": 0, "organisation": "mjd", "reason": "x"})";
  // A form on another site can post text/plain without asking first; JSON needs a preflight.
  HttpResponse r = RawRequest(
      "POST /api/reassign HTTP/1.0\r\nContent-Type: text/plain\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 415) << r.body;
  r = RawRequest("POST /api/reassign HTTP/1.0\r\nHost: " + address_ +
                 "\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\n"
                 "Content-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_TRUE(asked_.empty());
  // The console's own page sends its own origin.
  r = RawRequest("POST /api/reassign HTTP/1.0\r\nHost: " + address_ + "\r\nOrigin: http://" +
                 address_ + "\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 202) << r.body;
}

TEST_F(ConsoleServerTest, NothingAnswersAfterStop) {
  server_->Stop();
  EXPECT_EQ(HttpRequest(address_, "GET", "/").status, 0);
  server_->Stop();  // twice is fine
}

}  // namespace
}  // namespace schakel::ops
