// The router's I/O: Router consumes the input topics, hands each record to Escalation (the pure
// core: escalation.h, building its records with events.h) and publishes what comes back.
//
// Delivery: exactly once. Each batch's events, the escalation state it changed and the consumed
// positions are committed in one Kafka transaction; readers read committed records only.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/kafka/consume_loop.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/publisher.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/routing/policy.h"
#include "schakel/v1/events.pb.h"
#include "services/router/escalation.h"
#include "services/router/events.h"

namespace schakel::router {

// The consume-route-publish loop: reads the submitted, cancellations and reassignments topics and
// every organisation's own topic (schakel.from.<org>) in one consumer group (range assignment:
// partition N of every topic to the same member), and publishes what Escalation decides, the
// changed escalation state and the consumed positions in one Kafka transaction per batch. A crash
// at any moment leaves either the whole batch or none of it.
//
// It reads through the one consume loop (kafka::ConsumeLoop): Handle judges a batch, and the
// router's own commit (the kafka::BatchCommit it is) publishes the batch's output, its dead letters
// and the consumed positions in that transaction.
class Router final : private kafka::BatchCommit {
 public:
  using PolicySource = std::function<std::shared_ptr<const routing::Policy>()>;

  // `load`, when given, says how many open assignments each organisation has (LoadView::Snapshot).
  using LoadSource = std::function<routing::OpenAssignments()>;

  Router(PolicySource policy, kafka::TransactionalProducer& producer, Escalation& escalation,
         std::string bootstrap_servers, std::chrono::milliseconds tick, LoadSource load = nullptr)
      : policy_(std::move(policy)),
        load_(std::move(load)),
        producer_(producer),
        escalation_(escalation),
        bootstrap_servers_(std::move(bootstrap_servers)),
        tick_(tick) {}

  // Told, after each committed transaction, of every record it made visible (e.g. to count them
  // per topic). Set before Run.
  void OnCommitted(std::function<void(const std::vector<Output>&)> committed) {
    on_committed_ = std::move(committed);
  }

  // For ConsumerOptions::on_rebalance: the loop restores the state of partitions it gets.
  kafka::RebalanceListener Listener();

  // Runs until Stop(). A fenced producer is renewed (see Renew); an error means this instance must
  // not go on (fenced again and again by another instance with the same transactional id, or a
  // fatal Kafka error): restart the process.
  absl::Status Run(kafka::Consumer& consumer);
  void Stop();

  std::uint64_t routed() const { return routed_.load(); }
  std::uint64_t rejected() const { return rejected_.load(); }

 private:
  // Forgets what was not committed, moves the consumer back to the committed positions and reads
  // the escalation state of the assigned partitions again.
  absl::Status Reset(kafka::Consumer& consumer);
  absl::Status Publish(kafka::Consumer& consumer, const std::vector<Output>& out);
  // The loop's handler: each record through Escalation (one it refuses is rejected: a dead letter
  // in this batch's transaction), and the clock's escalations when they are due.
  kafka::BatchOutcome Handle(std::span<const kafka::Record> batch);
  // kafka::BatchCommit: the state is read again after a rebalance or an aborted transaction
  // (Ready); a batch read while the partitions moved is dropped (Void); the transaction (Commit).
  absl::Status Ready() override;
  bool Void() override { return rebalanced_; }
  absl::StatusOr<Committed> Commit(std::span<const kafka::Record> batch,
                                   std::span<const kafka::Outcome> outcomes,
                                   const std::function<bool()>& stopping) override;
  // After the producer reported itself fenced or stuck (`why`): a new producer, unless this
  // happened more than ten times in five minutes.
  absl::Status Renew(const absl::Status& why);

  PolicySource policy_;
  LoadSource load_;
  kafka::TransactionalProducer& producer_;
  Escalation& escalation_;
  std::string bootstrap_servers_;
  std::chrono::milliseconds tick_;
  std::atomic<bool> stop_{false};
  bool rebalanced_ = true;  // the state must be (re)read before routing; set by the listener
  std::vector<std::int32_t> assigned_;  // partition numbers this member owns
  std::atomic<std::uint64_t> routed_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::vector<std::chrono::steady_clock::time_point> renewals_;
  std::function<void(const std::vector<Output>&)> on_committed_;
  // While Run runs: its consumer, the output of the batch in hand (published by Commit), and when
  // the clock's escalations are due next.
  kafka::Consumer* consumer_ = nullptr;
  std::vector<Output> out_;
  std::chrono::steady_clock::time_point next_tick_;
  absl::Mutex loop_mu_;
  kafka::ConsumeLoop* loop_ ABSL_GUARDED_BY(loop_mu_) = nullptr;
};

}  // namespace schakel::router
