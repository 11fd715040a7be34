#include "libs/metrics/metrics.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <vector>

#include "libs/service/server.h"
#include "tests/support/test_network.h"

namespace schakel::metrics {
namespace {

TEST(MetricsTest, EachGrpcCallIsCountedByMethodAndCodeAndServedOverHttp) {
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start("127.0.0.1:0");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  ASSERT_GT((*metrics)->port(), 0);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back((*metrics)->GrpcInterceptor());
  absl::StatusOr<service::RunningServer> server = service::StartServer(
      "127.0.0.1:0", grpc::InsecureServerCredentials(), {}, std::move(interceptors));
  ASSERT_TRUE(server.ok()) << server.status();

  const std::string address = "127.0.0.1:" + std::to_string(server->port);
  ASSERT_EQ(testing::HealthStatus(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
            1);
  ASSERT_EQ(testing::HealthStatus(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
            1);

  const std::string scraped =
      testing::ScrapeMetrics("127.0.0.1:" + std::to_string((*metrics)->port()));
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
