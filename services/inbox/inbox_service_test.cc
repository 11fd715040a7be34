#include "services/inbox/inbox_service.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/service/server.h"
#include "services/inbox/test_util.h"

namespace schakel::inbox {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::schakel::inbox::testing::kOrg;
using ::schakel::inbox::testing::TempStore;
using ::schakel::v1::Assignment;
using ::schakel::v1::ListAssignmentsRequest;
using ::schakel::v1::ListAssignmentsResponse;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

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
  void SetUp() override {
    ASSERT_TRUE(temp_.ok());
    service_ = std::make_unique<InboxService>(kOrg, temp_.store());
    absl::StatusOr<service::RunningServer> server =
        service::StartServer("127.0.0.1:0", {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::InboxService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_.port),
                                                          grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_.server) server_.server->Shutdown(std::chrono::system_clock::now());
  }

  void Insert(const Assignment& a) {
    absl::StatusOr<bool> inserted = temp_.store().Insert(a);
    ASSERT_TRUE(inserted.ok()) << inserted.status();
    ASSERT_TRUE(*inserted);
  }

  grpc::Status List(const ListAssignmentsRequest& request, ListAssignmentsResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub_->ListAssignments(&context, request, response);
  }

  grpc::Status Get(const std::string& id, Assignment* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetAssignmentRequest request;
    request.set_assignment_id(id);
    return stub_->GetAssignment(&context, request, response);
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

}  // namespace
}  // namespace schakel::inbox
