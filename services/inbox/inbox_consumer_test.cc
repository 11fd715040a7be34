#include "services/inbox/inbox_consumer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libs/deadletter/testing.h"
#include "libs/kafka/fakes.h"
#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using ::schakel::inbox::testing::kOrg;
using ::schakel::inbox::testing::MakeEvent;
using ::schakel::inbox::testing::MakeRecord;
using ::schakel::inbox::testing::TempStore;
using ::testing::ElementsAre;

using FakeSource = ::schakel::kafka::testing::FakeSource;
using ::schakel::kafka::testing::Eventually;
using ::schakel::kafka::testing::RecordingPublisher;

TEST(InboxConsumerTest, MarksStoredDuplicateAndRejectedRecordsDone) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  kafka::Record good = MakeRecord(MakeEvent("r-1", 0, "debt", 100), 10);
  kafka::Record again = good;
  again.offset = 11;
  kafka::Record bad = MakeRecord(MakeEvent("r-2", 0, "debt", 100), 12);
  bad.value = "garbage";
  kafka::Record next = MakeRecord(MakeEvent("r-3", 1, "debt", 100), 13);
  for (const kafka::Record& r : {good, again, bad, next}) {
    state->queue.push_back(std::optional<kafka::Record>(r));
  }

  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 4; }));
  consumer.Stop();

  EXPECT_THAT(state->done, ElementsAre(10, 11, 12, 13));
  EXPECT_TRUE(state->closed);
  EXPECT_EQ(state->marked_after_close, 0);
  EXPECT_EQ(temp.store().Count().value_or(-1), 2);
  EXPECT_EQ(ingest.counts().stored, 2u);
  EXPECT_EQ(ingest.counts().duplicates, 1u);
  EXPECT_EQ(ingest.counts().rejected, 1u);
  consumer.Stop();  // twice is fine
}

TEST(InboxConsumerTest, ARejectedRecordBecomesADeadLetterBeforeItIsMarkedDone) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  kafka::Record bad = MakeRecord(MakeEvent("r-2", 0, "debt", 100), 12);
  bad.value = "garbage";
  kafka::Record next = MakeRecord(MakeEvent("r-3", 1, "debt", 100), 13);
  for (const kafka::Record& r : {bad, next}) {
    state->queue.push_back(std::optional<kafka::Record>(r));
  }
  RecordingPublisher publisher;
  deadletter::DeadLetters dead_letters(publisher, "inbox-" + std::string(kOrg),
                                       "inbox-" + std::string(kOrg));
  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  options.dead_letters = &dead_letters;
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 2; }));
  consumer.Stop();

  EXPECT_THAT(state->done, ElementsAre(12, 13));  // the consumer went on
  std::lock_guard<std::mutex> lock(publisher.mu);
  ASSERT_EQ(publisher.keys.size(), 1u);
  EXPECT_EQ(publisher.keys[0], "schakel.deadletters.inbox-" + std::string(kOrg) + " " + bad.topic +
                                   "/" + std::to_string(bad.partition) + "/12");
  v1::DeadLetter letter;
  ASSERT_TRUE(letter.ParseFromString(publisher.values[0]));
  EXPECT_EQ(letter.value(), "garbage");
  EXPECT_EQ(letter.consumer(), "inbox-" + std::string(kOrg));
  EXPECT_FALSE(letter.reason().empty());
  EXPECT_EQ(temp.store().Count().value_or(-1), 1);
}

// Every unusable record reaches the inbox's dead-letter topic with the reason; the store is as it
// was, and the next good record is still stored.
TEST(InboxConsumerTest, AnUnusableRecordIsADeadLetterWithItsReasonAndChangesNothing) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  kafka::Record first = MakeRecord(MakeEvent("r-1", 0, "debt", 100), 10);
  kafka::Record bad = MakeRecord(MakeEvent("r-2", 0, "debt", 100), 11);
  bad.value = "garbage";
  kafka::Record next = MakeRecord(MakeEvent("r-3", 0, "debt", 100), 12);
  kafka::testing::Queue(*state, {first});
  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  RecordingPublisher publisher;
  deadletter::DeadLetters dead_letters(publisher, "inbox-" + std::string(kOrg),
                                       "inbox-" + std::string(kOrg));
  options.dead_letters = &dead_letters;
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 1; }));
  ASSERT_EQ(temp.store().Count().value_or(-1), 1);

  kafka::testing::Queue(*state, {bad});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 2; }));
  EXPECT_EQ(temp.store().Count().value_or(-1), 1);
  EXPECT_EQ(ingest.counts().rejected, 1u);
  EXPECT_THAT(deadletter::testing::Sent(publisher),
              ElementsAre("schakel.deadletters.inbox-mjd schakel.inbox.mjd/2/11: value is not a "
                          "schakel.v1.InboxEvent with an AssignmentRequested (inbox-mjd)"));

  kafka::testing::Queue(*state, {next});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 3; }));
  consumer.Stop();
  EXPECT_THAT(state->done, ElementsAre(10, 11, 12));
  EXPECT_EQ(temp.store().Count().value_or(-1), 2);
}

TEST(InboxConsumerTest, WhatArrivedTogetherIsStoredInOneTransactionThenMarkedDoneInOrder) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  kafka::Record bad = MakeRecord(MakeEvent("r-3", 0, "debt", 100), 12);
  bad.value = "garbage";
  for (const kafka::Record& r : {MakeRecord(MakeEvent("r-1", 0, "debt", 100), 10),
                                 MakeRecord(MakeEvent("r-2", 0, "debt", 100), 11), bad,
                                 MakeRecord(MakeEvent("r-4", 0, "debt", 100), 13),
                                 MakeRecord(MakeEvent("r-5", 0, "debt", 100), 14)}) {
    state->queue.push_back(std::optional<kafka::Record>(r));
  }
  std::atomic<int> commits{0};
  store::InboxStore::Subscription subscription = temp.store().OnCommit([&] { ++commits; });
  RecordingPublisher publisher;
  deadletter::DeadLetters dead_letters(publisher, "inbox-" + std::string(kOrg),
                                       "inbox-" + std::string(kOrg));
  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  options.dead_letters = &dead_letters;
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 5; }));
  consumer.Stop();

  EXPECT_THAT(state->done, ElementsAre(10, 11, 12, 13, 14));
  EXPECT_EQ(commits, 1);
  EXPECT_EQ(temp.store().Count().value_or(-1), 4);
  std::lock_guard<std::mutex> lock(publisher.mu);
  EXPECT_EQ(publisher.keys.size(), 1u);  // the poison record, and only it, as a dead letter
}

TEST(InboxConsumerTest, ABatchIsBoundedInRecords) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  for (int i = 0; i < 5; ++i) {
    state->queue.push_back(std::optional<kafka::Record>(
        MakeRecord(MakeEvent("r-" + std::to_string(i), 0, "debt", 100), i)));
  }
  std::atomic<int> commits{0};
  store::InboxStore::Subscription subscription = temp.store().OnCommit([&] { ++commits; });
  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  options.max_batch = 2;
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 5; }));
  consumer.Stop();
  EXPECT_EQ(commits, 3);  // 2 + 2 + 1
  EXPECT_EQ(temp.store().Count().value_or(-1), 5);
}

TEST(InboxConsumerTest, WhenTheStoreFailsTheRecordsBeforeTheFailingOneAreStoredAndNothingAfterIt) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  for (int i = 1; i <= 4; ++i) {
    state->queue.push_back(std::optional<kafka::Record>(
        MakeRecord(MakeEvent("r-" + std::to_string(i), 0, "debt", 100), i)));
  }
  testing::RefuseWritesOf(temp.path(), "a-r-3-0");
  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  options.retry_backoff = std::chrono::milliseconds(10);
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a few more attempts
  {
    std::lock_guard<std::mutex> lock(state->mu);
    EXPECT_THAT(state->done, ElementsAre(1, 2));
  }
  EXPECT_EQ(temp.store().Count().value_or(-1), 2);

  testing::AllowWrites(temp.path());  // the disk has room again
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 4; }));
  consumer.Stop();
  EXPECT_THAT(state->done, ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(temp.store().Count().value_or(-1), 4);
}

TEST(InboxConsumerTest, StoppingWhileTheStoreFailsLeavesTheRecordUnmarked) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  state->queue.push_back(
      std::optional<kafka::Record>(MakeRecord(MakeEvent("r-1", 0, "debt", 100), 1)));
  testing::RefuseWritesOf(temp.path(), "a-r-1-0");
  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  options.retry_backoff = std::chrono::milliseconds(10);
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] { return state->queue.empty(); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  consumer.Stop();
  EXPECT_TRUE(state->done.empty());  // delivered again after a restart
  EXPECT_TRUE(state->closed);
}

TEST(InboxConsumerTest, FatalSourceErrorEndsTheLoopAndIsReported) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  state->queue.push_back(absl::InternalError("kafka consumer: fatal: fenced"));
  state->queue.push_back(std::optional<kafka::Record>(MakeRecord(MakeEvent("r-1", 0, "debt", 1))));

  std::mutex mu;
  std::vector<std::string> fatal;
  InboxConsumerOptions options;
  options.poll_timeout = std::chrono::milliseconds(10);
  options.on_fatal = [&](const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu);
    fatal.push_back(std::string(status.message()));
  };
  InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest, options);
  consumer.Start();
  ASSERT_TRUE(Eventually(*state, [&] {
    std::lock_guard<std::mutex> lock(mu);
    return !fatal.empty();
  }));
  consumer.Stop();

  EXPECT_THAT(fatal, ElementsAre("kafka consumer: fatal: fenced"));
  EXPECT_TRUE(state->done.empty());  // the loop ended: the record after the error was not taken
  EXPECT_EQ(state->queue.size(), 1u);
  EXPECT_TRUE(state->closed);
}

TEST(InboxConsumerTest, StopWithoutStartClosesTheSource) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  auto state = std::make_shared<FakeSource::State>();
  { InboxConsumer consumer(std::make_unique<FakeSource>(state), ingest); }
  EXPECT_TRUE(state->closed);
}

}  // namespace
}  // namespace schakel::inbox
