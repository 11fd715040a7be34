#include "libs/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace schakel::metrics {

const char* StatusCodeName(grpc::StatusCode code) {
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

namespace {

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

// schakel_kafka_consumer_lag{topic, partition}: the snapshot the consumer reported last.
class Metrics::LagGauges final : public prometheus::Collectable {
 public:
  void Set(const std::vector<kafka::PartitionLag>& lags) {
    absl::MutexLock lock(&mu_);
    lags_ = lags;
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "schakel_kafka_consumer_lag";
    family.help = "Records of a partition not yet committed by this process's consumer group";
    family.type = prometheus::MetricType::Gauge;
    absl::MutexLock lock(&mu_);
    for (const kafka::PartitionLag& l : lags_) {
      prometheus::ClientMetric metric;
      metric.label = {{"partition", std::to_string(l.partition)}, {"topic", l.topic}};
      metric.gauge.value = static_cast<double>(l.lag);
      family.metric.push_back(std::move(metric));
    }
    return {family};
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<kafka::PartitionLag> lags_ ABSL_GUARDED_BY(mu_);
};

// schakel_kafka_reachable: asked of its source at each scrape (0 without one).
class Metrics::ReachableGauge final : public prometheus::Collectable {
 public:
  void SetSource(std::function<bool()> source) {
    absl::MutexLock lock(&mu_);
    source_ = std::move(source);
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "schakel_kafka_reachable";
    family.help = "1 while a Kafka broker answers, else 0";
    family.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric metric;
    absl::MutexLock lock(&mu_);
    metric.gauge.value = source_ && source_() ? 1 : 0;
    family.metric.push_back(std::move(metric));
    return {family};
  }

 private:
  mutable absl::Mutex mu_;
  std::function<bool()> source_ ABSL_GUARDED_BY(mu_);
};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      lag_(std::make_shared<LagGauges>()),
      reachable_(std::make_shared<ReachableGauge>()),
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
                    .Register(*registry_)) {}

Metrics::~Metrics() { StopServing(); }

void Metrics::StopServing() {
  if (!exposer_) return;
  StopCivetweb(host_, port_, [this] { exposer_.reset(); });
}

void StopCivetweb(const std::string& host, int port, const std::function<void()>& stop) {
  // civetweb's listening thread polls for 2 s at a time and looks at the stop flag in between, or
  // when a connection arrives: knock until the server is gone, so a service stops at once.
  std::atomic<bool> stopped{false};
  std::thread knock([&host, port, &stopped] {
    while (!stopped.load()) {
      const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(port));
      if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      }
      if (fd >= 0) {
        (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::close(fd);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  stop();
  stopped.store(true);
  knock.join();
}

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
  self->exposer_->RegisterCollectable(self->lag_);
  self->exposer_->RegisterCollectable(self->reachable_);
  // The knock at stop goes to the listening host; 0.0.0.0 (any) is reached on loopback.
  const std::string host = listen.substr(0, listen.rfind(':'));
  self->host_ = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : host;
  const std::vector<int> ports = self->exposer_->GetListeningPorts();
  self->port_ = ports.empty() ? 0 : ports.front();
  return self;
}

std::string Metrics::Text() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& f : lag_->Collect()) families.push_back(std::move(f));
  for (prometheus::MetricFamily& f : reachable_->Collect()) families.push_back(std::move(f));
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
  handled_
      .Add(
          {{"grpc_service", service}, {"grpc_method", method}, {"grpc_code", StatusCodeName(code)}})
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

void Metrics::SetConsumerLag(const std::vector<kafka::PartitionLag>& lags) { lag_->Set(lags); }

void Metrics::SetKafkaReachableSource(std::function<bool()> reachable) {
  reachable_->SetSource(std::move(reachable));
}

void Metrics::AddCollectable(std::shared_ptr<prometheus::Collectable> collectable) {
  if (exposer_) exposer_->RegisterCollectable(collectable);
  collectables_.push_back(std::move(collectable));
}

void Metrics::AddCounter(std::string name, std::string help, std::function<double()> value) {
  class Counter final : public prometheus::Collectable {
   public:
    Counter(std::string name, std::string help, std::function<double()> value)
        : name_(std::move(name)), help_(std::move(help)), value_(std::move(value)) {}
    std::vector<prometheus::MetricFamily> Collect() const override {
      prometheus::MetricFamily family;
      family.name = name_;
      family.help = help_;
      family.type = prometheus::MetricType::Counter;
      prometheus::ClientMetric metric;
      metric.counter.value = value_();
      family.metric.push_back(std::move(metric));
      return {std::move(family)};
    }

   private:
    const std::string name_;
    const std::string help_;
    const std::function<double()> value_;
  };
  AddCollectable(std::make_shared<Counter>(std::move(name), std::move(help), std::move(value)));
}

kafka::ConsumerOptions Metrics::Counting(kafka::ConsumerOptions options) {
  options.on_record = [this](const kafka::Record& r) { Consumed(r.topic); };
  options.on_lag = [this](const std::vector<kafka::PartitionLag>& lags) { SetConsumerLag(lags); };
  return options;
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
