#include "services/inbox/outbox_relay.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using ::schakel::inbox::testing::TempStore;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Records what is published and answers as the test says: at once with a status, or not until
// AnswerHeld().
class FakePublisher final : public kafka::Publisher {
 public:
  // nullopt: hold the answer.
  using Answer = std::function<std::optional<absl::Status>(const std::string& value)>;

  void Publish(std::string_view topic, std::string_view key, std::string_view value,
               Done done) override {
    std::optional<absl::Status> answer;
    {
      absl::MutexLock lock(&mu_);
      attempts_.push_back(
          absl::StrCat(std::string(topic), "|", std::string(key), "|", std::string(value)));
      answer = answer_ ? answer_(std::string(value)) : absl::OkStatus();
      if (!answer) held_.push_back(std::move(done));
    }
    if (answer) done(*answer);
  }
  bool Reachable() const override { return reachable_.load(); }

  void SetAnswer(Answer answer) {
    absl::MutexLock lock(&mu_);
    answer_ = std::move(answer);
  }
  void SetReachable(bool reachable) { reachable_ = reachable; }
  // Answers every held publish with `status`, from the calling thread (as a delivery thread
  // would).
  void AnswerHeld(const absl::Status& status) {
    std::vector<Done> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (Done& done : held) done(status);
  }
  std::vector<std::string> attempts() {
    absl::MutexLock lock(&mu_);
    return attempts_;
  }

 private:
  absl::Mutex mu_;
  Answer answer_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> attempts_ ABSL_GUARDED_BY(mu_);  // "topic|key|value"
  std::vector<Done> held_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> reachable_{true};
};

// Waits (up to 10 s) until `done` holds.
bool Eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class OutboxRelayTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(temp_.ok()); }

  // Stores assignment `id` with one event per value.
  void Store(const std::string& id, const std::vector<std::string>& values) {
    v1::Assignment a;
    a.set_assignment_id(id);
    a.set_version(1);
    std::vector<store::OutboxEvent> events;
    for (const std::string& value : values) {
      events.push_back({"schakel.from.mjd", id, value});
    }
    ASSERT_EQ(temp_.store().Insert(a, std::move(events)).value_or(false), true);
  }

  std::vector<std::string> Pending() {
    std::vector<std::string> values;
    absl::StatusOr<std::vector<store::OutboxEntry>> pending = temp_.store().PendingOutbox(1000);
    EXPECT_TRUE(pending.ok()) << pending.status();
    if (!pending.ok()) return values;
    for (const store::OutboxEntry& e : *pending) {
      values.push_back(e.event.value);
    }
    return values;
  }

  static OutboxRelayOptions Fast() {
    OutboxRelayOptions options;
    options.initial_backoff = std::chrono::milliseconds(10);
    options.max_backoff = std::chrono::milliseconds(40);
    options.idle_wait = std::chrono::milliseconds(50);
    options.stop_timeout = std::chrono::milliseconds(2000);
    return options;
  }

  TempStore temp_;
  FakePublisher publisher_;
};

TEST_F(OutboxRelayTest, PublishesEachPendingEventOnceInOrderAndDeletesIt) {
  Store("a-1", {"one"});
  Store("a-2", {"two", "three"});
  OutboxRelay relay(temp_.store(), publisher_, Fast());
  relay.Start();
  ASSERT_TRUE(Eventually([&] { return Pending().empty(); }));
  EXPECT_THAT(publisher_.attempts(),
              ElementsAre("schakel.from.mjd|a-1|one", "schakel.from.mjd|a-2|two",
                          "schakel.from.mjd|a-2|three"));

  // A change stored later is published too, once.
  Store("a-3", {"four"});
  ASSERT_TRUE(Eventually([&] { return Pending().empty(); }));
  relay.Stop();
  EXPECT_THAT(publisher_.attempts(), SizeIs(4));
  EXPECT_EQ(publisher_.attempts().back(), "schakel.from.mjd|a-3|four");
  EXPECT_EQ(relay.counts().published, 4u);
  EXPECT_EQ(relay.counts().failed, 0u);
}

TEST_F(OutboxRelayTest, KeepsAFailedEventAndRetriesIt) {
  std::atomic<int> refusals{0};
  publisher_.SetAnswer([&refusals](const std::string& value) -> std::optional<absl::Status> {
    if (value == "two" && refusals.fetch_add(1) == 0) {
      return absl::UnavailableError("Kafka did not acknowledge the event: timed out");
    }
    return absl::OkStatus();
  });
  Store("a-1", {"one", "two", "three"});
  OutboxRelay relay(temp_.store(), publisher_, Fast());
  relay.Start();
  ASSERT_TRUE(Eventually([&] { return Pending().empty(); }));
  relay.Stop();

  // The acknowledged ones once; the refused one again until acknowledged.
  EXPECT_THAT(publisher_.attempts(),
              ElementsAre("schakel.from.mjd|a-1|one", "schakel.from.mjd|a-1|two",
                          "schakel.from.mjd|a-1|three", "schakel.from.mjd|a-1|two"));
  EXPECT_EQ(relay.counts().published, 3u);
  EXPECT_EQ(relay.counts().failed, 1u);
}

TEST_F(OutboxRelayTest, DeletesOnlyWhatWasAcknowledged) {
  publisher_.SetAnswer([](const std::string& value) -> std::optional<absl::Status> {
    if (value == "two") return absl::UnavailableError("timed out");
    return absl::OkStatus();
  });
  Store("a-1", {"one", "two", "three"});
  OutboxRelay relay(temp_.store(), publisher_, Fast());

  absl::StatusOr<int> relayed = relay.RelayOnce();
  EXPECT_EQ(relayed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(relayed.status().message(), "1 of 3 events were not acknowledged: timed out");
  EXPECT_THAT(Pending(), ElementsAre("two"));

  publisher_.SetAnswer(nullptr);
  EXPECT_EQ(relay.RelayOnce().value_or(-1), 1);
  EXPECT_THAT(Pending(), IsEmpty());
  EXPECT_EQ(relay.RelayOnce().value_or(-1), 0);
  EXPECT_THAT(publisher_.attempts(), SizeIs(4));
}

TEST_F(OutboxRelayTest, DeletesNothingBeforeEveryAcknowledgementIsIn) {
  publisher_.SetAnswer([](const std::string&) { return std::nullopt; });
  Store("a-1", {"one", "two"});
  OutboxRelay relay(temp_.store(), publisher_, Fast());

  absl::StatusOr<int> relayed;
  std::thread relaying([&] { relayed = relay.RelayOnce(); });
  ASSERT_TRUE(Eventually([&] { return publisher_.attempts().size() == 2; }));
  EXPECT_THAT(Pending(), ElementsAre("one", "two"));
  // The acknowledgements arrive on another thread, as from the producer's delivery thread.
  publisher_.AnswerHeld(absl::OkStatus());
  relaying.join();
  EXPECT_EQ(relayed.value_or(-1), 2);
  EXPECT_THAT(Pending(), IsEmpty());
}

TEST_F(OutboxRelayTest, UnreachableKafkaPublishesNothing) {
  publisher_.SetReachable(false);
  Store("a-1", {"one"});
  OutboxRelay relay(temp_.store(), publisher_, Fast());
  EXPECT_EQ(relay.RelayOnce().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(publisher_.attempts(), IsEmpty());
  EXPECT_THAT(Pending(), ElementsAre("one"));
}

TEST_F(OutboxRelayTest, StopPublishesWhatIsPending) {
  publisher_.SetReachable(false);
  OutboxRelayOptions options = Fast();
  options.initial_backoff = std::chrono::seconds(30);  // the loop sleeps through what follows
  options.max_backoff = std::chrono::seconds(30);
  OutboxRelay relay(temp_.store(), publisher_, options);
  Store("a-1", {"one"});
  relay.Start();
  Store("a-2", {"two"});
  publisher_.SetReachable(true);
  relay.Stop();
  EXPECT_THAT(Pending(), IsEmpty());
  EXPECT_THAT(publisher_.attempts(), SizeIs(2));
}

TEST_F(OutboxRelayTest, StopIsBoundedWhenKafkaDoesNotAnswer) {
  publisher_.SetAnswer([](const std::string&) { return std::nullopt; });
  OutboxRelayOptions options = Fast();
  options.ack_timeout = std::chrono::hours(1);
  options.stop_timeout = std::chrono::milliseconds(200);
  OutboxRelay relay(temp_.store(), publisher_, options);
  relay.Start();
  Store("a-1", {"one"});
  ASSERT_TRUE(Eventually([&] { return publisher_.attempts().size() == 1; }));
  relay.Stop();  // returns although the acknowledgement never comes
  EXPECT_THAT(Pending(), ElementsAre("one"));
  // A late answer after Stop is harmless.
  publisher_.AnswerHeld(absl::OkStatus());
  EXPECT_THAT(Pending(), ElementsAre("one"));
}

TEST_F(OutboxRelayTest, WhatACrashLeftIsPublishedAtTheNextStart) {
  // Stored, then the process died before any relay ran: the rows are in the file.
  Store("a-1", {"one"});
  Store("a-2", {"two"});
  ASSERT_TRUE(temp_.Reopen());
  OutboxRelay relay(temp_.store(), publisher_, Fast());
  relay.Start();
  ASSERT_TRUE(Eventually([&] { return Pending().empty(); }));
  relay.Stop();
  EXPECT_THAT(publisher_.attempts(),
              ElementsAre("schakel.from.mjd|a-1|one", "schakel.from.mjd|a-2|two"));
}

TEST_F(OutboxRelayTest, TheFaultHookHoldsEverything) {
  ASSERT_EQ(setenv(kHoldOutboxVariable, "1", 1), 0);
  {
    OutboxRelay held(temp_.store(), publisher_, Fast());
    EXPECT_TRUE(held.held());
    held.Start();
    Store("a-1", {"one"});
    EXPECT_EQ(held.RelayOnce().value_or(-1), 0);
    held.Stop();
  }
  ASSERT_EQ(unsetenv(kHoldOutboxVariable), 0);
  EXPECT_THAT(publisher_.attempts(), IsEmpty());
  EXPECT_THAT(Pending(), ElementsAre("one"));

  // The restart without the hook publishes it, once.
  OutboxRelay relay(temp_.store(), publisher_, Fast());
  EXPECT_FALSE(relay.held());
  relay.Start();
  ASSERT_TRUE(Eventually([&] { return Pending().empty(); }));
  relay.Stop();
  EXPECT_THAT(publisher_.attempts(), ElementsAre("schakel.from.mjd|a-1|one"));
}

}  // namespace
}  // namespace schakel::inbox
