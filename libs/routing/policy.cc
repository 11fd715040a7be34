#include "libs/routing/policy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace schakel::routing {

std::vector<NeedDecision> Policy::Decide(const RouteRequest& request) const {
  std::vector<NeedDecision> decisions;
  decisions.reserve(request.need_codes.size());
  for (const std::string& need : request.need_codes) decisions.push_back(DecideNeed(need, request));
  return decisions;
}

NeedDecision Policy::DecideNeed(const std::string& need, const RouteRequest& request) const {
  NeedDecision decision{.need_code = need, .organisation = {}, .passed_over = {}};
  for (const Organisation& org : network_.organisations) {
    std::string reason;
    if (!org.Serves(need)) {
      reason = absl::StrCat("does not serve need '", need, "'");
    } else if (!org.Covers(request.region)) {
      reason = absl::StrCat("does not cover region '", request.region, "'");
    } else if (std::find(request.sharing_organisations.begin(), request.sharing_organisations.end(),
                         org.id) == request.sharing_organisations.end()) {
      // Never route outside the client's sharing permission, whatever else holds.
      reason = "not covered by the client's sharing permission";
    } else if (!decision.routable()) {
      decision.organisation = org.id;
      continue;
    } else {
      reason =
          absl::StrCat("eligible, but '", decision.organisation, "' comes first in the network");
    }
    decision.passed_over.push_back({org.id, std::move(reason)});
  }
  return decision;
}

}  // namespace schakel::routing
