#include "libs/metrics/metrics.h"

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <vector>

#include "libs/service/server.h"

namespace schakel::metrics {
namespace {

// GET /metrics over a plain socket: what Prometheus would read.
std::string Scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)::write(fd, request.data(), request.size());
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) response.append(buffer, n);
  ::close(fd);
  return response;
}

grpc::Status HealthCheck(int port) {
  grpc::GenericStub stub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Slice nothing("");
  grpc::ByteBuffer request(&nothing, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(s); });
  return done.get_future().get();
}

TEST(MetricsTest, EachGrpcCallIsCountedByMethodAndCodeAndServedOverHttp) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start("127.0.0.1:0");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_GT((*metrics)->port(), 0);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*metrics)->GrpcInterceptor());
  absl::StatusOr<service::RunningServer> server =
      service::StartServer("127.0.0.1:0", {}, std::move(interceptors));
  ASSERT_TRUE(server.ok()) << server.status();

  ASSERT_TRUE(HealthCheck(server->port).ok());
  ASSERT_TRUE(HealthCheck(server->port).ok());

  const std::string scraped = Scrape((*metrics)->port());
  EXPECT_NE(scraped.find("schakel_grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Check\","
                         "grpc_service=\"grpc.health.v1.Health\"} 2"),
            std::string::npos)
      << scraped;
  EXPECT_NE(scraped.find("schakel_grpc_server_handling_seconds_count{grpc_method=\"Check\","
                         "grpc_service=\"grpc.health.v1.Health\"} 2"),
            std::string::npos)
      << scraped;
  server->server->Shutdown();
}

class FakePublisher final : public kafka::Publisher {
 public:
  void Publish(std::string_view, std::string_view, std::string_view, Done done) override {
    done(next_);
  }
  bool Reachable() const override { return true; }
  absl::Status next_;
};

TEST(MetricsTest, CountingPublisherCountsDeliveredAndFailedPerTopicAndPassesTheAnswerOn) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start("");
  ASSERT_TRUE(metrics.ok());
  FakePublisher inner;
  CountingPublisher counting(inner, **metrics);
  std::vector<absl::Status> answers;
  counting.Publish("t.one", "k", "v", [&](absl::Status s) { answers.push_back(s); });
  counting.Publish("t.one", "k", "v", [&](absl::Status s) { answers.push_back(s); });
  inner.next_ = absl::UnavailableError("down");
  counting.Publish("t.two", "k", "v", [&](absl::Status s) { answers.push_back(s); });
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_TRUE(answers[0].ok());
  EXPECT_TRUE(absl::IsUnavailable(answers[2]));
  const std::string text = (*metrics)->Text();
  EXPECT_NE(text.find("schakel_kafka_produced_total{topic=\"t.one\"} 2"), std::string::npos)
      << text;
  EXPECT_NE(text.find("schakel_kafka_produce_failed_total{topic=\"t.two\"} 1"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("schakel_kafka_produced_total{topic=\"t.two\"}"), std::string::npos);
}

}  // namespace
}  // namespace schakel::metrics
