#include "services/keys/key_service.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/referral/clock.h"
#include "libs/referral/ids.h"
#include "libs/referral/validation.h"
#include "libs/service/identity.h"
#include "libs/service/status.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"

namespace schakel::keys {
namespace {

using google::protobuf::util::TimeUtil;

constexpr std::size_t kMaxReasonChars = 500;
const char kNotYours[] = "no key for this assignment for the calling organisation";
// Why a key is handed to an organisation (the audit entry's reason), and the same for a referral
// whose sharing permission the key service does not know (recorded before it learnt them).
const char kGrantReason[] = "open offered assignment";
const char kGrantReasonSharingUnknown[] =
    "open offered assignment (no sharing permission recorded: the offer alone decided)";

// An organisation id as the network file allows them: [a-z0-9][a-z0-9-]{0,62}.
bool IsOrganisationId(const std::string& id) {
  if (id.empty() || id.size() > 63 || id[0] == '-') return false;
  for (char c : id) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// The organisations of a ClientKeyRequest's sharing permission, when it is well formed (empty when
// it is not given); INVALID_ARGUMENT naming the field otherwise. The organisations are not looked
// up in the network: intake did that, and the key service only keeps them.
absl::StatusOr<Sharing> RequestedSharing(const v1::ClientKeyRequest& request) {
  if (!request.has_sharing()) return Sharing();
  const v1::SharingPermission& sharing = request.sharing();
  if (sharing.basis() == v1::SHARING_BASIS_UNSPECIFIED ||
      !v1::SharingBasis_IsValid(sharing.basis())) {
    return absl::InvalidArgumentError(
        "sharing.basis: must be CONSENT, LEGAL_OBLIGATION or VITAL_INTEREST");
  }
  if (sharing.organisations().empty()) {
    return absl::InvalidArgumentError("sharing.organisations: must name at least one organisation");
  }
  if (static_cast<std::size_t>(sharing.organisations_size()) > referral::kMaxSharingOrganisations) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sharing.organisations: at most ", referral::kMaxSharingOrganisations, " organisations"));
  }
  std::vector<std::string> organisations;
  for (int i = 0; i < sharing.organisations_size(); ++i) {
    if (!IsOrganisationId(sharing.organisations(i))) {
      return absl::InvalidArgumentError(
          absl::StrCat("sharing.organisations[", i, "]: not an organisation id"));
    }
    organisations.push_back(sharing.organisations(i));
  }
  return Sharing(std::move(organisations));
}

// The organisation the caller acts for: an organisation, or its inbox ("inbox-<org>" service).
std::string ActingOrganisation(const service::Caller& caller) {
  if (caller.kind == service::Caller::Kind::kOrganisation) return caller.id;
  if (caller.kind == service::Caller::Kind::kService && caller.id.rfind("inbox-", 0) == 0) {
    return caller.id.substr(6);
  }
  return "";
}

grpc::Status Unauthenticated() {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "no client certificate or bearer token of the network");
}

std::size_t CodePoints(const std::string& text) {
  std::size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

// An erasure is answered once both its announcement and its audit entry are durable (they arrive
// on other threads, in either order).
class ErasureOutcome {
 public:
  ErasureOutcome(grpc::ServerUnaryReactor* reactor, std::string referral_id)
      : reactor_(reactor), referral_id_(std::move(referral_id)) {}
  void Announced(absl::Status s) { Set(kAnnounced, std::move(s)); }
  void Recorded(absl::Status s) { Set(kRecorded, std::move(s)); }

 private:
  enum Outcome { kAnnounced, kRecorded };
  void Set(Outcome outcome, absl::Status s) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::Status announced;
    absl::Status recorded;
    {
      absl::MutexLock lock(&mu_);
      outcomes_[outcome] = std::move(s);
      if (!outcomes_[kAnnounced] || !outcomes_[kRecorded]) return;
      announced = *outcomes_[kAnnounced];
      recorded = *outcomes_[kRecorded];
    }
    if (!announced.ok()) {
      spdlog::warn("erasure of the client of {} not announced: {}", referral_id_,
                   std::string(announced.message()));
      reactor_->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "the client's keys are destroyed, but the inboxes were not "
                                    "told to purge yet: erase again"));
      return;
    }
    if (!recorded.ok()) {
      spdlog::warn("erasure of the client of {} not recorded in the audit stream: {}", referral_id_,
                   std::string(recorded.message()));
      reactor_->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    "the client's keys are destroyed and the inboxes told, but "
                                    "the erasure was not recorded in the audit stream: erase "
                                    "again"));
      return;
    }
    reactor_->Finish(grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* reactor_;
  const std::string referral_id_;
  absl::Mutex mu_;
  std::optional<absl::Status> outcomes_[2] ABSL_GUARDED_BY(mu_);  // by Outcome
};

}  // namespace

KeyService::KeyService(KeyStore& store, kafka::Publisher& publisher, KeyServiceOptions options,
                       audit::Recorder* audit)
    : store_(store),
      publisher_(publisher),
      options_(options),
      audit_(audit),
      rechecker_([this] { RecheckLoop(); }),
      key_writer_([this] { KeyWriterLoop(); }) {}

KeyService::~KeyService() {
  {
    absl::MutexLock lock(&key_mu_);
    key_writer_stopping_ = true;  // the writer answers what is queued, then ends
  }
  key_writer_.join();
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  rechecker_.join();
  absl::MutexLock lock(&mu_);
  for (Waiting& w : waiting_) {
    w.reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the key service is stopping"));
  }
}

// The offer reaches the organisation's topic in the router's transaction; the grant (the offer's
// REQUESTED fact on the status topic, in the same transaction) reaches the key service a moment
// later. So a request that finds no grant waits (without
// holding a gRPC thread) and is checked again until the grant is there or the wait is over.
bool KeyService::TryAnswer(Waiting& w, bool last_chance) {
  DataKey key;
  absl::StatusOr<KeyStore::Access> access =
      store_.AssignmentKey(w.assignment_id, w.key_id, w.organisation, &key);
  if (!access.ok()) {
    w.reactor->Finish(service::ToGrpc(access.status()));
    return true;
  }
  switch (*access) {
    case KeyStore::Access::kGranted: {
      if (!key.sharing_known) {
        ++sharing_unknown_;
        spdlog::warn(
            "key of {} handed to {} on the offer alone: referral {} has no sharing permission "
            "recorded here (recorded before the key service kept them)",
            w.assignment_id, w.organisation, key.referral_id);
      }
      // Handed out only once the hand-out is recorded (who, which assignment of which client, why):
      // an organisation never holds a key the audit stream does not know it got.
      // (Taken before `key` moves into the hand-out.)
      const audit::Ids ids{.referral_id = key.referral_id,
                           .assignment_ids = {w.assignment_id},
                           .client_pseudonym = key.client_pseudonym};
      const char* reason = key.sharing_known ? kGrantReason : kGrantReasonSharingUnknown;
      auto hand_out = [reactor = w.reactor, response = w.response, assignment_id = w.assignment_id,
                       organisation = w.organisation,
                       key = std::move(key)](const absl::Status& recorded) mutable {
        if (!recorded.ok()) {
          spdlog::warn("key of {} not handed to {}: its audit entry was not recorded: {}",
                       assignment_id, organisation, std::string(recorded.message()));
          reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                       "the hand-out of the key could not be recorded in the "
                                       "audit stream; no key was handed out, try again"));
          return;
        }
        response->set_key_id(key.key_id);
        response->set_key(std::move(key.key));
        spdlog::debug("key of {} handed to {}", assignment_id, organisation);
        reactor->Finish(grpc::Status::OK);
      };
      if (audit_ == nullptr) {
        hand_out(absl::OkStatus());
        return true;
      }
      audit_->Record(audit::OrganisationActor(w.organisation), audit::kKeyGranted, ids, reason,
                     std::move(hand_out));
      return true;
    }
    case KeyStore::Access::kOutsideSharing:
      // Refused like an assignment that was never offered, and only when the wait is over: neither
      // the answer nor its timing tells the caller that the assignment exists.
      if (!last_chance) return false;
      ++refused_outside_sharing_;
      spdlog::warn(
          "key of {} refused to {}: offered to it by the router, but outside the sharing "
          "permission of referral {}",
          w.assignment_id, w.organisation, key.referral_id);
      w.reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, kNotYours));
      return true;
    case KeyStore::Access::kErased:
      w.reactor->Finish(grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("erased: the client of ", w.assignment_id, " has been erased")));
      return true;
    case KeyStore::Access::kUnknownKey:
      w.reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                     absl::StrCat("key ", w.key_id, " is not known here")));
      return true;
    case KeyStore::Access::kNotGranted:
      break;
  }
  if (!last_chance) return false;
  w.reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, kNotYours));
  return true;
}

void KeyService::GrantsArrived() {
  absl::MutexLock lock(&mu_);
  recheck_now_ = true;  // wakes RecheckLoop as the lock is released
}

void KeyService::RecheckLoop() {
  absl::MutexLock lock(&mu_);
  auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || recheck_now_; };
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&woken), absl::FromChrono(options_.recheck_every));
    recheck_now_ = false;
    const auto now = std::chrono::system_clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      it = TryAnswer(*it, now >= it->give_up) ? waiting_.erase(it) : std::next(it);
    }
  }
}

grpc::ServerUnaryReactor* KeyService::ClientKey(grpc::CallbackServerContext* context,
                                                const v1::ClientKeyRequest* request,
                                                v1::DataKey* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const service::Caller caller = service::Identify(*context);
  if (caller.kind == service::Caller::Kind::kNobody) {
    reactor->Finish(Unauthenticated());
  } else if (caller.kind != service::Caller::Kind::kService || caller.id != "intake") {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "only the intake service asks for a client's key"));
  } else if (request->client_pseudonym().rfind("p-", 0) != 0) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "client_pseudonym: a pseudonym (p-...) is required"));
  } else if (request->referral_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "referral_id: is required"));
  } else if (absl::StatusOr<Sharing> sharing = RequestedSharing(*request); !sharing.ok()) {
    reactor->Finish(service::ToGrpc(sharing.status()));
  } else {
    absl::MutexLock lock(&key_mu_);  // wakes KeyWriterLoop as it is released
    key_calls_.push_back(
        {reactor,
         response,
         {request->client_pseudonym(), request->referral_id(), *std::move(sharing)}});
  }
  return reactor;
}

void KeyService::KeyWriterLoop() {
  auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(key_mu_) {
    return key_writer_stopping_ || !key_calls_.empty();
  };
  while (true) {
    std::vector<KeyCall> calls;
    {
      absl::MutexLock lock(&key_mu_);
      key_mu_.Await(absl::Condition(&woken));
      if (key_calls_.empty()) return;  // stopping, and nothing left to answer
      calls.swap(key_calls_);
    }
    std::vector<KeyStore::KeyRequest> requests;
    requests.reserve(calls.size());
    for (const KeyCall& call : calls) requests.push_back(call.request);
    std::vector<absl::StatusOr<DataKey>> keys = store_.ClientKeys(requests);
    for (std::size_t i = 0; i < calls.size(); ++i) {
      if (keys[i].ok()) {
        calls[i].response->set_key_id(keys[i]->key_id);
        calls[i].response->set_key(std::move(keys[i]->key));
      } else if (keys[i].status().code() == absl::StatusCode::kInvalidArgument) {
        spdlog::warn("client key for {} refused: {}", calls[i].request.referral_id,
                     std::string(keys[i].status().message()));
      } else {
        spdlog::error("client key for {}: {}", calls[i].request.referral_id,
                      std::string(keys[i].status().message()));
      }
      calls[i].reactor->Finish(service::ToGrpc(keys[i].status()));
    }
  }
}

// Intake opens, for the referring organisation, what the owners wrote about its referral. Not
// recorded here: intake records each read of opened text in its own audit chain (referral.read)
// before it answers the referrer; intake itself opens nothing else with the key.
grpc::ServerUnaryReactor* KeyService::ReferralKey(grpc::CallbackServerContext* context,
                                                  const v1::ReferralKeyRequest* request,
                                                  v1::DataKey* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const service::Caller caller = service::Identify(*context);
  if (caller.kind == service::Caller::Kind::kNobody) {
    reactor->Finish(Unauthenticated());
    return reactor;
  }
  if (caller.kind != service::Caller::Kind::kService || caller.id != "intake") {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "only the intake service asks for a referral's key"));
    return reactor;
  }
  if (request->referral_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "referral_id: is required"));
    return reactor;
  }
  if (request->key_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "key_id: is required"));
    return reactor;
  }
  DataKey key;
  absl::StatusOr<KeyStore::Access> access =
      store_.ReferralKey(request->referral_id(), request->key_id(), &key);
  if (!access.ok()) {
    spdlog::error("referral key for {}: {}", request->referral_id(),
                  std::string(access.status().message()));
    reactor->Finish(service::ToGrpc(access.status()));
    return reactor;
  }
  switch (*access) {
    case KeyStore::Access::kGranted:
      response->set_key_id(key.key_id);
      response->set_key(std::move(key.key));
      reactor->Finish(grpc::Status::OK);
      break;
    case KeyStore::Access::kErased:
      reactor->Finish(grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("erased: the client of ", request->referral_id(), " has been erased")));
      break;
    case KeyStore::Access::kNotGranted:
    case KeyStore::Access::kOutsideSharing:
    case KeyStore::Access::kUnknownKey:
      reactor->Finish(
          grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no such key for this referral"));
      break;
  }
  return reactor;
}

grpc::ServerUnaryReactor* KeyService::AssignmentKey(grpc::CallbackServerContext* context,
                                                    const v1::AssignmentKeyRequest* request,
                                                    v1::DataKey* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const service::Caller caller = service::Identify(*context);
  const std::string organisation = ActingOrganisation(caller);
  if (caller.kind == service::Caller::Kind::kNobody) {
    reactor->Finish(Unauthenticated());
  } else if (organisation.empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "only organisations open what was offered to them"));
  } else if (request->assignment_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "assignment_id: is required"));
  } else if (request->key_id().empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "key_id: is required"));
  } else {
    // Wait for the grant at most until a moment before the caller's deadline.
    const auto deadline = context->deadline() - std::chrono::milliseconds(100);
    const auto give_up = std::min(deadline, std::chrono::system_clock::now() + options_.grant_wait);
    Waiting w{reactor,           response,     request->assignment_id(),
              request->key_id(), organisation, give_up};
    // Tried and, when not answered, queued under one lock: a grant stored in between wakes the
    // rechecker only after the call is in the queue (GrantsArrived), so no grant is missed.
    absl::MutexLock lock(&mu_);
    if (!TryAnswer(w, std::chrono::system_clock::now() >= give_up))
      waiting_.push_back(std::move(w));
  }
  return reactor;
}

grpc::ServerUnaryReactor* KeyService::EraseClient(grpc::CallbackServerContext* context,
                                                  const v1::EraseClientRequest* request,
                                                  v1::EraseClientResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const service::Caller caller = service::Identify(*context);
  const auto refuse = [reactor](grpc::StatusCode code, const std::string& message) {
    reactor->Finish(grpc::Status(code, message));
    return reactor;
  };
  if (caller.kind == service::Caller::Kind::kNobody) {
    reactor->Finish(Unauthenticated());
    return reactor;
  }
  if (caller.kind != service::Caller::Kind::kOperator) {
    return refuse(grpc::StatusCode::PERMISSION_DENIED, "only operators erase clients");
  }
  if (request->referral_id().empty()) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "referral_id: is required");
  }
  if (request->reason().find_first_not_of(" \t\r\n") == std::string::npos) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT, "reason: is required");
  }
  if (CodePoints(request->reason()) > kMaxReasonChars) {
    return refuse(grpc::StatusCode::INVALID_ARGUMENT,
                  absl::StrCat("reason: at most ", kMaxReasonChars, " characters"));
  }
  absl::StatusOr<std::string> client = store_.ClientOf(request->referral_id());
  if (!client.ok()) {
    reactor->Finish(service::ToGrpc(client.status()));
    return reactor;
  }
  if (!publisher_.Reachable()) {
    return refuse(grpc::StatusCode::UNAVAILABLE,
                  "Kafka is unreachable; nothing was erased, try again");
  }
  const auto now = referral::Now();
  // The keys go first: once they are gone, every sealed copy is unreadable, whatever happens next.
  absl::StatusOr<Erasure> erased = store_.EraseClient(*client, now.seconds());
  if (!erased.ok()) {
    spdlog::error("erasing the client of {}: {}", request->referral_id(),
                  std::string(erased.status().message()));
    reactor->Finish(service::ToGrpc(erased.status()));
    return reactor;
  }
  spdlog::warn("client of {} erased by operator {}: {} key(s) destroyed", request->referral_id(),
               caller.id, erased->key_ids.size());
  v1::ClientErased event;
  v1::EventMeta* meta = event.mutable_meta();
  meta->set_schema_version(1);
  meta->set_event_id(referral::NewEventId());
  *meta->mutable_occurred_at() = now;
  meta->set_referral_id(request->referral_id());
  event.set_client_pseudonym(*client);
  for (const std::string& id : erased->key_ids) event.add_key_ids(id);
  event.set_by(caller.id);
  event.set_reason(request->reason());
  response->set_client_pseudonym(*client);
  response->set_keys_destroyed(static_cast<std::uint32_t>(erased->key_ids.size()));
  *response->mutable_erased_at() = now;
  const std::string referral_id = request->referral_id();
  // The announcement and the audit entry go out side by side; the answer waits for both.
  auto outcome = std::make_shared<ErasureOutcome>(reactor, referral_id);
  publisher_.Publish(topology::kErasuresTopic, *client, event.SerializeAsString(),
                     [outcome](absl::Status delivered) { outcome->Announced(delivered); });
  if (audit_ == nullptr) {
    outcome->Recorded(absl::OkStatus());
    return reactor;
  }
  // Who (the operator, from the credentials) erased which client. The operator's reason is typed
  // text and the audit stream keeps everything for ever, unerasable: the entry names the event that
  // carries the reason (on the erasures topic) instead of copying it.
  audit_->Record(caller, audit::kClientErased,
                 {.referral_id = referral_id, .client_pseudonym = *client},
                 absl::StrCat("EraseClient (reason: ClientErased ", meta->event_id(), ")"),
                 [outcome](absl::Status recorded) { outcome->Recorded(recorded); });
  return reactor;
}

}  // namespace schakel::keys
