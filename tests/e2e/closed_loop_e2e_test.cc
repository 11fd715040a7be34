// The closed loop end to end, on the real intake, router and inbox binaries against the broker
// tests/run started: an owner forwards an assignment and the referrer follows the chain; an inbox
// whose database is deleted rebuilds the same state from its own topic; an inbox killed between
// storing a change and publishing it publishes the event exactly once after a restart; and a
// WatchAssignments stream resumed from its last sequence misses nothing and repeats nothing.
//
// Each test submits its own referrals (fresh ids) and works in inboxes no other test here changes.
// Every wait polls with a deadline; nothing asserts how fast anything is.
#include <google/protobuf/util/message_differencer.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "tests/support/kafka_test_env.h"
#include "tests/support/process.h"
#include "tests/support/test_network.h"

namespace schakel {
namespace {

using schakel::testing::Eventually;
using schakel::testing::ReadWholeTopic;
using schakel::testing::Service;
using schakel::testing::TestNetwork;

const std::string kSource = SCHAKEL_SOURCE_DIR;
const std::string kNetworkFile = kSource + "/deploy/local/network.yaml";
constexpr char kHoldOutbox[] = "SCHAKEL_FAULT_HOLD_OUTBOX=1";

// Long enough for a restarted inbox to rejoin its consumer group, which waits out the session
// (10 s) of a member that was killed without leaving.
constexpr std::chrono::seconds kWait(90);

void Prepare(grpc::ClientContext& context, const std::string& as,
             std::chrono::seconds timeout = std::chrono::seconds(10)) {
  schakel::testing::PrepareCall(context, as, timeout);
}

std::string StatusName(v1::AssignmentStatus status) { return v1::AssignmentStatus_Name(status); }

// "<assignment id> v<version> <status>" per step: readable when an expectation fails.
std::vector<std::string> Steps(const v1::Assignment& assignment) {
  std::vector<std::string> steps;
  for (const v1::StatusChange& c : assignment.history()) {
    steps.push_back(absl::StrCat("v", c.version(), " ", StatusName(c.to_status())));
  }
  return steps;
}
std::vector<std::string> Steps(const v1::NeedStatus& need) {
  std::vector<std::string> steps;
  for (const v1::ReferralEvent& e : need.history()) {
    steps.push_back(
        absl::StrCat(e.assignment_id(), " v", e.version(), " ", StatusName(e.to_status())));
  }
  return steps;
}

bool StartsWith(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

class ClosedLoopE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    net_ = new TestNetwork("closed-loop", kNetworkFile);
    ASSERT_TRUE(net_->Prepare());
    net_->AddInboxes();
    net_->AddRouter("1");
    net_->AddIntake();
    ASSERT_TRUE(net_->StartAll());
  }

  static void TearDownTestSuite() { delete net_; }  // stops every service, expecting exit 0

  static std::string InboxDb(const std::string& org) {
    return (net_->dir() / ("inbox-" + org + ".db")).string();
  }
  static void Launch(Service& s, const std::vector<std::string>& extra_env = {}) {
    net_->Launch(s, extra_env);
  }
  static ::testing::AssertionResult WaitUntilServing(Service& s) {
    return net_->WaitUntilServing(s);
  }
  static Service& Find(const std::string& name) { return net_->Find(name); }
  static std::unique_ptr<v1::InboxService::Stub> Inbox(const std::string& org) {
    return net_->Inbox(org);
  }
  static std::unique_ptr<v1::IntakeService::Stub> Intake() { return net_->Intake(); }

  // A referral for one need in groningen-stad, in Dutch, that the client allows to be shared with
  // `sharing`.
  static v1::Referral OneNeed(const std::string& client_code, const std::string& need,
                              const std::vector<std::string>& sharing) {
    v1::Referral referral;
    referral.mutable_client()->set_client_code(client_code);
    referral.add_needs()->set_code(need);
    referral.set_urgency(v1::URGENCY_NORMAL);
    referral.set_region("groningen-stad");
    referral.add_languages("nl");
    referral.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
    for (const std::string& org : sharing) referral.mutable_sharing()->add_organisations(org);
    return referral;
  }

  static grpc::Status Submit(const v1::Referral& referral, const std::string& as,
                             v1::SubmitReferralResponse* response) {
    return net_->Submit(referral, as, response);
  }
  static grpc::Status Get(const std::string& org, const std::string& assignment_id,
                          v1::Assignment* assignment) {
    return net_->Get(org, assignment_id, assignment);
  }

  // The assignment once it is in `org`'s inbox and satisfies `ready`; nullopt after kWait.
  static std::optional<v1::Assignment> WaitForAssignment(
      const std::string& org, const std::string& assignment_id,
      const std::function<bool(const v1::Assignment&)>& ready) {
    v1::Assignment assignment;
    if (Eventually([&] {
          assignment.Clear();
          return Get(org, assignment_id, &assignment).ok() && ready(assignment);
        })) {
      return assignment;
    }
    return std::nullopt;
  }
  static std::optional<v1::Assignment> WaitForStatus(const std::string& org,
                                                     const std::string& assignment_id,
                                                     v1::AssignmentStatus status) {
    return net_->WaitForStatus(org, assignment_id, status);
  }

  enum class Action { kAccept, kStart, kComplete };
  static grpc::Status Change(const std::string& org, Action action, const v1::Assignment& current,
                             v1::Assignment* changed) {
    grpc::ClientContext context;
    Prepare(context, org);
    v1::ChangeAssignmentRequest request;
    request.set_assignment_id(current.assignment_id());
    request.set_expected_version(current.version());
    auto stub = Inbox(org);
    switch (action) {
      case Action::kAccept:
        return stub->Accept(&context, request, changed);
      case Action::kStart:
        return stub->Start(&context, request, changed);
      case Action::kComplete:
        request.set_outcome("help given by " + org);
        return stub->Complete(&context, request, changed);
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "unknown action");
  }

  static grpc::Status Forward(const std::string& org, const v1::Assignment& current,
                              const std::string& to, const std::string& reason,
                              v1::Assignment* changed) {
    grpc::ClientContext context;
    Prepare(context, org);
    v1::ForwardAssignmentRequest request;
    request.set_assignment_id(current.assignment_id());
    request.set_expected_version(current.version());
    request.set_to_organisation(to);
    request.set_reason(reason);
    return Inbox(org)->Forward(&context, request, changed);
  }

  // The referrer's view of the referral once it satisfies `ready`; nullopt after kWait.
  static std::optional<v1::ReferralStatus> WaitForReferral(
      const std::string& as, const std::string& referral_id,
      const std::function<bool(const v1::ReferralStatus&)>& ready) {
    return net_->WaitForReferral(as, referral_id, ready);
  }

  // The status events on schakel.assignments.status for this assignment (of this referral) at
  // this version. The topic is the broker's, not this suite's: other suites' records are there too,
  // among them poison records on purpose (routing_e2e_test); only what is keyed by this referral
  // must be an event.
  static int CountStatusEvents(const std::string& referral_id, const std::string& assignment_id,
                               std::uint64_t version) {
    int count = 0;
    for (const kafka::Record& r :
         ReadWholeTopic(net_->kafka(), std::string(topology::kStatusTopic))) {
      v1::AssignmentStatusChanged event;
      if (!event.ParseFromString(r.value)) {
        EXPECT_NE(r.key, referral_id) << "offset " << r.offset << ": not an event";
        continue;
      }
      if (event.meta().assignment_id() != assignment_id) continue;
      EXPECT_EQ(r.key, event.meta().referral_id()) << "status events are keyed by referral id";
      if (event.version() == version) ++count;
    }
    return count;
  }

  static inline TestNetwork* net_ = nullptr;
};

// Shelter in groningen-stad with all three shelter organisations in the sharing permission: the
// preferences of deploy/local/network.yaml put Leger des Heils first (its decline rule only acts
// above 40 open assignments). It forwards to Terwille, which has no automatic rule; forwarding to
// Het Overweeghuis would make the expectations depend on its automatic forward rule.
TEST_F(ClosedLoopE2eTest, ForwardHandsTheNeedOnAndTheReferrerSeesTheChain) {
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(
      Submit(OneNeed("CL-FORWARD-1", "shelter", {"leger-des-heils", "terwille", "overweeghuis"}),
             "mjd", &submitted)
          .ok());
  ASSERT_EQ(submitted.assignment_ids_size(), 1);
  const std::string original_id = submitted.assignment_ids(0);
  const std::string forwarded_id = original_id + ".1";

  const std::optional<v1::Assignment> offered =
      WaitForStatus("leger-des-heils", original_id, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(offered) << "the shelter need did not reach leger-des-heils";
  ASSERT_EQ(offered->version(), 2u);

  v1::Assignment forwarded;
  const grpc::Status status =
      Forward("leger-des-heils", *offered, "terwille", "no bed free tonight", &forwarded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(forwarded.status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(forwarded.version(), 3u);
  EXPECT_TRUE(StartsWith(forwarded.status_reason(), "forwarded to terwille"))
      << forwarded.status_reason();

  // The owner's inbox keeps the original, ended as rejected with the forward as its reason.
  v1::Assignment original;
  ASSERT_TRUE(Get("leger-des-heils", original_id, &original).ok());
  EXPECT_EQ(original.status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(original.version(), 3u);
  EXPECT_TRUE(StartsWith(original.status_reason(), "forwarded to terwille"))
      << original.status_reason();
  EXPECT_EQ(Steps(original), (std::vector<std::string>{"v1 ASSIGNMENT_STATUS_REQUESTED",
                                                       "v2 ASSIGNMENT_STATUS_RECEIVED",
                                                       "v3 ASSIGNMENT_STATUS_REJECTED"}));

  // The target gets a new assignment that points back to the original.
  const std::optional<v1::Assignment> taken_over =
      WaitForStatus("terwille", forwarded_id, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(taken_over) << forwarded_id << " did not reach terwille";
  EXPECT_EQ(taken_over->forwarded_from(), original_id);
  EXPECT_EQ(taken_over->referral_id(), submitted.referral_id());
  EXPECT_EQ(taken_over->organisation(), "terwille");
  EXPECT_EQ(taken_over->need_code(), "shelter");
  EXPECT_EQ(taken_over->referring_organisation(), "mjd");
  EXPECT_EQ(taken_over->client_pseudonym(), original.client_pseudonym());
  EXPECT_EQ(taken_over->version(), 2u);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(taken_over->sharing(),
                                                                 original.sharing()));

  // The referrer sees the need at Terwille, and the whole chain in its history.
  const std::optional<v1::ReferralStatus> view =
      WaitForReferral("mjd", submitted.referral_id(), [&](const v1::ReferralStatus& r) {
        return r.needs_size() == 1 && r.needs(0).assignment_id() == forwarded_id &&
               r.needs(0).status() == v1::ASSIGNMENT_STATUS_RECEIVED &&
               r.needs(0).history_size() == 5;
      });
  ASSERT_TRUE(view) << "the referrer never saw the need received at terwille";
  const v1::NeedStatus& need = view->needs(0);
  EXPECT_EQ(need.need_code(), "shelter");
  EXPECT_EQ(need.organisation(), "terwille");
  EXPECT_FALSE(view->done());
  EXPECT_EQ(Steps(need), (std::vector<std::string>{
                             original_id + " v1 ASSIGNMENT_STATUS_REQUESTED",
                             original_id + " v2 ASSIGNMENT_STATUS_RECEIVED",
                             original_id + " v3 ASSIGNMENT_STATUS_REJECTED",
                             forwarded_id + " v1 ASSIGNMENT_STATUS_REQUESTED",
                             forwarded_id + " v2 ASSIGNMENT_STATUS_RECEIVED",
                         }));
  EXPECT_EQ(need.history(2).organisation(), "leger-des-heils");
  EXPECT_EQ(need.history(2).by(), "leger-des-heils");
  EXPECT_TRUE(StartsWith(need.history(2).reason(), "forwarded to terwille"))
      << need.history(2).reason();
  EXPECT_EQ(need.history(4).organisation(), "terwille");
}

// A client who allows sharing with Leger des Heils and Terwille only: Het Overweeghuis serves
// shelter in groningen-stad, but is outside the permission.
TEST_F(ClosedLoopE2eTest, AutomaticForwardRuleLeavesTheSameTrailAsAPerson) {
  // Only Het Overweeghuis speaks Thai among the shelters in the permission, so the router offers it
  // there; its rule in the network file (forward shelter to leger-des-heils) hands it on at once.
  v1::Referral referral = OneNeed("CL-AUTO-1", "shelter", {"overweeghuis", "leger-des-heils"});
  referral.clear_languages();
  referral.add_languages("th");
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(referral, "ggd", &submitted).ok());
  const std::string original_id = submitted.assignment_ids(0);

  const std::optional<v1::Assignment> forwarded =
      WaitForStatus("overweeghuis", original_id, v1::ASSIGNMENT_STATUS_REJECTED);
  ASSERT_TRUE(forwarded) << "the rule did not forward " << original_id;
  EXPECT_EQ(forwarded->status_reason(), "forwarded to leger-des-heils: automatic rule");
  ASSERT_EQ(forwarded->history_size(), 3);
  EXPECT_EQ(forwarded->history(2).by(), "network");
  EXPECT_EQ(Steps(*forwarded), (std::vector<std::string>{"v1 ASSIGNMENT_STATUS_REQUESTED",
                                                         "v2 ASSIGNMENT_STATUS_RECEIVED",
                                                         "v3 ASSIGNMENT_STATUS_REJECTED"}));

  const std::optional<v1::Assignment> taken_over =
      WaitForStatus("leger-des-heils", original_id + ".1", v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(taken_over) << "the forwarded assignment did not reach leger-des-heils";
  EXPECT_EQ(taken_over->forwarded_from(), original_id);

  const std::optional<v1::ReferralStatus> view =
      WaitForReferral("ggd", submitted.referral_id(), [&](const v1::ReferralStatus& r) {
        return r.needs_size() == 1 && r.needs(0).organisation() == "leger-des-heils" &&
               r.needs(0).status() == v1::ASSIGNMENT_STATUS_RECEIVED;
      });
  ASSERT_TRUE(view) << "the referrer never saw the need at leger-des-heils";
}

TEST_F(ClosedLoopE2eTest, ForwardOutsideTheSharingPermissionIsRefusedAndChangesNothing) {
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(
      Submit(OneNeed("CL-FORWARD-2", "shelter", {"leger-des-heils", "terwille"}), "mjd", &submitted)
          .ok());
  const std::string id = submitted.assignment_ids(0);
  const std::optional<v1::Assignment> before =
      WaitForStatus("leger-des-heils", id, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(before) << "the shelter need did not reach leger-des-heils";

  v1::Assignment ignored;
  grpc::Status status = Forward("leger-des-heils", *before, "overweeghuis", "", &ignored);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_EQ(status.error_message(),
            "cannot forward to 'overweeghuis': not covered by the client's sharing permission");

  v1::Assignment after;
  ASSERT_TRUE(Get("leger-des-heils", id, &after).ok());
  std::string difference;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(*before, after)) << difference;

  // No trace on Kafka either. A change stored by the refused call would have been relayed before
  // anything stored after it (the outbox is relayed in order, and every event of an assignment is
  // keyed by its referral id, so lands in one partition in that order): once a later, allowed
  // forward is on the topics, the refused one would be there too.
  v1::Assignment forwarded;
  status = Forward("leger-des-heils", after, "terwille", "", &forwarded);
  ASSERT_TRUE(status.ok()) << "the version the refused forward was based on is still current: "
                           << status.error_message();
  EXPECT_EQ(forwarded.version(), 3u);
  ASSERT_TRUE(Eventually([&] { return CountStatusEvents(submitted.referral_id(), id, 3) > 0; }));
  // (Both topics hold other suites' records too, poison among them; those keyed by this referral
  // must be events.)
  std::vector<std::string> forwards;
  for (const kafka::Record& r :
       ReadWholeTopic(net_->kafka(), topology::FromTopic("leger-des-heils"))) {
    v1::OrganisationEvent sent;
    if (!sent.ParseFromString(r.value)) {
      ASSERT_NE(r.key, submitted.referral_id()) << "offset " << r.offset << ": not an event";
      continue;
    }
    if (!sent.has_forward_requested() || sent.forward_requested().meta().assignment_id() != id) {
      continue;
    }
    forwards.push_back(sent.forward_requested().to_organisation());
  }
  EXPECT_EQ(forwards, std::vector<std::string>{"terwille"});
  std::vector<std::string> changes;
  for (const kafka::Record& r :
       ReadWholeTopic(net_->kafka(), std::string(topology::kStatusTopic))) {
    v1::AssignmentStatusChanged event;
    if (!event.ParseFromString(r.value)) {
      ASSERT_NE(r.key, submitted.referral_id()) << "offset " << r.offset << ": not an event";
      continue;
    }
    if (event.meta().assignment_id() != id) continue;
    changes.push_back(absl::StrCat("v", event.version(), " ", StatusName(event.to_status()), " ",
                                   event.forward_to()));
  }
  EXPECT_EQ(changes, (std::vector<std::string>{"v1 ASSIGNMENT_STATUS_REQUESTED ",
                                               "v2 ASSIGNMENT_STATUS_RECEIVED ",
                                               "v3 ASSIGNMENT_STATUS_REJECTED terwille"}));
}

// Requirement (issue 3): deleting an inbox's database and restarting it rebuilds the same state
// from its topic. The inbox's topic holds everything needed: the AssignmentRequested and an echo of
// every status change (ingest.cc Restore applies them). So the inbox must read its topic from the
// beginning when its database is empty, whatever offsets the consumer group of the database it
// had before committed.
TEST_F(ClosedLoopE2eTest, InboxRebuildsTheSameStateFromItsTopic) {
  const std::string org = "mjd";  // the only organisation for debt
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(OneNeed("CL-REBUILD-1", "debt", {org}), "terwille", &submitted).ok());
  const std::string id = submitted.assignment_ids(0);
  std::optional<v1::Assignment> received = WaitForStatus(org, id, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(received) << "the debt need did not reach " << org;
  v1::Assignment accepted, started;
  ASSERT_TRUE(Change(org, Action::kAccept, *received, &accepted).ok());
  ASSERT_TRUE(Change(org, Action::kStart, accepted, &started).ok());
  ASSERT_EQ(started.status(), v1::ASSIGNMENT_STATUS_IN_PROGRESS);
  ASSERT_EQ(started.version(), 4u);

  // The inbox's own topic holds the request and every step (relayed asynchronously).
  const std::string topic = topology::InboxTopic(org);
  std::vector<std::string> own_topic;
  ASSERT_TRUE(Eventually([&] {
    own_topic.clear();
    for (const kafka::Record& r : ReadWholeTopic(net_->kafka(), topic)) {
      if (r.key != id) continue;
      v1::InboxEvent event;
      if (!event.ParseFromString(r.value)) {
        own_topic.push_back("?");
      } else if (event.has_requested()) {
        own_topic.push_back("requested");
      } else if (event.has_status_changed()) {
        own_topic.push_back(StatusName(event.status_changed().to_status()));
      }
    }
    return own_topic.size() >= 4;
  })) << "on "
      << topic << ": " << own_topic.size() << " records";
  ASSERT_EQ(own_topic, (std::vector<std::string>{"requested", "ASSIGNMENT_STATUS_RECEIVED",
                                                 "ASSIGNMENT_STATUS_ACCEPTED",
                                                 "ASSIGNMENT_STATUS_IN_PROGRESS"}));
  v1::Assignment before;
  ASSERT_TRUE(Get(org, id, &before).ok());
  // Times here may have whole-second resolution: rebuild in a later second than the receipt, so
  // that a rebuild which stamps its own time on a restored step shows.
  ASSERT_TRUE(Eventually(
      [&] {
        return google::protobuf::util::TimeUtil::GetCurrentTime().seconds() >
               before.history(1).at().seconds();
      },
      std::chrono::seconds(5)));

  Service& inbox = Find("inbox-" + org);
  ASSERT_EQ(inbox.process->Stop(), 0) << inbox.process->ReadLog();
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::filesystem::remove(InboxDb(org) + suffix);
  }
  ASSERT_FALSE(std::filesystem::exists(InboxDb(org)));
  Launch(inbox);
  ASSERT_TRUE(WaitUntilServing(inbox));

  // Caught up once the assignment is back at the version it had.
  const std::optional<v1::Assignment> after = WaitForAssignment(
      org, id, [&](const v1::Assignment& a) { return a.version() >= before.version(); });
  ASSERT_TRUE(after) << "the rebuilt inbox of " << org << " never restored " << id << " (version "
                     << before.version() << "): with an empty database it must read " << topic
                     << " from the beginning, not from its group's committed offsets. Its log:\n"
                     << inbox.process->ReadLog();
  EXPECT_EQ(after->status(), before.status());
  EXPECT_EQ(after->version(), before.version());
  EXPECT_EQ(after->history_size(), before.history_size());
  EXPECT_EQ(Steps(*after), Steps(before));
  // Every other field too. None is excluded: an Assignment holds nothing local to one database
  // (the WatchAssignments sequence numbers are, and they are not part of it), and every field is
  // on the topic: requested_at in the AssignmentRequested, the time, reason and author of each
  // step in its echo. That includes when the assignment was received (history[1].at): a rebuild
  // that stamps the replay's time on RECEIVED tells staff something other than what the referrer
  // was told.
  std::string difference;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&difference);
  EXPECT_TRUE(differencer.Compare(before, *after)) << difference;
}

// The kill -9: a change is stored (the RPC answered) but its event not yet published.
TEST_F(ClosedLoopE2eTest, EventStoredButNotPublishedBeforeAKillIsPublishedOnceAfterRestart) {
  const std::string org = "ggd";  // the only organisation for health
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(OneNeed("CL-CRASH-1", "health", {org}), "terwille", &submitted).ok());
  const std::string id = submitted.assignment_ids(0);
  const std::optional<v1::Assignment> received =
      WaitForStatus(org, id, v1::ASSIGNMENT_STATUS_RECEIVED);
  ASSERT_TRUE(received) << "the health need did not reach " << org;
  // RECEIVED is out before the fault is switched on; only the ACCEPTED event is at stake.
  ASSERT_TRUE(Eventually([&] { return CountStatusEvents(submitted.referral_id(), id, 2) > 0; }));

  // The same inbox with its relay held: changes are stored, nothing is published.
  Service& inbox = Find("inbox-" + org);
  ASSERT_EQ(inbox.process->Stop(), 0) << inbox.process->ReadLog();
  Launch(inbox, {kHoldOutbox});
  ASSERT_TRUE(WaitUntilServing(inbox));
  ASSERT_TRUE(Eventually(
      [&] { return inbox.process->ReadLog().find("publishes NOTHING") != std::string::npos; },
      std::chrono::seconds(10)))
      << "the inbox did not pick up " << kHoldOutbox << ":\n"
      << inbox.process->ReadLog();

  v1::Assignment accepted;
  const grpc::Status status = Change(org, Action::kAccept, *received, &accepted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(accepted.version(), 3u);
  EXPECT_EQ(inbox.process->Kill(SIGKILL), 128 + SIGKILL);
  EXPECT_EQ(CountStatusEvents(submitted.referral_id(), id, 3), 0)
      << "the held relay published the ACCEPTED event";

  // Restarted on the same database, without the fault: the stored change is there and its event
  // goes out.
  Launch(inbox);
  ASSERT_TRUE(WaitUntilServing(inbox));
  v1::Assignment stored;
  ASSERT_TRUE(Get(org, id, &stored).ok());
  EXPECT_EQ(stored.status(), v1::ASSIGNMENT_STATUS_ACCEPTED);
  EXPECT_EQ(stored.version(), 3u);
  ASSERT_TRUE(Eventually([&] { return CountStatusEvents(submitted.referral_id(), id, 3) > 0; }))
      << "the ACCEPTED event never reached " << topology::kStatusTopic << ":\n"
      << inbox.process->ReadLog();
  const std::optional<v1::ReferralStatus> view =
      WaitForReferral("terwille", submitted.referral_id(), [](const v1::ReferralStatus& r) {
        return r.needs_size() == 1 && r.needs(0).status() == v1::ASSIGNMENT_STATUS_ACCEPTED;
      });
  ASSERT_TRUE(view) << "the referrer never saw the need accepted";
  EXPECT_EQ(view->needs(0).organisation(), org);

  // After an ordered stop nothing can still be on its way (the relay drains on SIGTERM, and the
  // outbox row of a published event is gone): exactly one ACCEPTED event.
  ASSERT_EQ(inbox.process->Stop(), 0) << inbox.process->ReadLog();
  EXPECT_EQ(CountStatusEvents(submitted.referral_id(), id, 3), 1);
  Launch(inbox);  // the rest of the suite runs with the whole network
  ASSERT_TRUE(WaitUntilServing(inbox));
}

TEST_F(ClosedLoopE2eTest, WatchAssignmentsResumedMissesNothingAndRepeatsNothing) {
  const std::string org = "gemeente";  // the only organisation for income in groningen-stad
  v1::SubmitReferralResponse submitted;
  ASSERT_TRUE(Submit(OneNeed("CL-WATCH-1", "income", {org}), "leger-des-heils", &submitted).ok());
  const std::string id = submitted.assignment_ids(0);
  auto stub = Inbox(org);

  // The first stream, from the start, until the assignment arrives; then the client goes away.
  std::uint64_t last_seen = 0;
  std::optional<v1::Assignment> received;
  {
    grpc::ClientContext context;
    Prepare(context, org, kWait);
    v1::WatchAssignmentsRequest request;
    auto reader = stub->WatchAssignments(&context, request);
    v1::AssignmentChange change;
    while (reader->Read(&change)) {
      EXPECT_GT(change.sequence(), last_seen) << "sequences must increase";
      last_seen = change.sequence();
      if (change.assignment().assignment_id() == id) {
        received = change.assignment();
        break;
      }
    }
    context.TryCancel();
    while (reader->Read(&change)) {
    }
    reader->Finish();
  }
  ASSERT_TRUE(received) << "the watch never delivered " << id;
  EXPECT_EQ(received->status(), v1::ASSIGNMENT_STATUS_RECEIVED);
  EXPECT_EQ(received->version(), 2u);

  // Two changes while nobody watches.
  v1::Assignment accepted, started;
  ASSERT_TRUE(Change(org, Action::kAccept, *received, &accepted).ok());
  ASSERT_TRUE(Change(org, Action::kStart, accepted, &started).ok());

  // Resumed after the last sequence seen: exactly those two, in order. To see that nothing else
  // comes after them without waiting for a quiet period, a third change is made once they are
  // in: it must be the very next one.
  std::vector<v1::AssignmentChange> resumed;
  {
    grpc::ClientContext context;
    Prepare(context, org, kWait);
    v1::WatchAssignmentsRequest request;
    request.set_after_sequence(last_seen);
    auto reader = stub->WatchAssignments(&context, request);
    v1::AssignmentChange change;
    while (resumed.size() < 3 && reader->Read(&change)) {
      resumed.push_back(change);
      if (resumed.size() == 2) {
        v1::Assignment completed;
        const grpc::Status status = Change(org, Action::kComplete, started, &completed);
        EXPECT_TRUE(status.ok()) << status.error_message();
      }
    }
    context.TryCancel();
    while (reader->Read(&change)) {
    }
    reader->Finish();
  }
  std::vector<std::string> delivered;
  std::uint64_t previous = last_seen;
  for (const v1::AssignmentChange& c : resumed) {
    delivered.push_back(absl::StrCat(c.assignment().assignment_id(), " v", c.assignment().version(),
                                     " ", StatusName(c.assignment().status())));
    EXPECT_GT(c.sequence(), previous) << "repeated or out of order";
    previous = c.sequence();
  }
  EXPECT_EQ(delivered, (std::vector<std::string>{id + " v3 ASSIGNMENT_STATUS_ACCEPTED",
                                                 id + " v4 ASSIGNMENT_STATUS_IN_PROGRESS",
                                                 id + " v5 ASSIGNMENT_STATUS_COMPLETED"}));
}

}  // namespace
}  // namespace schakel
