#include "libs/metrics/metrics.h"

#include <prometheus/text_serializer.h>

#include <mutex>

#include "absl/strings/str_cat.h"

namespace schakel::metrics {
namespace {

const char* CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "OTHER";
  }
}

// Times one call and records it with its status code when the status is sent.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(Metrics& metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)), started_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.Handled(method_, methods->GetSendStatus().error_code(),
                       std::chrono::steady_clock::now() - started_);
    }
    methods->Proceed();
  }

 private:
  Metrics& metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point started_;
};

class InterceptorFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit InterceptorFactory(Metrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(metrics_, info->method());
  }

 private:
  Metrics& metrics_;
};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      handled_(prometheus::BuildCounter()
                   .Name("schakel_grpc_server_handled_total")
                   .Help("gRPC calls completed, by service, method and status code")
                   .Register(*registry_)),
      handling_seconds_(prometheus::BuildHistogram()
                            .Name("schakel_grpc_server_handling_seconds")
                            .Help("Time from the start of a gRPC call to its status")
                            .Register(*registry_)),
      produced_(prometheus::BuildCounter()
                    .Name("schakel_kafka_produced_total")
                    .Help("Events Kafka acknowledged, by topic")
                    .Register(*registry_)),
      produce_failed_(prometheus::BuildCounter()
                          .Name("schakel_kafka_produce_failed_total")
                          .Help("Events Kafka did not acknowledge, by topic")
                          .Register(*registry_)),
      consumed_(prometheus::BuildCounter()
                    .Name("schakel_kafka_consumed_total")
                    .Help("Events read and handled, by topic")
                    .Register(*registry_)),
      kafka_reachable_(prometheus::BuildGauge()
                           .Name("schakel_kafka_reachable")
                           .Help("1 while a Kafka broker answers, else 0")
                           .Register(*registry_)
                           .Add({})) {}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen) {
  std::unique_ptr<Metrics> self(new Metrics());
  if (listen.empty()) return self;
  try {
    self->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, ": ", e.what()));
  }
  self->exposer_->RegisterCollectable(self->registry_);
  const std::vector<int> ports = self->exposer_->GetListeningPorts();
  self->port_ = ports.empty() ? 0 : ports.front();
  return self;
}

std::string Metrics::Text() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (const auto& c : collectables_) {
    std::vector<prometheus::MetricFamily> more = c->Collect();
    families.insert(families.end(), more.begin(), more.end());
  }
  return prometheus::TextSerializer().Serialize(families);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Metrics::GrpcInterceptor() {
  return std::make_unique<InterceptorFactory>(*this);
}

void Metrics::Handled(const std::string& full_method, grpc::StatusCode code,
                      std::chrono::steady_clock::duration took) {
  // "/schakel.v1.IntakeService/SubmitReferral" -> service, method
  const std::size_t slash = full_method.rfind('/');
  const std::string service =
      slash == std::string::npos || slash == 0 ? "" : full_method.substr(1, slash - 1);
  const std::string method =
      slash == std::string::npos ? full_method : full_method.substr(slash + 1);
  handled_.Add({{"grpc_service", service}, {"grpc_method", method}, {"grpc_code", CodeName(code)}})
      .Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  handling_seconds_.Add({{"grpc_service", service}, {"grpc_method", method}}, kBuckets)
      .Observe(std::chrono::duration<double>(took).count());
}

void Metrics::Produced(std::string_view topic, bool ok) {
  (ok ? produced_ : produce_failed_).Add({{"topic", std::string(topic)}}).Increment();
}

void Metrics::Consumed(std::string_view topic) {
  consumed_.Add({{"topic", std::string(topic)}}).Increment();
}

void Metrics::SetKafkaReachable(bool reachable) { kafka_reachable_.Set(reachable ? 1 : 0); }

void Metrics::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  if (exposer_) exposer_->RegisterCollectable(collectable);
  collectables_.push_back(std::move(collectable));
}

void CountingPublisher::Publish(std::string_view topic, std::string_view key,
                                std::string_view value, Done done) {
  inner_.Publish(topic, key, value,
                 [this, topic = std::string(topic), done = std::move(done)](absl::Status s) {
                   metrics_.Produced(topic, s.ok());
                   if (done) done(std::move(s));
                 });
}

}  // namespace schakel::metrics
