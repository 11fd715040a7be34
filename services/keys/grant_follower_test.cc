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
                     v1::AssignmentStatus to, std::int64_t offset,
                     const std::string& by = "network") {
  v1::AssignmentStatusChanged change;
  change.mutable_meta()->set_referral_id("r-1");
  change.mutable_meta()->set_assignment_id(assignment_id);
  change.set_organisation(organisation);
  change.set_to_status(to);
  change.set_by(by);
  return {"schakel.assignments.status", 0, offset, "r-1", change.SerializeAsString()};
}

// The status topic holds the router's facts: its offers (REQUESTED by the network) are grants,
// every other fact is passed over without a word, and what is no fact at all, or an offer without
// its organisation, goes to the key service's dead letters with the reason. None of those grants
// anything; the next offer is still granted.
TEST(GrantFollowerTest, OnlyTheNetworksOffersGrantAndAnUnusableRecordIsADeadLetter) {
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

  Queue(*state, {{"schakel.assignments.status", 0, 3, "r-1", "\xff\xff not an event"},
                 Change("a-r-1-0", "mjd", v1::ASSIGNMENT_STATUS_ACCEPTED, 4),
                 Change("a-r-1-0", "mjd", v1::ASSIGNMENT_STATUS_REQUESTED, 5, /*by=*/"mjd"),
                 Change("a-r-1-0", "", v1::ASSIGNMENT_STATUS_REQUESTED, 6)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 4; }));
  DataKey got;
  EXPECT_EQ(*store->AssignmentKey("a-r-1-0", anna->key_id, "mjd", &got),
            KeyStore::Access::kNotGranted);
  EXPECT_EQ(stored, 0);
  EXPECT_THAT(deadletter::testing::Sent(publisher),
              ElementsAre("schakel.deadletters.keys schakel.assignments.status/0/3: not an "
                          "AssignmentStatusChanged event (keys-grants)",
                          "schakel.deadletters.keys schakel.assignments.status/0/6: an offer "
                          "without its organisation (keys-grants)"));

  Queue(*state, {Change("a-r-1-0", "mjd", v1::ASSIGNMENT_STATUS_REQUESTED, 7)});
  ASSERT_TRUE(Eventually(*state, [&] { return state->done.size() == 5; }));
  follower.Stop();
  EXPECT_THAT(state->done, ElementsAre(3, 4, 5, 6, 7));
  EXPECT_EQ(*store->AssignmentKey("a-r-1-0", anna->key_id, "mjd", &got),
            KeyStore::Access::kGranted);
  EXPECT_EQ(stored, 1);
}

}  // namespace
}  // namespace schakel::keys
