// The Prometheus metrics of one process, served over HTTP at /metrics (prometheus-cpp's Exposer).
// Names follow Prometheus conventions (schakel_…_total counters, _seconds histograms); labels carry
// service and method names, status codes, topics, organisation ids and need codes — never personal
// data.
//
// What every service records here: each gRPC call by method and status code with its duration
// (through the server interceptor), each event produced (or failed) and consumed per topic (dead
// letters are those produced to schakel.deadletters.<principal>), its consumer's lag per partition,
// and whether Kafka answers. A service adds its own figures with AddCollectable (computed when
// scraped, e.g. an inbox's assignments by need and status).
#pragma once

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/publisher.h"

namespace schakel::metrics {

// "OK", "UNAVAILABLE", …: the name of a gRPC status code, as the metrics label it.
const char* StatusCodeName(grpc::StatusCode code);

class Metrics {
 public:
  // Serves /metrics on `listen` ("127.0.0.1:9451"; port 0: any free one); empty: collects without
  // serving (unit tests read Text()).
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The port /metrics is served on (0 when not serving).
  int port() const { return port_; }
  // Everything in the Prometheus text format, as a scrape would see it.
  std::string Text() const;

  // For grpc::ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> GrpcInterceptor();
  void Handled(const std::string& full_method, grpc::StatusCode code,
               std::chrono::steady_clock::duration took);

  void Produced(std::string_view topic, bool ok);
  void Consumed(std::string_view topic);
  // The newest lag of each partition the process's consumer owns (ConsumerOptions::on_lag); it
  // replaces the previous figures, so partitions given up disappear.
  void SetConsumerLag(const std::vector<kafka::PartitionLag>& lags);
  // Where schakel_kafka_reachable comes from (asked at each scrape), e.g. the producer's Reachable.
  void SetKafkaReachableSource(std::function<bool()> reachable);

  // Stops serving /metrics, at once (civetweb's listener otherwise notices the stop only at its
  // next 2 s poll). Call it first when shutting down: the sources of the figures go away after it.
  void StopServing();

  // Figures computed when scraped. Kept alive here.
  void AddCollectable(std::shared_ptr<prometheus::Collectable> collectable);
  // One counter computed when scraped: `value` asked at each scrape (e.g. a component's own count).
  void AddCounter(std::string name, std::string help, std::function<double()> value);

  // `options` with on_record and on_lag feeding these metrics (schakel_kafka_consumed_total and
  // the consumer's lag).
  kafka::ConsumerOptions Counting(kafka::ConsumerOptions options);

 private:
  Metrics();

  class LagGauges;
  class ReachableGauge;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<LagGauges> lag_;
  std::shared_ptr<ReachableGauge> reachable_;
  std::string host_;  // where the exposer listens, for StopServing's knock
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  prometheus::Family<prometheus::Counter>& produced_;
  prometheus::Family<prometheus::Counter>& produce_failed_;
  prometheus::Family<prometheus::Counter>& consumed_;
};

// A Publisher that counts what the one it wraps delivers and fails, per topic.
// Runs `stop` (which stops a civetweb server listening on host:port, e.g. by destroying it) while
// knocking on that port, so that civetweb's listener notices at once instead of at its next 2 s
// poll. Used by Metrics::StopServing and by the ops service's console.
void StopCivetweb(const std::string& host, int port, const std::function<void()>& stop);

class CountingPublisher final : public kafka::Publisher {
 public:
  CountingPublisher(kafka::Publisher& inner, Metrics& metrics) : inner_(inner), metrics_(metrics) {}
  void Publish(std::string_view topic, std::string_view key, std::string_view value,
               Done done) override;
  bool Reachable() const override { return inner_.Reachable(); }

 private:
  kafka::Publisher& inner_;
  Metrics& metrics_;
};

}  // namespace schakel::metrics
