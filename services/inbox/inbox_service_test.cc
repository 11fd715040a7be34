#include "services/inbox/inbox_service.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/audit/entry.h"
#include "libs/privacy/sealed.h"
#include "libs/routing/network.h"
#include "libs/service/identity.h"
#include "libs/service/server.h"
#include "libs/service/test_identity.h"
#include "services/inbox/ingest.h"
#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::schakel::inbox::testing::At;
using ::schakel::inbox::testing::kOrg;
using ::schakel::inbox::testing::MakeEvent;
using ::schakel::inbox::testing::MakeRecord;
using ::schakel::inbox::testing::SentForward;
using ::schakel::inbox::testing::SentStatus;
using ::schakel::inbox::testing::TempStore;
using ::schakel::v1::Assignment;
using ::schakel::v1::AssignmentChange;
using ::schakel::v1::AssignmentStatusChanged;
using ::schakel::v1::ChangeAssignmentRequest;
using ::schakel::v1::ForwardAssignmentRequest;
using ::schakel::v1::ListAssignmentsRequest;
using ::schakel::v1::ListAssignmentsResponse;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr std::int64_t kBaseTime = 2'000'000'000;
constexpr std::int64_t kTick = 60;
// The client's data key the offers in these tests came with.
const store::DataKey kClientKey{.key_id = "k-client", .key = std::string(32, 'k')};

enum class Action { kAccept, kDecline, kStart, kPutOnHold, kResume, kComplete, kFail, kCancel };

// One call of an action, with what it says.
struct Call {
  Call(Action a, std::string r = "", std::string o = "")  // NOLINT: implicit, for tables
      : action(a), reason(std::move(r)), outcome(std::move(o)) {}
  Action action;
  std::string reason;
  std::string outcome;
};

Assignment MakeAssignment(const std::string& id, std::int64_t seconds, const std::string& need,
                          v1::AssignmentStatus status = v1::ASSIGNMENT_STATUS_REQUESTED) {
  Assignment a;
  a.set_assignment_id(id);
  a.set_referral_id("r-" + id);
  a.set_organisation(kOrg);
  a.set_need_code(need);
  a.set_status(status);
  a.set_region("groningen-stad");
  a.set_version(1);
  a.mutable_requested_at()->set_seconds(seconds);
  *a.mutable_updated_at() = a.requested_at();
  return a;
}

std::vector<std::string> Ids(const ListAssignmentsResponse& response) {
  std::vector<std::string> ids;
  for (const Assignment& a : response.assignments()) ids.push_back(a.assignment_id());
  return ids;
}

class InboxServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartService(kOrg); }

  void StartService(const std::string& org) {
    ASSERT_TRUE(temp_.ok());
    absl::StatusOr<routing::Network> network = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
    ASSERT_TRUE(network.ok()) << network.status();
    network_ = *std::move(network);
    org_ = org;
    InboxServiceOptions options;
    options.clock = TestClock();
    service_ = std::make_unique<InboxService>(org_, temp_.store(), network_, options);
    service::UseAuthenticator(std::make_shared<service::HeaderAuthenticatorForTests>());
    absl::StatusOr<service::RunningServer> server =
        service::StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::InboxService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_.port),
                                                          grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_.server) server_.server->Shutdown(std::chrono::system_clock::now());
  }

  // Every change happens one tick after the one before: the n-th reading is kBaseTime + n * kTick.
  inbox::Clock TestClock() {
    return [this] {
      absl::MutexLock lock(&clock_mu_);
      return At(kBaseTime + kTick * ++ticks_);
    };
  }
  static google::protobuf::Timestamp Tick(int n) { return At(kBaseTime + kTick * n); }

  void Insert(const Assignment& a) {
    absl::StatusOr<bool> inserted = temp_.store().Insert(a);
    ASSERT_TRUE(inserted.ok()) << inserted.status();
    ASSERT_TRUE(*inserted);
  }

  // An assignment as the router offers it and the inbox receives it (version 2), with `sharing`
  // the organisations of the client's permission. Its id is "a-<referral_id>-0".
  Assignment Offer(const std::string& referral_id, const std::string& need = "debt",
                   const std::string& region = "groningen-stad",
                   const std::vector<std::string>& sharing = {"gemeente", kOrg}) {
    v1::AssignmentRequested event = MakeEvent(referral_id, 0, need, 1'700'000'000);
    event.set_organisation(org_);
    event.set_region(region);
    event.mutable_sharing()->clear_organisations();
    for (const std::string& org : sharing) event.mutable_sharing()->add_organisations(org);
    AssignmentIngest ingest(org_, temp_.store(), TestClock());
    absl::StatusOr<IngestOutcome> outcome = ingest.Ingest(MakeRecord(event));
    EXPECT_EQ(outcome.value_or(IngestOutcome::kRejected), IngestOutcome::kStored);
    absl::StatusOr<Assignment> stored = temp_.store().Get(event.meta().assignment_id());
    EXPECT_TRUE(stored.ok()) << stored.status();
    // The client's key, as ingest keeps it for an offer with sealed data (ingest_test shows that).
    if (with_key_) {
      EXPECT_TRUE(temp_.store()
                      .InTransaction([&](store::InboxStore::Batch& batch) {
                        return batch.PutKey(event.meta().assignment_id(), kClientKey);
                      })
                      .ok());
    }
    return stored.value_or(Assignment());
  }

  // What a person typed, opened from a status event as the referrer (intake) would.
  static std::string Opened(const v1::Sealed& sealed, const std::string& context) {
    if (sealed.key_id().empty()) return "";
    absl::StatusOr<std::string> text = privacy::Open(sealed, kClientKey.key, context);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.value_or("(does not open)");
  }

  static ChangeAssignmentRequest Request(const Assignment& a, const Call& call) {
    ChangeAssignmentRequest request;
    request.set_assignment_id(a.assignment_id());
    request.set_expected_version(a.version());
    request.set_reason(call.reason);
    request.set_outcome(call.outcome);
    return request;
  }

  // Calls an action as `caller` (empty: without an identity).
  grpc::Status Act(Action action, const ChangeAssignmentRequest& request, Assignment* response,
                   const std::string& caller) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!caller.empty()) context.AddMetadata(service::kTestOrganisationHeader, caller);
    switch (action) {
      case Action::kAccept:
        return stub_->Accept(&context, request, response);
      case Action::kDecline:
        return stub_->Decline(&context, request, response);
      case Action::kStart:
        return stub_->Start(&context, request, response);
      case Action::kPutOnHold:
        return stub_->PutOnHold(&context, request, response);
      case Action::kResume:
        return stub_->Resume(&context, request, response);
      case Action::kComplete:
        return stub_->Complete(&context, request, response);
      case Action::kFail:
        return stub_->Fail(&context, request, response);
      case Action::kCancel:
        return stub_->Cancel(&context, request, response);
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "unknown action");
  }
  grpc::Status Act(Action action, const ChangeAssignmentRequest& request, Assignment* response) {
    return Act(action, request, response, org_);
  }
  // Calls `call` on `a` as this inbox's organisation, based on a's version; `a` becomes the answer.
  void Do(Assignment& a, const Call& call) {
    Assignment response;
    grpc::Status status = Act(call.action, Request(a, call), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    a = response;
  }

  grpc::Status Forward(const Assignment& a, const std::string& to, const std::string& reason,
                       Assignment* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    context.AddMetadata(service::kTestOrganisationHeader, org_);
    ForwardAssignmentRequest request;
    request.set_assignment_id(a.assignment_id());
    request.set_expected_version(a.version());
    request.set_to_organisation(to);
    request.set_reason(reason);
    return stub_->Forward(&context, request, response);
  }

  grpc::Status List(const ListAssignmentsRequest& request, ListAssignmentsResponse* response,
                    const std::string& as = kOrg) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!as.empty()) context.AddMetadata(service::kTestOrganisationHeader, as);
    return stub_->ListAssignments(&context, request, response);
  }

  grpc::Status Get(const std::string& id, Assignment* response, const std::string& as = kOrg) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!as.empty()) context.AddMetadata(service::kTestOrganisationHeader, as);
    v1::GetAssignmentRequest request;
    request.set_assignment_id(id);
    return stub_->GetAssignment(&context, request, response);
  }

  std::vector<AssignmentStatusChanged> Outbox() {
    std::vector<AssignmentStatusChanged> events;
    absl::StatusOr<std::vector<store::OutboxEntry>> pending = temp_.store().PendingOutbox(1000);
    EXPECT_TRUE(pending.ok()) << pending.status();
    if (!pending.ok()) return events;
    // Each status event for the router (on schakel.from.<org>) is followed by the same event on
    // the organisation's own topic (its history, for rebuilds); a forward adds a ForwardRequested.
    std::size_t echoes = 0;
    for (const store::OutboxEntry& entry : *pending) {
      if (SentForward(entry.event).has_value()) continue;
      std::optional<AssignmentStatusChanged> sent = SentStatus(entry.event);
      if (!sent.has_value()) {
        v1::InboxEvent echo;
        EXPECT_TRUE(echo.ParseFromString(entry.event.value));
        EXPECT_TRUE(echo.has_status_changed());
        if (events.empty()) {
          ADD_FAILURE() << "an echo before any status event";
          continue;
        }
        EXPECT_EQ(entry.event.topic, "schakel.inbox." + events.back().organisation());
        EXPECT_EQ(echo.status_changed().SerializeAsString(), events.back().SerializeAsString());
        ++echoes;
        continue;
      }
      EXPECT_EQ(entry.event.topic, "schakel.from." + sent->organisation());
      EXPECT_EQ(entry.event.key,
                sent->meta().referral_id());  // the router keeps state per referral
      events.push_back(*std::move(sent));
    }
    EXPECT_EQ(echoes, events.size());
    return events;
  }

  // Everything an action could have written.
  struct Snapshot {
    std::string assignment;
    std::int64_t last_sequence = -1;
    std::size_t outbox = 0;
  };
  Snapshot Take(const std::string& id) {
    return Snapshot{temp_.store().Get(id).value_or(Assignment()).SerializeAsString(),
                    temp_.store().LastSequence().value_or(-1),
                    temp_.store().PendingOutbox(1000).value().size()};
  }
  void ExpectUnchanged(const Snapshot& before, const std::string& id) {
    Snapshot after = Take(id);
    EXPECT_EQ(after.assignment, before.assignment);
    EXPECT_EQ(after.last_sequence, before.last_sequence);
    EXPECT_EQ(after.outbox, before.outbox);
  }

  // The kind of inbox a debt-help organisation has on a Monday morning.
  void InsertMixedInbox() {
    Insert(MakeAssignment("a-1", 100, "debt"));
    Insert(MakeAssignment("a-2", 200, "legal"));
    Insert(MakeAssignment("a-3", 300, "debt", v1::ASSIGNMENT_STATUS_ACCEPTED));
    Insert(MakeAssignment("a-4", 150, "debt"));
    Insert(MakeAssignment("a-5", 250, "income"));
  }

  TempStore temp_;
  bool with_key_ = true;
  routing::Network network_;
  std::string org_;
  absl::Mutex clock_mu_;
  int ticks_ ABSL_GUARDED_BY(clock_mu_) = 0;
  std::unique_ptr<InboxService> service_;
  service::RunningServer server_;
  std::unique_ptr<v1::InboxService::Stub> stub_;
};

TEST_F(InboxServiceTest, GetReturnsTheStoredAssignment) {
  Assignment a = MakeAssignment("a-1", 100, "debt");
  a.set_need_details("details");
  a.add_languages("nl");
  Insert(a);
  Assignment got;
  grpc::Status status = Get("a-1", &got);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(MessageDifferencer::Equals(got, a)) << got.DebugString();
}

TEST_F(InboxServiceTest, GetWithoutIdIsInvalidArgument) {
  Assignment got;
  grpc::Status status = Get("", &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "assignment_id: is required");
}

TEST_F(InboxServiceTest, GetUnknownIsNotFound) {
  Insert(MakeAssignment("a-1", 100, "debt"));
  Assignment got;
  grpc::Status status = Get("a-2", &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "assignment not found");
}

TEST_F(InboxServiceTest, OnlyThisInboxsOrganisationMayRead) {
  Insert(MakeAssignment("a-1", 100, "debt"));
  Assignment got;
  ListAssignmentsResponse listed;
  EXPECT_EQ(Get("a-1", &got, "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(List(ListAssignmentsRequest(), &listed, "").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Another organisation learns nothing, not even whether the assignment exists.
  const grpc::Status other = Get("a-1", &got, "ggd");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get("a-unknown", &got, "ggd").error_message(), other.error_message());
  EXPECT_EQ(List(ListAssignmentsRequest(), &listed, "ggd").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(got.assignment_id().empty());
  EXPECT_EQ(listed.assignments_size(), 0);
}

// "<action> by <actor> [<assignment ids>] <reason>" for each audit entry waiting in the store.
std::vector<std::string> AuditQueue(store::InboxStore& store) {
  std::vector<std::string> entries;
  absl::StatusOr<std::vector<store::AuditRow>> rows = store.PendingAudit(1000);
  EXPECT_TRUE(rows.ok()) << rows.status();
  if (!rows.ok()) return entries;
  for (const store::AuditRow& row : *rows) {
    v1::AuditEntry entry;
    EXPECT_TRUE(entry.ParseFromString(row.entry));
    std::string ids;
    for (const std::string& id : entry.subject().assignment_ids()) absl::StrAppend(&ids, " ", id);
    entries.push_back(absl::StrCat(entry.action(), " by ", audit::ActorText(entry.actor()), " [",
                                   ids, " ] ", entry.reason()));
  }
  return entries;
}

TEST_F(InboxServiceTest, EveryReadAndChangeIsRecordedForTheAuditWithoutFreeText) {
  Insert(MakeAssignment("a-1", 100, "debt"));
  Insert(MakeAssignment("a-2", 200, "debt"));
  Assignment got;
  ASSERT_TRUE(Get("a-1", &got).ok());
  ListAssignmentsResponse listed;
  ASSERT_TRUE(List(ListAssignmentsRequest(), &listed).ok());
  ListAssignmentsRequest nothing;
  nothing.set_need_code("housing");
  ASSERT_TRUE(List(nothing, &listed).ok());  // read nothing: nothing to record
  // Refused calls read nothing either.
  EXPECT_FALSE(Get("a-1", &got, "ggd").ok());
  EXPECT_FALSE(Get("a-unknown", &got).ok());
  Assignment a = Offer("r-9");
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kDecline, "client Jansen moved away"}));
  EXPECT_THAT(AuditQueue(temp_.store()),
              ElementsAre("assignment.read by organisation mjd [ a-1 ] GetAssignment",
                          "assignment.list by organisation mjd [ a-1 a-2 ] ListAssignments",
                          "status.changed by organisation mjd [ a-r-9-0 ] requested -> received",
                          "status.changed by organisation mjd [ a-r-9-0 ] received -> rejected"));
}

TEST_F(InboxServiceTest, OverdueListsWhatWasNotAcceptedInTime) {
  // The example network's SLA: urgent 4 hours, normal 72 hours to accept.
  constexpr std::int64_t kHour = 3600;
  Insert(MakeAssignment("late-normal", kBaseTime - 73 * kHour, "debt",
                        v1::ASSIGNMENT_STATUS_RECEIVED));
  Insert(MakeAssignment("fresh-normal", kBaseTime - 1 * kHour, "debt",
                        v1::ASSIGNMENT_STATUS_RECEIVED));
  Assignment late_urgent =
      MakeAssignment("late-urgent", kBaseTime - 5 * kHour, "legal", v1::ASSIGNMENT_STATUS_RECEIVED);
  late_urgent.set_urgency(v1::URGENCY_URGENT);
  Insert(late_urgent);
  Assignment fresh_urgent = MakeAssignment("fresh-urgent", kBaseTime - 3 * kHour, "legal",
                                           v1::ASSIGNMENT_STATUS_RECEIVED);
  fresh_urgent.set_urgency(v1::URGENCY_URGENT);
  Insert(fresh_urgent);
  Insert(MakeAssignment("accepted-late", kBaseTime - 100 * kHour, "debt",
                        v1::ASSIGNMENT_STATUS_ACCEPTED));

  ListAssignmentsRequest request;
  request.set_overdue(true);
  ListAssignmentsResponse response;
  ASSERT_TRUE(List(request, &response).ok());
  std::vector<std::string> ids;
  for (const Assignment& a : response.assignments()) ids.push_back(a.assignment_id());
  EXPECT_EQ(ids, (std::vector<std::string>{"late-normal", "late-urgent"}));
  EXPECT_TRUE(response.next_page_token().empty());

  // Paged one at a time: the same two, each once.
  request.set_page_size(1);
  ids.clear();
  for (int page = 0; page < 10; ++page) {
    ListAssignmentsResponse one;
    ASSERT_TRUE(List(request, &one).ok());
    for (const Assignment& a : one.assignments()) ids.push_back(a.assignment_id());
    if (one.next_page_token().empty()) break;
    request.set_page_token(one.next_page_token());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"late-normal", "late-urgent"}));

  // Accepted work is never overdue, whatever the status filter says.
  ListAssignmentsRequest accepted;
  accepted.set_overdue(true);
  accepted.set_status(v1::ASSIGNMENT_STATUS_ACCEPTED);
  ListAssignmentsResponse none;
  ASSERT_TRUE(List(accepted, &none).ok());
  EXPECT_EQ(none.assignments_size(), 0);
}

TEST_F(InboxServiceTest, ListReturnsAllOldestFirst) {
  InsertMixedInbox();
  ListAssignmentsResponse response;
  grpc::Status status = List(ListAssignmentsRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(Ids(response), ElementsAre("a-1", "a-4", "a-2", "a-5", "a-3"));
  EXPECT_THAT(response.next_page_token(), IsEmpty());
  EXPECT_TRUE(
      MessageDifferencer::Equals(response.assignments(0), MakeAssignment("a-1", 100, "debt")));
}

TEST_F(InboxServiceTest, ListFiltersByNeed) {
  InsertMixedInbox();
  ListAssignmentsRequest request;
  request.set_need_code("debt");
  ListAssignmentsResponse response;
  grpc::Status status = List(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(Ids(response), ElementsAre("a-1", "a-4", "a-3"));
}

TEST_F(InboxServiceTest, ListFiltersByStatusAndNeed) {
  InsertMixedInbox();
  ListAssignmentsRequest request;
  request.set_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  request.set_need_code("debt");
  ListAssignmentsResponse response;
  ASSERT_TRUE(List(request, &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("a-1", "a-4"));

  request.set_status(v1::ASSIGNMENT_STATUS_ACCEPTED);
  request.clear_need_code();
  response.Clear();
  ASSERT_TRUE(List(request, &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("a-3"));

  request.set_status(v1::ASSIGNMENT_STATUS_COMPLETED);
  response.Clear();
  ASSERT_TRUE(List(request, &response).ok());
  EXPECT_THAT(Ids(response), IsEmpty());
}

TEST_F(InboxServiceTest, PagesVisitEveryAssignmentOnce) {
  std::vector<std::string> expected;
  for (int i = 0; i < 7; ++i) {
    expected.push_back(absl::StrCat("a-", i));
    Insert(MakeAssignment(expected.back(), 100 + i, "debt"));
  }
  ListAssignmentsRequest request;
  request.set_page_size(3);
  std::vector<std::string> seen;
  std::vector<int> sizes;
  for (int pages = 0; pages < 5; ++pages) {
    ListAssignmentsResponse response;
    grpc::Status status = List(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    sizes.push_back(response.assignments_size());
    for (const std::string& id : Ids(response)) seen.push_back(id);
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
  }
  EXPECT_THAT(sizes, ElementsAre(3, 3, 1));
  EXPECT_THAT(seen, ElementsAreArray(expected));
}

TEST_F(InboxServiceTest, DefaultPageSizeIsFifty) {
  for (int i = 0; i < 51; ++i) Insert(MakeAssignment(absl::StrCat("a-", 100 + i), 100, "debt"));
  ListAssignmentsResponse response;
  ASSERT_TRUE(List(ListAssignmentsRequest(), &response).ok());
  EXPECT_EQ(response.assignments_size(), 50);
  EXPECT_FALSE(response.next_page_token().empty());
}

TEST_F(InboxServiceTest, PageSizeOutOfRangeIsInvalidArgument) {
  for (int page_size : {-1, 501}) {
    ListAssignmentsRequest request;
    request.set_page_size(page_size);
    ListAssignmentsResponse response;
    grpc::Status status = List(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << page_size;
    EXPECT_EQ(status.error_message(), "page_size: must be between 0 and 500") << page_size;
  }
  ListAssignmentsRequest request;
  request.set_page_size(500);
  ListAssignmentsResponse response;
  EXPECT_TRUE(List(request, &response).ok());
}

TEST_F(InboxServiceTest, MalformedPageTokenIsInvalidArgument) {
  ListAssignmentsRequest request;
  request.set_page_token("not-a-token");
  ListAssignmentsResponse response;
  grpc::Status status = List(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "page_token: is malformed");
}

TEST_F(InboxServiceTest, UnknownStatusIsInvalidArgument) {
  ListAssignmentsRequest request;
  request.set_status(static_cast<v1::AssignmentStatus>(42));
  ListAssignmentsResponse response;
  grpc::Status status = List(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "status: unknown value 42");
}

// --- Lifecycle actions ---

struct ActionCase {
  std::string name;
  std::vector<Call> before;  // from received, to get where the action starts
  Call call;
  v1::AssignmentStatus from;
  v1::AssignmentStatus to;
  std::string status_reason;
  std::string outcome;
};
void PrintTo(const ActionCase& c, std::ostream* os) { *os << c.name; }

class ActionTest : public InboxServiceTest, public ::testing::WithParamInterface<ActionCase> {};

TEST_P(ActionTest, StoresTheStepAndQueuesItsEvent) {
  const ActionCase& c = GetParam();
  Assignment a = Offer("r-1");  // received at tick 1
  for (const Call& call : c.before) ASSERT_NO_FATAL_FAILURE(Do(a, call));
  ASSERT_EQ(a.status(), c.from);
  const Assignment before = a;
  const int tick = 2 + static_cast<int>(c.before.size());

  Assignment response;
  grpc::Status status = Act(c.call.action, Request(a, c.call), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  Assignment expected = before;
  expected.set_status(c.to);
  expected.set_version(before.version() + 1);
  expected.set_status_reason(c.status_reason);
  expected.set_outcome(c.outcome);
  *expected.mutable_updated_at() = Tick(tick);
  v1::StatusChange* step = expected.add_history();
  step->set_from_status(c.from);
  step->set_to_status(c.to);
  *step->mutable_at() = Tick(tick);
  step->set_reason(c.status_reason);
  step->set_outcome(c.outcome);
  step->set_by(kOrg);
  step->set_version(expected.version());
  EXPECT_TRUE(MessageDifferencer::Equals(response, expected))
      << response.DebugString() << "\nexpected:\n"
      << expected.DebugString();
  EXPECT_EQ(response.version(), 3u + c.before.size());
  EXPECT_EQ(static_cast<std::size_t>(response.history_size()), response.version());

  Assignment stored;
  ASSERT_TRUE(Get(a.assignment_id(), &stored).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(stored, expected));
  // One more row in the changes feed, holding exactly what was answered.
  std::vector<store::StoredChange> changes = temp_.store().ChangesAfter(0, 100).value();
  ASSERT_THAT(changes, SizeIs(2 + c.before.size()));
  EXPECT_TRUE(MessageDifferencer::Equals(changes.back().assignment, expected));

  // One more event: received, each step before, and this one.
  std::vector<AssignmentStatusChanged> events = Outbox();
  ASSERT_THAT(events, SizeIs(2 + c.before.size()));
  const AssignmentStatusChanged& event = events.back();
  EXPECT_THAT(event.meta().event_id(), StartsWith("e-"));
  AssignmentStatusChanged want;
  want.mutable_meta()->set_schema_version(1);
  want.mutable_meta()->set_event_id(event.meta().event_id());
  *want.mutable_meta()->mutable_occurred_at() = Tick(tick);
  want.mutable_meta()->set_referral_id("r-1");
  want.mutable_meta()->set_assignment_id("a-r-1-0");
  want.set_organisation(kOrg);
  want.set_from_status(c.from);
  want.set_to_status(c.to);
  want.set_version(expected.version());
  want.set_by(kOrg);
  want.set_need_code("debt");
  want.set_referring_organisation("gemeente");
  // What the person typed travels sealed with the client's key only (reason and outcome empty).
  AssignmentStatusChanged clear = event;
  clear.clear_sealed_reason();
  clear.clear_sealed_outcome();
  EXPECT_TRUE(MessageDifferencer::Equals(clear, want)) << event.DebugString();
  EXPECT_EQ(event.has_sealed_reason(), !c.status_reason.empty());
  EXPECT_EQ(event.has_sealed_outcome(), !c.outcome.empty());
  EXPECT_EQ(Opened(event.sealed_reason(),
                   privacy::StatusReasonContext("r-1", "a-r-1-0", expected.version())),
            c.status_reason);
  EXPECT_EQ(Opened(event.sealed_outcome(),
                   privacy::StatusOutcomeContext("r-1", "a-r-1-0", expected.version())),
            c.outcome);
  if (!c.status_reason.empty()) {
    EXPECT_EQ(event.sealed_reason().key_id(), kClientKey.key_id);
  }
}

TEST_F(InboxServiceTest, WithoutTheClientsKeyWhatAPersonTypedStaysInTheInbox) {
  with_key_ = false;  // e.g. an offer stored before the inbox kept keys
  Assignment a = Offer("r-1");
  Assignment response;
  grpc::Status status = Act(
      Action::kDecline, Request(a, {Action::kDecline, "Anna ligt in het ziekenhuis"}), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status_reason(), "Anna ligt in het ziekenhuis");  // its own database has it
  std::vector<AssignmentStatusChanged> events = Outbox();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events.back().to_status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(events.back().reason(), "");
  EXPECT_FALSE(events.back().has_sealed_reason());
  absl::StatusOr<std::vector<store::OutboxEntry>> pending = temp_.store().PendingOutbox(100);
  ASSERT_TRUE(pending.ok()) << pending.status();
  for (const store::OutboxEntry& entry : *pending) {
    EXPECT_EQ(entry.event.value.find("ziekenhuis"), std::string::npos) << entry.event.topic;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Actions, ActionTest,
    ::testing::Values(
        ActionCase{"Accept",
                   {},
                   {Action::kAccept},
                   v1::ASSIGNMENT_STATUS_RECEIVED,
                   v1::ASSIGNMENT_STATUS_ACCEPTED,
                   "",
                   ""},
        // A note with a step that carries no reason is not kept: the referrer sees the history.
        ActionCase{"AcceptKeepsNoNote",
                   {},
                   {Action::kAccept, "will call on Monday", "x"},
                   v1::ASSIGNMENT_STATUS_RECEIVED,
                   v1::ASSIGNMENT_STATUS_ACCEPTED,
                   "",
                   ""},
        ActionCase{"Decline",
                   {},
                   {Action::kDecline, "no capacity this month"},
                   v1::ASSIGNMENT_STATUS_RECEIVED,
                   v1::ASSIGNMENT_STATUS_REJECTED,
                   "no capacity this month",
                   ""},
        ActionCase{"Start",
                   {{Action::kAccept}},
                   {Action::kStart},
                   v1::ASSIGNMENT_STATUS_ACCEPTED,
                   v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                   "",
                   ""},
        ActionCase{"PutOnHold",
                   {{Action::kAccept}, {Action::kStart}},
                   {Action::kPutOnHold, "client is abroad"},
                   v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                   v1::ASSIGNMENT_STATUS_ON_HOLD,
                   "client is abroad",
                   ""},
        ActionCase{"Resume",
                   {{Action::kAccept}, {Action::kStart}, {Action::kPutOnHold, "client is abroad"}},
                   {Action::kResume},
                   v1::ASSIGNMENT_STATUS_ON_HOLD,
                   v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                   "",
                   ""},
        ActionCase{"Complete",
                   {{Action::kAccept}, {Action::kStart}},
                   {Action::kComplete, "", "debts under administration"},
                   v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                   v1::ASSIGNMENT_STATUS_COMPLETED,
                   "",
                   "debts under administration"},
        ActionCase{"CompleteFromHold",
                   {{Action::kAccept}, {Action::kStart}, {Action::kPutOnHold, "waiting"}},
                   {Action::kComplete, "", "settled"},
                   v1::ASSIGNMENT_STATUS_ON_HOLD,
                   v1::ASSIGNMENT_STATUS_COMPLETED,
                   "",
                   "settled"},
        ActionCase{"Fail",
                   {{Action::kAccept}, {Action::kStart}},
                   {Action::kFail, "client unreachable"},
                   v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                   v1::ASSIGNMENT_STATUS_FAILED,
                   "client unreachable",
                   ""},
        ActionCase{"CancelAccepted",
                   {{Action::kAccept}},
                   {Action::kCancel, "referrer withdrew"},
                   v1::ASSIGNMENT_STATUS_ACCEPTED,
                   v1::ASSIGNMENT_STATUS_CANCELLED,
                   "referrer withdrew",
                   ""},
        ActionCase{"CancelInProgress",
                   {{Action::kAccept}, {Action::kStart}},
                   {Action::kCancel, "referrer asked to cancel"},
                   v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                   v1::ASSIGNMENT_STATUS_CANCELLED,
                   "referrer asked to cancel",
                   ""}),
    [](const ::testing::TestParamInfo<ActionCase>& param) { return param.param.name; });

TEST_F(InboxServiceTest, AWholeLifeLeavesTheWholeHistory) {
  Assignment a = Offer("r-1");
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kAccept}));
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kStart}));
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kPutOnHold, "client is abroad"}));
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kResume}));
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kComplete, "", "debts settled"}));

  struct Row {
    v1::AssignmentStatus from, to;
    std::int64_t at;
    std::string reason, outcome, by;
  };
  const Row rows[] = {
      {v1::ASSIGNMENT_STATUS_UNSPECIFIED, v1::ASSIGNMENT_STATUS_REQUESTED, 1'700'000'000, "", "",
       "network"},
      {v1::ASSIGNMENT_STATUS_REQUESTED, v1::ASSIGNMENT_STATUS_RECEIVED, Tick(1).seconds(), "", "",
       kOrg},
      {v1::ASSIGNMENT_STATUS_RECEIVED, v1::ASSIGNMENT_STATUS_ACCEPTED, Tick(2).seconds(), "", "",
       kOrg},
      {v1::ASSIGNMENT_STATUS_ACCEPTED, v1::ASSIGNMENT_STATUS_IN_PROGRESS, Tick(3).seconds(), "", "",
       kOrg},
      {v1::ASSIGNMENT_STATUS_IN_PROGRESS, v1::ASSIGNMENT_STATUS_ON_HOLD, Tick(4).seconds(),
       "client is abroad", "", kOrg},
      {v1::ASSIGNMENT_STATUS_ON_HOLD, v1::ASSIGNMENT_STATUS_IN_PROGRESS, Tick(5).seconds(), "", "",
       kOrg},
      {v1::ASSIGNMENT_STATUS_IN_PROGRESS, v1::ASSIGNMENT_STATUS_COMPLETED, Tick(6).seconds(), "",
       "debts settled", kOrg},
  };
  ASSERT_EQ(a.history_size(), 7);
  for (int i = 0; i < 7; ++i) {
    v1::StatusChange want;
    want.set_from_status(rows[i].from);
    want.set_to_status(rows[i].to);
    want.mutable_at()->set_seconds(rows[i].at);
    if (i == 0) want.mutable_at()->set_nanos(500);
    want.set_reason(rows[i].reason);
    want.set_outcome(rows[i].outcome);
    want.set_by(rows[i].by);
    want.set_version(i + 1);
    EXPECT_TRUE(MessageDifferencer::Equals(a.history(i), want))
        << i << ": " << a.history(i).DebugString();
  }
  EXPECT_EQ(a.status(), v1::ASSIGNMENT_STATUS_COMPLETED);
  EXPECT_EQ(a.version(), 7u);
  EXPECT_EQ(a.status_reason(), "");
  EXPECT_EQ(a.outcome(), "debts settled");
  std::vector<AssignmentStatusChanged> events = Outbox();
  ASSERT_THAT(events, SizeIs(6));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(events[i].version(), static_cast<std::uint64_t>(i + 2));
}

struct RefusalCase {
  std::string name;
  std::vector<Call> before;
  Call call;
  grpc::StatusCode code;
  std::string message;
};
void PrintTo(const RefusalCase& c, std::ostream* os) { *os << c.name; }

class RefusalTest : public InboxServiceTest, public ::testing::WithParamInterface<RefusalCase> {};

TEST_P(RefusalTest, RefusesAndChangesNothing) {
  const RefusalCase& c = GetParam();
  Assignment a = Offer("r-1");
  for (const Call& call : c.before) ASSERT_NO_FATAL_FAILURE(Do(a, call));
  Snapshot before = Take(a.assignment_id());

  Assignment response;
  grpc::Status status = Act(c.call.action, Request(a, c.call), &response);
  EXPECT_EQ(status.error_code(), c.code);
  EXPECT_EQ(status.error_message(), c.message);
  ExpectUnchanged(before, a.assignment_id());
}

INSTANTIATE_TEST_SUITE_P(
    Refusals, RefusalTest,
    ::testing::Values(RefusalCase{"CompleteReceived",
                                  {},
                                  {Action::kComplete, "", "done"},
                                  grpc::StatusCode::FAILED_PRECONDITION,
                                  "cannot go from received to completed"},
                      RefusalCase{"StartReceived",
                                  {},
                                  {Action::kStart},
                                  grpc::StatusCode::FAILED_PRECONDITION,
                                  "cannot go from received to in-progress"},
                      RefusalCase{"AcceptAccepted",
                                  {{Action::kAccept}},
                                  {Action::kAccept},
                                  grpc::StatusCode::FAILED_PRECONDITION,
                                  "already accepted"},
                      RefusalCase{"AcceptDeclined",
                                  {{Action::kDecline, "no capacity"}},
                                  {Action::kAccept},
                                  grpc::StatusCode::FAILED_PRECONDITION,
                                  "cannot go from rejected to accepted"},
                      RefusalCase{
                          "CancelReceived",
                          {},
                          {Action::kCancel, "changed my mind"},
                          grpc::StatusCode::FAILED_PRECONDITION,
                          "only the referring organisation or the router can go from received to "
                          "cancelled"},
                      RefusalCase{"DeclineWithoutReason",
                                  {},
                                  {Action::kDecline},
                                  grpc::StatusCode::INVALID_ARGUMENT,
                                  "reason: is required to go to rejected"},
                      RefusalCase{"HoldWithBlankReason",
                                  {{Action::kAccept}, {Action::kStart}},
                                  {Action::kPutOnHold, "   "},
                                  grpc::StatusCode::INVALID_ARGUMENT,
                                  "reason: is required to go to on-hold"},
                      RefusalCase{"CompleteWithoutOutcome",
                                  {{Action::kAccept}, {Action::kStart}},
                                  {Action::kComplete},
                                  grpc::StatusCode::INVALID_ARGUMENT,
                                  "outcome: is required to complete"}),
    [](const ::testing::TestParamInfo<RefusalCase>& param) { return param.param.name; });

TEST_F(InboxServiceTest, AChangeOnAStaleVersionIsAborted) {
  Assignment a = Offer("r-1");
  Assignment accepted = a;
  ASSERT_NO_FATAL_FAILURE(Do(accepted, {Action::kAccept}));
  Snapshot before = Take(a.assignment_id());

  // Based on version 2, which someone else already changed.
  Assignment response;
  grpc::Status status = Act(Action::kDecline, Request(a, {Action::kDecline, "no"}), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(status.error_message(), "assignment a-r-1-0 changed since version 2 (now 3)");
  ExpectUnchanged(before, a.assignment_id());
}

TEST_F(InboxServiceTest, AnUnknownAssignmentIsNotFound) {
  ChangeAssignmentRequest request;
  request.set_assignment_id("a-missing");
  request.set_expected_version(2);
  Assignment response;
  grpc::Status status = Act(Action::kAccept, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "assignment not found");
}

TEST_F(InboxServiceTest, ConcurrentChangesOnOneVersionLetExactlyOneWin) {
  for (int round = 0; round < 10; ++round) {
    Assignment a = Offer(absl::StrCat("r-", round));
    grpc::Status accept;
    grpc::Status decline;
    Assignment accepted;
    Assignment declined;
    std::thread t1(
        [&] { accept = Act(Action::kAccept, Request(a, {Action::kAccept}), &accepted); });
    std::thread t2([&] {
      decline = Act(Action::kDecline, Request(a, {Action::kDecline, "no capacity"}), &declined);
    });
    t1.join();
    t2.join();
    ASSERT_NE(accept.ok(), decline.ok())
        << accept.error_message() << " / " << decline.error_message();
    const grpc::Status& lost = accept.ok() ? decline : accept;
    EXPECT_EQ(lost.error_code(), grpc::StatusCode::ABORTED);
    EXPECT_EQ(lost.error_message(),
              absl::StrCat("assignment ", a.assignment_id(), " changed since version 2 (now 3)"));
    Assignment stored;
    ASSERT_TRUE(Get(a.assignment_id(), &stored).ok());
    EXPECT_EQ(stored.version(), 3u);
    EXPECT_EQ(stored.status(),
              accept.ok() ? v1::ASSIGNMENT_STATUS_ACCEPTED : v1::ASSIGNMENT_STATUS_REJECTED);
  }
  // Per assignment: received and the one winning change.
  EXPECT_THAT(Outbox(), SizeIs(20));
  EXPECT_EQ(temp_.store().LastSequence().value_or(-1), 20);
}

TEST_F(InboxServiceTest, MissingIdOrVersionIsInvalidArgument) {
  Assignment a = Offer("r-1");
  Snapshot before = Take(a.assignment_id());
  ChangeAssignmentRequest request = Request(a, {Action::kAccept});
  request.clear_assignment_id();
  Assignment response;
  grpc::Status status = Act(Action::kAccept, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "assignment_id: is required");

  request = Request(a, {Action::kAccept});
  request.clear_expected_version();
  status = Act(Action::kAccept, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "expected_version: is required");
  ExpectUnchanged(before, a.assignment_id());
}

TEST_F(InboxServiceTest, OnlyThisInboxsOrganisationMayAct) {
  Assignment a = Offer("r-1");
  Snapshot before = Take(a.assignment_id());
  ChangeAssignmentRequest existing = Request(a, {Action::kAccept});
  ChangeAssignmentRequest missing = existing;
  missing.set_assignment_id("a-missing");

  for (const ChangeAssignmentRequest& request : {existing, missing}) {
    Assignment response;
    grpc::Status status = Act(Action::kAccept, request, &response, "");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(status.error_message(),
              "no client certificate or bearer token of an organisation of the network");
    // Whether or not the assignment exists, another organisation learns nothing about it.
    status = Act(Action::kAccept, request, &response, "ggd");
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(status.error_message(),
              "this is the inbox of mjd: other organisations have no access");
  }
  // Identity comes before everything else, even a malformed request.
  Assignment response;
  EXPECT_EQ(Act(Action::kAccept, ChangeAssignmentRequest(), &response, "ggd").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ExpectUnchanged(before, a.assignment_id());
}

// --- Forward, from Terwille's inbox: shelter is served by Terwille, Het Overweeghuis (only in the
// city) and the Leger des Heils; the GGD does not serve it.

class ForwardTest : public InboxServiceTest {
 protected:
  void SetUp() override { StartService("terwille"); }
  Assignment OfferShelter(const std::string& region = "groningen-stad") {
    return Offer("r-1", "shelter", region, {"gemeente", "terwille", "overweeghuis", "ggd"});
  }
};

TEST_F(ForwardTest, ForwardsAsRejectedAndNamesTheTarget) {
  Assignment a = OfferShelter();
  Assignment response;
  grpc::Status status =
      Forward(a, "overweeghuis", "client prefers a Spanish-speaking counsellor", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  const std::string reason =
      "forwarded to overweeghuis: client prefers a Spanish-speaking counsellor";
  EXPECT_EQ(response.status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(response.version(), 3u);
  EXPECT_EQ(response.status_reason(), reason);
  ASSERT_EQ(response.history_size(), 3);
  v1::StatusChange want;
  want.set_from_status(v1::ASSIGNMENT_STATUS_RECEIVED);
  want.set_to_status(v1::ASSIGNMENT_STATUS_REJECTED);
  *want.mutable_at() = Tick(2);
  want.set_reason(reason);
  want.set_by("terwille");
  want.set_version(3);
  EXPECT_TRUE(MessageDifferencer::Equals(response.history(2), want))
      << response.history(2).DebugString();

  std::vector<AssignmentStatusChanged> events = Outbox();
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[1].to_status(), v1::ASSIGNMENT_STATUS_REJECTED);
  EXPECT_EQ(events[1].reason(), "");  // sealed: the person's words may name the client
  EXPECT_EQ(Opened(events[1].sealed_reason(),
                   privacy::StatusReasonContext(a.referral_id(), a.assignment_id(), 3)),
            reason);
  EXPECT_EQ(events[1].forward_to(), "overweeghuis");
  EXPECT_EQ(events[1].by(), "terwille");
  EXPECT_EQ(events[1].organisation(), "terwille");
  EXPECT_EQ(events[1].version(), 3u);
  // Only a forward names a target.
  EXPECT_EQ(events[0].forward_to(), "");

  // The router is asked to offer the assignment to the target, pointing back to this one.
  std::vector<v1::ForwardRequested> forwards;
  absl::StatusOr<std::vector<store::OutboxEntry>> pending = temp_.store().PendingOutbox(1000);
  ASSERT_TRUE(pending.ok());
  for (const store::OutboxEntry& entry : *pending) {
    std::optional<v1::ForwardRequested> sent = SentForward(entry.event);
    if (!sent.has_value()) continue;
    const v1::ForwardRequested& forward = *sent;
    EXPECT_EQ(entry.event.key, a.referral_id());
    forwards.push_back(forward);
  }
  ASSERT_THAT(forwards, SizeIs(1));
  EXPECT_EQ(forwards[0].from_organisation(), "terwille");
  EXPECT_EQ(forwards[0].to_organisation(), "overweeghuis");
  EXPECT_EQ(forwards[0].reason(), "");  // it travels sealed on the status change only
  EXPECT_EQ(forwards[0].meta().assignment_id(), a.assignment_id());
  EXPECT_EQ(forwards[0].proposed().previous_assignment_id(), a.assignment_id());
  EXPECT_EQ(forwards[0].proposed().need_code(), a.need_code());
  // No personal data on the forwarding topic: the router adds the need's sealed data itself.
  ASSERT_FALSE(a.need_details().empty());
  EXPECT_EQ(forwards[0].proposed().need_details(), "");
  EXPECT_EQ(forwards[0].proposed().sharing().organisations_size(),
            a.sharing().organisations_size());
  // Both to the router on the organisation's own topic, the REJECTED first.
  EXPECT_EQ(events[1].forward_to(), forwards[0].to_organisation());
}

TEST_F(ForwardTest, WithoutAReasonTheTargetIsTheReason) {
  Assignment a = OfferShelter();
  Assignment response;
  ASSERT_TRUE(Forward(a, "overweeghuis", "  ", &response).ok());
  EXPECT_EQ(response.status_reason(), "forwarded to overweeghuis");
}

TEST_F(ForwardTest, RefusalsNameWhyAndChangeNothing) {
  struct Refusal {
    std::string to;
    std::string region;
    std::string message;
  };
  const Refusal refusals[] = {
      {"nobody", "groningen-stad",
       "cannot forward to 'nobody': not an organisation in the network"},
      {"terwille", "groningen-stad", "cannot forward to 'terwille': that is this organisation"},
      {"ggd", "groningen-stad", "cannot forward to 'ggd': does not serve need 'shelter'"},
      {"overweeghuis", "groningen-ommeland",
       "cannot forward to 'overweeghuis': does not cover region 'groningen-ommeland'"},
      {"leger-des-heils", "groningen-stad",
       "cannot forward to 'leger-des-heils': not covered by the client's sharing permission"},
  };
  int round = 0;
  for (const Refusal& r : refusals) {
    Assignment a = Offer(absl::StrCat("r-", ++round), "shelter", r.region,
                         {"gemeente", "terwille", "overweeghuis", "ggd"});
    Snapshot before = Take(a.assignment_id());
    Assignment response;
    grpc::Status status = Forward(a, r.to, "a reason", &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << r.to;
    EXPECT_EQ(status.error_message(), r.message);
    ExpectUnchanged(before, a.assignment_id());
  }
}

TEST_F(ForwardTest, WorkInProgressCannotBeForwarded) {
  Assignment a = OfferShelter();
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kAccept}));
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kStart}));
  Snapshot before = Take(a.assignment_id());
  Assignment response;
  // The lifecycle answers before the target is looked at.
  grpc::Status status = Forward(a, "nobody", "", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "cannot go from in-progress to rejected");
  ExpectUnchanged(before, a.assignment_id());
}

TEST_F(ForwardTest, NeedsATarget) {
  Assignment a = OfferShelter();
  Assignment response;
  grpc::Status status = Forward(a, "", "", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "to_organisation: is required");
}

// --- WatchAssignments ---

class WatchTest : public InboxServiceTest {
 protected:
  struct Stream {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<AssignmentChange>> reader;
  };
  std::unique_ptr<Stream> Watch(std::uint64_t after, const std::string& caller = kOrg) {
    auto stream = std::make_unique<Stream>();
    stream->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    if (!caller.empty()) stream->context.AddMetadata(service::kTestOrganisationHeader, caller);
    v1::WatchAssignmentsRequest request;
    request.set_after_sequence(after);
    stream->reader = stub_->WatchAssignments(&stream->context, request);
    return stream;
  }
  // Reads `n` changes as "<sequence>:<assignment id>@<version>".
  std::vector<std::string> Read(Stream& stream, int n) {
    std::vector<std::string> seen;
    AssignmentChange change;
    while (static_cast<int>(seen.size()) < n && stream.reader->Read(&change)) {
      seen.push_back(absl::StrCat(change.sequence(), ":", change.assignment().assignment_id(), "@",
                                  change.assignment().version()));
    }
    return seen;
  }
};

TEST_F(WatchTest, ResumesAfterADisconnectWithExactlyWhatWasMissed) {
  Assignment a = Offer("r-1");                        // 1
  Assignment b = Offer("r-2");                        // 2
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kAccept}));  // 3

  std::unique_ptr<Stream> first = Watch(0);
  EXPECT_THAT(Read(*first, 3), ElementsAre("1:a-r-1-0@2", "2:a-r-2-0@2", "3:a-r-1-0@3"));
  // Caught up: a change made now reaches the open stream.
  ASSERT_NO_FATAL_FAILURE(Do(b, {Action::kDecline, "no capacity"}));  // 4
  EXPECT_THAT(Read(*first, 1), ElementsAre("4:a-r-2-0@3"));
  first->context.TryCancel();
  AssignmentChange ignored;
  while (first->reader->Read(&ignored)) {
  }
  EXPECT_EQ(first->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // While disconnected.
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kStart}));                    // 5
  Assignment c = Offer("r-3");                                         // 6
  ASSERT_NO_FATAL_FAILURE(Do(a, {Action::kComplete, "", "settled"}));  // 7

  std::unique_ptr<Stream> second = Watch(4);
  EXPECT_THAT(Read(*second, 3), ElementsAre("5:a-r-1-0@4", "6:a-r-3-0@2", "7:a-r-1-0@5"));
  // Nothing is repeated: the next thing on the stream is the next change.
  ASSERT_NO_FATAL_FAILURE(Do(c, {Action::kAccept}));  // 8
  EXPECT_THAT(Read(*second, 1), ElementsAre("8:a-r-3-0@3"));
  second->context.TryCancel();
  while (second->reader->Read(&ignored)) {
  }
  second->reader->Finish().IgnoreError();
}

TEST_F(WatchTest, DeliversEachChangeWholeAndInOrderUnderLoad) {
  std::unique_ptr<Stream> stream = Watch(0);
  // Made while the stream is open, from another thread, faster than one write at a time.
  std::thread writer([this] {
    for (int i = 0; i < 30; ++i) Offer(absl::StrCat("r-", i));
  });
  std::vector<std::string> seen = Read(*stream, 30);
  writer.join();
  ASSERT_THAT(seen, SizeIs(30));
  for (int i = 0; i < 30; ++i) EXPECT_EQ(seen[i], absl::StrCat(i + 1, ":a-r-", i, "-0@2"));
  stream->context.TryCancel();
  AssignmentChange ignored;
  while (stream->reader->Read(&ignored)) {
  }
  stream->reader->Finish().IgnoreError();
}

TEST_F(WatchTest, OnlyThisInboxsOrganisationMayWatch) {
  Offer("r-1");
  for (const std::string caller : {"", "ggd"}) {
    std::unique_ptr<Stream> stream = Watch(0, caller);
    AssignmentChange change;
    EXPECT_FALSE(stream->reader->Read(&change)) << caller;
    grpc::Status status = stream->reader->Finish();
    EXPECT_EQ(status.error_code(), caller.empty() ? grpc::StatusCode::UNAUTHENTICATED
                                                  : grpc::StatusCode::PERMISSION_DENIED);
  }
}

TEST_F(WatchTest, StopWatchesEndsOpenStreamsAndRefusesNewOnes) {
  Offer("r-1");
  std::unique_ptr<Stream> stream = Watch(0);
  EXPECT_THAT(Read(*stream, 1), ElementsAre("1:a-r-1-0@2"));
  service_->StopWatches();
  AssignmentChange change;
  EXPECT_FALSE(stream->reader->Read(&change));
  grpc::Status status = stream->reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "the inbox is shutting down; resume from the last sequence");

  std::unique_ptr<Stream> late = Watch(0);
  EXPECT_FALSE(late->reader->Read(&change));
  EXPECT_EQ(late->reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace schakel::inbox
