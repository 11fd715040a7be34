#include "services/intake/intake_service.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "libs/referral/ids.h"
#include "libs/referral/validation.h"
#include "libs/service/identity.h"
#include "libs/service/status.h"

namespace schakel::intake {

using google::protobuf::util::TimeUtil;

IntakeService::IntakeService(const routing::Network& network,
                             const privacy::Pseudonymiser& pseudonymiser,
                             kafka::Publisher& publisher)
    : network_(network), pseudonymiser_(pseudonymiser), publisher_(publisher) {}

v1::ReferralSubmitted IntakeService::BuildEvent(const v1::Referral& referral,
                                                const std::string& referring_organisation,
                                                const std::string& referral_id) const {
  v1::ReferralSubmitted event;
  v1::EventMeta* meta = event.mutable_meta();
  meta->set_schema_version(1);
  meta->set_event_id(referral::NewEventId());
  *meta->mutable_occurred_at() = TimeUtil::GetCurrentTime();
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

grpc::ServerUnaryReactor* IntakeService::SubmitReferral(grpc::CallbackServerContext* context,
                                                        const v1::SubmitReferralRequest* request,
                                                        v1::SubmitReferralResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const std::string caller = service::CallerOrganisation(*context);
  if (caller.empty()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                                 "the call does not say which organisation submits it"));
    return reactor;
  }
  if (network_.FindOrganisation(caller) == nullptr) {
    reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                 "the calling organisation is not part of this network"));
    return reactor;
  }
  if (!request->has_referral()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "referral: is required"));
    return reactor;
  }
  if (absl::Status valid = referral::ValidateReferral(request->referral(), network_); !valid.ok()) {
    reactor->Finish(service::ToGrpc(valid));
    return reactor;
  }
  if (!publisher_.Reachable()) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::UNAVAILABLE,
                     "Kafka is unreachable; the referral was not submitted, try again"));
    return reactor;
  }

  const std::string referral_id = referral::NewReferralId();
  const v1::ReferralSubmitted event = BuildEvent(request->referral(), caller, referral_id);
  std::string bytes;
  if (!event.SerializeToString(&bytes)) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot encode the referral"));
    return reactor;
  }
  const int need_count = request->referral().needs_size();
  publisher_.Publish(
      routing::kSubmittedTopic, referral_id, bytes,
      [reactor, response, referral_id, caller, need_count,
       accepted_at = event.meta().occurred_at()](absl::Status delivered) {
        if (!delivered.ok()) {
          spdlog::warn("referral {} from {} not submitted: {}", referral_id, caller,
                       std::string(delivered.message()));
          reactor->Finish(grpc::Status(
              grpc::StatusCode::UNAVAILABLE,
              absl::StrCat("the referral was not submitted: ", std::string(delivered.message()))));
          return;
        }
        response->set_referral_id(referral_id);
        *response->mutable_accepted_at() = accepted_at;
        for (int i = 0; i < need_count; ++i) {
          response->add_assignment_ids(
              referral::AssignmentId(referral_id, static_cast<std::uint32_t>(i)));
        }
        spdlog::info("referral {} from {} submitted with {} needs", referral_id, caller,
                     need_count);
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

}  // namespace schakel::intake
