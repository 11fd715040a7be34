// How the ops service's view keeps up with Kafka: one thread applies every record of the view's
// topics as it arrives (kafka::Follower: no consumer group, from each topic's beginning), and one
// asks Kafka every `lag_every` what each inbox's consumer group has committed (for its lag).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "libs/kafka/follower.h"
#include "libs/routing/network.h"
#include "services/ops/ops_view.h"

namespace schakel::ops {

// Asks Kafka what each inbox's consumer group has committed on its topic, and tells the view.
void PollCommitted(const std::string& kafka, const routing::Network& network, OpsView& view);

class OpsFollower {
 public:
  // `follower`, `network` and `view` outlive this.
  OpsFollower(std::string kafka, const routing::Network& network, kafka::Follower& follower,
              OpsView& view, std::chrono::milliseconds lag_every)
      : kafka_(std::move(kafka)),
        network_(network),
        follower_(follower),
        view_(view),
        lag_every_(lag_every) {}
  ~OpsFollower() { Stop(); }
  OpsFollower(const OpsFollower&) = delete;
  OpsFollower& operator=(const OpsFollower&) = delete;

  void Start();
  // Stops both threads. Safe to call twice, and without Start.
  void Stop();

 private:
  const std::string kafka_;
  const routing::Network& network_;
  kafka::Follower& follower_;
  OpsView& view_;
  const std::chrono::milliseconds lag_every_;
  std::atomic<bool> stopping_{false};
  std::mutex lag_mu_;
  std::condition_variable lag_cv_;
  std::thread follow_;
  std::thread lag_;
};

}  // namespace schakel::ops
