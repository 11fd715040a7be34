// The routing policy: given the network and a referral, which organisation is offered each need,
// and why every other organisation was passed over. Pure and deterministic: the same input gives
// the same answer.
//
// Eligible means: serves the need, covers the client's region, and is named in the client's sharing
// permission. Among the eligible, the first in the network file wins. (Capacity, languages,
// preferences and load come with the routing issue; they slot in as further rules and a ranking
// here.)
#pragma once

#include <string>
#include <vector>

#include "libs/routing/network.h"

namespace schakel::routing {

struct RouteRequest {
  std::string region;
  std::vector<std::string> need_codes;             // in the order of the referral
  std::vector<std::string> sharing_organisations;  // the client's sharing permission
};

struct PassedOver {
  std::string organisation;
  std::string reason;  // no personal data: only codes and ids
};

struct NeedDecision {
  std::string need_code;
  std::string organisation;  // empty: nobody can take it (unroutable)
  std::vector<PassedOver> passed_over;

  bool routable() const { return !organisation.empty(); }
};

class Policy {
 public:
  explicit Policy(Network network) : network_(std::move(network)) {}

  // One decision per need, in the order of request.need_codes.
  std::vector<NeedDecision> Decide(const RouteRequest& request) const;

  const Network& network() const { return network_; }

 private:
  NeedDecision DecideNeed(const std::string& need, const RouteRequest& request) const;

  Network network_;
};

}  // namespace schakel::routing
