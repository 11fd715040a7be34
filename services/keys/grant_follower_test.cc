#include "services/keys/grant_follower.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "libs/deadletter/dead_letters.h"
#include "libs/deadletter/testing.h"
#include "libs/kafka/fakes.h"
#include "schakel/v1/events.pb.h"

namespace schakel::keys {
namespace {

using FakeSource = ::schakel::kafka::testing::FakeSource;
using ::schakel::kafka::testing::Eventually;
using ::schakel::kafka::testing::Queue;
using ::schakel::kafka::testing::RecordingPublisher;
using ::testing::ElementsAre;

kafka::Record Change(const std::string& assignment_id, const std::string& organisation,
                     v1::AssignmentStatus to, std::int64_t offset) {
  v1::AssignmentStatusChanged change;
  change.mutable_meta()->set_referral_id("r-1");
  change.mutable_meta()->set_assignment_id(assignment_id);
  change.set_organisation(organisation);
  change.set_to_status(to);
  return {"schakel.keys.grants", 0, offset, "r-1", change.SerializeAsString()};
}

// The grants topic holds offers only (the router writes it): anything else goes to the key
// service's dead letters with the reason (it used to be dropped without a word), grants nobody,
// and the next offer is still granted.
TEST(GrantFollowerTest, AnUnusableRecordIsADeadLetterWithItsReasonAndGrantsNothing) {
  std::unique_ptr<KeyStore> store = *KeyStore::Open(":memory:", std::string(32, 'm'));
  absl::StatusOr<DataKey> anna = store->ClientKey("p-anna", "r-1", std::vector<std::string>{"mjd"});
  ASSERT_TRUE(anna.ok()) << anna.status();
  auto state = std::make_shared<FakeSource::State>();
  FakeSource source(state);
  RecordingPublisher publisher;
  deadletter::DeadLetters dead_letters(publisher, "keys-grants", "keys");
  std::atomic<int> stored{0};
  GrantFollower follower(source, *store, dead_letters, [&stored] { ++stored; });
  follower.Start();

  Queue(*state, {{"schakel.keys.grants", 0, 3, "r-1", "\xff\xff not an event"},
                 Change("a-r-1-0", "mjd", v1::ASSIGNMENT_STATUS_ACCEPTED, 4)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 2; }));
  DataKey got;
  EXPECT_EQ(*store->AssignmentKey("a-r-1-0", anna->key_id, "mjd", &got),
            KeyStore::Access::kNotGranted);
  EXPECT_EQ(stored, 0);
  EXPECT_THAT(deadletter::testing::Sent(publisher),
              ElementsAre("schakel.deadletters.keys schakel.keys.grants/0/3: not an "
                          "AssignmentStatusChanged event (keys-grants)",
                          "schakel.deadletters.keys schakel.keys.grants/0/4: not an offer: "
                          "to_status is not REQUESTED (keys-grants)"));

  Queue(*state, {Change("a-r-1-0", "mjd", v1::ASSIGNMENT_STATUS_REQUESTED, 5)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 3; }));
  follower.Stop();
  EXPECT_THAT(state->done, ElementsAre(3, 4, 5));
  EXPECT_EQ(*store->AssignmentKey("a-r-1-0", anna->key_id, "mjd", &got),
            KeyStore::Access::kGranted);
  EXPECT_EQ(stored, 1);
}

}  // namespace
}  // namespace schakel::keys
