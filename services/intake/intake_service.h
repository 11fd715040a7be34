// IntakeService: the front door for partner systems. A referral is validated against the network,
// the client is replaced by a pseudonym, and ReferralSubmitted is published; the caller hears OK
// only after Kafka has durably acknowledged it. The gRPC thread is never blocked: the reactor is
// finished from the producer's delivery report.
#pragma once

#include <functional>

#include "libs/audit/writer.h"
#include "libs/kafka/publisher.h"
#include "libs/privacy/pseudonym.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "services/intake/referral_view.h"

namespace schakel::intake {

class IntakeService final : public v1::IntakeService::CallbackService {
 public:
  // All must outlive the service (and every call in flight). Without a view, the closed-loop calls
  // answer UNIMPLEMENTED. With `audit`, every submitted referral (personal data received) is
  // recorded, and SubmitReferral answers OK only once both the referral and its audit entry are in
  // Kafka.
  IntakeService(const routing::Network& network, const privacy::Pseudonymiser& pseudonymiser,
                kafka::Publisher& publisher, ReferralView* view = nullptr,
                audit::Recorder* audit = nullptr);

  grpc::ServerUnaryReactor* SubmitReferral(grpc::CallbackServerContext* context,
                                           const v1::SubmitReferralRequest* request,
                                           v1::SubmitReferralResponse* response) override;

  grpc::ServerUnaryReactor* GetReferral(grpc::CallbackServerContext* context,
                                        const v1::GetReferralRequest* request,
                                        v1::ReferralStatus* response) override;
  grpc::ServerUnaryReactor* ListReferrals(grpc::CallbackServerContext* context,
                                          const v1::ListReferralsRequest* request,
                                          v1::ListReferralsResponse* response) override;
  grpc::ServerWriteReactor<v1::ReferralStatus>* WatchReferrals(
      grpc::CallbackServerContext* context, const v1::WatchReferralsRequest* request) override;

  // Publishes a CancelRequested for one of the caller's assignments to the cancellations topic and
  // answers after the delivery report; the owner's inbox decides (see intake.proto).
  grpc::ServerUnaryReactor* CancelAssignment(grpc::CallbackServerContext* context,
                                             const v1::CancelAssignmentRequest* request,
                                             v1::CancelAssignmentResponse* response) override;

  // The event intake publishes for a valid referral (exposed for tests).
  v1::ReferralSubmitted BuildEvent(const v1::Referral& referral,
                                   const std::string& referring_organisation,
                                   const std::string& referral_id) const;

 private:
  const routing::Network& network_;
  const privacy::Pseudonymiser& pseudonymiser_;
  kafka::Publisher& publisher_;
  ReferralView* view_;
  audit::Recorder* audit_;
};

}  // namespace schakel::intake
