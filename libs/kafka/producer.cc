#include "libs/kafka/producer.h"

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "libs/kafka/client_config.h"

namespace schakel::kafka {

// Delivery reports and client events. Owned by the Producer and destroyed after librdkafka's
// handle.
class Producer::Callbacks final : public RdKafka::DeliveryReportCb, public RdKafka::EventCb {
 public:
  explicit Callbacks(std::shared_ptr<std::atomic<bool>> reachable)
      : reachable_(std::move(reachable)) {}

  void dr_cb(RdKafka::Message& message) override {
    std::unique_ptr<Done> done(static_cast<Done*>(message.msg_opaque()));
    absl::Status status;
    switch (message.err()) {
      case RdKafka::ERR_NO_ERROR:
        reachable_->store(true);
        break;
      case RdKafka::ERR__MSG_TIMED_OUT:
      case RdKafka::ERR__TIMED_OUT:
      case RdKafka::ERR__TRANSPORT:
      case RdKafka::ERR__ALL_BROKERS_DOWN:
      case RdKafka::ERR__PURGE_QUEUE:
      case RdKafka::ERR__PURGE_INFLIGHT:
      case RdKafka::ERR_NOT_ENOUGH_REPLICAS:
      case RdKafka::ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
      case RdKafka::ERR_REQUEST_TIMED_OUT:
        status = absl::UnavailableError(
            absl::StrCat("Kafka did not acknowledge the event: ", RdKafka::err2str(message.err())));
        break;
      default:
        status = absl::InternalError(
            absl::StrCat("Kafka refused the event: ", RdKafka::err2str(message.err())));
    }
    if (!status.ok()) {
      spdlog::warn("kafka: delivery to {} failed: {}", message.topic_name(),
                   RdKafka::err2str(message.err()));
    }
    if (done && *done) (*done)(std::move(status));
  }

  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        if (event.err() == RdKafka::ERR__ALL_BROKERS_DOWN) reachable_->store(false);
        if (event.fatal()) {
          spdlog::critical("kafka producer: fatal error: {}", event.str());
        } else {
          spdlog::warn("kafka producer: {}: {}", RdKafka::err2str(event.err()), event.str());
        }
        break;
      case RdKafka::Event::EVENT_LOG:
        if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
          spdlog::warn("kafka producer: {} {}", event.fac(), event.str());
        } else {
          spdlog::debug("kafka producer: {} {}", event.fac(), event.str());
        }
        break;
      default:
        break;
    }
  }

 private:
  std::shared_ptr<std::atomic<bool>> reachable_;
};

absl::StatusOr<std::unique_ptr<Producer>> Producer::Create(const ProducerOptions& options) {
  std::unique_ptr<Producer> self(new Producer());
  self->callbacks_ = std::make_unique<Callbacks>(self->reachable_);

  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  Properties props = WithClientConfig({
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", options.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"message.timeout.ms", std::to_string(options.delivery_timeout.count())},
      // Batch under load, but do not hold a lone record back noticeably. (Nagle's algorithm is off
      // for every client: WithClientConfig. The batching is librdkafka's own, not the kernel's.)
      {"linger.ms", "2"},
      {"compression.type", "lz4"},
  });
  for (const auto& [key, value] : options.extra) props[key] = value;
  // Troubleshooting: SCHAKEL_KAFKA_DEBUG=cgrp,protocol turns on librdkafka debug logging.
  if (const char* debug = std::getenv("SCHAKEL_KAFKA_DEBUG")) props["debug"] = debug;
  std::string error;
  for (const auto& [key, value] : props) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka producer property ", key, ": ", error));
    }
  }
  if (conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(self->callbacks_.get()), error) !=
          RdKafka::Conf::CONF_OK ||
      conf->set("event_cb", static_cast<RdKafka::EventCb*>(self->callbacks_.get()), error) !=
          RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka producer callbacks: ", error));
  }
  self->producer_.reset(RdKafka::Producer::create(conf.get(), error));
  if (!self->producer_) return absl::InternalError(absl::StrCat("kafka producer: ", error));

  // Learn at once whether a broker answers; the poll thread keeps checking while none does.
  RdKafka::Metadata* metadata = nullptr;
  if (self->producer_->metadata(false, nullptr, &metadata, 3000) == RdKafka::ERR_NO_ERROR) {
    self->reachable_->store(true);
  } else {
    spdlog::warn("kafka: no broker answers at {} yet; will keep trying", options.bootstrap_servers);
  }
  delete metadata;
  self->poller_ = std::thread([raw = self.get()] { raw->PollLoop(); });
  return self;
}

void Producer::PollLoop() {
  auto next_probe = std::chrono::steady_clock::now();
  while (!stop_.load()) {
    producer_->poll(100);
    if (!reachable_->load() && std::chrono::steady_clock::now() >= next_probe) {
      RdKafka::Metadata* metadata = nullptr;
      if (producer_->metadata(false, nullptr, &metadata, 1000) == RdKafka::ERR_NO_ERROR) {
        spdlog::info("kafka: broker reachable again");
        reachable_->store(true);
      }
      delete metadata;
      next_probe = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
  }
}

void Producer::Publish(std::string_view topic, std::string_view key, std::string_view value,
                       Done done) {
  auto* opaque = new Done(std::move(done));
  const RdKafka::ErrorCode err = producer_->produce(
      std::string(topic), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, nullptr, opaque);
  if (err != RdKafka::ERR_NO_ERROR) {
    std::unique_ptr<Done> owned(opaque);
    spdlog::warn("kafka: cannot queue event for {}: {}", topic, RdKafka::err2str(err));
    if (*owned)
      (*owned)(absl::UnavailableError(absl::StrCat("Kafka producer: ", RdKafka::err2str(err))));
  }
}

int Producer::Close(std::chrono::milliseconds timeout) {
  if (closed_) return 0;
  closed_ = true;
  stop_.store(true);
  if (poller_.joinable()) poller_.join();
  // flush() serves the remaining delivery reports on this thread.
  producer_->flush(static_cast<int>(timeout.count()));
  const int left = producer_->outq_len();
  if (left > 0) {
    spdlog::error("kafka: {} events not delivered at shutdown", left);
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    producer_->poll(0);  // their Done callbacks report the failure
  }
  return left;
}

Producer::~Producer() {
  if (producer_) Close(std::chrono::seconds(5));
}

}  // namespace schakel::kafka
