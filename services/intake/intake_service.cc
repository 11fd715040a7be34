#include "services/intake/intake_service.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/alarm.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "libs/audit/entry.h"
#include "libs/privacy/sealed.h"
#include "libs/referral/clock.h"
#include "libs/referral/ids.h"
#include "libs/referral/lifecycle.h"
#include "libs/referral/validation.h"
#include "libs/service/identity.h"
#include "libs/service/status.h"
#include "libs/topology/topics.h"

namespace schakel::intake {

using google::protobuf::util::TimeUtil;

// A call that waits for Kafka's acknowledgement is answered once: by the acknowledgement, or — when
// a paused or unreachable broker keeps it waiting — with UNAVAILABLE a moment before the caller's
// deadline, so that the caller hears why instead of DEADLINE_EXCEEDED. Whoever comes second does
// nothing. The delivery callback keeps this alive; destroying it cancels the alarm.
class AnswerOnce {
 public:
  AnswerOnce(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
             std::string too_late)
      : answered_(std::make_shared<std::atomic<bool>>(false)) {
    const auto deadline = context->deadline();
    const auto now = std::chrono::system_clock::now();
    if (deadline - now > std::chrono::hours(1)) return;  // no deadline worth watching
    const auto answer_at = std::max(now, deadline - std::chrono::milliseconds(200));
    alarm_.Set(answer_at,
               [reactor, answered = answered_, too_late = std::move(too_late)](bool fired) {
                 if (!fired || answered->exchange(true)) return;
                 spdlog::warn("{}", too_late);
                 reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, too_late));
               });
  }
  // True for the first to answer only: it then fills the response and finishes the call.
  bool Claim() { return !answered_->exchange(true); }

 private:
  std::shared_ptr<std::atomic<bool>> answered_;
  grpc::Alarm alarm_;
};

namespace {

// A SubmitReferral call, counted while gRPC holds it: the count goes down when the call is done
// (answered and sent, or cancelled). A call that was admitted tells the admission it is answered
// (refused ones do not: they would make the rate look higher the more calls are refused).
class CountedReactor final : public grpc::ServerUnaryReactor {
 public:
  CountedReactor(std::atomic<std::size_t>& in_flight, Admission* admission)
      : in_flight_(in_flight), admission_(admission) {
    in_flight_.fetch_add(1);
  }
  void Admitted() { admitted_ = true; }
  void OnDone() override {
    if (admitted_ && admission_ != nullptr) admission_->Answered();
    in_flight_.fetch_sub(1);
    delete this;
  }

 private:
  std::atomic<std::size_t>& in_flight_;
  Admission* admission_;
  bool admitted_ = false;  // set before the call is answered, read in OnDone after it
};

// Two outcomes that arrive on other threads in either order: `then` runs once, with both.
class Both {
 public:
  using Then = std::function<void(const absl::Status& first, const absl::Status& second)>;
  explicit Both(Then then) : then_(std::move(then)) {}
  void First(absl::Status s) { Set(0, std::move(s)); }
  void Second(absl::Status s) { Set(1, std::move(s)); }

 private:
  void Set(int which, absl::Status s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::Status first;
    absl::Status second;
    {
      absl::MutexLock lock(&mu_);
      outcomes_[which] = std::move(s);
      if (!outcomes_[0] || !outcomes_[1]) return;
      first = *outcomes_[0];
      second = *outcomes_[1];
    }
    then_(first, second);
  }
  absl::Mutex mu_;
  std::optional<absl::Status> outcomes_[2] ABSL_GUARDED_BY(mu_);  // first, second
  Then then_;
};

// The audit entry of a submitted referral: who sent personal data about which client.
v1::AuditSubject SubmittedSubject(const std::string& referral_id, const std::string& pseudonym,
                                  int need_count) {
  v1::AuditSubject subject;
  subject.set_referral_id(referral_id);
  subject.set_client_pseudonym(pseudonym);
  for (int i = 0; i < need_count; ++i) {
    subject.add_assignment_ids(referral::AssignmentId(referral_id, static_cast<std::uint32_t>(i)));
  }
  return subject;
}

// Streams the caller's referrals as they change. The view calls back from its consumer thread; the
// state it touches lives in Shared, which outlives the reactor, so a late callback finds `reactor`
// null. Each change is shown (its sealed texts opened, the read recorded: `show`) before it is
// written, one at a time and in order; a change whose read cannot be recorded ends the stream.
class ReferralWatcher final : public grpc::ServerWriteReactor<v1::ReferralStatus> {
 public:
  using Show = std::function<void(std::vector<v1::ReferralStatus>, IntakeService::Answer)>;
  ReferralWatcher(ReferralView& view, std::string organisation, Show show)
      : view_(view), shared_(std::make_shared<Shared>()) {
    {
      absl::MutexLock lock(&shared_->mu);  // not shared yet; taken as the members' annotations ask
      shared_->reactor = this;
    }
    shared_->show = std::move(show);
    handle_ = view_.Subscribe([shared = shared_, organisation](const std::string& referrer,
                                                               const v1::ReferralStatus& referral) {
      if (referrer != organisation) return;
      {
        absl::MutexLock lock(&shared->mu);
        if (shared->reactor == nullptr || shared->finished) return;
        shared->queue.push_back(referral);
      }
      Next(shared);
    });
    // Tells the client the watch is live: changes from here on reach it.
    StartSendInitialMetadata();
  }

  void OnWriteDone(bool ok) override {
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->busy = false;
      if (!ok) return;  // the call is ending; OnDone follows
    }
    Next(shared_);
  }
  void OnCancel() override {
    absl::MutexLock lock(&shared_->mu);
    if (shared_->finished) return;
    shared_->finished = true;
    Finish(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    view_.Unsubscribe(handle_);
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct Shared {
    absl::Mutex mu;
    ReferralWatcher* reactor ABSL_GUARDED_BY(mu) = nullptr;
    // Changes not shown yet, oldest first.
    std::deque<v1::ReferralStatus> queue ABSL_GUARDED_BY(mu);
    // The change being written: filled under mu, then gRPC's until OnWriteDone.
    v1::ReferralStatus writing;
    bool busy ABSL_GUARDED_BY(mu) = false;  // a change is being shown or written
    bool finished ABSL_GUARDED_BY(mu) = false;
    Show show;  // set before the view can call back
  };
  // Shows and writes the oldest change waiting, unless one is under way.
  static void Next(const std::shared_ptr<Shared>& shared) {
    std::vector<v1::ReferralStatus> change;
    {
      absl::MutexLock lock(&shared->mu);
      if (shared->busy || shared->finished || shared->reactor == nullptr || shared->queue.empty()) {
        return;
      }
      shared->busy = true;
      change.push_back(std::move(shared->queue.front()));
      shared->queue.pop_front();
    }
    shared->show(std::move(change), [shared](const grpc::Status& shown,
                                             std::vector<v1::ReferralStatus> referrals) {
      absl::MutexLock lock(&shared->mu);
      if (shared->reactor == nullptr || shared->finished) return;
      if (!shown.ok() || referrals.empty()) {
        shared->finished = true;
        shared->reactor->Finish(shown.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "no change")
                                           : shown);
        return;
      }
      shared->writing = std::move(referrals.front());
      shared->reactor->StartWrite(&shared->writing);
    });
  }

  ReferralView& view_;
  std::shared_ptr<Shared> shared_;
  int handle_ = 0;
};

// A reactor that only reports a refusal.
class RefusedStream final : public grpc::ServerWriteReactor<v1::ReferralStatus> {
 public:
  explicit RefusedStream(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

// The caller's organisation: UNAUTHENTICATED without an identity, PERMISSION_DENIED for one that
// is no organisation of the network.
absl::StatusOr<std::string> CallerOf(const routing::Network& network,
                                     const grpc::CallbackServerContext& context) {
  const service::Caller caller = service::Identify(context);
  if (caller.kind == service::Caller::Kind::kNobody) {
    return absl::UnauthenticatedError(
        "no client certificate or bearer token of an organisation of the network");
  }
  if (caller.kind != service::Caller::Kind::kOrganisation) {
    return absl::PermissionDeniedError(
        "only organisations of the network refer clients and see their referrals");
  }
  if (network.FindOrganisation(caller.id) == nullptr) {
    return absl::PermissionDeniedError("the calling organisation is not part of this network");
  }
  return caller.id;
}

// An idempotency key: empty (none), or at most 128 characters of A-Z a-z 0-9 . _ : -.
absl::Status CheckIdempotencyKey(const std::string& key) {
  const bool valid = key.size() <= 128 && std::all_of(key.begin(), key.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                              c == ':' || c == '-';
                     });
  if (valid) return absl::OkStatus();
  return absl::InvalidArgumentError(
      "idempotency_key: at most 128 characters of A-Z a-z 0-9 . _ : -");
}

// The answer the first call of `referral_id` got (or would have got), from the view.
void FillRetryResponse(const std::string& referral_id, const ReferralView::Submitted& earlier,
                       v1::SubmitReferralResponse& response) {
  response.set_referral_id(referral_id);
  *response.mutable_accepted_at() = earlier.status.submitted_at();
  for (const v1::NeedStatus& need : earlier.status.needs()) {
    response.add_assignment_ids(referral::AssignmentId(referral_id, need.need_index()));
    if (!need.linked_to().empty()) {
      v1::LinkedNeed* linked = response.add_linked();
      linked->set_need_index(need.need_index());
      linked->set_need_code(need.need_code());
      linked->set_assignment_id(need.linked_to());
    }
  }
}

bool Blank(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") == std::string::npos;
}

std::size_t CodePoints(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

grpc::Status NoView() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "this intake keeps no referral view");
}

}  // namespace

IntakeService::IntakeService(const routing::Network& network,
                             const privacy::Pseudonymiser& pseudonymiser,
                             kafka::Publisher& publisher, ReferralView* view, IntakeLimits* limits,
                             privacy::ClientKeySource* keys, audit::Recorder* audit)
    : network_(network),
      pseudonymiser_(pseudonymiser),
      publisher_(publisher),
      view_(view),
      limits_(limits),
      keys_(keys),
      texts_(keys != nullptr ? std::make_unique<SealedTextOpener>(*keys) : nullptr),
      audit_(audit) {}

IntakeService::~IntakeService() {
  absl::MutexLock lock(&held_mu_);
  if (held_ > 0) spdlog::info("intake: waiting for {} answers of the key service", held_);
  auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(held_mu_) { return held_ == 0; };
  held_mu_.Await(absl::Condition(&released));
}

std::shared_ptr<void> IntakeService::Hold() {
  {
    absl::MutexLock lock(&held_mu_);
    ++held_;
  }
  class Token {
   public:
    explicit Token(IntakeService* service) : service_(service) {}
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;
    ~Token() {
      absl::MutexLock lock(&service_->held_mu_);
      --service_->held_;  // the last wakes the destructor as the lock is released
    }

   private:
    IntakeService* service_;
  };
  return std::make_shared<Token>(this);
}

void IntakeService::ShowReferrals(const std::string& caller,
                                  std::vector<v1::ReferralStatus> referrals,
                                  const std::string& call, Answer answer) {
  auto recorded = [this, held = Hold(), caller, call, answer](SealedTextOpener::Opened opened) {
    if (opened.opened.empty() || audit_ == nullptr) {
      answer(grpc::Status::OK, std::move(opened.referrals));
      return;
    }
    // One entry per referral whose texts were opened; the answer waits for all of them.
    struct Recording {
      Recording(std::size_t entries, std::vector<v1::ReferralStatus> shown, Answer then)
          : left(entries), referrals(std::move(shown)), answer(std::move(then)) {}
      absl::Mutex mu;
      std::size_t left ABSL_GUARDED_BY(mu);
      bool failed ABSL_GUARDED_BY(mu) = false;
      std::vector<v1::ReferralStatus> referrals ABSL_GUARDED_BY(mu);
      const Answer answer;
    };
    auto recording =
        std::make_shared<Recording>(opened.opened.size(), std::move(opened.referrals), answer);
    for (auto& [referral_id, assignment_ids] : opened.opened) {
      audit_->Record(
          audit::OrganisationActor(caller), audit::kReferralRead,
          audit::Ids{.referral_id = referral_id, .assignment_ids = std::move(assignment_ids)}, call,
          [recording, caller](absl::Status audited) {
            bool failed = false;
            std::vector<v1::ReferralStatus> shown;
            {
              absl::MutexLock lock(&recording->mu);
              if (!audited.ok()) recording->failed = true;
              if (--recording->left > 0) return;
              failed = recording->failed;
              shown = std::move(recording->referrals);
            }
            if (failed) {
              spdlog::warn("referrals of {} not shown: the read was not recorded", caller);
              recording->answer(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                             "the read of the owners' texts could not be recorded "
                                             "in the audit stream; nothing was shown, try again"),
                                {});
              return;
            }
            recording->answer(grpc::Status::OK, std::move(shown));
          });
    }
  };
  if (texts_ == nullptr) {
    // No key service: every sealed text reads "(not available now)".
    recorded(OpenSealedTexts(std::move(referrals), {}));
    return;
  }
  texts_->Open(std::move(referrals), std::move(recorded));
}

absl::Status SealPersonalData(const v1::Referral& referral, const v1::DataKey& key,
                              v1::ReferralSubmitted& event) {
  const std::string& referral_id = event.meta().referral_id();
  const v1::Client& client = referral.client();
  // Always, even empty: the offers copy sealed_client, so every owner learns the client's key id
  // from it and can seal what its people type about the assignment (events.proto).
  v1::ClientDetails details;
  details.set_name(client.name());
  details.set_contact(client.contact());
  absl::StatusOr<v1::Sealed> sealed_client = privacy::Seal(
      key.key_id(), key.key(), privacy::ClientContext(referral_id), details.SerializeAsString());
  if (!sealed_client.ok()) return sealed_client.status();
  *event.mutable_sealed_client() = *std::move(sealed_client);
  event.clear_sealed_need_details();
  for (int i = 0; i < event.needs_size(); ++i) {
    v1::Sealed* slot = event.add_sealed_need_details();  // by need index; empty: no details
    v1::NeedRequest* need = event.mutable_needs(i);
    if (need->details().empty()) continue;
    absl::StatusOr<v1::Sealed> sealed = privacy::Seal(
        key.key_id(), key.key(), privacy::NeedContext(referral_id, static_cast<std::uint32_t>(i)),
        need->details());
    if (!sealed.ok()) return sealed.status();
    *slot = *std::move(sealed);
    need->clear_details();
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* IntakeService::GetReferral(grpc::CallbackServerContext* context,
                                                     const v1::GetReferralRequest* request,
                                                     v1::ReferralStatus* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> caller = CallerOf(network_, *context);
  if (!caller.ok()) {
    reactor->Finish(service::ToGrpc(caller.status()));
  } else if (view_ == nullptr) {
    reactor->Finish(NoView());
  } else if (request->referral_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "referral_id: is required"));
  } else {
    absl::StatusOr<v1::ReferralStatus> found = view_->Get(*caller, request->referral_id());
    if (!found.ok()) {
      reactor->Finish(service::ToGrpc(found.status()));
      return reactor;
    }
    std::vector<v1::ReferralStatus> referrals;
    referrals.push_back(*std::move(found));
    ShowReferrals(*caller, std::move(referrals), "GetReferral",
                  [reactor, response](const grpc::Status& shown,
                                      std::vector<v1::ReferralStatus> shown_referrals) {
                    if (shown.ok()) *response = std::move(shown_referrals.front());
                    reactor->Finish(shown);
                  });
  }
  return reactor;
}

grpc::ServerUnaryReactor* IntakeService::ListReferrals(grpc::CallbackServerContext* context,
                                                       const v1::ListReferralsRequest* request,
                                                       v1::ListReferralsResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<std::string> caller = CallerOf(network_, *context);
  if (!caller.ok()) {
    reactor->Finish(service::ToGrpc(caller.status()));
  } else if (view_ == nullptr) {
    reactor->Finish(NoView());
  } else if (request->page_size() < 0 || request->page_size() > 500) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size: must be between 0 and 500"));
  } else {
    absl::StatusOr<v1::ListReferralsResponse> page = view_->List(
        *caller, request->page_size() == 0 ? 50 : request->page_size(), request->page_token());
    if (!page.ok()) {
      reactor->Finish(service::ToGrpc(page.status()));
      return reactor;
    }
    std::vector<v1::ReferralStatus> referrals(
        std::make_move_iterator(page->mutable_referrals()->begin()),
        std::make_move_iterator(page->mutable_referrals()->end()));
    response->set_next_page_token(page->next_page_token());
    ShowReferrals(*caller, std::move(referrals), "ListReferrals",
                  [reactor, response](const grpc::Status& shown,
                                      std::vector<v1::ReferralStatus> shown_referrals) {
                    if (shown.ok()) {
                      for (v1::ReferralStatus& r : shown_referrals) {
                        *response->add_referrals() = std::move(r);
                      }
                    } else {
                      response->Clear();
                    }
                    reactor->Finish(shown);
                  });
  }
  return reactor;
}

grpc::ServerWriteReactor<v1::ReferralStatus>* IntakeService::WatchReferrals(
    grpc::CallbackServerContext* context, const v1::WatchReferralsRequest* /*request*/) {
  absl::StatusOr<std::string> caller = CallerOf(network_, *context);
  grpc::Status who = service::ToGrpc(caller.status());
  if (who.ok() && view_ == nullptr) who = NoView();
  if (!who.ok()) return new RefusedStream(who);
  return new ReferralWatcher(
      *view_, *caller,
      [this, caller = *caller](std::vector<v1::ReferralStatus> referrals, Answer answer) {
        ShowReferrals(caller, std::move(referrals), "WatchReferrals", std::move(answer));
      });
}

grpc::ServerUnaryReactor* IntakeService::CancelAssignment(
    grpc::CallbackServerContext* context, const v1::CancelAssignmentRequest* request,
    v1::CancelAssignmentResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const auto refuse = [reactor](grpc::StatusCode code, const std::string& message) {
    reactor->Finish(grpc::Status(code, message));
    return reactor;
  };
  absl::StatusOr<std::string> who = CallerOf(network_, *context);
  if (!who.ok()) {
    reactor->Finish(service::ToGrpc(who.status()));
    return reactor;
  }
  const std::string caller = *std::move(who);
  if (view_ == nullptr) {
    reactor->Finish(NoView());
    return reactor;
  }
  const std::string& assignment_id = request->assignment_id();
  if (assignment_id.empty()) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "assignment_id: is required");
  }
  if (Blank(request->reason())) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "reason: is required");
  }
  if (CodePoints(request->reason()) > referral::kMaxReasonChars) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat("reason: at most ", referral::kMaxReasonChars, " characters"));
  }
  absl::StatusOr<v1::NeedStatus> need = view_->FindAssignment(caller, assignment_id);
  if (!need.ok()) {
    reactor->Finish(service::ToGrpc(need.status()));
    return reactor;
  }
  if (need->assignment_id() != assignment_id) {
    return refuse(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("assignment ", assignment_id, " no longer carries the need: it continues as ",
                     need->assignment_id()));
  }
  if (need->unroutable() || need->organisation().empty()) {
    return refuse(grpc::StatusCode::FAILED_PRECONDITION,
                  absl::StrCat("assignment ", assignment_id, " has no organisation to cancel it"));
  }
  if (referral::IsFinal(need->status())) {
    return refuse(grpc::StatusCode::FAILED_PRECONDITION,
                  absl::StrCat("assignment ", assignment_id, " is already ",
                               referral::StatusName(need->status())));
  }
  if (!publisher_.Reachable()) {
    return refuse(grpc::StatusCode::UNAVAILABLE,
                  "Kafka is unreachable; the cancellation was not sent, try again");
  }

  if (keys_ == nullptr) {
    return refuse(grpc::StatusCode::FAILED_PRECONDITION,
                  "this intake has no key service: a cancellation's reason travels sealed");
  }
  const std::string referral_id = ReferralIdOf(assignment_id);
  const std::optional<ReferralView::ClientKeyRef> client_key = view_->ClientKeyOf(referral_id);
  if (!client_key || (client_key->key_id.empty() && client_key->client_pseudonym.empty())) {
    return refuse(grpc::StatusCode::UNAVAILABLE,
                  "the client's key is not known yet; the cancellation was not sent, try again");
  }

  v1::CancelRequested event;
  v1::EventMeta* meta = event.mutable_meta();
  meta->set_schema_version(1);
  meta->set_event_id(referral::NewEventId());
  *meta->mutable_occurred_at() = referral::Now();
  meta->set_referral_id(referral_id);
  meta->set_assignment_id(assignment_id);
  event.set_organisation(need->organisation());
  event.set_referring_organisation(caller);
  auto answer = std::make_shared<AnswerOnce>(
      context, reactor,
      absl::StrCat("Kafka did not confirm the cancellation of ", assignment_id,
                   " before the call's deadline; it may still arrive: look at the referral before "
                   "asking again"));
  // The reason is sealed with the key the referral's client data was sealed with (the owner's inbox
  // has it for the assignment) and published when the key arrives, on the key client's thread. The
  // reason goes along as a copy: the request may be gone by then (the call's deadline).
  auto seal_and_send = [this, held = Hold(), event = std::move(event), reason = request->reason(),
                        reactor, response, assignment_id, caller,
                        answer](absl::StatusOr<v1::DataKey> key) mutable {
    const std::string& referral = event.meta().referral_id();
    absl::StatusOr<v1::Sealed> sealed =
        key.ok() ? privacy::Seal(key->key_id(), key->key(),
                                 privacy::CancelReasonContext(referral, assignment_id), reason)
                 : absl::StatusOr<v1::Sealed>(key.status());
    reason.clear();
    std::string bytes;
    if (sealed.ok()) {
      *event.mutable_sealed_reason() = *std::move(sealed);
      if (!event.SerializeToString(&bytes)) sealed = absl::InternalError("cannot encode");
    }
    if (!sealed.ok()) {
      if (!answer->Claim()) return;
      spdlog::warn("cancellation of {} by {} not sent: {}", assignment_id, caller,
                   std::string(sealed.status().message()));
      if (sealed.status().code() == absl::StatusCode::kFailedPrecondition) {
        reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                     "erased: the client of this referral has been erased, so no "
                                     "reason can be sealed for the owner; nothing was sent"));
        return;
      }
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   absl::StrCat("the client's key could not be had, the "
                                                "cancellation was not sent; try again (",
                                                std::string(sealed.status().message()), ")")));
      return;
    }
    publisher_.Publish(
        topology::kCancellationsTopic, referral, bytes,
        [reactor, response, assignment_id, caller, answer](absl::Status delivered) {
          if (!answer->Claim()) return;
          if (!delivered.ok()) {
            spdlog::warn("cancellation of {} by {} not sent: {}", assignment_id, caller,
                         std::string(delivered.message()));
            reactor->Finish(grpc::Status(
                grpc::StatusCode::UNAVAILABLE,
                absl::StrCat("the cancellation was not sent: ", std::string(delivered.message()))));
            return;
          }
          response->set_assignment_id(assignment_id);
          spdlog::info("cancellation of {} requested by {}", assignment_id, caller);
          reactor->Finish(grpc::Status::OK);
        });
  };
  const auto key_deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  if (!client_key->key_id.empty()) {
    keys_->ReferralKey(referral_id, client_key->key_id, key_deadline, std::move(seal_and_send));
  } else {
    // A referral sealed before every referral named its key: the client's current key, which the
    // owner's inbox gets for the assignment too (it is the same client's). The key service has had
    // the referral since it was sealed: its sharing permission, if recorded, stands (the view does
    // not keep it to send again).
    keys_->ClientKey(client_key->client_pseudonym, referral_id, /*sharing=*/nullptr, key_deadline,
                     std::move(seal_and_send));
  }
  return reactor;
}

v1::ReferralSubmitted IntakeService::BuildEvent(const v1::Referral& referral,
                                                const std::string& referring_organisation,
                                                const std::string& referral_id) const {
  v1::ReferralSubmitted event;
  v1::EventMeta* meta = event.mutable_meta();
  meta->set_schema_version(1);
  meta->set_event_id(referral::NewEventId());
  *meta->mutable_occurred_at() = referral::Now();
  meta->set_referral_id(referral_id);
  event.set_referring_organisation(referring_organisation);
  // The BSN and the client code stop here: only the pseudonym travels on.
  const v1::Client& client = referral.client();
  event.set_client_pseudonym(
      client.bsn().empty()
          ? pseudonymiser_.ForClientCode(referring_organisation, client.client_code())
          : pseudonymiser_.ForBsn(client.bsn()));
  *event.mutable_needs() = referral.needs();
  event.set_urgency(referral.urgency());
  event.set_region(referral.region());
  *event.mutable_languages() = referral.languages();
  *event.mutable_sharing() = referral.sharing();
  return event;
}

// A referral between its checks and its answer: what the steps after the key service's answer
// need. By then the call may have been answered (its deadline) and its request be gone, so it
// holds copies.
struct IntakeService::Submission {
  std::string caller;
  int need_count = 0;
  v1::ReferralSubmitted event;  // sealed when the client's key arrives
  std::vector<v1::LinkedNeed> linked;
  grpc::ServerUnaryReactor* reactor = nullptr;
  v1::SubmitReferralResponse* response = nullptr;
  std::shared_ptr<AnswerOnce> answer;
};

// Who calls; whether intake takes the call; which referral it is; a retry is answered again; else
// the event is built, sealed with the client's key, published with its audit entry, and answered.
// Each refusal is an absl::Status, told to the caller as it is.
grpc::ServerUnaryReactor* IntakeService::SubmitReferral(grpc::CallbackServerContext* context,
                                                        const v1::SubmitReferralRequest* request,
                                                        v1::SubmitReferralResponse* response) {
  auto* reactor = new CountedReactor(in_flight_, admission_ ? &*admission_ : nullptr);
  const auto refuse = [reactor](const absl::Status& status) {
    reactor->Finish(service::ToGrpc(status));
    return reactor;
  };
  absl::StatusOr<std::string> caller = CallerOf(network_, *context);
  if (!caller.ok()) return refuse(caller.status());
  if (absl::Status taken = Take(*context); !taken.ok()) return refuse(taken);
  reactor->Admitted();
  if (absl::Status admitted = Admit(*caller, *request, *context); !admitted.ok()) {
    return refuse(admitted);
  }
  const SubmissionId id = IdentifySubmission(*caller, *request);
  absl::StatusOr<std::optional<ReferralView::Submitted>> earlier =
      EarlierSubmission(*caller, request->idempotency_key(), id);
  if (!earlier.ok()) return refuse(earlier.status());
  if (*earlier) {
    AnswerRetry(*caller, id.referral_id, **earlier, reactor, response);
    return reactor;
  }
  if (keys_ == nullptr) {
    return refuse(absl::FailedPreconditionError(
        "this intake has no key service: every referral is sealed with its client's key"));
  }
  SealAndPublish(NewSubmission(*caller, *request, id, context, reactor, response),
                 request->referral());
  return reactor;
}

std::shared_ptr<IntakeService::Submission> IntakeService::NewSubmission(
    const std::string& caller, const v1::SubmitReferralRequest& request, const SubmissionId& id,
    grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
    v1::SubmitReferralResponse* response) {
  auto submission = std::make_shared<Submission>();
  submission->caller = caller;
  submission->need_count = request.referral().needs_size();
  submission->event = BuildEvent(request.referral(), caller, id.referral_id);
  submission->event.set_request_digest(id.digest);
  submission->linked = LinkOpenNeeds(request.referral(), submission->event);
  submission->reactor = reactor;
  submission->response = response;
  submission->answer = std::make_shared<AnswerOnce>(
      context, reactor,
      absl::StrCat("Kafka did not confirm referral ", id.referral_id,
                   " before the call's deadline; it may still arrive: retry with the same "
                   "idempotency_key"));
  return submission;
}

absl::Status IntakeService::Take(grpc::CallbackServerContext& context) {
  // More calls than intake can answer soon (Kafka slow or away, a flood of referrals): each one
  // waiting holds memory and waits longer, so beyond the bound the caller hears at once when to
  // come back.
  if (!admission_) return absl::OkStatus();
  const std::size_t others = in_flight_.load() - 1;  // this call is counted already
  const std::optional<Admission::Refusal> refused = admission_->Admit(others);
  if (!refused) return absl::OkStatus();
  const std::string retry_ms = std::to_string(refused->retry_after.count());
  context.AddTrailingMetadata("retry-after-ms", retry_ms);
  return absl::ResourceExhaustedError(absl::StrCat(
      "intake is busy: ", others, " referrals are being submitted already (",
      refused->at_ceiling ? "--max-in-flight" : "as many as it answers in --target-wait-ms",
      "); the referral was not submitted, try again in ", retry_ms,
      " ms (trailing metadata retry-after-ms)"));
}

absl::Status IntakeService::Admit(const std::string& caller,
                                  const v1::SubmitReferralRequest& request,
                                  grpc::CallbackServerContext& context) {
  if (std::optional<IntakeLimits::Refusal> refused =
          limits_ != nullptr ? limits_->Take(caller) : std::nullopt) {
    const std::string retry_ms = std::to_string(refused->retry_after.count());
    context.AddTrailingMetadata("retry-after-ms", retry_ms);
    return absl::ResourceExhaustedError(
        absl::StrCat("intake_limit of organisation ", caller, " (", refused->limit.per_second,
                     " referrals per second, bursts of ", refused->limit.burst,
                     ") reached: the referral was not submitted; try again in ", retry_ms,
                     " ms (trailing metadata retry-after-ms)"));
  }
  if (!request.has_referral()) return absl::InvalidArgumentError("referral: is required");
  if (absl::Status valid = referral::ValidateReferral(request.referral(), network_); !valid.ok()) {
    return valid;
  }
  if (!publisher_.Reachable()) {
    return absl::UnavailableError(
        "Kafka is unreachable; the referral was not submitted, try again");
  }
  return CheckIdempotencyKey(request.idempotency_key());
}

IntakeService::SubmissionId IntakeService::IdentifySubmission(
    const std::string& caller, const v1::SubmitReferralRequest& request) const {
  std::string canonical;
  {
    google::protobuf::io::StringOutputStream out(&canonical);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    request.referral().SerializeToCodedStream(&coded);
  }
  const std::string& key = request.idempotency_key();
  SubmissionId id;
  id.digest = pseudonymiser_.Digest("referral-request", canonical);
  id.referral_id = key.empty()
                       ? referral::NewReferralId()
                       : "r-" + pseudonymiser_.Digest("idempotency:" + caller, key).substr(2, 24);
  return id;
}

absl::StatusOr<std::optional<ReferralView::Submitted>> IntakeService::EarlierSubmission(
    const std::string& caller, const std::string& idempotency_key, const SubmissionId& id) {
  std::optional<ReferralView::Submitted> earlier;
  if (!idempotency_key.empty() && view_ != nullptr) {
    earlier = view_->FindSubmitted(caller, id.referral_id);
  }
  if (!earlier || earlier->request_digest.empty()) return std::nullopt;
  if (earlier->request_digest != id.digest) {
    return absl::AlreadyExistsError("idempotency_key: already used for a different referral (" +
                                    id.referral_id + ")");
  }
  return earlier;
}

void IntakeService::AnswerRetry(const std::string& caller, const std::string& referral_id,
                                const ReferralView::Submitted& earlier,
                                grpc::ServerUnaryReactor* reactor,
                                v1::SubmitReferralResponse* response) {
  FillRetryResponse(referral_id, earlier, *response);
  spdlog::info("referral {} from {}: a retry, answered again", referral_id, caller);
  if (audit_ == nullptr) {
    reactor->Finish(grpc::Status::OK);
    return;
  }
  // Recorded again: the first call's entry may be the reason for this retry.
  audit_->Record(audit::OrganisationActor(caller), audit::kReferralSubmitted,
                 SubmittedSubject(referral_id, "", earlier.status.needs_size()),
                 "SubmitReferral (a retry)", [reactor](absl::Status audited) {
                   reactor->Finish(audited.ok() ? grpc::Status::OK
                                                : grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                               "the referral's audit entry was not "
                                                               "recorded: retry"));
                 });
}

std::vector<v1::LinkedNeed> IntakeService::LinkOpenNeeds(const v1::Referral& referral,
                                                         v1::ReferralSubmitted& event) {
  std::vector<v1::LinkedNeed> linked;
  if (view_ == nullptr) return linked;
  const auto& sharing = referral.sharing().organisations();
  for (int i = 0; i < event.needs_size(); ++i) {
    std::optional<v1::LinkedNeed> open =
        view_->FindOpen(event.client_pseudonym(), event.needs(i).code());
    if (!open) continue;
    open->set_need_index(static_cast<std::uint32_t>(i));
    // Where the client is helped is told only to a referrer the client allows to share with it.
    if (std::find(sharing.begin(), sharing.end(), open->organisation()) == sharing.end()) {
      open->clear_organisation();
    }
    *event.add_linked() = *open;
    linked.push_back(*std::move(open));
  }
  return linked;
}

void IntakeService::SealAndPublish(std::shared_ptr<Submission> submission,
                                   const v1::Referral& referral) {
  const std::string pseudonym = submission->event.client_pseudonym();
  const std::string referral_id = submission->event.meta().referral_id();
  keys_->ClientKey(
      pseudonym, referral_id, &referral.sharing(),
      std::chrono::system_clock::now() + std::chrono::seconds(5),
      [this, held = Hold(), submission,
       referral_copy = referral](absl::StatusOr<v1::DataKey> client_key) {
        Submission& s = *submission;
        absl::Status sealed = client_key.ok()
                                  ? SealPersonalData(referral_copy, *client_key, s.event)
                                  : client_key.status();
        if (!sealed.ok()) {
          if (!s.answer->Claim()) return;
          spdlog::warn("referral {} from {} not submitted: {}", s.event.meta().referral_id(),
                       s.caller, std::string(sealed.message()));
          s.reactor->Finish(grpc::Status(
              grpc::StatusCode::UNAVAILABLE,
              absl::StrCat("the client's key could not be had, the referral was not submitted; "
                           "try again (",
                           std::string(sealed.message()), ")")));
          return;
        }
        PublishSubmitted(submission);
      });
}

void IntakeService::PublishSubmitted(std::shared_ptr<const Submission> submission) {
  const Submission& s = *submission;
  const std::string& referral_id = s.event.meta().referral_id();
  std::string bytes;
  if (!s.event.SerializeToString(&bytes)) {
    if (s.answer->Claim()) {
      s.reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot encode the referral"));
    }
    return;
  }
  // The referral and its audit entry go to Kafka side by side; the answer waits for both.
  auto both = std::make_shared<Both>(
      [submission](const absl::Status& delivered, const absl::Status& audited) {
        AnswerSubmitted(*submission, delivered, audited);
      });
  publisher_.Publish(topology::kSubmittedTopic, referral_id, bytes,
                     [both](absl::Status delivered) { both->First(std::move(delivered)); });
  if (audit_ != nullptr) {
    audit_->Record(audit::OrganisationActor(s.caller), audit::kReferralSubmitted,
                   SubmittedSubject(referral_id, s.event.client_pseudonym(), s.need_count),
                   "SubmitReferral",
                   [both](absl::Status audited) { both->Second(std::move(audited)); });
  } else {
    both->Second(absl::OkStatus());
  }
}

void IntakeService::AnswerSubmitted(const Submission& s, const absl::Status& delivered,
                                    const absl::Status& audited) {
  const std::string& referral_id = s.event.meta().referral_id();
  if (!s.answer->Claim()) {
    spdlog::info("referral {} from {}: Kafka answered after the caller's deadline ({})",
                 referral_id, s.caller, delivered.ok() ? "stored" : "not stored");
    return;
  }
  if (!delivered.ok()) {
    spdlog::warn("referral {} from {} not submitted: {}", referral_id, s.caller,
                 std::string(delivered.message()));
    s.reactor->Finish(grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        absl::StrCat("the referral was not submitted: ", std::string(delivered.message()))));
    return;
  }
  if (!audited.ok()) {
    spdlog::warn("referral {} from {}: stored, but its audit entry was not: {}", referral_id,
                 s.caller, std::string(audited.message()));
    s.reactor->Finish(grpc::Status(
        grpc::StatusCode::UNAVAILABLE,
        "the referral's audit entry was not recorded: retry with the same idempotency_key"));
    return;
  }
  s.response->set_referral_id(referral_id);
  *s.response->mutable_accepted_at() = s.event.meta().occurred_at();
  for (int i = 0; i < s.need_count; ++i) {
    s.response->add_assignment_ids(
        referral::AssignmentId(referral_id, static_cast<std::uint32_t>(i)));
  }
  for (const v1::LinkedNeed& l : s.linked) *s.response->add_linked() = l;
  spdlog::debug("referral {} from {} submitted with {} needs ({} linked to open ones)", referral_id,
                s.caller, s.need_count, s.linked.size());
  s.reactor->Finish(grpc::Status::OK);
}

}  // namespace schakel::intake
