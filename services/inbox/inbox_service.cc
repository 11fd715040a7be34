#include "services/inbox/inbox_service.h"

#include <spdlog/spdlog.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/service/status.h"

namespace schakel::inbox {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(service::ToGrpc(status));
  return reactor;
}

// Store failures are logged here with the method; callers see only the code and the store's message
// (which never carries personal data).
void LogIfServerError(std::string_view method, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
      return;
    default:
      spdlog::error("inbox: {}: {}", method, std::string(status.message()));
  }
}

}  // namespace

InboxService::InboxService(std::string organisation, store::InboxStore& store)
    : organisation_(std::move(organisation)), store_(store) {}

grpc::ServerUnaryReactor* InboxService::ListAssignments(
    grpc::CallbackServerContext* context, const schakel::v1::ListAssignmentsRequest* request,
    schakel::v1::ListAssignmentsResponse* response) {
  if (request->page_size() < 0 || request->page_size() > kMaxPageSize) {
    return Finish(context, absl::InvalidArgumentError(
                               absl::StrCat("page_size: must be between 0 and ", kMaxPageSize)));
  }
  if (!schakel::v1::AssignmentStatus_IsValid(request->status())) {
    return Finish(context, absl::InvalidArgumentError(
                               absl::StrCat("status: unknown value ", request->status())));
  }
  store::ListQuery query;
  query.status = request->status();
  query.need_code = request->need_code();
  query.page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  query.page_token = request->page_token();
  absl::StatusOr<store::Page> page = store_.List(query);
  if (!page.ok()) {
    LogIfServerError("ListAssignments", page.status());
    return Finish(context, page.status());
  }
  for (schakel::v1::Assignment& assignment : page->assignments) {
    *response->add_assignments() = std::move(assignment);
  }
  response->set_next_page_token(std::move(page->next_page_token));
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InboxService::GetAssignment(
    grpc::CallbackServerContext* context, const schakel::v1::GetAssignmentRequest* request,
    schakel::v1::Assignment* response) {
  if (request->assignment_id().empty()) {
    return Finish(context, absl::InvalidArgumentError("assignment_id: is required"));
  }
  absl::StatusOr<schakel::v1::Assignment> assignment = store_.Get(request->assignment_id());
  if (!assignment.ok()) {
    LogIfServerError("GetAssignment", assignment.status());
    return Finish(context, assignment.status());
  }
  *response = *std::move(assignment);
  return Finish(context, absl::OkStatus());
}

}  // namespace schakel::inbox
