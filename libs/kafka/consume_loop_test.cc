#include "libs/kafka/consume_loop.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libs/kafka/fakes.h"

namespace schakel::kafka {
namespace {

using ::schakel::kafka::testing::Eventually;
using ::schakel::kafka::testing::FakeSource;
using ::schakel::kafka::testing::Queue;
using ::testing::ElementsAre;

Record At(std::int64_t offset, std::string value = "ok") {
  return {"schakel.test", 0, offset, "k", std::move(value)};
}

// Keeps each dead letter with how many records were marked done when it was sent.
class RecordingSink final : public DeadLetterSink {
 public:
  explicit RecordingSink(FakeSource::State& state) : state_(state) {}
  bool Send(const Record& record, std::string_view reason,
            const std::function<bool()>& stopping) override {
    std::size_t done_before = 0;
    {
      std::lock_guard lock(state_.mu);
      done_before = state_.done.size();
    }
    while (refuse) {  // Kafka down: only a stop ends the wait
      if (stopping && stopping()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::lock_guard lock(mu);
    sent.push_back({record.offset, std::string(reason), done_before});
    return true;
  }
  struct Sent {
    std::int64_t offset;
    std::string reason;
    std::size_t done_before;
  };
  std::mutex mu;
  std::vector<Sent> sent;
  std::atomic<bool> refuse{false};

 private:
  FakeSource::State& state_;
};

ConsumeLoopOptions Fast() {
  ConsumeLoopOptions options;
  options.name = "test";
  options.poll_timeout = std::chrono::milliseconds(10);
  options.backoff = std::chrono::milliseconds(10);
  options.max_backoff = std::chrono::milliseconds(40);
  return options;
}

// A handler that keeps the offsets of every batch it was handed and judges each record by its
// value: "dup" a duplicate, "bad" rejected, anything else stored.
struct Judge {
  std::mutex mu;
  std::vector<std::vector<std::int64_t>> batches;
  BatchOutcome operator()(std::span<const Record> batch) {
    BatchOutcome out;
    std::vector<std::int64_t> offsets;
    for (const Record& r : batch) {
      offsets.push_back(r.offset);
      if (r.value == "dup") {
        out.outcomes.push_back(Outcome::Duplicate());
      } else if (r.value == "bad") {
        out.outcomes.push_back(Outcome::Rejected(absl::InvalidArgumentError("not an event")));
      } else {
        out.outcomes.push_back(Outcome::Stored());
      }
    }
    std::lock_guard lock(mu);
    batches.push_back(std::move(offsets));
    return out;
  }
};

TEST(ConsumeLoopTest, EveryOutcomeIsMarkedDoneInOrderAndBatchesAreBounded) {
  auto state = std::make_shared<FakeSource::State>();
  Queue(*state, {At(1), At(2, "dup"), At(3, "bad"), At(4), At(5)});
  FakeSource source(state);
  Judge judge;
  ConsumeLoopOptions options = Fast();
  options.max_batch = 2;
  ConsumeLoop loop(source, std::ref(judge), options);
  loop.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 5; }));
  loop.Stop();
  EXPECT_THAT(state->done, ElementsAre(1, 2, 3, 4, 5));
  std::lock_guard lock(judge.mu);
  EXPECT_THAT(judge.batches, ElementsAre(ElementsAre(1, 2), ElementsAre(3, 4), ElementsAre(5)));
  EXPECT_FALSE(state->closed) << "the source is its owner's to close";
}

// With a linger, a record that arrives a moment after the first joins its batch (the router's
// fewer, fuller transactions at low rates); without one, the batch is what was there already.
TEST(ConsumeLoopTest, ALingerWaitsForMoreRecordsAfterTheFirst) {
  for (const auto linger : {std::chrono::milliseconds(0), std::chrono::milliseconds(400)}) {
    SCOPED_TRACE(linger.count());
    auto state = std::make_shared<FakeSource::State>();
    FakeSource source(state);
    Judge judge;
    ConsumeLoopOptions options = Fast();
    options.linger = linger;
    options.max_batch_time = std::chrono::milliseconds(1000);
    ConsumeLoop loop(source, std::ref(judge), options);
    loop.Start();
    Queue(*state, {At(1)});
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    Queue(*state, {At(2)});
    ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 2; }));
    loop.Stop();
    std::lock_guard lock(judge.mu);
    if (linger.count() == 0) {
      EXPECT_THAT(judge.batches, ElementsAre(ElementsAre(1), ElementsAre(2)));
    } else {
      EXPECT_THAT(judge.batches, ElementsAre(ElementsAre(1, 2)));
    }
  }
}

TEST(ConsumeLoopTest, ARejectedRecordReachesTheDeadLettersBeforeItIsMarkedDone) {
  auto state = std::make_shared<FakeSource::State>();
  Queue(*state, {At(1), At(2, "bad"), At(3)});
  FakeSource source(state);
  RecordingSink sink(*state);
  Judge judge;
  ConsumeLoopOptions options = Fast();
  options.dead_letters = &sink;
  ConsumeLoop loop(source, std::ref(judge), options);
  loop.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 3; }));
  loop.Stop();
  std::lock_guard lock(sink.mu);
  ASSERT_EQ(sink.sent.size(), 1u);
  EXPECT_EQ(sink.sent[0].offset, 2);
  EXPECT_EQ(sink.sent[0].reason, "not an event");
  EXPECT_EQ(sink.sent[0].done_before, 1u) << "the record before it done, not it";
}

TEST(ConsumeLoopTest, StoppingWhileTheDeadLetterCannotBeSentLeavesTheRecordUnmarked) {
  auto state = std::make_shared<FakeSource::State>();
  Queue(*state, {At(1), At(2, "bad"), At(3)});
  FakeSource source(state);
  RecordingSink sink(*state);
  sink.refuse = true;
  Judge judge;
  ConsumeLoopOptions options = Fast();
  options.dead_letters = &sink;
  ConsumeLoop loop(source, std::ref(judge), options);
  loop.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  loop.Stop();
  EXPECT_THAT(state->done, ElementsAre(1));  // 2 and 3 come again after a restart
}

TEST(ConsumeLoopTest, ATransientFailureHandsTheRestAgainAfterAGrowingPause) {
  auto state = std::make_shared<FakeSource::State>();
  Queue(*state, {At(1), At(2), At(3)});
  FakeSource source(state);
  std::mutex mu;
  std::vector<std::vector<std::int64_t>> handed;
  std::vector<std::chrono::steady_clock::time_point> when;
  int failures = 3;
  auto handler = [&](std::span<const Record> batch) {
    std::lock_guard lock(mu);
    std::vector<std::int64_t> offsets;
    for (const Record& r : batch) offsets.push_back(r.offset);
    handed.push_back(offsets);
    when.push_back(std::chrono::steady_clock::now());
    BatchOutcome out;
    for (const Record& r : batch) {
      if (r.offset == 2 && failures > 0) {
        --failures;
        out.retry = absl::UnavailableError("database is locked");
        break;
      }
      out.outcomes.push_back(Outcome::Stored());
    }
    return out;
  };
  ConsumeLoopOptions options = Fast();
  options.backoff = std::chrono::milliseconds(20);
  options.max_backoff = std::chrono::milliseconds(40);
  ConsumeLoop loop(source, handler, options);
  loop.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 3; }));
  loop.Stop();
  EXPECT_THAT(state->done, ElementsAre(1, 2, 3));
  std::lock_guard lock(mu);
  // The record before the failing one is done at once; the rest is handed again, and nothing
  // new is polled meanwhile.
  EXPECT_THAT(handed, ElementsAre(ElementsAre(1, 2, 3), ElementsAre(2, 3), ElementsAre(2, 3),
                                  ElementsAre(2, 3)));
  ASSERT_EQ(when.size(), 4u);
  EXPECT_GE(when[1] - when[0], std::chrono::milliseconds(20));
  EXPECT_GE(when[2] - when[1], std::chrono::milliseconds(40));
  EXPECT_GE(when[3] - when[2], std::chrono::milliseconds(40));  // no longer than max_backoff
}

TEST(ConsumeLoopTest, AFatalSourceErrorGoesToOnFatalAfterWhatArrivedBeforeIt) {
  auto state = std::make_shared<FakeSource::State>();
  Queue(*state, {At(1)});
  state->queue.push_back(absl::InternalError("kafka consumer: fatal: fenced"));
  Queue(*state, {At(2)});
  FakeSource source(state);
  Judge judge;
  std::vector<absl::Status> fatal;
  ConsumeLoopOptions options = Fast();
  options.on_fatal = [&](absl::Status s) { fatal.push_back(std::move(s)); };
  ConsumeLoop loop(source, std::ref(judge), options);
  const absl::Status ran = loop.Run();  // ends by itself
  EXPECT_EQ(ran, absl::InternalError("kafka consumer: fatal: fenced"));
  EXPECT_THAT(fatal, ElementsAre(ran));
  EXPECT_THAT(state->done, ElementsAre(1));
  EXPECT_EQ(state->queue.size(), 1u) << "nothing polled after the error";
}

TEST(ConsumeLoopTest, WithoutOnFatalRunReturnsTheErrorForMainToDecide) {
  auto state = std::make_shared<FakeSource::State>();
  state->queue.push_back(absl::InternalError("kafka consumer: fatal: gone"));
  FakeSource source(state);
  Judge judge;
  ConsumeLoop loop(source, std::ref(judge), Fast());
  EXPECT_EQ(loop.Run(), absl::InternalError("kafka consumer: fatal: gone"));
}

// A transactional commit, scripted: Ready fails `unready` times, Void is true for the next
// `voids` batches, and Commit answers kAgain `aborts` times, then commits.
class ScriptedCommit final : public BatchCommit {
 public:
  absl::Status Ready() override {
    std::lock_guard lock(mu);
    ++readies;
    if (unready > 0) {
      --unready;
      return absl::UnavailableError("cannot restore the state yet");
    }
    return absl::OkStatus();
  }
  bool Void() override {
    std::lock_guard lock(mu);
    if (voids == 0) return false;
    --voids;
    return true;
  }
  absl::StatusOr<Committed> Commit(std::span<const Record> batch, std::span<const Outcome> outcomes,
                                   const std::function<bool()>&) override {
    std::lock_guard lock(mu);
    if (fatal) return absl::FailedPreconditionError("fenced 11 times");
    if (aborts > 0) {
      --aborts;
      return Committed::kAgain;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      committed.push_back(batch[i].offset);
      if (outcomes[i].rejected()) letters.push_back(batch[i].offset);
    }
    ++commits;
    return Committed::kDone;
  }
  std::mutex mu;
  int unready = 0, voids = 0, aborts = 0, readies = 0, commits = 0;
  bool fatal = false;
  std::vector<std::int64_t> committed, letters;
};

TEST(ConsumeLoopTest, ATransactionalCommitDecidesWhatIsDoneAndWhenToReadAgain) {
  auto state = std::make_shared<FakeSource::State>();
  FakeSource source(state);
  ScriptedCommit commit;
  commit.unready = 2;
  commit.aborts = 1;
  Judge judge;
  ConsumeLoop loop(source, std::ref(judge), commit, Fast());
  loop.Start();
  ASSERT_TRUE(Eventually(*state, [&] {
    std::lock_guard lock(commit.mu);
    return commit.readies >= 3;
  }));
  Queue(*state, {At(1), At(2, "bad")});
  // The aborted batch is not handed again from memory: the commit reads it again (here, as a
  // rewound consumer would, it is queued again).
  ASSERT_TRUE(Eventually(*state, [&] {
    std::lock_guard lock(commit.mu);
    return commit.aborts == 0;
  }));
  Queue(*state, {At(1), At(2, "bad")});
  ASSERT_TRUE(Eventually(*state, [&] {
    std::lock_guard lock(commit.mu);
    return commit.committed.size() == 2;
  }));
  loop.Stop();
  std::lock_guard lock(commit.mu);
  EXPECT_THAT(commit.committed, ElementsAre(1, 2));
  EXPECT_THAT(commit.letters, ElementsAre(2));
  EXPECT_TRUE(state->done.empty()) << "the source's MarkDone is not the commit's";
  EXPECT_GE(commit.readies, 4);  // twice unready, once before the abort, once after
}

TEST(ConsumeLoopTest, AVoidBatchIsDroppedUnhandled) {
  auto state = std::make_shared<FakeSource::State>();
  Queue(*state, {At(1)});
  FakeSource source(state);
  ScriptedCommit commit;
  commit.voids = 1;
  Judge judge;
  ConsumeLoop loop(source, std::ref(judge), commit, Fast());
  loop.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->queue.empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Queue(*state, {At(1)});  // read again after the rebalance
  ASSERT_TRUE(Eventually(*state, [&] {
    std::lock_guard lock(commit.mu);
    return commit.commits == 1;
  }));
  loop.Stop();
  std::lock_guard lock(judge.mu);
  EXPECT_THAT(judge.batches, ElementsAre(ElementsAre(1)));
}

TEST(ConsumeLoopTest, AFatalCommitEndsTheLoop) {
  auto state = std::make_shared<FakeSource::State>();
  Queue(*state, {At(1)});
  FakeSource source(state);
  ScriptedCommit commit;
  commit.fatal = true;
  Judge judge;
  std::vector<absl::Status> fatal;
  ConsumeLoopOptions options = Fast();
  options.on_fatal = [&](absl::Status s) { fatal.push_back(std::move(s)); };
  ConsumeLoop loop(source, std::ref(judge), commit, options);
  EXPECT_EQ(loop.Run(), absl::FailedPreconditionError("fenced 11 times"));
  EXPECT_EQ(fatal.size(), 1u);
}

TEST(ConsumeLoopTest, IdleBatchesReachTheHandlerOnlyWhenAskedFor) {
  auto state = std::make_shared<FakeSource::State>();
  FakeSource source(state);
  std::atomic<int> calls{0};
  auto handler = [&](std::span<const Record> batch) {
    EXPECT_TRUE(batch.empty());
    ++calls;
    return BatchOutcome{};
  };
  {
    ConsumeLoop loop(source, handler, Fast());
    loop.Start();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(calls, 0);
  ConsumeLoopOptions options = Fast();
  options.handle_idle = true;
  ConsumeLoop loop(source, handler, options);
  loop.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  loop.Stop();
  EXPECT_GT(calls, 0);
}

}  // namespace
}  // namespace schakel::kafka
