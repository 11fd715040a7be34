// The routing policy: given the network and a referral, which organisation is offered each need,
// and why every other organisation was passed over. Pure and deterministic: the same input gives
// the same answer.
//
// Eligible, checked in this order (a passed-over organisation is told the first rule it fails):
//   1. serves the need;
//   2. covers the client's region;
//   3. speaks one of the client's languages, when the need requires contact (NeedKind::contact)
//      and the client gave languages; an organisation with an interpreter passes;
//   4. has fewer open assignments than its capacity (counting the ones this decision already gave
//      it for earlier needs of the same request);
//   5. was not already tried for this need (RouteRequest::excluded_organisations);
//   6. is named in the client's sharing permission. Never route outside it, whatever else holds.
// Ranked among the eligible: the network's preference for the need in the client's region, then
// its preference for the need in every region (organisations in no list come after the listed
// ones); then fewer open assignments; then the order of the network file.
//
// Fast: the constructor indexes the candidates per need and region, sorted by preference and file
// order. A decision looks only at those candidates (from the best tier down, stopping at the first
// tier with an eligible one), or, when the client's sharing permission is the shorter list, only at
// the organisations it names, since nobody else can be eligible; either way the work does not grow
// with the size of the network. Reasons for every organisation of the network are made only when
// needed: for an unroutable need, or on request (RouteRequest::explain). Decide is const: one
// Policy may serve several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "libs/routing/network.h"

namespace schakel::routing {

// The current number of open assignments of an organisation (offered, not yet in a final state).
// Negative answers count as 0. Called during Decide only, and expected to give the same answer for
// the whole call (take a snapshot, or hold the lock, around Decide).
using OpenAssignments = std::function<int(std::string_view organisation)>;

struct RouteRequest {
  std::string region;
  std::vector<std::string> need_codes;             // in the order of the referral
  std::vector<std::string> sharing_organisations;  // the client's sharing permission
  // The client's languages (ISO 639-1); empty: language is no rule for this client.
  std::vector<std::string> languages = {};
  // Organisations already tried for these needs (declined or not accepted in time): escalation asks
  // for the next one, one need at a time.
  std::vector<std::string> excluded_organisations = {};
  // Empty: nobody has open assignments.
  OpenAssignments open_assignments = nullptr;
  // Give every organisation of the network its reason also when the need is routable. An unroutable
  // need always gets them (operators need them); a routable one only on request, to keep the
  // router's decisions cheap.
  bool explain = false;
};

struct PassedOver {
  std::string organisation;
  std::string reason;  // no personal data: only codes, ids and counts
};

struct NeedDecision {
  std::string need_code;
  std::string organisation;  // empty: nobody can take it (unroutable)
  // In network-file order, without the chosen one. Unroutable: every organisation of the network.
  // Routable: every other organisation when the request asked to explain, else empty.
  std::vector<PassedOver> passed_over;

  bool routable() const { return !organisation.empty(); }
};

// The forward-target rule: whether `target` may take a need that is handed to it by a person's
// choice rather than by Decide. The owner of an assignment forwards it (the inbox checks the target
// before it asks, the router again before it makes the offer: an inbox's word is not enough to
// reach another organisation), or an operator reassigns a need from the unroutable queue.
//
// Checked in this order (the first rule the target fails is the refusal):
//   1. is an organisation of the network;
//   2. is not the organisation that hands the need on (a forward only);
//   3. serves the need and 4. covers the client's region (a forward only: an operator reassigns a
//      need that the network's rules left unroutable, on an agreement made outside them);
//   5. is named in the client's sharing permission. Never outside it, whoever chooses.
struct Handover {
  std::string target;
  // The organisation that holds the need and hands it on; empty for an operator's reassignment.
  std::string from = {};
  std::string need_code = {};
  std::string region = {};
  std::vector<std::string> sharing_organisations = {};  // the client's sharing permission
  bool by_operator = false;  // an operator's reassignment: rules 2 to 4 do not apply
};

enum class Refusal { kNone, kNotInNetwork, kSameOrganisation, kNeed, kRegion, kSharing };

struct HandoverCheck {
  Refusal refusal = Refusal::kNone;
  // Why not, in the words of the policy's own reasons ("does not serve need 'debt'"); empty when
  // allowed. No personal data: only codes and ids.
  std::string reason = {};

  bool ok() const { return refusal == Refusal::kNone; }
};

HandoverCheck CheckHandover(const Network& network, const Handover& handover);

class Policy {
 public:
  explicit Policy(Network network);

  // One decision per need, in the order of request.need_codes.
  std::vector<NeedDecision> Decide(const RouteRequest& request) const;

  const Network& network() const { return network_; }

 private:
  // An organisation that serves a need in a region, with its place in the ranking by preference.
  struct Candidate {
    std::uint32_t org;        // index into network_.organisations
    std::uint32_t tier;       // equal preference, equal tier; lower is preferred
    std::uint32_t regional;   // place in the need's preference for the region (or kUnlisted)
    std::uint32_t need_wide;  // place in the need's preference for every region (or kUnlisted)
  };
  struct NeedInfo {
    bool contact = true;
    std::vector<std::vector<Candidate>> by_region;  // indexed like network_.regions
    std::vector<bool> served_by;                    // indexed like network_.organisations
  };
  // What a decision reads of every organisation it looks at, kept dense so that a decision in a
  // large network touches few cache lines.
  struct Traits {
    std::int32_t capacity;  // -1: unlimited
    bool interpreter;
  };
  // Where an organisation stands in the candidates of one need and region.
  struct Slot {
    std::uint32_t need;
    std::uint32_t region;
    std::uint32_t position;  // in needs_[need].by_region[region]
  };
  class Decision;  // the state of one Decide call

  // The position of `org` among the candidates for the need in the region, or -1.
  std::int32_t CandidateAt(std::uint32_t org, std::uint32_t need, std::uint32_t region) const;

  Network network_;
  absl::flat_hash_map<std::string, std::uint32_t> need_index_;
  absl::flat_hash_map<std::string, std::uint32_t> region_index_;
  absl::flat_hash_map<std::string, std::uint32_t> org_index_;
  absl::flat_hash_map<std::string, std::uint32_t> language_index_;
  std::vector<NeedInfo> needs_;            // indexed like network_.needs
  std::vector<Traits> traits_;             // [organisation]
  std::size_t language_words_ = 1;         // 64 languages to a word
  std::vector<std::uint64_t> speaks_;      // [organisation * language_words_ + word]: bits
  std::vector<std::uint32_t> slot_begin_;  // [organisation]: its first slot; one extra at end
  std::vector<Slot> slots_;                // the needs times regions of each organisation
};

}  // namespace schakel::routing
