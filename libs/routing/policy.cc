#include "libs/routing/policy.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"

namespace schakel::routing {
namespace {

constexpr std::uint32_t kUnlisted = std::numeric_limits<std::uint32_t>::max();
constexpr std::int32_t kNotCandidate = -1;

// The eligibility rules, in the order they are checked and reported.
enum class Failure { kNone, kNeed, kRegion, kLanguage, kCapacity, kExcluded, kSharing };

// Ids of the network named in `ids`, as sorted organisation indices; unknown ids name nobody.
std::vector<std::uint32_t> OrganisationIndices(
    const std::vector<std::string>& ids,
    const absl::flat_hash_map<std::string, std::uint32_t>& index) {
  std::vector<std::uint32_t> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    if (const auto it = index.find(id); it != index.end()) out.push_back(it->second);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool Contains(const std::vector<std::uint32_t>& sorted, std::uint32_t value) {
  return std::binary_search(sorted.begin(), sorted.end(), value);
}

// The reasons Decide and CheckHandover share, so that an operator reads the same words for the same
// rule wherever it was applied.
std::string NotServed(const std::string& need_code) {
  return absl::StrCat("does not serve need '", need_code, "'");
}
std::string NotCovered(const std::string& region) {
  return absl::StrCat("does not cover region '", region, "'");
}
constexpr char kNotPermitted[] = "not covered by the client's sharing permission";

}  // namespace

HandoverCheck CheckHandover(const Network& network, const Handover& handover) {
  const Organisation* target = network.FindOrganisation(handover.target);
  if (target == nullptr) return {Refusal::kNotInNetwork, "is not part of the network"};
  if (!handover.by_operator) {
    if (handover.target == handover.from) {
      return {Refusal::kSameOrganisation, "already had this assignment"};
    }
    if (!target->Serves(handover.need_code)) {
      return {Refusal::kNeed, NotServed(handover.need_code)};
    }
    if (!target->Covers(handover.region)) return {Refusal::kRegion, NotCovered(handover.region)};
  }
  const std::vector<std::string>& allowed = handover.sharing_organisations;
  if (std::find(allowed.begin(), allowed.end(), target->id) == allowed.end()) {
    return {Refusal::kSharing, kNotPermitted};
  }
  return {};
}

Policy::Policy(Network network) : network_(std::move(network)) {
  const std::uint32_t org_count = static_cast<std::uint32_t>(network_.organisations.size());
  for (std::uint32_t i = 0; i < network_.needs.size(); ++i) {
    need_index_.emplace(network_.needs[i].id, i);
  }
  for (std::uint32_t i = 0; i < network_.regions.size(); ++i) {
    region_index_.emplace(network_.regions[i].id, i);
  }
  for (std::uint32_t i = 0; i < network_.languages.size(); ++i) {
    language_index_.emplace(network_.languages[i], i);
  }
  for (std::uint32_t i = 0; i < org_count; ++i) {
    org_index_.emplace(network_.organisations[i].id, i);  // a duplicate id: the first counts
  }

  // Places in the preference lists: [need][region or, at regions.size(), every region][org].
  const std::size_t every_region = network_.regions.size();
  std::vector<std::vector<absl::flat_hash_map<std::uint32_t, std::uint32_t>>> place(
      network_.needs.size(),
      std::vector<absl::flat_hash_map<std::uint32_t, std::uint32_t>>(every_region + 1));
  for (const Preference& pref : network_.preferences) {
    const auto need = need_index_.find(pref.need);
    if (need == need_index_.end()) continue;
    std::size_t region = every_region;
    if (!pref.region.empty()) {
      const auto it = region_index_.find(pref.region);
      if (it == region_index_.end()) continue;
      region = it->second;
    }
    auto& places = place[need->second][region];
    for (std::uint32_t i = 0; i < pref.order.size(); ++i) {
      if (const auto org = org_index_.find(pref.order[i]); org != org_index_.end()) {
        places.emplace(org->second, i);  // listed twice: the first place counts
      }
    }
  }
  const auto place_of = [&](std::uint32_t need, std::size_t region, std::uint32_t org) {
    const auto& places = place[need][region];
    const auto it = places.find(org);
    return it == places.end() ? kUnlisted : it->second;
  };

  needs_.resize(network_.needs.size());
  for (std::uint32_t n = 0; n < needs_.size(); ++n) {
    needs_[n].contact = network_.needs[n].contact;
    needs_[n].by_region.resize(network_.regions.size());
    needs_[n].served_by.assign(org_count, false);
  }
  language_words_ = std::max<std::size_t>(1, (network_.languages.size() + 63) / 64);
  speaks_.assign(org_count * language_words_, 0);
  traits_.reserve(org_count);
  for (const Organisation& org : network_.organisations) {
    traits_.push_back({.capacity = org.capacity.value_or(-1), .interpreter = org.interpreter});
  }
  for (std::uint32_t o = 0; o < org_count; ++o) {
    const Organisation& org = network_.organisations[o];
    if (org_index_.at(org.id) != o) continue;  // a duplicate id is never routed to
    for (const std::string& language : org.languages) {
      if (const auto it = language_index_.find(language); it != language_index_.end()) {
        speaks_[o * language_words_ + it->second / 64] |= std::uint64_t{1} << (it->second % 64);
      }
    }
    for (const std::string& need_id : org.needs) {
      const auto need = need_index_.find(need_id);
      if (need == need_index_.end()) continue;
      needs_[need->second].served_by[o] = true;
      for (const std::string& region_id : org.regions) {
        const auto region = region_index_.find(region_id);
        if (region == region_index_.end()) continue;
        needs_[need->second].by_region[region->second].push_back(
            {.org = o,
             .tier = 0,
             .regional = place_of(need->second, region->second, o),
             .need_wide = place_of(need->second, every_region, o)});
      }
    }
  }
  for (NeedInfo& need : needs_) {
    for (std::vector<Candidate>& candidates : need.by_region) {
      std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return std::tie(a.regional, a.need_wide, a.org) < std::tie(b.regional, b.need_wide, b.org);
      });
      candidates.erase(std::unique(candidates.begin(), candidates.end(),
                                   [](const Candidate& a, const Candidate& b) {
                                     return a.org == b.org;  // a need or region listed twice
                                   }),
                       candidates.end());
      for (std::size_t i = 1; i < candidates.size(); ++i) {
        const Candidate& before = candidates[i - 1];
        const bool same_place = before.regional == candidates[i].regional &&
                                before.need_wide == candidates[i].need_wide;
        candidates[i].tier = before.tier + (same_place ? 0 : 1);
      }
    }
  }
  std::vector<std::vector<Slot>> slots(org_count);
  for (std::uint32_t n = 0; n < needs_.size(); ++n) {
    for (std::uint32_t r = 0; r < needs_[n].by_region.size(); ++r) {
      const std::vector<Candidate>& candidates = needs_[n].by_region[r];
      for (std::uint32_t i = 0; i < candidates.size(); ++i) {
        slots[candidates[i].org].push_back({.need = n, .region = r, .position = i});
      }
    }
  }
  slot_begin_.reserve(org_count + 1);
  for (const std::vector<Slot>& of_org : slots) {
    slot_begin_.push_back(static_cast<std::uint32_t>(slots_.size()));
    slots_.insert(slots_.end(), of_org.begin(), of_org.end());
  }
  slot_begin_.push_back(static_cast<std::uint32_t>(slots_.size()));
}

std::int32_t Policy::CandidateAt(std::uint32_t org, std::uint32_t need,
                                 std::uint32_t region) const {
  for (std::uint32_t i = slot_begin_[org]; i < slot_begin_[org + 1]; ++i) {
    const Slot& slot = slots_[i];
    if (slot.need == need && slot.region == region) return static_cast<std::int32_t>(slot.position);
  }
  return kNotCandidate;
}

// One Decide call: what it learnt about the request once, and the assignments it already gave.
class Policy::Decision {
 public:
  Decision(const Policy& policy, const RouteRequest& request)
      : policy_(policy),
        request_(request),
        sharing_(OrganisationIndices(request.sharing_organisations, policy.org_index_)),
        excluded_(OrganisationIndices(request.excluded_organisations, policy.org_index_)),
        languages_(policy.language_words_, 0) {
    if (const auto it = policy.region_index_.find(request.region);
        it != policy.region_index_.end()) {
      region_ = it->second;
    }
    for (const std::string& language : request.languages) {
      // A language the network does not know is spoken by nobody but an interpreter.
      if (const auto it = policy.language_index_.find(language);
          it != policy.language_index_.end()) {
        languages_[it->second / 64] |= std::uint64_t{1} << (it->second % 64);
      }
    }
  }

  NeedDecision DecideNeed(const std::string& need_code) {
    NeedDecision decision{.need_code = need_code, .organisation = {}, .passed_over = {}};
    const auto need = policy_.need_index_.find(need_code);
    const NeedInfo* info =
        need == policy_.need_index_.end() ? nullptr : &policy_.needs_[need->second];
    static const std::vector<Candidate> kNobody;
    const std::vector<Candidate>& candidates =
        info != nullptr && region_.has_value() ? info->by_region[*region_] : kNobody;

    // The best eligible candidate: the first preference tier with an eligible organisation, in it
    // the fewest open assignments, then file order (the order of the candidates within a tier).
    // Only organisations in the sharing permission can be eligible: when the permission is the
    // shorter list (as it usually is in a large network), look up each of them instead of walking
    // the candidates, so the work does not grow with the network.
    std::int32_t best = kNotCandidate;
    int best_load = 0;
    if (sharing_.size() < candidates.size()) {
      const std::uint32_t need_index = need->second;
      for (std::uint32_t org : sharing_) {
        const std::int32_t at = policy_.CandidateAt(org, need_index, *region_);
        if (at == kNotCandidate) continue;
        const Candidate& candidate = candidates[static_cast<std::size_t>(at)];
        if (best != kNotCandidate && candidate.tier > candidates[best].tier) continue;
        int load = 0;
        if (Check(candidate.org, info->contact, &load) != Failure::kNone) continue;
        if (best == kNotCandidate ||
            std::tie(candidate.tier, load, at) < std::tie(candidates[best].tier, best_load, best)) {
          best = at;
          best_load = load;
        }
      }
    } else {
      for (std::size_t i = 0; i < candidates.size(); ++i) {
        const Candidate& candidate = candidates[i];
        if (best != kNotCandidate && candidate.tier != candidates[best].tier) break;
        int load = 0;
        if (Check(candidate.org, info->contact, &load) != Failure::kNone) continue;
        if (best == kNotCandidate || load < best_load) {
          best = static_cast<std::int32_t>(i);
          best_load = load;
        }
        if (best_load == 0) break;  // nobody later in the tier can beat it
      }
    }

    if (best != kNotCandidate) {
      decision.organisation = policy_.network_.organisations[candidates[best].org].id;
    }
    if (best == kNotCandidate || request_.explain) {
      Explain(need_code, info, candidates, best, best_load, &decision);
    }
    if (best != kNotCandidate) Give(candidates[best].org);
    return decision;
  }

 private:
  int Load(std::uint32_t org) const {
    int load = 0;
    if (request_.open_assignments) {
      load = std::max(0, request_.open_assignments(policy_.network_.organisations[org].id));
    }
    for (const auto& [given_to, count] : given_) {
      if (given_to == org) load += count;
    }
    return load;
  }

  void Give(std::uint32_t org) {
    for (auto& [given_to, count] : given_) {
      if (given_to == org) {
        ++count;
        return;
      }
    }
    given_.emplace_back(org, 1);
  }

  bool Speaks(std::uint32_t org) const {
    const std::uint64_t* spoken = &policy_.speaks_[org * policy_.language_words_];
    for (std::size_t i = 0; i < languages_.size(); ++i) {
      if ((spoken[i] & languages_[i]) != 0) return true;
    }
    return false;
  }

  // The first rule a candidate (it serves the need in the region) fails; its load on the way.
  Failure Check(std::uint32_t org, bool contact, int* load) const {
    const Traits& traits = policy_.traits_[org];
    if (contact && !request_.languages.empty() && !traits.interpreter && !Speaks(org)) {
      return Failure::kLanguage;
    }
    *load = Load(org);
    if (traits.capacity >= 0 && *load >= traits.capacity) {
      return Failure::kCapacity;
    }
    if (Contains(excluded_, org)) return Failure::kExcluded;
    // Never route outside the client's sharing permission, whatever else holds.
    if (!Contains(sharing_, org)) return Failure::kSharing;
    return Failure::kNone;
  }

  std::string Reason(Failure failure, std::uint32_t org, const std::string& need_code,
                     int load) const {
    switch (failure) {
      case Failure::kNeed:
        return NotServed(need_code);
      case Failure::kRegion:
        return NotCovered(request_.region);
      case Failure::kLanguage:
        return "speaks none of the client's languages";
      case Failure::kCapacity:
        return absl::StrCat("at capacity (", load, " of ",
                            *policy_.network_.organisations[org].capacity, " open)");
      case Failure::kExcluded:
        return "already tried for this need";
      case Failure::kSharing:
        return kNotPermitted;
      case Failure::kNone:
        break;
    }
    return "eligible";
  }

  // Every organisation but the chosen one, in file order, with the first rule it fails or, when
  // eligible, what put the chosen one before it.
  void Explain(const std::string& need_code, const NeedInfo* info,
               const std::vector<Candidate>& candidates, std::int32_t best, int best_load,
               NeedDecision* decision) const {
    const std::vector<Organisation>& orgs = policy_.network_.organisations;
    std::vector<std::int32_t> slot(orgs.size(), kNotCandidate);
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      slot[candidates[i].org] = static_cast<std::int32_t>(i);
    }
    const Candidate* chosen = best == kNotCandidate ? nullptr : &candidates[best];
    decision->passed_over.reserve(orgs.size());
    // Most organisations of a large network fail one of the first two rules: make those reasons
    // once.
    const std::string not_served = Reason(Failure::kNeed, 0, need_code, 0);
    const std::string not_covered = Reason(Failure::kRegion, 0, need_code, 0);
    for (std::uint32_t o = 0; o < orgs.size(); ++o) {
      if (chosen != nullptr && o == chosen->org) continue;
      std::string reason;
      Failure failure = Failure::kNone;
      if (slot[o] == kNotCandidate) {
        reason = info != nullptr && info->served_by[o] ? not_covered : not_served;
      } else if (int load = 0; (failure = Check(o, info->contact, &load)) != Failure::kNone) {
        reason = Reason(failure, o, need_code, load);
      } else {
        // Eligible, so a chosen one exists and ranks before it.
        const Candidate& mine = candidates[static_cast<std::size_t>(slot[o])];
        const std::string& winner = orgs[chosen->org].id;
        if (mine.tier != chosen->tier) {
          reason = absl::StrCat("eligible, but the network prefers '", winner, "' for need '",
                                need_code, "'");
          if (mine.regional != chosen->regional) {
            absl::StrAppend(&reason, " in region '", request_.region, "'");
          }
        } else if (load != best_load) {
          reason = absl::StrCat("eligible, but '", winner, "' has fewer open assignments (",
                                best_load, " against ", load, ")");
        } else {
          reason = absl::StrCat("eligible, but '", winner, "' comes first in the network");
        }
      }
      decision->passed_over.push_back({orgs[o].id, std::move(reason)});
    }
  }

  const Policy& policy_;
  const RouteRequest& request_;
  std::optional<std::uint32_t> region_;
  std::vector<std::uint32_t> sharing_;    // sorted organisation indices
  std::vector<std::uint32_t> excluded_;   // sorted organisation indices
  std::vector<std::uint64_t> languages_;  // the client's, as bits like Policy::speaks_
  // Assignments this decision gave for earlier needs: they count as open for the later ones.
  std::vector<std::pair<std::uint32_t, int>> given_;
};

std::vector<NeedDecision> Policy::Decide(const RouteRequest& request) const {
  Decision decision(*this, request);
  std::vector<NeedDecision> decisions;
  decisions.reserve(request.need_codes.size());
  for (const std::string& need : request.need_codes) decisions.push_back(decision.DecideNeed(need));
  return decisions;
}

}  // namespace schakel::routing
