#include "services/keys/key_service.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/referral/ids.h"
#include "libs/service/identity.h"
#include "libs/service/status.h"
#include "schakel/v1/events.pb.h"

namespace schakel::keys {
namespace {

using google::protobuf::util::TimeUtil;

constexpr std::size_t kMaxReasonChars = 500;
const char kNotYours[] = "no key for this assignment for the calling organisation";

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

}  // namespace

KeyService::KeyService(KeyStore& store, kafka::Publisher& publisher, KeyServiceOptions options)
    : store_(store),
      publisher_(publisher),
      options_(options),
      rechecker_([this] { RecheckLoop(); }) {}

KeyService::~KeyService() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  rechecker_.join();
  for (Waiting& w : waiting_) {
    w.reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the key service is stopping"));
  }
}

// The offer reaches the organisation's topic in the router's transaction; the grant reaches the key
// service through the grants topic a moment later. So a request that finds no grant waits (without
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
    case KeyStore::Access::kGranted:
      w.response->set_key_id(key.key_id);
      w.response->set_key(std::move(key.key));
      spdlog::info("key of {} handed to {}", w.assignment_id, w.organisation);
      w.reactor->Finish(grpc::Status::OK);
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

void KeyService::RecheckLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, options_.recheck_every);
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
  } else {
    absl::StatusOr<DataKey> key =
        store_.ClientKey(request->client_pseudonym(), request->referral_id());
    if (key.ok()) {
      response->set_key_id(key->key_id);
      response->set_key(std::move(key->key));
    } else {
      spdlog::error("client key for {}: {}", request->referral_id(),
                    std::string(key.status().message()));
    }
    reactor->Finish(service::ToGrpc(key.status()));
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
    if (!TryAnswer(w, std::chrono::system_clock::now() >= give_up)) {
      std::lock_guard lock(mu_);
      waiting_.push_back(std::move(w));
    }
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
  const auto now = TimeUtil::GetCurrentTime();
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
  publisher_.Publish(routing::kErasuresTopic, *client, event.SerializeAsString(),
                     [reactor, referral_id](absl::Status delivered) {
                       if (!delivered.ok()) {
                         spdlog::warn("erasure of the client of {} not announced: {}", referral_id,
                                      std::string(delivered.message()));
                         reactor->Finish(grpc::Status(
                             grpc::StatusCode::UNAVAILABLE,
                             "the client's keys are destroyed, but the inboxes were not told to "
                             "purge yet: erase again"));
                         return;
                       }
                       reactor->Finish(grpc::Status::OK);
                     });
  return reactor;
}

}  // namespace schakel::keys
