#include "services/inbox/inbox_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/audit/entry.h"
#include "libs/service/identity.h"
#include "libs/service/status.h"

namespace schakel::inbox {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(service::ToGrpc(status));
  return reactor;
}

// Store failures are logged here with the method; callers see only the code and the store's message
// (which never carries personal data). What the caller got wrong is not logged.
void LogIfServerError(std::string_view method, const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return;
    default:
      spdlog::error("inbox: {}: {}", method, std::string(status.message()));
  }
}

absl::Status CheckTarget(const std::string& assignment_id, std::uint64_t expected_version) {
  if (assignment_id.empty()) return absl::InvalidArgumentError("assignment_id: is required");
  if (expected_version == 0) return absl::InvalidArgumentError("expected_version: is required");
  return absl::OkStatus();
}

}  // namespace

// One WatchAssignments stream. It holds no thread: it writes one change at a time (the next from
// OnWriteDone) and, once caught up, waits until the service tells it that the store committed
// something. Every path that may need a write goes through MaybeWrite, which reads the store
// whenever its buffer is empty, so no commit can slip between "caught up" and "notified".
class InboxService::WatchReactor final
    : public grpc::ServerWriteReactor<schakel::v1::AssignmentChange> {
 public:
  WatchReactor(InboxService& service, std::int64_t after) : service_(service), last_(after) {}

  // There may be something new to send.
  void Notify() { MaybeWrite(); }

  // Ends the stream with `status`, after the write in flight if there is one.
  void Stop(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReleasableMutexLock lock(&mu_);
    if (finished_) return;
    if (writing_) {
      if (!finish_pending_) finish_pending_ = status;
      return;
    }
    finished_ = true;
    lock.Release();
    Finish(status);
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      // The client went away or the call was cancelled: nothing more can be written.
      if (!ok && !finish_pending_) finish_pending_ = grpc::Status::CANCELLED;
    }
    MaybeWrite();
  }

  void OnCancel() override { Stop(grpc::Status::CANCELLED); }

  void OnDone() override {
    // The last reaction: once the service has forgotten this stream nothing refers to it.
    service_.Forget(this);
    delete this;
  }

 private:
  void MaybeWrite() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::ReleasableMutexLock lock(&mu_);
    if (writing_ || finished_) return;
    if (finish_pending_) {
      finished_ = true;
      grpc::Status status = *std::move(finish_pending_);
      lock.Release();
      Finish(status);
      return;
    }
    if (buffer_.empty()) {
      absl::StatusOr<std::vector<store::StoredChange>> changes =
          service_.store_.ChangesAfter(last_, service_.options_.watch_batch);
      if (!changes.ok()) {
        LogIfServerError("WatchAssignments", changes.status());
        finished_ = true;
        lock.Release();
        Finish(service::ToGrpc(changes.status()));
        return;
      }
      if (changes->empty()) return;  // caught up: the next commit notifies
      // Each batch is recorded before any of it is written to the stream.
      std::vector<const schakel::v1::Assignment*> read;
      for (const store::StoredChange& change : *changes) read.push_back(&change.assignment);
      if (absl::Status recorded = service_.RecordRead(
              service_.organisation_, audit::kAssignmentWatch, "WatchAssignments", std::move(read));
          !recorded.ok()) {
        finished_ = true;
        lock.Release();
        Finish(service::ToGrpc(recorded));
        return;
      }
      for (store::StoredChange& change : *changes) buffer_.push_back(std::move(change));
    }
    store::StoredChange next = std::move(buffer_.front());
    buffer_.pop_front();
    last_ = next.sequence;
    current_.set_sequence(static_cast<std::uint64_t>(next.sequence));
    *current_.mutable_assignment() = std::move(next.assignment);
    writing_ = true;
    lock.Release();
    StartWrite(&current_);
  }

  InboxService& service_;
  absl::Mutex mu_;
  // A write is in flight: current_ is gRPC's until OnWriteDone.
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish was called
  std::optional<grpc::Status> finish_pending_ ABSL_GUARDED_BY(mu_);
  // The sequence of the last change taken from the store.
  std::int64_t last_ ABSL_GUARDED_BY(mu_);
  std::deque<store::StoredChange> buffer_ ABSL_GUARDED_BY(mu_);
  // Filled under mu_, then gRPC's while writing_.
  schakel::v1::AssignmentChange current_;
};

InboxService::InboxService(std::string organisation, store::InboxStore& store,
                           const routing::Network& network, InboxServiceOptions options)
    : organisation_(std::move(organisation)),
      store_(store),
      network_(network),
      options_(std::move(options)) {
  if (options_.watch_batch <= 0) options_.watch_batch = 1;
  subscription_ = store_.OnCommit([this] { NotifyWatches(); });
}

InboxService::~InboxService() { subscription_.Reset(); }

absl::Status InboxService::RecordRead(
    const grpc::CallbackServerContext& context, std::string_view action, std::string_view method,
    const google::protobuf::RepeatedPtrField<schakel::v1::Assignment>& read) {
  std::vector<const schakel::v1::Assignment*> assignments;
  for (const schakel::v1::Assignment& a : read) assignments.push_back(&a);
  // CheckCaller let only this inbox's organisation this far.
  return RecordRead(service::CallerOrganisation(context), action, method, std::move(assignments));
}

absl::Status InboxService::RecordRead(const std::string& organisation, std::string_view action,
                                      std::string_view method,
                                      std::vector<const schakel::v1::Assignment*> read) {
  if (read.empty()) return absl::OkStatus();  // nothing was read
  v1::AuditSubject subject;
  for (const schakel::v1::Assignment* a : read) subject.add_assignment_ids(a->assignment_id());
  if (read.size() == 1) subject.set_referral_id(read.front()->referral_id());
  const std::string entry =
      audit::NewEntry(audit::OrganisationActor(organisation), action, std::move(subject), method)
          .SerializeAsString();
  if (absl::Status stored = store_.AddAudit({entry}); !stored.ok()) {
    spdlog::error("inbox {}: {}: cannot record the read in the audit log: {}", organisation_,
                  std::string(method), std::string(stored.message()));
    return absl::UnavailableError("the inbox cannot record this read in its audit log");
  }
  if (options_.audit_recorded) options_.audit_recorded();
  return absl::OkStatus();
}

absl::Status InboxService::CheckCaller(const grpc::CallbackServerContext& context) const {
  const service::Caller caller = service::Identify(context);
  if (caller.kind == service::Caller::Kind::kNobody) {
    return absl::UnauthenticatedError(
        "no client certificate or bearer token of an organisation of the network");
  }
  if (caller.kind != service::Caller::Kind::kOrganisation || caller.id != organisation_) {
    // The same answer whatever is asked for: nothing about this inbox's contents.
    return absl::PermissionDeniedError(absl::StrCat("this is the inbox of ", organisation_,
                                                    ": other organisations have no access"));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* InboxService::ListAssignments(
    grpc::CallbackServerContext* context, const schakel::v1::ListAssignmentsRequest* request,
    schakel::v1::ListAssignmentsResponse* response) {
  // The assignments hold personal data: only this inbox's organisation reads them.
  if (absl::Status caller = CheckCaller(*context); !caller.ok()) return Finish(context, caller);
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
  query.page_token = request->page_token();
  const int page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  if (!request->overdue()) {
    query.page_size = page_size;
    absl::StatusOr<store::Page> page = store_.List(query);
    if (!page.ok()) {
      LogIfServerError("ListAssignments", page.status());
      return Finish(context, page.status());
    }
    for (schakel::v1::Assignment& assignment : page->assignments) {
      *response->add_assignments() = std::move(assignment);
    }
    response->set_next_page_token(std::move(page->next_page_token));
    return Finish(context, RecordRead(*context, audit::kAssignmentList, "ListAssignments",
                                      response->assignments()));
  }
  // Overdue: not yet accepted, so requested or received; nothing else can be overdue.
  if (query.status == schakel::v1::ASSIGNMENT_STATUS_UNSPECIFIED) {
    query.status = schakel::v1::ASSIGNMENT_STATUS_RECEIVED;
  } else if (query.status != schakel::v1::ASSIGNMENT_STATUS_RECEIVED &&
             query.status != schakel::v1::ASSIGNMENT_STATUS_REQUESTED) {
    return Finish(context, absl::OkStatus());
  }
  const google::protobuf::Timestamp now = options_.clock();
  // Scan store pages no larger than what is still missing, so the store's own token always marks
  // where the scan stopped; bounded, so one call never reads the whole inbox.
  int scanned = 0;
  do {
    query.page_size = page_size - response->assignments_size();
    absl::StatusOr<store::Page> page = store_.List(query);
    if (!page.ok()) {
      LogIfServerError("ListAssignments", page.status());
      return Finish(context, page.status());
    }
    scanned += static_cast<int>(page->assignments.size());
    for (schakel::v1::Assignment& assignment : page->assignments) {
      const auto requested = std::chrono::system_clock::time_point(
          std::chrono::seconds(assignment.requested_at().seconds()));
      const auto deadline =
          network_.sla.Deadline(assignment.urgency() == schakel::v1::URGENCY_URGENT, requested);
      if (std::chrono::duration_cast<std::chrono::seconds>(deadline.time_since_epoch()).count() <
          now.seconds()) {
        *response->add_assignments() = std::move(assignment);
      }
    }
    query.page_token = page->next_page_token;
  } while (!query.page_token.empty() && response->assignments_size() < page_size &&
           scanned < 10 * kMaxPageSize);
  response->set_next_page_token(query.page_token);
  return Finish(context, RecordRead(*context, audit::kAssignmentList, "ListAssignments (overdue)",
                                    response->assignments()));
}

grpc::ServerUnaryReactor* InboxService::GetAssignment(
    grpc::CallbackServerContext* context, const schakel::v1::GetAssignmentRequest* request,
    schakel::v1::Assignment* response) {
  if (absl::Status caller = CheckCaller(*context); !caller.ok()) return Finish(context, caller);
  if (request->assignment_id().empty()) {
    return Finish(context, absl::InvalidArgumentError("assignment_id: is required"));
  }
  absl::StatusOr<schakel::v1::Assignment> assignment = store_.Get(request->assignment_id());
  if (!assignment.ok()) {
    LogIfServerError("GetAssignment", assignment.status());
    return Finish(context, assignment.status());
  }
  *response = *std::move(assignment);
  return Finish(context, RecordRead(service::CallerOrganisation(*context), audit::kAssignmentRead,
                                    "GetAssignment", {response}));
}

grpc::ServerUnaryReactor* InboxService::ChangeStatus(
    grpc::CallbackServerContext* context, std::string_view method,
    const schakel::v1::ChangeAssignmentRequest& request, schakel::v1::AssignmentStatus to,
    schakel::v1::Assignment* response) {
  if (absl::Status caller = CheckCaller(*context); !caller.ok()) return Finish(context, caller);
  if (absl::Status target = CheckTarget(request.assignment_id(), request.expected_version());
      !target.ok()) {
    return Finish(context, target);
  }
  Step step;
  step.transition.to = to;
  step.transition.actor = referral::Actor::kOwner;
  step.transition.reason = request.reason();
  step.transition.outcome = request.outcome();
  step.by = organisation_;
  return Apply(context, method, request.assignment_id(), request.expected_version(),
               std::move(step), response);
}

grpc::ServerUnaryReactor* InboxService::Apply(grpc::CallbackServerContext* context,
                                              std::string_view method,
                                              const std::string& assignment_id,
                                              std::uint64_t expected_version, Step step,
                                              schakel::v1::Assignment* response) {
  step.at = options_.clock();
  // The client's key seals what the person typed (MakeChange); it never changes for an assignment,
  // so reading it before the change's transaction is safe.
  absl::StatusOr<std::optional<store::DataKey>> key = store_.GetKey(assignment_id);
  if (!key.ok()) {
    LogIfServerError(method, key.status());
    return Finish(context, key.status());
  }
  step.key = *std::move(key);
  absl::StatusOr<schakel::v1::Assignment> stored = store_.Apply(
      assignment_id, expected_version,
      [this, &step](const schakel::v1::Assignment& current) -> absl::StatusOr<store::Change> {
        if (!step.forward_to.empty()) {
          // Whether the assignment may be handed on at all comes before where to.
          if (absl::Status allowed = referral::CheckTransition(current.status(), step.transition);
              !allowed.ok()) {
            return allowed;
          }
          if (absl::Status target =
                  CheckForwardTarget(network_, organisation_, current, step.forward_to);
              !target.ok()) {
            return target;
          }
        }
        return MakeChange(current, step);
      });
  if (!stored.ok()) {
    LogIfServerError(method, stored.status());
    return Finish(context, stored.status());
  }
  spdlog::info("inbox {}: {} {}: {} (version {}){}", organisation_, method, assignment_id,
               referral::StatusName(stored->status()), stored->version(),
               step.forward_to.empty() ? std::string() : absl::StrCat(", to ", step.forward_to));
  *response = *std::move(stored);
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* InboxService::Accept(grpc::CallbackServerContext* context,
                                               const schakel::v1::ChangeAssignmentRequest* request,
                                               schakel::v1::Assignment* response) {
  return ChangeStatus(context, "Accept", *request, schakel::v1::ASSIGNMENT_STATUS_ACCEPTED,
                      response);
}

grpc::ServerUnaryReactor* InboxService::Decline(grpc::CallbackServerContext* context,
                                                const schakel::v1::ChangeAssignmentRequest* request,
                                                schakel::v1::Assignment* response) {
  return ChangeStatus(context, "Decline", *request, schakel::v1::ASSIGNMENT_STATUS_REJECTED,
                      response);
}

grpc::ServerUnaryReactor* InboxService::Start(grpc::CallbackServerContext* context,
                                              const schakel::v1::ChangeAssignmentRequest* request,
                                              schakel::v1::Assignment* response) {
  return ChangeStatus(context, "Start", *request, schakel::v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                      response);
}

grpc::ServerUnaryReactor* InboxService::PutOnHold(
    grpc::CallbackServerContext* context, const schakel::v1::ChangeAssignmentRequest* request,
    schakel::v1::Assignment* response) {
  return ChangeStatus(context, "PutOnHold", *request, schakel::v1::ASSIGNMENT_STATUS_ON_HOLD,
                      response);
}

grpc::ServerUnaryReactor* InboxService::Resume(grpc::CallbackServerContext* context,
                                               const schakel::v1::ChangeAssignmentRequest* request,
                                               schakel::v1::Assignment* response) {
  return ChangeStatus(context, "Resume", *request, schakel::v1::ASSIGNMENT_STATUS_IN_PROGRESS,
                      response);
}

grpc::ServerUnaryReactor* InboxService::Complete(
    grpc::CallbackServerContext* context, const schakel::v1::ChangeAssignmentRequest* request,
    schakel::v1::Assignment* response) {
  return ChangeStatus(context, "Complete", *request, schakel::v1::ASSIGNMENT_STATUS_COMPLETED,
                      response);
}

grpc::ServerUnaryReactor* InboxService::Fail(grpc::CallbackServerContext* context,
                                             const schakel::v1::ChangeAssignmentRequest* request,
                                             schakel::v1::Assignment* response) {
  return ChangeStatus(context, "Fail", *request, schakel::v1::ASSIGNMENT_STATUS_FAILED, response);
}

grpc::ServerUnaryReactor* InboxService::Cancel(grpc::CallbackServerContext* context,
                                               const schakel::v1::ChangeAssignmentRequest* request,
                                               schakel::v1::Assignment* response) {
  return ChangeStatus(context, "Cancel", *request, schakel::v1::ASSIGNMENT_STATUS_CANCELLED,
                      response);
}

grpc::ServerUnaryReactor* InboxService::Forward(
    grpc::CallbackServerContext* context, const schakel::v1::ForwardAssignmentRequest* request,
    schakel::v1::Assignment* response) {
  if (absl::Status caller = CheckCaller(*context); !caller.ok()) return Finish(context, caller);
  if (absl::Status target = CheckTarget(request->assignment_id(), request->expected_version());
      !target.ok()) {
    return Finish(context, target);
  }
  if (request->to_organisation().empty()) {
    return Finish(context, absl::InvalidArgumentError("to_organisation: is required"));
  }
  Step step;
  step.transition.to = schakel::v1::ASSIGNMENT_STATUS_REJECTED;
  step.transition.actor = referral::Actor::kOwner;
  step.transition.reason = absl::StrCat("forwarded to ", request->to_organisation());
  if (!absl::StripAsciiWhitespace(request->reason()).empty()) {
    absl::StrAppend(&step.transition.reason, ": ", request->reason());
  }
  step.by = organisation_;
  step.forward_to = request->to_organisation();
  return Apply(context, "Forward", request->assignment_id(), request->expected_version(),
               std::move(step), response);
}

grpc::ServerWriteReactor<schakel::v1::AssignmentChange>* InboxService::WatchAssignments(
    grpc::CallbackServerContext* context, const schakel::v1::WatchAssignmentsRequest* request) {
  const std::int64_t after = static_cast<std::int64_t>(
      std::min<std::uint64_t>(request->after_sequence(), std::numeric_limits<std::int64_t>::max()));
  auto* reactor = new WatchReactor(*this, after);
  if (absl::Status caller = CheckCaller(*context); !caller.ok()) {
    reactor->Stop(service::ToGrpc(caller));
    return reactor;
  }
  absl::MutexLock lock(&watches_mu_);
  if (watches_stopped_) {
    reactor->Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the inbox is shutting down"));
    return reactor;
  }
  watches_.insert(reactor);
  reactor->Notify();
  return reactor;
}

void InboxService::StopWatches() {
  absl::MutexLock lock(&watches_mu_);
  watches_stopped_ = true;
  for (WatchReactor* reactor : watches_) {
    reactor->Stop(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               "the inbox is shutting down; resume from the last sequence"));
  }
}

void InboxService::NotifyWatches() {
  absl::MutexLock lock(&watches_mu_);
  for (WatchReactor* reactor : watches_) reactor->Notify();
}

void InboxService::Forget(WatchReactor* reactor) {
  absl::MutexLock lock(&watches_mu_);
  watches_.erase(reactor);
}

}  // namespace schakel::inbox
