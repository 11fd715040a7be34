// The one long-lived librdkafka producer of a process: idempotent, acks=all, a poll thread that
// serves delivery reports, and a bounded flush on close that reports what it could not deliver.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "libs/kafka/publisher.h"

namespace RdKafka {
class Producer;
}

namespace schakel::kafka {

using Properties = std::map<std::string, std::string>;

struct ProducerOptions {
  std::string bootstrap_servers = "127.0.0.1:9092";
  std::string client_id = "schakel";
  // How long a record may wait for the broker before it is reported as failed (message.timeout.ms).
  std::chrono::milliseconds delivery_timeout{10000};
  Properties extra;  // any other librdkafka property, e.g. for TLS or SASL
};

class Producer final : public Publisher {
 public:
  static absl::StatusOr<std::unique_ptr<Producer>> Create(const ProducerOptions& options);
  ~Producer() override;

  void Publish(std::string_view topic, std::string_view key, std::string_view value,
               Done done) override;
  bool Reachable() const override { return reachable_->load(); }

  // Flushes for at most `timeout`, then stops the poll thread. Returns the number of records not
  // delivered (their Done callbacks have run with an error). Safe to call twice.
  int Close(std::chrono::milliseconds timeout);

 private:
  class Callbacks;
  Producer() = default;
  void PollLoop();

  std::shared_ptr<std::atomic<bool>> reachable_ = std::make_shared<std::atomic<bool>>(false);
  std::unique_ptr<Callbacks> callbacks_;  // outlives producer_ (declared first, destroyed last)
  std::unique_ptr<RdKafka::Producer> producer_;
  std::atomic<bool> stop_{false};
  std::thread poller_;
  bool closed_ = false;
};

}  // namespace schakel::kafka
