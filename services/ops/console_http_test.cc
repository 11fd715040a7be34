#include "services/ops/console_http.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel::ops {
namespace {

using schakel::testing::HttpResponse;
using schakel::testing::HttpsExchange;
using schakel::testing::HttpsRequest;
using schakel::testing::TlsClientFiles;

// Certificates of a network of our own (openssl, as deploy/local/pki makes them): the authority,
// the ops service's, an operator's (anna), an organisation's (mjd), and an operator's from another
// authority (eve).
class Pki {
 public:
  static const Pki& Get() {
    static const Pki pki;
    return pki;
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  TlsClientFiles Client(const std::string& holder) const {
    TlsClientFiles files{Path("ca.pem")};
    if (!holder.empty()) {
      files.cert = Path(holder + ".pem");
      files.key = Path(holder + ".key");
    }
    return files;
  }
  ConsoleTls Server() const { return {Path("ops.pem"), Path("ops.key"), Path("ca.pem")}; }

 private:
  Pki() {
    dir_ = std::filesystem::temp_directory_path() /
           ("schakel-console-pki-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string script = R"(set -e
cd "$1"
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=$2" -keyout "$1.key" -out "$1.pem" 2>/dev/null; }
issue() {  # issue NAME CN CA USAGE
  printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
    "extendedKeyUsage=$4" 'subjectAltName=IP:127.0.0.1,DNS:localhost' >"$1.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
    -keyout "$1.key" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
ca ca "Test network authority"
ca other-ca "Another authority"
issue ops ops.service.schakel ca serverAuth,clientAuth
issue anna anna.operator.schakel ca clientAuth
issue mjd mjd.organisation.schakel ca clientAuth
issue eve eve.operator.schakel other-ca clientAuth
)";
    std::string output;
    const int status =
        schakel::testing::RunCommand({"/bin/bash", "-c", script, "pki", dir_.string()}, &output);
    EXPECT_EQ(status, 0) << output;
  }
  std::filesystem::path dir_;
};

// An overview that names things only an operator may see.
const nlohmann::json kOverview = {
    {"organisations", nlohmann::json::array({{{"id", "secret-org"}, {"waiting", 7}}})}};
const std::string kReassignBody =
    R"({"referral_id": "r-1", "need_index": 0, "organisation": "mjd", "reason": "x"})";

class ConsoleServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = "127.0.0.1:" + std::to_string(schakel::testing::FreePort());
    absl::StatusOr<std::unique_ptr<ConsoleServer>> server = ConsoleServer::Start(
        address_, Pki::Get().Server(), [] { return kOverview; },
        [this](const ReassignRequest& r) {
          asked_.push_back(r);
          return answer_;
        },
        [this](const RedriveRequest& r) -> absl::StatusOr<nlohmann::json> {
          redrives_.push_back(r);
          if (!answer_.ok()) return answer_;
          return nlohmann::json{{"dead_letter", "done"}};
        });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  // As the operator anna, unless `holder` names another certificate ("" for none).
  HttpResponse Get(const std::string& path, const std::string& holder = "anna") {
    return HttpsRequest(address_, Pki::Get().Client(holder), "GET", path);
  }
  HttpResponse Post(const std::string& body, const std::string& holder = "anna") {
    return HttpsRequest(address_, Pki::Get().Client(holder), "POST", "/api/reassign", body);
  }
  // The request exactly as given (HttpsRequest sets its own headers), as anna.
  HttpResponse RawRequest(const std::string& request) {
    return HttpsExchange(address_, Pki::Get().Client("anna"), request);
  }
  std::string JsonPost(const std::string& headers, const std::string& body) {
    return "POST /api/reassign HTTP/1.0\r\nHost: " + address_ + "\r\n" + headers +
           "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
  }

  std::string address_;
  std::unique_ptr<ConsoleServer> server_;
  std::vector<ReassignRequest> asked_;
  std::vector<RedriveRequest> redrives_;
  absl::Status answer_;
};

// Every path there is, and one there is not: the answer to a caller who may not come in must not
// tell them which exist.
const std::vector<std::string> kPaths = {
    "/", "/index.html", "/app.js", "/style.css", "/api/overview", "/api/reassign", "/nothing.js"};

TEST_F(ConsoleServerTest, WithoutACertificateEveryPathIs401AndShowsNothing) {
  for (const std::string& path : kPaths) {
    const HttpResponse r = Get(path, /*holder=*/"");
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(r.body,
              R"({"error":"an operator's client certificate (<name>.operator.schakel, from the )"
              R"(network's certificate authority) is required"})")
        << path;
  }
  const HttpResponse post = Post(kReassignBody, /*holder=*/"");
  EXPECT_EQ(post.status, 401);
  EXPECT_EQ(post.body.find("secret-org"), std::string::npos);
  EXPECT_TRUE(asked_.empty());
}

TEST_F(ConsoleServerTest, AnOrganisationsCertificateIs403OnEveryPathAndShowsNothing) {
  for (const std::string& path : kPaths) {
    const HttpResponse r = Get(path, "mjd");
    EXPECT_EQ(r.status, 403) << path;
    EXPECT_EQ(r.body, R"({"error":"only operators may use the console"})") << path;
  }
  const HttpResponse post = Post(kReassignBody, "mjd");
  EXPECT_EQ(post.status, 403);
  EXPECT_EQ(post.body, R"({"error":"only operators may use the console"})");
  EXPECT_TRUE(asked_.empty());
}

TEST_F(ConsoleServerTest, AServicesCertificateIs403) {
  // The ops service's own certificate is signed by the same authority, but names no operator.
  EXPECT_EQ(Get("/api/overview", "ops").status, 403);
  EXPECT_EQ(Post(kReassignBody, "ops").status, 403);
  EXPECT_TRUE(asked_.empty());
}

TEST_F(ConsoleServerTest, AnotherAuthoritysOperatorGetsNoConnection) {
  // Refused in the TLS handshake, as on the gRPC ports: no HTTP answer at all.
  EXPECT_EQ(Get("/api/overview", "eve").status, 0);
  EXPECT_EQ(Post(kReassignBody, "eve").status, 0);
  EXPECT_TRUE(asked_.empty());
  EXPECT_EQ(Get("/api/overview").status, 200);  // the server still serves
}

TEST_F(ConsoleServerTest, PlainHttpGetsNoAnswer) {
  EXPECT_EQ(schakel::testing::HttpRequest(address_, "GET", "/api/overview").status, 0);
}

TEST_F(ConsoleServerTest, TheServerIsVerifiedAgainstTheNetworksAuthority) {
  // A client that trusts another authority refuses the console's certificate.
  TlsClientFiles other = Pki::Get().Client("anna");
  other.ca = Pki::Get().Path("other-ca.pem");
  EXPECT_EQ(HttpsRequest(address_, other, "GET", "/").status, 0);
}

TEST_F(ConsoleServerTest, AnOperatorGetsThePageItsScriptAndTheOverview) {
  const HttpResponse page = Get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.headers.find("Content-Type: text/html"), std::string::npos);
  EXPECT_NE(page.body.find("<title>Schakel"), std::string::npos);
  const HttpResponse script = Get("/app.js");
  EXPECT_EQ(script.status, 200);
  // A module script runs only when served as JavaScript.
  EXPECT_NE(script.headers.find("Content-Type: text/javascript"), std::string::npos);
  EXPECT_NE(script.headers.find("Content-Security-Policy: default-src 'self'"), std::string::npos);
  const HttpResponse overview = Get("/api/overview");
  EXPECT_EQ(overview.status, 200);
  // The figures, and who is signed in (from the certificate).
  EXPECT_EQ(overview.body,
            R"({"operator":"anna","organisations":[{"id":"secret-org","waiting":7}]})");
  EXPECT_NE(overview.headers.find("Strict-Transport-Security: max-age="), std::string::npos);
  EXPECT_EQ(Get("/../../etc/passwd").status, 404);
  EXPECT_EQ(Get("/nothing.js").status, 404);
}

TEST_F(ConsoleServerTest, AReassignmentIsHandedOnWithTheOperatorWhoMadeIt) {
  // A "by" in the body changes nothing: who asks comes from the certificate.
  const HttpResponse r =
      Post(R"({"referral_id": "r-1", "need_index": 2, "organisation": "mjd", "reason": "by phone",)"
           R"( "by": "console:mallory"})");
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, R"({"requested":true})");
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].referral_id, "r-1");
  EXPECT_EQ(asked_[0].need_index, 2u);
  EXPECT_EQ(asked_[0].organisation, "mjd");
  EXPECT_EQ(asked_[0].reason, "by phone");
  EXPECT_EQ(asked_[0].by, "console:anna");
}

// The operators' API for redrives (schakelctl dlq redrive, as the page would): only operators, the
// actor from the certificate, the redriver's refusal as the status with its reason.
TEST_F(ConsoleServerTest, ARedriveIsHandedOnWithTheOperatorWhoAskedForIt) {
  const std::string body =
      R"({"dead_letter_topic": "schakel.deadletters.inbox-mjd", "partition": 1, "offset": 12,)"
      R"( "by": "console:mallory"})";
  auto redrive = [&](const std::string& holder) {
    return HttpsRequest(address_, Pki::Get().Client(holder), "POST", "/api/redrive", body);
  };
  EXPECT_EQ(redrive("").status, 401);
  EXPECT_EQ(redrive("mjd").status, 403);
  EXPECT_EQ(redrive("ops").status, 403);
  EXPECT_TRUE(redrives_.empty());
  const HttpResponse r = redrive("anna");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"redriven":{"dead_letter":"done"}})");
  ASSERT_EQ(redrives_.size(), 1u);
  EXPECT_EQ(redrives_[0].dead_letter_topic, "schakel.deadletters.inbox-mjd");
  EXPECT_EQ(redrives_[0].partition, 1);
  EXPECT_EQ(redrives_[0].offset, 12);
  EXPECT_EQ(redrives_[0].by, "console:anna");

  answer_ = absl::FailedPreconditionError("refused: planted");
  const HttpResponse refused = redrive("anna");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(refused.body, R"({"error":"refused: planted"})");
  const HttpResponse bad = HttpsRequest(address_, Pki::Get().Client("anna"), "POST", "/api/redrive",
                                        R"({"partition": 1, "offset": 12})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, R"({"error":"dead_letter_topic: required"})");
  EXPECT_EQ(redrives_.size(), 2u);
}

TEST_F(ConsoleServerTest, TheCheckersAnswerBecomesTheHttpStatus) {
  const std::string body = kReassignBody;
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
  // The operator's browser presents the certificate to whichever page makes it connect here.
  const std::string body = kReassignBody;
  // A form on another site can post text/plain without asking first; JSON needs a preflight.
  HttpResponse r = RawRequest(
      "POST /api/reassign HTTP/1.0\r\nContent-Type: text/plain\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 415) << r.body;
  r = RawRequest(JsonPost("Origin: https://evil.example\r\n", body));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(r.body, R"({"error":"only the console's own page may reassign"})");
  // The console's address, but not over HTTPS: another page.
  r = RawRequest(JsonPost("Origin: http://" + address_ + "\r\n", body));
  EXPECT_EQ(r.status, 403) << r.body;
  // A browser that names the request cross-site, whatever else it says.
  r = RawRequest(JsonPost("Sec-Fetch-Site: cross-site\r\n", body));
  EXPECT_EQ(r.status, 403) << r.body;
  r = RawRequest(
      JsonPost("Origin: https://" + address_ + "\r\nSec-Fetch-Site: same-site\r\n", body));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_TRUE(asked_.empty());
  // The console's own page sends its own origin.
  r = RawRequest(
      JsonPost("Origin: https://" + address_ + "\r\nSec-Fetch-Site: same-origin\r\n", body));
  EXPECT_EQ(r.status, 202) << r.body;
  ASSERT_EQ(asked_.size(), 1u);
  EXPECT_EQ(asked_[0].by, "console:anna");
}

TEST_F(ConsoleServerTest, NothingAnswersAfterStop) {
  server_->Stop();
  EXPECT_EQ(Get("/").status, 0);
  server_->Stop();  // twice is fine
}

TEST(ConsoleServerStartTest, RefusesToStartWithoutItsTlsFiles) {
  const std::string address = "127.0.0.1:" + std::to_string(schakel::testing::FreePort());
  auto overview = [] { return nlohmann::json::object(); };
  auto reassign = [](const ReassignRequest&) { return absl::OkStatus(); };
  absl::StatusOr<std::unique_ptr<ConsoleServer>> server =
      ConsoleServer::Start(address, ConsoleTls{}, overview, reassign);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server.status().message(),
            "console: TLS is required: --tls-cert, --tls-key and --tls-ca");
  ConsoleTls missing = Pki::Get().Server();
  missing.key = "/nonexistent/ops.key";
  server = ConsoleServer::Start(address, missing, overview, reassign);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(server.status().message(), "console: --tls-key /nonexistent/ops.key cannot be read");
  // A key that is not the certificate's.
  ConsoleTls mismatched = Pki::Get().Server();
  mismatched.key = Pki::Get().Path("anna.key");
  server = ConsoleServer::Start(address, mismatched, overview, reassign);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(server.status().message(), "console: --tls-key " + mismatched.key +
                                                              " (is it --tls-cert's key?)"))
      << server.status();
}

}  // namespace
}  // namespace schakel::ops
