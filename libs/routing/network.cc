#include "libs/routing/network.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace schakel::routing {
namespace {

// Ids end up in topic names and URLs: keep them to lowercase letters, digits and dashes.
bool IsValidId(const std::string& id) {
  static const std::regex kId("^[a-z0-9][a-z0-9-]{0,62}$");
  return std::regex_match(id, kId);
}

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", std::string(key));
}

std::string Index(const std::string& path, std::size_t i) {
  return absl::StrCat(path, "[", i, "]");
}

// Collects the first problem with its place in the file.
class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  absl::Status Error(const YAML::Node& node, const std::string& path,
                     const std::string& what) const {
    std::string where(source_);
    if (node.IsDefined() && node.Mark().line >= 0) {
      absl::StrAppend(&where, ":", node.Mark().line + 1, ":", node.Mark().column + 1);
    }
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", path, ": ", what));
  }

  absl::StatusOr<std::string> RequiredId(const YAML::Node& parent, const std::string& path) const {
    const YAML::Node node = parent["id"];
    if (!node || !node.IsScalar()) return Error(parent, path, "missing 'id'");
    std::string id = node.as<std::string>();
    if (!IsValidId(id)) {
      return Error(
          node, path + ".id",
          "'" + id + "' is not a valid id (lowercase letters, digits and '-', at most 63)");
    }
    return id;
  }

  // The plain value under `key` of a mapping: none when absent, or an error when it is required.
  absl::StatusOr<std::optional<std::string>> Scalar(const YAML::Node& parent, const char* key,
                                                    const std::string& path, bool required) const {
    const YAML::Node node = parent[key];
    if (!node) {
      if (required) return Error(parent, path, absl::StrCat("missing '", key, "'"));
      return std::optional<std::string>();
    }
    if (!node.IsScalar()) return Error(node, Join(path, key), "must be a plain value");
    return std::optional<std::string>(node.as<std::string>());
  }

  absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& parent,
                                                      const std::string& key,
                                                      const std::string& path) const {
    std::vector<std::string> out;
    const YAML::Node node = parent[key];
    if (!node) return out;
    if (!node.IsSequence()) return Error(node, Join(path, key), "must be a list");
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar()) {
        return Error(node[i], Index(Join(path, key), i), "must be a plain value");
      }
      out.push_back(node[i].as<std::string>());
    }
    return out;
  }

  absl::StatusOr<bool> Bool(const YAML::Node& node, const std::string& path) const {
    if (node.IsScalar()) {
      const std::string text = node.as<std::string>();
      if (text == "true") return true;
      if (text == "false") return false;
    }
    return Error(node, path, "must be true or false");
  }

  absl::StatusOr<int> Int(const YAML::Node& node, const std::string& path, int min, int max) const {
    int value = 0;
    if (node.IsScalar()) {
      const std::string text = node.as<std::string>();
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec == std::errc() && end == text.data() + text.size() && value >= min && value <= max) {
        return value;
      }
    }
    return Error(node, path, absl::StrCat("must be a whole number from ", min, " to ", max));
  }

  // Refuses keys the file format does not know: a misspelt key must not be silently ignored.
  absl::Status KnownKeys(const YAML::Node& map, const std::string& path,
                         std::initializer_list<std::string_view> known) const {
    for (const auto& entry : map) {
      const std::string key = entry.first.IsScalar() ? entry.first.as<std::string>() : "?";
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string expected;
        for (std::string_view k : known) {
          absl::StrAppend(&expected, expected.empty() ? "" : ", ", std::string(k));
        }
        return Error(entry.first, Join(path, key),
                     absl::StrCat("unknown key '", key, "' (known here: ", expected, ")"));
      }
    }
    return absl::OkStatus();
  }

 private:
  std::string_view source_;
};

// Everything ParseNetwork needs to check references between sections.
struct OrganisationIndex {
  std::map<std::string, std::size_t, std::less<>> by_id;

  const Organisation* Find(const Network& net, std::string_view id) const {
    const auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : &net.organisations[it->second];
  }
};

absl::Status ParseSla(const Parser& p, const YAML::Node& node, Sla* sla) {
  if (!node.IsMap()) return p.Error(node, "sla", "must be a mapping like {urgent: 4h, normal: 3d}");
  if (absl::Status s = p.KnownKeys(node, "sla", {"urgent", "normal"}); !s.ok()) return s;
  struct Field {
    const char* key;
    std::chrono::seconds* length;
    bool* working_days;
  };
  for (const Field& field : {Field{"urgent", &sla->urgent, &sla->urgent_in_working_days},
                             Field{"normal", &sla->normal, &sla->normal_in_working_days}}) {
    const YAML::Node value = node[field.key];
    if (!value) continue;
    const std::string path = absl::StrCat("sla.", field.key);
    if (!value.IsScalar())
      return p.Error(value, path, "must be a duration like 30m, 4h, 3d or 3wd");
    std::string text = value.as<std::string>();
    // "3wd": three working days; the number is checked like "3d".
    *field.working_days = text.size() > 2 && text.substr(text.size() - 2) == "wd";
    if (*field.working_days) text.erase(text.size() - 2, 1);
    absl::StatusOr<std::chrono::seconds> duration = ParseDuration(text);
    if (!duration.ok()) {
      return p.Error(value, path,
                     absl::StrCat("'", value.as<std::string>(),
                                  "' is not a duration (a whole number and m, h, d or wd, e.g. "
                                  "30m, 4h, 3d, 3wd)"));
    }
    *field.length = *duration;
  }
  return absl::OkStatus();
}

absl::Status ParsePreferences(const Parser& p, const YAML::Node& list,
                              const OrganisationIndex& orgs, Network* net) {
  if (!list.IsSequence()) return p.Error(list, "preferences", "must be a list");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = Index("preferences", i);
    const YAML::Node node = list[i];
    if (!node.IsMap()) return p.Error(node, path, "must be a mapping with need, region and order");
    if (absl::Status s = p.KnownKeys(node, path, {"need", "region", "order"}); !s.ok()) return s;
    Preference pref;
    absl::StatusOr<std::optional<std::string>> need = p.Scalar(node, "need", path, true);
    if (!need.ok()) return need.status();
    pref.need = **need;
    if (!net->HasNeed(pref.need)) {
      return p.Error(node["need"], path + ".need", "unknown need '" + pref.need + "'");
    }
    absl::StatusOr<std::optional<std::string>> region = p.Scalar(node, "region", path, false);
    if (!region.ok()) return region.status();
    pref.region = region->value_or("");
    if (region->has_value() && !net->HasRegion(pref.region)) {
      return p.Error(node["region"], path + ".region", "unknown region '" + pref.region + "'");
    }
    for (std::size_t j = 0; j < i; ++j) {
      const Preference& earlier = net->preferences[j];
      if (earlier.need == pref.need && earlier.region == pref.region) {
        return p.Error(node, path,
                       absl::StrCat("a second preference for need '", pref.need, "' in ",
                                    pref.region.empty() ? std::string("every region")
                                                        : "region '" + pref.region + "'",
                                    " (the first is preferences[", j, "])"));
      }
    }
    if (!node["order"]) return p.Error(node, path, "missing 'order'");
    absl::StatusOr<std::vector<std::string>> order = p.StringList(node, "order", path);
    if (!order.ok()) return order.status();
    if (order->empty()) return p.Error(node["order"], path + ".order", "must be a non-empty list");
    for (std::size_t j = 0; j < order->size(); ++j) {
      const std::string& id = (*order)[j];
      const YAML::Node at = node["order"][j];
      const std::string at_path = Index(path + ".order", j);
      const Organisation* org = orgs.Find(*net, id);
      if (org == nullptr) return p.Error(at, at_path, "unknown organisation '" + id + "'");
      if (!org->Serves(pref.need)) {
        return p.Error(at, at_path, "'" + id + "' does not serve need '" + pref.need + "'");
      }
      if (!pref.region.empty() && !org->Covers(pref.region)) {
        return p.Error(at, at_path, "'" + id + "' does not cover region '" + pref.region + "'");
      }
      if (std::find(order->begin(), order->begin() + static_cast<std::ptrdiff_t>(j), id) !=
          order->begin() + static_cast<std::ptrdiff_t>(j)) {
        return p.Error(at, at_path, "'" + id + "' is listed twice");
      }
    }
    pref.order = std::move(*order);
    net->preferences.push_back(std::move(pref));
  }
  return absl::OkStatus();
}

// organisations[index].rules, once every organisation is known (a rule may name a later one).
// intake_limit: {per_second: 20, burst: 40}; burst defaults to one second's worth (at least 1).
absl::StatusOr<IntakeLimit> ParseIntakeLimit(const Parser& p, const YAML::Node& node,
                                             const std::string& path) {
  if (!node.IsMap()) {
    return p.Error(node, path, "must be a mapping like {per_second: 20, burst: 40}");
  }
  if (absl::Status s = p.KnownKeys(node, path, {"per_second", "burst"}); !s.ok()) return s;
  const YAML::Node per_second = node["per_second"];
  if (!per_second) return p.Error(node, path, "missing 'per_second'");
  constexpr double kMaxPerSecond = 1'000'000;
  IntakeLimit limit;
  bool valid = false;
  if (per_second.IsScalar()) {
    const std::string text = per_second.as<std::string>();
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), limit.per_second,
                                           std::chars_format::fixed);
    valid = ec == std::errc() && end == text.data() + text.size() && limit.per_second > 0 &&
            limit.per_second <= kMaxPerSecond;
  }
  if (!valid) {
    return p.Error(per_second, path + ".per_second",
                   "must be a number of referrals per second above 0 and at most 1000000 "
                   "(e.g. 20, or 0.5 for one every two seconds)");
  }
  if (const YAML::Node burst = node["burst"]) {
    absl::StatusOr<int> value = p.Int(burst, path + ".burst", 1, 1'000'000);
    if (!value.ok()) return value.status();
    limit.burst = *value;
  } else {
    limit.burst = std::max(1, static_cast<int>(std::ceil(limit.per_second)));
  }
  return limit;
}

absl::Status ParseRules(const Parser& p, const YAML::Node& list, const std::string& org_path,
                        const OrganisationIndex& orgs, const Network& net, Organisation* org) {
  const std::string rules_path = org_path + ".rules";
  if (!list.IsSequence()) return p.Error(list, rules_path, "must be a list");
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string path = Index(rules_path, i);
    const YAML::Node node = list[i];
    if (!node.IsMap()) {
      return p.Error(node, path,
                     "must be {forward: {need: ..., to: ...}} or "
                     "{decline_when_open_above: N, reason: ...}");
    }
    if (absl::Status s = p.KnownKeys(node, path, {"forward", "decline_when_open_above", "reason"});
        !s.ok()) {
      return s;
    }
    const YAML::Node forward = node["forward"];
    const YAML::Node decline = node["decline_when_open_above"];
    if (forward && decline) {
      return p.Error(node, path, "a rule is either forward or decline_when_open_above, not both");
    }
    if (forward) {
      const std::string fpath = path + ".forward";
      if (node["reason"]) {
        return p.Error(node["reason"], path + ".reason",
                       "only a decline_when_open_above rule has a reason");
      }
      if (!forward.IsMap()) return p.Error(forward, fpath, "must be a mapping with need and to");
      if (absl::Status s = p.KnownKeys(forward, fpath, {"need", "to"}); !s.ok()) return s;
      absl::StatusOr<std::optional<std::string>> need = p.Scalar(forward, "need", fpath, true);
      if (!need.ok()) return need.status();
      absl::StatusOr<std::optional<std::string>> to = p.Scalar(forward, "to", fpath, true);
      if (!to.ok()) return to.status();
      ForwardRule rule{.need = **need, .to = **to};
      const Organisation* target = orgs.Find(net, rule.to);
      if (!net.HasNeed(rule.need)) {
        return p.Error(forward["need"], fpath + ".need", "unknown need '" + rule.need + "'");
      }
      if (!org->Serves(rule.need)) {
        return p.Error(forward["need"], fpath + ".need",
                       "'" + org->id + "' does not serve need '" + rule.need +
                           "' itself, so the rule would never apply");
      }
      if (target == nullptr) {
        return p.Error(forward["to"], fpath + ".to", "unknown organisation '" + rule.to + "'");
      }
      if (rule.to == org->id) {
        return p.Error(forward["to"], fpath + ".to", "an organisation cannot forward to itself");
      }
      if (!target->Serves(rule.need)) {
        return p.Error(forward["to"], fpath + ".to",
                       "'" + rule.to + "' does not serve need '" + rule.need + "'");
      }
      for (const ForwardRule& earlier : org->forward_rules) {
        if (earlier.need == rule.need) {
          return p.Error(forward, fpath, "a second forward rule for need '" + rule.need + "'");
        }
      }
      org->forward_rules.push_back(std::move(rule));
    } else if (decline) {
      if (org->decline_rule.has_value()) {
        return p.Error(node, path, "a second decline_when_open_above rule");
      }
      absl::StatusOr<int> above = p.Int(decline, path + ".decline_when_open_above", 0, 1'000'000);
      if (!above.ok()) return above.status();
      absl::StatusOr<std::optional<std::string>> reason = p.Scalar(node, "reason", path, false);
      if (!reason.ok()) return reason.status();
      if (reason->has_value() && (*reason)->empty()) {
        return p.Error(node["reason"], path + ".reason", "must not be empty");
      }
      org->decline_rule =
          DeclineRule{.open_above = *above, .reason = reason->value_or("at capacity")};
    } else {
      return p.Error(node, path, "a rule needs forward or decline_when_open_above");
    }
  }
  return absl::OkStatus();
}

// Forward rules must not send a need round in a circle (a -> b -> a) nor into an endless chain.
absl::Status CheckForwardCircles(const Parser& p, const YAML::Node& orgs_node,
                                 const OrganisationIndex& orgs, const Network& net) {
  for (std::size_t i = 0; i < net.organisations.size(); ++i) {
    const Organisation& start = net.organisations[i];
    for (std::size_t r = 0; r < start.forward_rules.size(); ++r) {
      const std::string& need = start.forward_rules[r].need;
      std::vector<std::string> chain = {start.id};
      const Organisation* at = orgs.Find(net, start.forward_rules[r].to);
      while (at != nullptr) {
        chain.push_back(at->id);
        if (at->id == start.id) {
          std::string circle;
          for (const std::string& id : chain) {
            absl::StrAppend(&circle, circle.empty() ? "" : " -> ", id);
          }
          // Point at the rule in the file: the r-th forward rule among this organisation's rules.
          const YAML::Node rules = orgs_node[i]["rules"];
          std::size_t k = 0;
          for (std::size_t seen = 0; k < rules.size(); ++k) {
            if (rules[k]["forward"] && seen++ == r) break;
          }
          return p.Error(rules[k]["forward"],
                         Index(Index("organisations", i) + ".rules", k) + ".forward",
                         "forward rules for need '" + need + "' go round in a circle: " + circle);
        }
        if (chain.size() > net.organisations.size()) break;  // a circle not through `start`
        const auto next = std::find_if(at->forward_rules.begin(), at->forward_rules.end(),
                                       [&](const ForwardRule& f) { return f.need == need; });
        at = next == at->forward_rules.end() ? nullptr : orgs.Find(net, next->to);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool Organisation::Serves(std::string_view need) const {
  return std::find(needs.begin(), needs.end(), need) != needs.end();
}

bool Organisation::Covers(std::string_view region) const {
  return std::find(regions.begin(), regions.end(), region) != regions.end();
}

bool Organisation::Speaks(std::string_view language) const {
  return std::find(languages.begin(), languages.end(), language) != languages.end();
}

const Organisation* Network::FindOrganisation(std::string_view id) const {
  for (const Organisation& org : organisations) {
    if (org.id == id) return &org;
  }
  return nullptr;
}

const NeedKind* Network::FindNeed(std::string_view id) const {
  for (const NeedKind& need : needs) {
    if (need.id == id) return &need;
  }
  return nullptr;
}

bool Network::HasNeed(std::string_view id) const { return FindNeed(id) != nullptr; }

bool Network::HasRegion(std::string_view id) const {
  return std::any_of(regions.begin(), regions.end(), [&](const Region& r) { return r.id == id; });
}

bool Network::HasLanguage(std::string_view code) const {
  return std::find(languages.begin(), languages.end(), code) != languages.end();
}

std::string InboxTopic(std::string_view organisation_id) {
  return absl::StrCat("schakel.inbox.", std::string(organisation_id));
}

std::string FromTopic(std::string_view organisation_id) {
  return absl::StrCat(std::string(kFromTopicPrefix), std::string(organisation_id));
}

std::string_view FromTopicOrganisation(std::string_view topic) {
  if (topic.size() <= kFromTopicPrefix.size() || topic.rfind(kFromTopicPrefix, 0) != 0) return {};
  return topic.substr(kFromTopicPrefix.size());
}

std::string DeadLetterTopic(std::string_view principal) {
  return absl::StrCat(std::string(kDeadLetterTopicPrefix), std::string(principal));
}

std::vector<std::string> DeadLetterPrincipals(const Network& network) {
  std::vector<std::string> principals = {"router", "intake", "keys", "ops"};
  for (const Organisation& org : network.organisations) principals.push_back("inbox-" + org.id);
  return principals;
}

std::string DeadLetterPrincipalOf(const Network& network, std::string_view topic) {
  for (const std::string& principal : DeadLetterPrincipals(network)) {
    if (topic == DeadLetterTopic(principal)) return principal;
  }
  return "";
}

std::string LoadTopic(std::string_view organisation_id) {
  return absl::StrCat(std::string(kLoadTopicPrefix), std::string(organisation_id));
}

std::vector<std::string> AllTopics(const Network& network) {
  std::vector<std::string> topics = {
      std::string(kSubmittedTopic),   std::string(kStatusTopic),
      std::string(kUnroutableTopic),  std::string(kCancellationsTopic),
      std::string(kRouterStateTopic), std::string(kReassignTopic),
      std::string(kErasuresTopic),    std::string(kKeyGrantsTopic)};
  for (const Organisation& org : network.organisations) topics.push_back(InboxTopic(org.id));
  for (const Organisation& org : network.organisations) topics.push_back(FromTopic(org.id));
  for (const Organisation& org : network.organisations) topics.push_back(LoadTopic(org.id));
  for (const std::string& principal : DeadLetterPrincipals(network)) {
    topics.push_back(DeadLetterTopic(principal));
  }
  for (const std::string& writer : AuditWriters(network)) topics.push_back(AuditTopic(writer));
  return topics;
}

std::string AuditTopic(std::string_view writer) {
  return absl::StrCat(std::string(kAuditTopicPrefix), std::string(writer));
}

std::vector<std::string> AuditWriters(const Network& network) {
  std::vector<std::string> writers = {"intake", "keys", "ops"};
  for (const Organisation& org : network.organisations) writers.push_back("inbox-" + org.id);
  return writers;
}

std::chrono::system_clock::time_point Sla::Deadline(
    bool urgent_offer, std::chrono::system_clock::time_point offered_at) const {
  const std::chrono::seconds length = urgent_offer ? urgent : normal;
  if (!(urgent_offer ? urgent_in_working_days : normal_in_working_days)) return offered_at + length;
  // Step a day at a time; only Monday to Friday count.
  auto at = offered_at;
  for (auto left = length.count() / (24 * 3600); left > 0;) {
    at += std::chrono::hours(24);
    const std::chrono::weekday day{std::chrono::floor<std::chrono::days>(at)};
    if (day != std::chrono::Saturday && day != std::chrono::Sunday) --left;
  }
  return at;
}

absl::StatusOr<std::chrono::seconds> ParseDuration(std::string_view text) {
  const auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", std::string(text),
        "' is not a duration (a whole number and m, h or d, e.g. 30m, 4h, 3d; a day is 24 hours)"));
  };
  if (text.size() < 2) return invalid();
  long long amount = 0;
  const char* end = text.data() + text.size() - 1;
  const auto [stop, ec] = std::from_chars(text.data(), end, amount);
  if (ec != std::errc() || stop != end || amount <= 0 || amount > 1'000'000) return invalid();
  switch (text.back()) {
    case 'm':
      return std::chrono::minutes(amount);
    case 'h':
      return std::chrono::hours(amount);
    case 'd':
      return std::chrono::hours(24 * amount);
    default:
      return invalid();
  }
}

absl::StatusOr<Network> ParseNetwork(std::string_view yaml_text, std::string_view source_name) {
  Parser p(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(source_name), ":", e.mark.line + 1,
                                                   ":", e.mark.column + 1,
                                                   ": not valid YAML: ", e.msg));
  }
  if (!root.IsMap())
    return p.Error(root, "(top)", "must be a mapping with needs, regions, organisations");

  Network net;
  try {
    if (const YAML::Node version = root["version"]; !version || version.as<std::string>() != "1") {
      return p.Error(version ? version : root, "version", "must be 1");
    }

    // Kinds of need and regions: id + human name.
    for (const char* section : {"needs", "regions"}) {
      const bool is_needs = std::string_view(section) == "needs";
      const YAML::Node list = root[section];
      if (!list || !list.IsSequence() || list.size() == 0) {
        return p.Error(list ? list : root, section, "must be a non-empty list");
      }
      std::set<std::string> seen;
      for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string path = Index(section, i);
        if (!list[i].IsMap()) return p.Error(list[i], path, "must be a mapping with id and name");
        absl::Status keys = is_needs ? p.KnownKeys(list[i], path, {"id", "name", "contact"})
                                     : p.KnownKeys(list[i], path, {"id", "name"});
        if (!keys.ok()) return keys;
        absl::StatusOr<std::string> id = p.RequiredId(list[i], path);
        if (!id.ok()) return id.status();
        if (!seen.insert(*id).second) return p.Error(list[i], path, "duplicate id '" + *id + "'");
        std::string name = list[i]["name"] ? list[i]["name"].as<std::string>() : *id;
        if (is_needs) {
          NeedKind need{.id = *id, .name = name};
          if (const YAML::Node contact = list[i]["contact"]) {
            absl::StatusOr<bool> value = p.Bool(contact, path + ".contact");
            if (!value.ok()) return value.status();
            need.contact = *value;
          }
          net.needs.push_back(std::move(need));
        } else {
          net.regions.push_back({*id, name});
        }
      }
    }

    absl::StatusOr<std::vector<std::string>> languages = p.StringList(root, "languages", "");
    if (!languages.ok()) return languages.status();
    net.languages = *languages;
    if (net.languages.empty()) return p.Error(root, "languages", "must be a non-empty list");
    static const std::regex kLanguage("^[a-z]{2}$");
    for (std::size_t i = 0; i < net.languages.size(); ++i) {
      if (!std::regex_match(net.languages[i], kLanguage)) {
        return p.Error(
            root["languages"][i], Index("languages", i),
            "'" + net.languages[i] + "' is not an ISO 639-1 code (two lowercase letters)");
      }
    }

    if (const YAML::Node topics = root["topics"]) {
      if (!topics.IsMap()) return p.Error(topics, "topics", "must be a mapping");
      if (absl::Status s = p.KnownKeys(topics, "topics", {"partitions", "replication_factor"});
          !s.ok()) {
        return s;
      }
      if (const YAML::Node partitions = topics["partitions"]) {
        absl::StatusOr<int> value = p.Int(partitions, "topics.partitions", 1, 1000);
        if (!value.ok()) return value.status();
        net.topics.partitions = *value;
      }
      if (const YAML::Node replication = topics["replication_factor"]) {
        absl::StatusOr<int> value = p.Int(replication, "topics.replication_factor", 1, 7);
        if (!value.ok()) return value.status();
        net.topics.replication_factor = *value;
      }
    }

    if (const YAML::Node sla = root["sla"]) {
      if (absl::Status s = ParseSla(p, sla, &net.sla); !s.ok()) return s;
    }

    const YAML::Node orgs = root["organisations"];
    if (!orgs || !orgs.IsSequence() || orgs.size() == 0) {
      return p.Error(orgs ? orgs : root, "organisations", "must be a non-empty list");
    }
    OrganisationIndex index;
    for (std::size_t i = 0; i < orgs.size(); ++i) {
      const std::string path = Index("organisations", i);
      const YAML::Node node = orgs[i];
      if (!node.IsMap()) return p.Error(node, path, "must be a mapping");
      if (absl::Status s = p.KnownKeys(node, path,
                                       {"id", "name", "needs", "regions", "languages", "capacity",
                                        "interpreter", "rules", "intake_limit"});
          !s.ok()) {
        return s;
      }
      Organisation org;
      absl::StatusOr<std::string> id = p.RequiredId(node, path);
      if (!id.ok()) return id.status();
      org.id = *id;
      if (!index.by_id.emplace(org.id, i).second) {
        return p.Error(node, path, "duplicate organisation id '" + org.id + "'");
      }
      org.name = node["name"] ? node["name"].as<std::string>() : org.id;

      struct ListRule {
        const char* key;
        std::vector<std::string>* into;
        bool (Network::*known)(std::string_view) const;
        const char* what;
      };
      for (const ListRule& rule :
           {ListRule{"needs", &org.needs, &Network::HasNeed, "need"},
            ListRule{"regions", &org.regions, &Network::HasRegion, "region"},
            ListRule{"languages", &org.languages, &Network::HasLanguage, "language"}}) {
        absl::StatusOr<std::vector<std::string>> values = p.StringList(node, rule.key, path);
        if (!values.ok()) return values.status();
        if (values->empty())
          return p.Error(node, path + "." + rule.key, "must be a non-empty list");
        for (std::size_t j = 0; j < values->size(); ++j) {
          if (!(net.*rule.known)((*values)[j])) {
            return p.Error(node[rule.key][j], Index(path + "." + rule.key, j),
                           absl::StrCat("unknown ", rule.what, " '", (*values)[j], "'"));
          }
        }
        *rule.into = std::move(*values);
      }
      if (const YAML::Node capacity = node["capacity"]) {
        absl::StatusOr<int> value = p.Int(capacity, path + ".capacity", 0, 1'000'000);
        if (!value.ok()) return value.status();
        org.capacity = *value;
      }
      if (const YAML::Node interpreter = node["interpreter"]) {
        absl::StatusOr<bool> value = p.Bool(interpreter, path + ".interpreter");
        if (!value.ok()) return value.status();
        org.interpreter = *value;
      }
      if (const YAML::Node intake_limit = node["intake_limit"]) {
        absl::StatusOr<IntakeLimit> limit =
            ParseIntakeLimit(p, intake_limit, path + ".intake_limit");
        if (!limit.ok()) return limit.status();
        org.intake_limit = *limit;
      }
      net.organisations.push_back(std::move(org));
    }

    // What refers to organisations, now that all of them are known.
    for (std::size_t i = 0; i < orgs.size(); ++i) {
      if (const YAML::Node rules = orgs[i]["rules"]) {
        if (absl::Status s =
                ParseRules(p, rules, Index("organisations", i), index, net, &net.organisations[i]);
            !s.ok()) {
          return s;
        }
      }
    }
    if (absl::Status s = CheckForwardCircles(p, orgs, index, net); !s.ok()) return s;
    if (const YAML::Node preferences = root["preferences"]) {
      if (absl::Status s = ParsePreferences(p, preferences, index, &net); !s.ok()) return s;
    }
    // Last, so that a problem in a known section is reported before a stray key.
    if (absl::Status s = p.KnownKeys(root, "",
                                     {"version", "topics", "sla", "needs", "regions", "languages",
                                      "organisations", "preferences"});
        !s.ok()) {
      return s;
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(source_name), ":", e.mark.line + 1,
                                                   ":", e.mark.column + 1, ": ", e.msg));
  }
  return net;
}

absl::StatusOr<Network> LoadNetworkFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open the network file"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseNetwork(buffer.str(), path);
}

}  // namespace schakel::routing
