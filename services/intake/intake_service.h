// IntakeService: the front door for partner systems. A referral is validated against the network,
// the client is replaced by a pseudonym, and ReferralSubmitted is published; the caller hears OK
// only after Kafka has durably acknowledged it. The gRPC thread is never blocked: the reactor is
// finished from the producer's delivery report.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/audit/writer.h"
#include "libs/kafka/publisher.h"
#include "libs/privacy/key_client.h"
#include "libs/privacy/pseudonym.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"
#include "schakel/v1/intake.grpc.pb.h"
#include "services/intake/admission.h"
#include "services/intake/intake_limits.h"
#include "services/intake/referral_view.h"
#include "services/intake/sealed_text.h"

namespace schakel::intake {

class IntakeService final : public v1::IntakeService::CallbackService {
 public:
  // All must outlive the service (and every call in flight). Without a view, the closed-loop calls
  // answer UNIMPLEMENTED. Without limits, no organisation's SubmitReferral calls are limited.
  // Every referral is sealed with its client's key (the client's details, even when empty, so
  // that every offer names the key): without keys, every referral is refused. With `audit`, every
  // submitted referral (personal data received) is recorded, and SubmitReferral answers OK only
  // once both the referral and its audit entry are in Kafka.
  IntakeService(const routing::Network& network, const privacy::Pseudonymiser& pseudonymiser,
                kafka::Publisher& publisher, ReferralView* view = nullptr,
                IntakeLimits* limits = nullptr, privacy::ClientKeySource* keys = nullptr,
                audit::Recorder* audit = nullptr);
  // Waits until every step it left waiting on the key service has called back: a call may have
  // been answered (its deadline) or cancelled, and gRPC's shutdown done, while its key is still
  // coming, and that callback uses the service. (Bounded: the key client answers by a deadline.)
  ~IntakeService() override;
  IntakeService(const IntakeService&) = delete;
  IntakeService& operator=(const IntakeService&) = delete;

  // How many SubmitReferral calls may wait at once (admission.h); beyond, a call is refused at
  // once with RESOURCE_EXHAUSTED and retry-after-ms, so that the calls taken are answered soon and
  // memory stays bounded when referrals come faster than they can be taken. Without it, no bound.
  // Set before the server starts.
  void Admit(AdmissionOptions options) { admission_.emplace(options); }
  // SubmitReferral calls gRPC holds now.
  std::size_t in_flight() const { return in_flight_.load(); }

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

  // Shows `referrals` to their referring organisation `caller`: opens what came sealed (the
  // owners' reasons and outcomes) and, when something was opened, records the read in the audit
  // chain (referral.read, why: `call`) before `answer` gets them; UNAVAILABLE (and no referrals)
  // when that record could not be made. `answer` runs once, on any thread.
  using Answer = std::function<void(const grpc::Status&, std::vector<v1::ReferralStatus>)>;
  void ShowReferrals(const std::string& caller, std::vector<v1::ReferralStatus> referrals,
                     const std::string& call, Answer answer);

  // The event intake publishes for a valid referral (exposed for tests).
  v1::ReferralSubmitted BuildEvent(const v1::Referral& referral,
                                   const std::string& referring_organisation,
                                   const std::string& referral_id) const;

 private:
  struct Submission;  // intake_service.cc
  // Which referral a SubmitReferral request is.
  struct SubmissionId {
    std::string referral_id;
    std::string digest;  // of the request: tells a retry from another referral under the same key
  };

  // SubmitReferral's steps, in order. Whether intake takes one more call now (RESOURCE_EXHAUSTED
  // beyond the admission's bound, with trailing metadata retry-after-ms).
  absl::Status Take(grpc::CallbackServerContext& context);
  // Whether the referral is one it can take, before any work: a refused call costs next to nothing
  // and changes nothing (RESOURCE_EXHAUSTED beyond the caller's intake_limit, with trailing
  // metadata retry-after-ms; INVALID_ARGUMENT for a missing or invalid referral or idempotency key;
  // UNAVAILABLE when Kafka is unreachable).
  absl::Status Admit(const std::string& caller, const v1::SubmitReferralRequest& request,
                     grpc::CallbackServerContext& context);
  // An idempotency key makes the referral id: the same key from the same organisation is the same
  // referral, in every intake instance and after restarts (they share the keyed hash). Without
  // one, every request is a new referral.
  SubmissionId IdentifySubmission(const std::string& caller,
                                  const v1::SubmitReferralRequest& request) const;
  // With an idempotency key: the earlier submission this call is a retry of (nullopt when there is
  // none), ALREADY_EXISTS when the key was used for a different referral.
  absl::StatusOr<std::optional<ReferralView::Submitted>> EarlierSubmission(
      const std::string& caller, const std::string& idempotency_key, const SubmissionId& id);
  // Answers a retry as the first call was answered (or would have been), publishing nothing.
  void AnswerRetry(const std::string& caller, const std::string& referral_id,
                   const ReferralView::Submitted& earlier, grpc::ServerUnaryReactor* reactor,
                   v1::SubmitReferralResponse* response);
  // The event of a new referral and what its answer needs, answered UNAVAILABLE a moment before
  // the call's deadline when Kafka keeps it waiting.
  std::shared_ptr<Submission> NewSubmission(const std::string& caller,
                                            const v1::SubmitReferralRequest& request,
                                            const SubmissionId& id,
                                            grpc::CallbackServerContext* context,
                                            grpc::ServerUnaryReactor* reactor,
                                            v1::SubmitReferralResponse* response);
  // A need already open for this client (any referrer) is linked in `event`, not offered a second
  // time; the links, for the answer. The view follows Kafka, so two referrals submitted within a
  // moment of each other may both pass.
  std::vector<v1::LinkedNeed> LinkOpenNeeds(const v1::Referral& referral,
                                            v1::ReferralSubmitted& event);
  // Asks the key service for the client's key, and seals `referral`'s personal data into the
  // event and publishes it when the key arrives (on the key client's thread), so that no gRPC
  // thread waits. The key service records the client's sharing permission with the key: it hands
  // the key to no organisation outside it, whatever the router offers.
  void SealAndPublish(std::shared_ptr<Submission> submission, const v1::Referral& referral);
  // Publishes the (sealed) event and records the submission in the audit chain, side by side.
  void PublishSubmitted(std::shared_ptr<const Submission> submission);
  // Answers the call once both the event and its audit entry are in Kafka (or one failed).
  static void AnswerSubmitted(const Submission& submission, const absl::Status& delivered,
                              const absl::Status& audited);

  // A token each callback that uses the service holds until it is gone; the destructor waits for
  // the last.
  std::shared_ptr<void> Hold() ABSL_LOCKS_EXCLUDED(held_mu_);

  const routing::Network& network_;
  const privacy::Pseudonymiser& pseudonymiser_;
  kafka::Publisher& publisher_;
  ReferralView* view_;
  IntakeLimits* limits_;
  privacy::ClientKeySource* keys_;
  std::unique_ptr<SealedTextOpener> texts_;  // with keys_ only
  audit::Recorder* audit_;
  std::optional<Admission> admission_;
  std::atomic<std::size_t> in_flight_{0};
  absl::Mutex held_mu_;
  std::size_t held_ ABSL_GUARDED_BY(held_mu_) = 0;  // callbacks holding a token of Hold()
};

// Moves the referral's personal data into the event's sealed fields, sealed with `key`: the
// client's name and contact (always sealed, empty ones too: the offers name the client's key from
// it), each need's details (the event's needs then carry none).
absl::Status SealPersonalData(const v1::Referral& referral, const v1::DataKey& key,
                              v1::ReferralSubmitted& event);

}  // namespace schakel::intake
