#include "services/router/router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/deadletter/dead_letters.h"
#include "libs/topology/topics.h"

namespace schakel::router {
namespace {

constexpr std::size_t kMaxBatch = 500;
// What arrives within this long of a batch's first record joins it: at low rates, where referrals
// come one at a time, fewer transactions for the same referrals. Measured at 100/s
// (tests/bench/run, docs/performance.md): 10 ms cut the CPU per referral by a fifth with end-to-end
// latency no worse; 20 ms cut it by more than a quarter, but each referral waited longer than the
// machine gained.
constexpr std::chrono::milliseconds kLinger{10};

}  // namespace

kafka::RebalanceListener Router::Listener() {
  return [this](bool assigned, const std::vector<kafka::TopicPartition>& partitions) {
    // The eager protocol revokes everything before each new assignment: the batch in hand is
    // dropped (its records are read again by whoever owns them now) and the state is read afresh.
    rebalanced_ = true;
    if (!assigned) {
      assigned_.clear();
      return;
    }
    for (const kafka::TopicPartition& tp : partitions) {
      if (std::find(assigned_.begin(), assigned_.end(), tp.partition) == assigned_.end()) {
        assigned_.push_back(tp.partition);
      }
    }
    std::sort(assigned_.begin(), assigned_.end());
  };
}

absl::Status Router::Reset(kafka::Consumer& consumer) {
  escalation_.ForgetAll();
  // Waits for the committed positions to be stable (no transaction of a former owner still open),
  // so the state read next includes everything those positions stand for.
  if (absl::Status s = consumer.RewindToCommitted(std::chrono::seconds(30)); !s.ok()) return s;
  std::size_t records = 0;
  std::size_t skipped = 0;
  absl::Status read =
      kafka::ReadToEnd(bootstrap_servers_, std::string(topology::kRouterStateTopic), assigned_,
                       std::chrono::seconds(30), [&](const kafka::Record& record, bool tombstone) {
                         ++records;
                         absl::Status s = escalation_.Restore(
                             record.partition, record.key,
                             tombstone ? std::nullopt : std::optional<std::string>(record.value));
                         // Reading again would not mend a record that cannot be read: skip it,
                         // loudly.
                         if (!s.ok()) {
                           spdlog::error("router: state record {}[{}]@{} skipped: {}", record.topic,
                                         record.partition, record.offset, std::string(s.message()));
                           ++skipped;
                         }
                       });
  if (!read.ok()) return read;
  if (absl::Status s = escalation_.Restored(); !s.ok()) return s;
  spdlog::info("router: restored partitions [{}] ({} state records, {} skipped, {} offers waiting)",
               absl::StrJoin(assigned_, ","), records, skipped, escalation_.waiting());
  return absl::OkStatus();
}

absl::Status Router::Publish(kafka::Consumer& consumer, const std::vector<Output>& out) {
  if (absl::Status s = producer_.Begin(); !s.ok()) return s;
  for (const Output& o : out) {
    if (absl::Status s = producer_.Produce(o.topic, o.key, o.value); !s.ok()) return s;
  }
  return producer_.CommitWithPositions(consumer, std::chrono::seconds(30));
}

absl::Status Router::Renew(const absl::Status& why) {
  // A fenced producer is most often the broker's doing: an outage longer than the transaction
  // timeout makes the coordinator abort the open transaction and bump the epoch; a commit that
  // timed out leaves its outcome unknown. A new producer under the same transactional id settles
  // both and goes on. Renewing again and again means another router runs with the same
  // --instance: stop rather than fence each other for ever.
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(renewals_, [&](auto t) { return now - t > std::chrono::minutes(5); });
  renewals_.push_back(now);
  if (renewals_.size() > 10) {
    return absl::FailedPreconditionError(absl::StrCat(
        "fenced ", renewals_.size(),
        " times within 5 minutes: does another router run with the same --instance? Last: ",
        std::string(why.message())));
  }
  spdlog::warn("router: the transactional producer cannot go on ({}); starting a new one",
               std::string(why.message()));
  auto backoff = std::chrono::milliseconds(500);
  while (!stop_.load()) {
    absl::Status renewed = producer_.Renew(std::chrono::seconds(30));
    if (renewed.ok()) {
      spdlog::info(
          "router: new transactional producer ready; redoing from the committed positions");
      return absl::OkStatus();
    }
    if (!absl::IsUnavailable(renewed)) return renewed;
    spdlog::warn("router: cannot start a new transactional producer yet: {}",
                 std::string(renewed.message()));
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  return absl::OkStatus();
}

absl::Status Router::Ready() {
  // A failed state store does not mend: go on to Commit, which stops the router (reading again
  // here would be retried for ever).
  if (!escalation_.failure().ok()) return absl::OkStatus();
  if (!rebalanced_) return absl::OkStatus();
  rebalanced_ = false;
  out_.clear();  // what was not committed is read again
  if (absl::Status s = Reset(*consumer_); !s.ok()) {
    rebalanced_ = true;
    return absl::Status(s.code(),
                        absl::StrCat("cannot restore the escalation state yet: ", s.message()));
  }
  return absl::OkStatus();
}

kafka::BatchOutcome Router::Handle(std::span<const kafka::Record> batch) {
  const std::shared_ptr<const routing::Policy> policy = policy_();
  // The organisations' load is read once a batch is in hand, not before the poll waits: a
  // referral that arrives during the wait is decided on what was known when it arrived.
  bool load_taken = false;
  auto take_load = [&] {
    if (load_taken) return;
    escalation_.SetLoad(load_ ? load_() : nullptr);
    load_taken = true;
  };
  kafka::BatchOutcome judged;
  for (const kafka::Record& record : batch) {
    take_load();
    absl::StatusOr<std::vector<Output>> handled = escalation_.Handle(*policy, record);
    if (handled.ok()) {
      for (Output& o : *handled) out_.push_back(std::move(o));
      routed_.fetch_add(1);
      judged.outcomes.push_back(kafka::Outcome::Stored());
    } else {
      // Neither lost nor blocking: a dead letter in this batch's transaction (Commit).
      rejected_.fetch_add(1);
      judged.outcomes.push_back(kafka::Outcome::Rejected(handled.status()));
    }
  }
  if (std::chrono::steady_clock::now() >= next_tick_) {
    take_load();
    for (Output& o : escalation_.Tick(*policy)) out_.push_back(std::move(o));
    next_tick_ = std::chrono::steady_clock::now() + tick_;
  }
  for (Output& o : escalation_.TakeStateChanges()) out_.push_back(std::move(o));
  return judged;
}

absl::StatusOr<kafka::BatchCommit::Committed> Router::Commit(
    std::span<const kafka::Record> batch, std::span<const kafka::Outcome> outcomes,
    const std::function<bool()>&) {
  // What the batch decided may rest on a state the store failed to read or keep: publish none of
  // it. The next router reads the state from the topic again.
  if (const absl::Status& failed = escalation_.failure(); !failed.ok()) {
    return absl::Status(failed.code(),
                        absl::StrCat("the router's state store failed: ", failed.message()));
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!outcomes[i].rejected()) continue;
    out_.push_back(
        {topology::DeadLetterTopic("router"), deadletter::Key(batch[i]),
         deadletter::Make(batch[i], std::string(outcomes[i].reason().message()), "router")
             .SerializeAsString()});
  }
  if (batch.empty() && out_.empty()) return Committed::kDone;
  const std::vector<Output> out = std::move(out_);
  out_.clear();
  absl::Status published = Publish(*consumer_, out);
  if (published.ok()) {
    if (on_committed_) on_committed_(out);
    return Committed::kDone;
  }
  if (absl::IsFailedPrecondition(published)) {
    if (absl::Status renewed = Renew(published); !renewed.ok()) return renewed;
  } else {
    spdlog::warn(
        "router: transaction of {} records aborted ({}); redoing from the committed "
        "positions",
        out.size(), std::string(published.message()));
    // A producer that cannot abort is in no state to begin again: a new one.
    if (absl::Status s = producer_.Abort(std::chrono::seconds(30)); !s.ok()) {
      if (absl::Status renewed = Renew(s); !renewed.ok()) return renewed;
    }
  }
  rebalanced_ = true;  // forget what was not committed and read it again
  return Committed::kAgain;
}

absl::Status Router::Run(kafka::Consumer& consumer) {
  consumer_ = &consumer;
  next_tick_ = std::chrono::steady_clock::now();
  kafka::ConsumerSource source(consumer);
  kafka::ConsumeLoopOptions options;
  options.name = "router";
  options.poll_timeout = std::chrono::milliseconds(100);
  options.max_batch = kMaxBatch;
  options.linger = kLinger;
  options.backoff = std::chrono::milliseconds(200);
  options.max_backoff = std::chrono::milliseconds(5000);
  options.handle_idle = true;  // the clock's escalations
  kafka::ConsumeLoop loop(
      source, [this](std::span<const kafka::Record> batch) { return Handle(batch); }, *this,
      options);
  {
    absl::MutexLock lock(&loop_mu_);
    if (stop_.load()) return absl::OkStatus();
    loop_ = &loop;
  }
  absl::Status ran = loop.Run();
  absl::MutexLock lock(&loop_mu_);
  loop_ = nullptr;
  return ran;
}

void Router::Stop() {
  absl::MutexLock lock(&loop_mu_);
  stop_.store(true);
  if (loop_ != nullptr) loop_->Stop();
}

}  // namespace schakel::router
