// The unroutable queue as operators see it: every need nobody could take, with everybody's reason,
// folded from the ReferralUnroutable events, the operators' ReassignRequested events and the offers
// that continue an unroutable need (its reassignment done). No personal data: ids, need codes,
// organisations and reasons only.
//
// An operator reassigns a need (schakelctl unroutable reassign, the console): CheckReassign says
// whether that can be asked (with the field that is wrong), MakeReassign builds the event for
// schakel.operator.reassignments, and the router makes the offer (see ReassignRequested).
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"

namespace schakel::ops {

struct UnroutableNeed {
  std::string referral_id;
  std::uint32_t need_index = 0;
  // The id the need has in the queue (ReferralUnroutable.meta.assignment_id).
  std::string unroutable_id;
  std::string need_code;
  v1::Urgency urgency = v1::URGENCY_UNSPECIFIED;
  std::string region;
  std::string referring_organisation;
  google::protobuf::Timestamp at;
  std::vector<v1::PassedOver> passed_over;
  // Who the client allows (empty: not known, from before events carried it).
  std::vector<std::string> sharing;
  bool sharing_known = false;
  // Set once the router offered it to an organisation after an operator's reassignment.
  std::string reassigned_to;
  // An operator's reassignment on its way (the router has not answered yet); its target.
  std::string requested_to;
};

class UnroutableQueue {
 public:
  void AddUnroutable(const v1::ReferralUnroutable& event);
  void AddReassign(const v1::ReassignRequested& event);
  // Any offer: one whose previous assignment is an unroutable need's id was its reassignment.
  void AddOffer(const v1::AssignmentRequested& offer);

  // Oldest first.
  std::vector<UnroutableNeed> Needs() const;
  const UnroutableNeed* Find(const std::string& referral_id, std::uint32_t need_index) const;

  // Whether an operator may ask to reassign the need to `organisation`: INVALID_ARGUMENT naming the
  // field (organisation not in the network, or outside the client's sharing permission; reason
  // empty or too long), NOT_FOUND (no such need in the queue), FAILED_PRECONDITION (reassigned
  // already, or a reassignment is on its way).
  absl::Status CheckReassign(const routing::Network& network, const std::string& referral_id,
                             std::uint32_t need_index, const std::string& organisation,
                             const std::string& reason) const;
  // The event for schakel.operator.reassignments (key: referral id). `by` names the operator.
  v1::ReassignRequested MakeReassign(const UnroutableNeed& need, const std::string& organisation,
                                     const std::string& reason, const std::string& by) const;

  static constexpr std::size_t kMaxReasonBytes = 500;

 private:
  using Key = std::pair<std::string, std::uint32_t>;  // referral id, need index
  std::map<Key, UnroutableNeed> needs_;
  // Offers that continue another assignment: previous id → organisation (an offer may be read
  // before the unroutable event it continues).
  std::map<std::string, std::string> continued_;
};

// The dead letters as operators see them (no payloads).
struct DeadLetterRow {
  std::string key;  // topic/partition/offset
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::string consumer;
  std::string reason;
  google::protobuf::Timestamp at;
  // Where the dead letter itself is (its consumer's dead-letter topic): what a redrive names.
  std::string letter_topic{};
  std::int32_t letter_partition = 0;
  std::int64_t letter_offset = 0;
};
DeadLetterRow DeadLetterRowOf(const v1::DeadLetter& letter);

}  // namespace schakel::ops
