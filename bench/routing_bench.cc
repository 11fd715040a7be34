// How long one routing decision takes as the network grows: synthetic networks of 10, 1,000 and
// 10,000 organisations with 100 kinds of need and 20 regions, each organisation serving 3 needs in
// 3 regions. One iteration decides a referral with 3 needs, with the current open assignments of
// every organisation as input; referrals rotate over a fixed set so no single lucky case is timed.
//
//   build/bench/routing_bench                       all benchmarks
//   build/bench/routing_bench --benchmark_filter=Decide/10000
//
// Counters: unroutable_needs is the share of needs nobody could take (they always get every
// organisation's reason, like an explained need); reasons_per_need the passed-over organisations
// in the answer; candidates the mean number of organisations serving a need in a region (what
// the index leaves to look at).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "libs/routing/network.h"
#include "libs/routing/policy.h"

namespace schakel::routing {
namespace {

constexpr int kNeeds = 100;
constexpr int kRegions = 20;
constexpr int kNeedsPerOrganisation = 3;
constexpr int kRegionsPerOrganisation = 3;
constexpr int kReferrals = 256;
const std::vector<std::string> kLanguages = {"nl", "en", "de", "fr", "pl", "ro",
                                             "bg", "hu", "es", "pt", "th", "ar"};

// A small deterministic generator (SplitMix64): the same networks on every machine and library.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t Next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int Below(int n) { return static_cast<int>(Next() % static_cast<std::uint64_t>(n)); }
  bool OneIn(int n) { return Below(n) == 0; }

  // `count` distinct values below `n`.
  std::vector<int> Distinct(int count, int n) {
    std::vector<int> out;
    while (static_cast<int>(out.size()) < count) {
      const int v = Below(n);
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
    return out;
  }

 private:
  std::uint64_t state_;
};

std::string NeedId(int i) { return absl::StrCat("need-", i); }
std::string RegionId(int i) { return absl::StrCat("region-", i); }
std::string OrganisationId(int i) { return absl::StrCat("org-", i); }

Network MakeNetwork(int organisations, Random& random) {
  Network net;
  for (int i = 0; i < kNeeds; ++i) net.needs.push_back({.id = NeedId(i), .name = NeedId(i)});
  net.needs[7].contact = false;
  for (int i = 0; i < kRegions; ++i) net.regions.push_back({RegionId(i), RegionId(i)});
  net.languages = kLanguages;
  for (int i = 0; i < organisations; ++i) {
    Organisation org;
    org.id = OrganisationId(i);
    org.name = org.id;
    for (int n : random.Distinct(kNeedsPerOrganisation, kNeeds)) org.needs.push_back(NeedId(n));
    for (int r : random.Distinct(kRegionsPerOrganisation, kRegions)) {
      org.regions.push_back(RegionId(r));
    }
    org.languages.push_back("nl");
    for (int l : random.Distinct(1 + random.Below(2), static_cast<int>(kLanguages.size()))) {
      if (kLanguages[static_cast<std::size_t>(l)] != "nl") {
        org.languages.push_back(kLanguages[static_cast<std::size_t>(l)]);
      }
    }
    if (!random.OneIn(4)) org.capacity = 5 + random.Below(46);
    org.interpreter = random.OneIn(10);
    net.organisations.push_back(std::move(org));
  }
  // Preferences: a general one for a third of the needs, a regional one for some need and region
  // pairs, each naming organisations that really serve the need (and cover the region).
  for (int n = 0; n < kNeeds; ++n) {
    const std::string need = NeedId(n);
    for (int r = -1; r < kRegions; ++r) {
      const bool wanted = r < 0 ? n % 3 == 0 : (n * kRegions + r) % 17 == 0;
      if (!wanted) continue;
      Preference pref{.need = need, .region = r < 0 ? "" : RegionId(r), .order = {}};
      for (const Organisation& org : net.organisations) {
        if (org.Serves(need) && (r < 0 || org.Covers(pref.region)) && random.OneIn(3)) {
          pref.order.push_back(org.id);
          if (pref.order.size() == 3) break;
        }
      }
      if (!pref.order.empty()) net.preferences.push_back(std::move(pref));
    }
  }
  return net;
}

// Referrals the way partners send them: needs that somebody serves in the client's region, the
// client's languages (mostly Dutch, else another language and often English), and a sharing
// permission naming a few of the organisations for those needs and a few others.
RouteRequest MakeReferral(
    const Network& net,
    const std::map<std::pair<std::string, std::string>, std::vector<const Organisation*>>& serving,
    Random& random) {
  const auto pick = [&](const std::vector<const Organisation*>& orgs) {
    return orgs[static_cast<std::size_t>(random.Below(static_cast<int>(orgs.size())))];
  };
  RouteRequest request;
  std::vector<std::string> served;
  while (served.empty()) {
    request.region = RegionId(random.Below(kRegions));
    for (int n = 0; n < kNeeds; ++n) {
      if (serving.count({NeedId(n), request.region}) != 0) served.push_back(NeedId(n));
    }
  }
  // With 10 organisations a region may have fewer than 3 needs: then one comes twice.
  const int distinct = std::min(3, static_cast<int>(served.size()));
  for (int i : random.Distinct(distinct, static_cast<int>(served.size()))) {
    request.need_codes.push_back(served[static_cast<std::size_t>(i)]);
  }
  while (request.need_codes.size() < 3) request.need_codes.push_back(request.need_codes[0]);
  for (const std::string& need : request.need_codes) {
    const std::vector<const Organisation*>& candidates = serving.at({need, request.region});
    for (int i = 0; i < 4; ++i) request.sharing_organisations.push_back(pick(candidates)->id);
  }
  for (int i = 0; i < 3; ++i) {
    request.sharing_organisations.push_back(
        net.organisations[static_cast<std::size_t>(
                              random.Below(static_cast<int>(net.organisations.size())))]
            .id);
  }
  if (random.Below(10) < 7) {
    request.languages = {"nl"};
  } else {
    request.languages = {
        pick(serving.at({request.need_codes[0], request.region}))->languages.back()};
    if (random.OneIn(2)) request.languages.push_back("en");
  }
  return request;
}

struct Fixture {
  std::unique_ptr<Policy> policy;
  // Current open assignments, as the router would keep them: below capacity mostly, at it
  // sometimes.
  absl::flat_hash_map<std::string, int> open;
  OpenAssignments open_assignments;
  std::vector<RouteRequest> routable;    // every need finds an organisation
  std::vector<RouteRequest> unroutable;  // at least one need does not
  double candidates = 0;
};

const Fixture& FixtureFor(int organisations) {
  static std::map<int, std::unique_ptr<Fixture>> fixtures;
  std::unique_ptr<Fixture>& fixture = fixtures[organisations];
  if (fixture != nullptr) return *fixture;
  fixture = std::make_unique<Fixture>();
  Random random(20240611 + static_cast<std::uint64_t>(organisations));
  Network net = MakeNetwork(organisations, random);
  for (const Organisation& org : net.organisations) {
    fixture->open[org.id] = random.Below(org.capacity.value_or(30) + 1);
  }
  fixture->open_assignments = [open = &fixture->open](std::string_view org) {
    // This abseil's string_view is not std::string_view.
    const auto it = open->find(absl::string_view(org.data(), org.size()));
    return it == open->end() ? 0 : it->second;
  };
  std::map<std::pair<std::string, std::string>, std::vector<const Organisation*>> serving;
  for (const Organisation& org : net.organisations) {
    for (const std::string& need : org.needs) {
      for (const std::string& region : org.regions) serving[{need, region}].push_back(&org);
    }
  }
  std::vector<RouteRequest> referrals;
  for (int i = 0; i < 50 * kReferrals; ++i) referrals.push_back(MakeReferral(net, serving, random));
  const double pairs = static_cast<double>(kNeeds) * kRegions;
  fixture->candidates =
      static_cast<double>(organisations) * kNeedsPerOrganisation * kRegionsPerOrganisation / pairs;
  fixture->policy = std::make_unique<Policy>(std::move(net));
  // Sort the referrals into those the network can take whole and those it cannot.
  for (RouteRequest& r : referrals) {
    r.open_assignments = fixture->open_assignments;
    const std::vector<NeedDecision> d = fixture->policy->Decide(r);
    const bool whole = std::all_of(d.begin(), d.end(), [](const auto& n) { return n.routable(); });
    std::vector<RouteRequest>& into = whole ? fixture->routable : fixture->unroutable;
    if (into.size() < kReferrals) into.push_back(std::move(r));
  }
  return *fixture;
}

void Decide(benchmark::State& state, bool explain, bool whole) {
  const Fixture& fixture = FixtureFor(static_cast<int>(state.range(0)));
  std::vector<RouteRequest> referrals = whole ? fixture.routable : fixture.unroutable;
  if (referrals.empty()) {
    state.SkipWithError("no such referrals generated");
    return;
  }
  for (RouteRequest& r : referrals) r.explain = explain;
  std::size_t next = 0;
  std::int64_t needs = 0;
  std::int64_t unroutable = 0;
  std::int64_t reasons = 0;
  for (auto _ : state) {
    std::vector<NeedDecision> decisions = fixture.policy->Decide(referrals[next]);
    for (const NeedDecision& d : decisions) {
      unroutable += d.routable() ? 0 : 1;
      reasons += static_cast<std::int64_t>(d.passed_over.size());
    }
    needs += static_cast<std::int64_t>(decisions.size());
    benchmark::DoNotOptimize(decisions);
    next = (next + 1) % referrals.size();
  }
  const double per_needs = needs == 0 ? 1.0 : static_cast<double>(needs);
  state.counters["unroutable_needs"] = static_cast<double>(unroutable) / per_needs;
  state.counters["reasons_per_need"] = static_cast<double>(reasons) / per_needs;
  state.counters["candidates"] = fixture.candidates;
}

// A referral whose 3 needs can all be routed: what the router does for almost every referral.
void BM_Decide(benchmark::State& state) { Decide(state, /*explain=*/false, /*whole=*/true); }
// The same with every organisation's reason (ExplainRoute).
void BM_DecideExplain(benchmark::State& state) { Decide(state, /*explain=*/true, /*whole=*/true); }
// A referral with at least one need nobody may take: that need gets every organisation's reason.
void BM_DecideUnroutable(benchmark::State& state) {
  Decide(state, /*explain=*/false, /*whole=*/false);
}

// Building the index, as on start and on every reload of the network file.
void BM_BuildPolicy(benchmark::State& state) {
  Random random(7);
  const Network net = MakeNetwork(static_cast<int>(state.range(0)), random);
  for (auto _ : state) {
    Policy policy(net);
    benchmark::DoNotOptimize(policy);
  }
}

BENCHMARK(BM_Decide)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_DecideExplain)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_DecideUnroutable)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_BuildPolicy)->Arg(10)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace schakel::routing

BENCHMARK_MAIN();
