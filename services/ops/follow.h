// How the ops service's view keeps up with Kafka: every topic the view is folded from
// (OpsView::Topics), followed from its beginning outside any group (kafka::Follower) through the
// one consume loop, each record applied to the view; and a thread that asks Kafka every `lag_every`
// what each inbox's consumer group has committed (for its lag). What the view cannot read or does
// not believe goes to ops' own dead-letter topic with the reason. Ops reads everything again at
// every start, so it sets a record aside once: what its dead-letter topic already holds (SetAside)
// is not sent again.
#pragma once

#include <chrono>
#include <set>
#include <span>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/consume_loop.h"
#include "libs/routing/network.h"
#include "services/ops/ops_view.h"

namespace schakel::ops {

// Asks Kafka what each inbox's consumer group has committed on its topic, and tells the view.
void PollCommitted(const std::string& kafka, const routing::Network& network, OpsView& view);

// The records ops has set aside before (deadletter::Key of each): its dead-letter topic read to
// its end. UNAVAILABLE when it cannot be read within `timeout`.
absl::StatusOr<std::set<std::string>> SetAside(const std::string& bootstrap_servers,
                                               const routing::Network& network,
                                               std::chrono::milliseconds timeout);

// The view's records through the consume loop.
class ViewFollower {
 public:
  // `source`, `view` and `dead_letters` must outlive this object; `set_aside`: SetAside.
  ViewFollower(kafka::RecordSource& source, OpsView& view, kafka::DeadLetterSink& dead_letters,
               std::set<std::string> set_aside = {});
  ~ViewFollower() { Stop(); }
  ViewFollower(const ViewFollower&) = delete;
  ViewFollower& operator=(const ViewFollower&) = delete;

  void Start() { loop_.Start(); }
  void Stop() { loop_.Stop(); }

 private:
  kafka::BatchOutcome Handle(std::span<const kafka::Record> batch);
  OpsView& view_;
  const std::set<std::string> set_aside_;
  kafka::ConsumeLoop loop_;
};

// The view's records (ViewFollower) and the inboxes' lag.
class OpsFollower {
 public:
  // `network`, `source`, `view` and `dead_letters` outlive this; `set_aside`: SetAside.
  OpsFollower(std::string kafka, const routing::Network& network, kafka::RecordSource& source,
              OpsView& view, kafka::DeadLetterSink& dead_letters, std::set<std::string> set_aside,
              std::chrono::milliseconds lag_every)
      : kafka_(std::move(kafka)),
        network_(network),
        view_(view),
        lag_every_(lag_every),
        records_(source, view, dead_letters, std::move(set_aside)) {}
  ~OpsFollower() { Stop(); }
  OpsFollower(const OpsFollower&) = delete;
  OpsFollower& operator=(const OpsFollower&) = delete;

  void Start();
  // Stops the lag's thread and the records' loop. Safe to call twice, and without Start.
  void Stop();

 private:
  const std::string kafka_;
  const routing::Network& network_;
  OpsView& view_;
  const std::chrono::milliseconds lag_every_;
  ViewFollower records_;
  absl::Mutex lag_mu_;
  bool stopping_ ABSL_GUARDED_BY(lag_mu_) = false;
  std::thread lag_;
};

}  // namespace schakel::ops
