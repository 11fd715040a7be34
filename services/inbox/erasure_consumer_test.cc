#include "services/inbox/erasure_consumer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "libs/deadletter/dead_letters.h"
#include "libs/deadletter/testing.h"
#include "libs/kafka/fakes.h"
#include "schakel/v1/events.pb.h"
#include "services/inbox/ingest.h"
#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using FakeSource = ::schakel::kafka::testing::FakeSource;
using ::schakel::inbox::testing::kOrg;
using ::schakel::inbox::testing::MakeEvent;
using ::schakel::inbox::testing::MakeRecord;
using ::schakel::inbox::testing::TempStore;
using ::schakel::kafka::testing::Eventually;
using ::schakel::kafka::testing::Queue;
using ::schakel::kafka::testing::RecordingPublisher;
using ::testing::ElementsAre;

kafka::Record Erasure(std::string value, std::int64_t offset) {
  return {"schakel.clients.erasures", 0, offset, "p-0123456789abcdef", std::move(value)};
}

// What the inbox cannot use on the erasures topic goes to its dead letters with the reason (it used
// to be only logged); nothing is erased by it, and the next erasure is still applied.
TEST(ErasureConsumerTest, AnUnusableErasureIsADeadLetterWithItsReasonAndChangesNothing) {
  TempStore temp;
  ASSERT_TRUE(temp.ok());
  AssignmentIngest ingest(kOrg, temp.store());
  ASSERT_EQ(*ingest.Ingest(MakeRecord(MakeEvent("r-1", 0, "debt", 100))), IngestOutcome::kStored);
  const std::int64_t before = *temp.store().LastSequence();

  auto state = std::make_shared<FakeSource::State>();
  FakeSource source(state);
  RecordingPublisher publisher;
  deadletter::DeadLetters dead_letters(publisher, "inbox-" + std::string(kOrg),
                                       "inbox-" + std::string(kOrg));
  ErasureConsumer consumer(kOrg, source, temp.store(), dead_letters);
  consumer.Start();
  v1::ClientErased no_pseudonym;
  Queue(*state,
        {Erasure("\xff\xff not an event", 3), Erasure(no_pseudonym.SerializeAsString(), 4)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 2; }));
  EXPECT_EQ(*temp.store().LastSequence(), before) << "nothing erased";
  EXPECT_FALSE(temp.store().Get("a-r-1-0")->erased());
  const std::vector<std::string> letters = {
      "schakel.deadletters.inbox-mjd schakel.clients.erasures/0/3: not a ClientErased event "
      "(inbox-mjd)",
      "schakel.deadletters.inbox-mjd schakel.clients.erasures/0/4: client_pseudonym is missing "
      "(inbox-mjd)"};
  EXPECT_EQ(deadletter::testing::Sent(publisher), letters);

  v1::ClientErased erased;
  erased.set_client_pseudonym("p-0123456789abcdef");
  Queue(*state, {Erasure(erased.SerializeAsString(), 5)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 3; }));
  consumer.Stop();
  EXPECT_THAT(state->done, ElementsAre(3, 4, 5));
  EXPECT_TRUE(temp.store().Get("a-r-1-0")->erased());
  EXPECT_EQ(deadletter::testing::Sent(publisher), letters);
}

}  // namespace
}  // namespace schakel::inbox
