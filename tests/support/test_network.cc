#include "tests/support/test_network.h"

#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/kafka_test_env.h"

namespace schakel::testing {

namespace {
const std::string kBinary = SCHAKEL_BINARY_DIR;
const std::string kSource = SCHAKEL_SOURCE_DIR;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}
}  // namespace

const std::filesystem::path& TestPki() {
  // tests/run makes one for the whole run (its broker trusts that authority); alone, a test process
  // makes its own, and its own Kafka clients are the admin of it.
  static const std::filesystem::path dir = [] {
    const char* shared = std::getenv("SCHAKEL_TEST_PKI");
    std::filesystem::path d = shared != nullptr && *shared != '\0'
                                  ? std::filesystem::path(shared)
                                  : std::filesystem::temp_directory_path() /
                                        ("schakel-pki-" + std::to_string(::getpid()));
    ::setenv("SCHAKEL_KAFKA_CONFIG", (d / "kafka" / "admin.properties").c_str(), /*overwrite=*/0);
    return d;
  }();
  return dir;
}

v1::Referral SeedReferral() {
  std::ifstream in(kSource + "/deploy/local/demo/seed-referral.json");
  std::stringstream json;
  json << in.rdbuf();
  v1::Referral referral;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json.str(), &referral).ok());
  return referral;
}

std::string TestKafkaConfig(const std::string& principal) {
  return (TestPki() / "kafka" / (principal + ".properties")).string();
}

::testing::AssertionResult EnsureTestPki(const std::string& network_file) {
  static std::mutex mu;
  std::lock_guard lock(mu);
  std::string output;
  if (RunCommand({kSource + "/deploy/local/pki", "create", "--dir", TestPki().string(), "--network",
                  network_file, "--schakelctl", kBinary + "/tools/schakelctl/schakelctl"},
                 &output) != 0) {
    return ::testing::AssertionFailure() << "deploy/local/pki: " << output;
  }
  return ::testing::AssertionSuccess();
}

std::shared_ptr<grpc::ChannelCredentials> TestCredentials(
    const std::string& client_certificate_of) {
  const TlsClientFiles files = TestTlsClient(client_certificate_of);
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadFile(files.ca);
  if (!files.cert.empty()) {
    options.pem_cert_chain = ReadFile(files.cert);
    options.pem_private_key = ReadFile(files.key);
  }
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::Channel> TestChannel(const std::string& address,
                                           const std::string& client_certificate_of) {
  return grpc::CreateChannel(address, TestCredentials(client_certificate_of));
}

std::string TestToken(const std::string& organisation) {
  std::string token = ReadFile(TestPki() / "organisations" / (organisation + ".token"));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  return token;
}

namespace {

// A connected TCP socket to host:port, or -1.
int Connect(const std::string& address) {
  const std::size_t colon = address.rfind(':');
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(address.substr(colon + 1))));
  ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

HttpResponse ParseResponse(const std::string& response) {
  const std::size_t end = response.find("\r\n\r\n");
  if (end == std::string::npos || response.size() < 12) return {};
  HttpResponse out;
  out.status = std::atoi(response.substr(9, 3).c_str());  // "HTTP/1.1 200 OK"
  out.headers = response.substr(0, end);
  out.body = response.substr(end + 4);
  return out;
}

std::string RequestText(const std::string& address, const std::string& method,
                        const std::string& path, const std::string& body) {
  std::string request = method + " " + path + " HTTP/1.0\r\nHost: " + address + "\r\n";
  if (!body.empty() || method == "POST") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return request + "\r\n" + body;
}

}  // namespace

HttpResponse HttpRequest(const std::string& address, const std::string& method,
                         const std::string& path, const std::string& body) {
  return HttpExchange(address, RequestText(address, method, path, body));
}

HttpResponse HttpExchange(const std::string& address, const std::string& request) {
  const int fd = Connect(address);
  if (fd < 0) return {};
  if (::write(fd, request.data(), request.size()) < 0) {
    ::close(fd);
    return {};
  }
  std::string response;
  char buffer[8192];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) response.append(buffer, n);
  ::close(fd);
  return ParseResponse(response);
}

TlsClientFiles TestTlsClient(const std::string& client_certificate_of) {
  TlsClientFiles files{(TestPki() / "ca.pem").string()};
  if (!client_certificate_of.empty()) {
    const std::string operator_prefix = "operator:";
    const std::filesystem::path base =
        client_certificate_of.rfind(operator_prefix, 0) == 0
            ? TestPki() / "operators" / client_certificate_of.substr(operator_prefix.size())
            : TestPki() / "organisations" / client_certificate_of;
    files.cert = base.string() + ".pem";
    files.key = base.string() + ".key";
  }
  return files;
}

HttpResponse HttpsRequest(const std::string& address, const TlsClientFiles& tls,
                          const std::string& method, const std::string& path,
                          const std::string& body) {
  return HttpsExchange(address, tls, RequestText(address, method, path, body));
}

HttpResponse HttpsExchange(const std::string& address, const TlsClientFiles& tls,
                           const std::string& request) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (!ctx || SSL_CTX_load_verify_locations(ctx.get(), tls.ca.c_str(), nullptr) != 1) {
    ADD_FAILURE() << "HttpsExchange: cannot load the authority " << tls.ca;
    return {};
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (!tls.cert.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), tls.cert.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), tls.key.c_str(), SSL_FILETYPE_PEM) != 1)) {
    ADD_FAILURE() << "HttpsExchange: cannot load the client certificate " << tls.cert;
    return {};
  }
  const int fd = Connect(address);
  if (fd < 0) return {};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  const std::string host = address.substr(0, address.rfind(':'));
  // The server's certificate must hold the IP address dialled (as a browser checks it).
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
  SSL_set_fd(ssl.get(), fd);
  std::string response;
  if (SSL_connect(ssl.get()) == 1 &&
      SSL_write(ssl.get(), request.data(), static_cast<int>(request.size())) > 0) {
    char buffer[8192];
    for (int n; (n = SSL_read(ssl.get(), buffer, sizeof buffer)) > 0;) {
      response.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ERR_clear_error();
  ssl.reset();
  ::close(fd);
  return ParseResponse(response);
}

std::string ScrapeMetrics(const std::string& address) {
  return HttpRequest(address, "GET", "/metrics").body;
}

int HealthStatus(const std::string& address) {
  return HealthStatus(TestChannel(address));  // health checks need no identity
}

int HealthStatus(const std::shared_ptr<grpc::Channel>& channel) {
  // Debian ships no generated health classes: the request is empty and the response one enum
  // field, so the bytes are written and read here.
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::Slice nothing("");  // HealthCheckRequest{} is empty (but a message: one empty slice)
  grpc::ByteBuffer request(&nothing, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  if (!done.get_future().get().ok()) return -1;
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
  }
  // HealthCheckResponse{status = N}: field 1, varint: 0x08 N (absent: 0, UNKNOWN).
  return bytes.size() == 2 && bytes[0] == 0x08 ? bytes[1] : 0;
}

bool Eventually(const std::function<bool()>& probe, std::chrono::seconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (probe()) return true;
    if (std::chrono::steady_clock::now() >= give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void PrepareCall(grpc::ClientContext& context, const std::string& as,
                 std::chrono::seconds timeout) {
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  if (!as.empty()) context.AddMetadata("authorization", "Bearer " + TestToken(as));
}

TestNetwork::TestNetwork(const std::string& name, const std::string& network_file,
                         const std::string& kafka)
    : name_(name),
      network_file_(network_file),
      kafka_(kafka.empty() ? TestKafka() : kafka),
      dir_(std::filesystem::temp_directory_path() /
           ("schakel-" + name + "-" + std::to_string(::getpid()))) {
  absl::StatusOr<routing::Network> network = routing::LoadNetworkFile(network_file);
  if (!network.ok()) throw std::runtime_error(std::string(network.status().message()));
  network_ = *std::move(network);
  std::filesystem::create_directories(dir_);
}

TestNetwork::~TestNetwork() {
  for (auto it = services_.rbegin(); it != services_.rend(); ++it) {
    if ((*it)->process && (*it)->process->running()) {
      const int status = (*it)->process->Stop();
      EXPECT_EQ(status, 0) << (*it)->name << " did not stop cleanly:\n"
                           << (*it)->process->ReadLog();
    }
  }
  if (std::getenv("SCHAKEL_E2E_KEEP") == nullptr) std::filesystem::remove_all(dir_);
}

::testing::AssertionResult TestNetwork::Prepare() {
  if (::testing::AssertionResult pki = EnsureTestPki(network_file_); !pki) return pki;
  std::string output;
  // As the Kafka super user: the topics, and the ACLs that let each service do its work.
  const std::string schakelctl = kBinary + "/tools/schakelctl/schakelctl";
  const std::string admin = TestKafkaConfig("admin");
  if (RunCommand({schakelctl, "--kafka-config", admin, "topics", "create", "--network",
                  network_file_, "--kafka", kafka_},
                 &output) != 0) {
    return ::testing::AssertionFailure() << "topics create: " << output;
  }
  if (RunCommand({schakelctl, "--kafka-config", admin, "access", "apply", "--network",
                  network_file_, "--kafka", kafka_, "--kafka-jars", kSource + "/.cache/kafka/libs",
                  "--java-config", (TestPki() / "kafka" / "admin.java.properties").string()},
                 &output) != 0) {
    return ::testing::AssertionFailure() << "access apply: " << output;
  }
  const std::string key = (dir_ / "pseudonym.key").string();
  if (RunCommand({"/bin/sh", "-c", "openssl rand -hex 32 > " + key}, &output) != 0) {
    return ::testing::AssertionFailure() << "pseudonym key: " << output;
  }
  return ::testing::AssertionSuccess();
}

const std::string& TestNetwork::keys_address() {
  if (keys_address_.empty()) {
    keys_address_ = "127.0.0.1:" + std::to_string(FreePort());
    auto keys = std::make_unique<Service>(
        Service{"keys",
                kBinary + "/services/keys/keys",
                {"--kafka", kafka_, "--master-key", (dir_ / "keys-master.key").string(), "--db",
                 (dir_ / "keys.db").string(), "--group",
                 "schakel.keys.grants." + name_ + "-" + std::to_string(::getpid())},
                keys_address_,
                nullptr,
                0});
    keys->keep_address = true;
    // First: intake and the inboxes need it.
    services_.insert(services_.begin(), std::move(keys));
  }
  return keys_address_;
}

void TestNetwork::AddInboxes() {
  for (const routing::Organisation& org : network_.organisations) {
    services_.push_back(std::make_unique<Service>(
        Service{"inbox-" + org.id,
                kBinary + "/services/inbox/inbox",
                {"--org", org.id, "--network", network_file_, "--kafka", kafka_, "--db",
                 (dir_ / ("inbox-" + org.id + ".db")).string(), "--keys", keys_address()},
                "",
                nullptr,
                0}));
  }
}

Service& TestNetwork::AddRouter(const std::string& instance, std::vector<std::string> extra_args) {
  std::vector<std::string> args = {"--network", network_file_, "--kafka",
                                   kafka_,      "--instance",  instance};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  services_.push_back(std::make_unique<Service>(Service{
      "router-" + instance, kBinary + "/services/router/router", std::move(args), "", nullptr, 0}));
  return *services_.back();
}

void TestNetwork::AddIntake() {
  services_.push_back(std::make_unique<Service>(
      Service{"intake",
              kBinary + "/services/intake/intake",
              {"--network", network_file_, "--kafka", kafka_, "--pseudonym-key",
               (dir_ / "pseudonym.key").string(), "--db", (dir_ / "intake-view.db").string(),
               "--view-group", "schakel.intake.view." + name_ + "-" + std::to_string(::getpid()),
               "--keys", keys_address()},
              "",
              nullptr,
              0}));
}

Service& TestNetwork::AddOps() {
  const std::string console = "127.0.0.1:" + std::to_string(FreePort());
  services_.push_back(
      std::make_unique<Service>(Service{"ops",
                                        kBinary + "/services/ops/ops",
                                        {"--network", network_file_, "--kafka", kafka_,
                                         "--console-listen", console, "--lag-every-ms", "500"},
                                        "",
                                        nullptr,
                                        0}));
  services_.back()->console_address = console;
  return *services_.back();
}

::testing::AssertionResult TestNetwork::StartAll() {
  for (auto& s : services_) {
    if (!s->process || !s->process->running()) Launch(*s);
  }
  for (auto& s : services_) {
    if (::testing::AssertionResult up = WaitUntilServing(*s); !up) return up;
  }
  return ::testing::AssertionSuccess();
}

void TestNetwork::Launch(Service& s, const std::vector<std::string>& extra_env) {
  if (!s.keep_address || s.address.empty()) s.address = "127.0.0.1:" + std::to_string(FreePort());
  Spawn(s, extra_env);
}

::testing::AssertionResult TestNetwork::Restart(Service& s) {
  if (s.process && s.process->running()) {
    return ::testing::AssertionFailure() << s.name << " still runs";
  }
  Spawn(s, {});
  return WaitUntilServing(s);
}

void TestNetwork::Spawn(Service& s, const std::vector<std::string>& extra_env) {
  std::vector<std::string> args = s.args;
  args.push_back("--listen");
  args.push_back(s.address);
  if (s.metrics_address.empty()) s.metrics_address = "127.0.0.1:" + std::to_string(FreePort());
  args.push_back("--metrics-listen");
  args.push_back(s.metrics_address);
  if (log_json_) args.push_back("--log-json");
  // Its certificate: services/<name>.pem, routers sharing one ("router").
  const std::string cert = s.name.rfind("router-", 0) == 0 ? "router" : s.name;
  const std::filesystem::path pki = TestPki();
  const std::vector<std::string> tls = {"--tls-cert", (pki / "services" / (cert + ".pem")).string(),
                                        "--tls-key",  (pki / "services" / (cert + ".key")).string(),
                                        "--tls-ca",   (pki / "ca.pem").string(),
                                        "--tokens",   (pki / "tokens").string()};
  args.insert(args.end(), tls.begin(), tls.end());
  // Its Kafka identity: the same certificate, as the principal <name> (the ACLs are per principal).
  args.push_back("--kafka-config");
  args.push_back(TestKafkaConfig(cert));
  // A writer of the audit stream signs its chain with its own key (deploy/local/pki made one for
  // each: keys, intake, ops, inbox-<org>).
  if (const std::filesystem::path key = pki / "audit" / (s.name + ".key");
      std::filesystem::exists(key)) {
    args.push_back("--audit-signing-key");
    args.push_back(key.string());
  }
  ++s.starts;
  const std::string log =
      (dir_ / (s.name + (s.starts > 1 ? "." + std::to_string(s.starts) : "") + ".log")).string();
  s.process = std::make_unique<ChildProcess>(s.binary, args, log, extra_env);
}

::testing::AssertionResult TestNetwork::WaitUntilServing(Service& s) {
  auto channel = TestChannel(s.address);
  if (channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(60))) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << s.name << " did not start:\n" << s.process->ReadLog();
}

Service& TestNetwork::Find(const std::string& name) {
  for (auto& s : services_) {
    if (s->name == name) return *s;
  }
  throw std::runtime_error("no service " + name);
}

std::unique_ptr<v1::InboxService::Stub> TestNetwork::Inbox(const std::string& org) {
  return v1::InboxService::NewStub(TestChannel(Find("inbox-" + org).address));
}

std::unique_ptr<v1::IntakeService::Stub> TestNetwork::Intake() {
  return v1::IntakeService::NewStub(TestChannel(Find("intake").address));
}

grpc::Status TestNetwork::Submit(const v1::Referral& referral, const std::string& as,
                                 v1::SubmitReferralResponse* response) {
  grpc::ClientContext context;
  PrepareCall(context, as, std::chrono::seconds(15));
  v1::SubmitReferralRequest request;
  *request.mutable_referral() = referral;
  return Intake()->SubmitReferral(&context, request, response);
}

grpc::Status TestNetwork::Get(const std::string& org, const std::string& assignment_id,
                              v1::Assignment* assignment) {
  grpc::ClientContext context;
  PrepareCall(context, org);
  v1::GetAssignmentRequest request;
  request.set_assignment_id(assignment_id);
  return Inbox(org)->GetAssignment(&context, request, assignment);
}

std::optional<v1::Assignment> TestNetwork::WaitForStatus(const std::string& org,
                                                         const std::string& assignment_id,
                                                         v1::AssignmentStatus status) {
  v1::Assignment assignment;
  if (Eventually([&] {
        assignment.Clear();
        return Get(org, assignment_id, &assignment).ok() && assignment.status() == status;
      })) {
    return assignment;
  }
  return std::nullopt;
}

grpc::Status TestNetwork::Decline(const std::string& org, const v1::Assignment& current,
                                  const std::string& reason, v1::Assignment* changed) {
  grpc::ClientContext context;
  PrepareCall(context, org);
  v1::ChangeAssignmentRequest request;
  request.set_assignment_id(current.assignment_id());
  request.set_expected_version(current.version());
  request.set_reason(reason);
  return Inbox(org)->Decline(&context, request, changed);
}

grpc::Status TestNetwork::Accept(const std::string& org, const v1::Assignment& current,
                                 v1::Assignment* changed) {
  grpc::ClientContext context;
  PrepareCall(context, org);
  v1::ChangeAssignmentRequest request;
  request.set_assignment_id(current.assignment_id());
  request.set_expected_version(current.version());
  return Inbox(org)->Accept(&context, request, changed);
}

std::optional<v1::ReferralStatus> TestNetwork::WaitForReferral(
    const std::string& as, const std::string& referral_id,
    const std::function<bool(const v1::ReferralStatus&)>& ready) {
  auto intake = Intake();
  v1::ReferralStatus status;
  if (Eventually([&] {
        grpc::ClientContext context;
        PrepareCall(context, as);
        v1::GetReferralRequest request;
        request.set_referral_id(referral_id);
        status.Clear();
        return intake->GetReferral(&context, request, &status).ok() && ready(status);
      })) {
    return status;
  }
  return std::nullopt;
}

}  // namespace schakel::testing
