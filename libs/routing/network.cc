#include "libs/routing/network.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
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

  absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& parent,
                                                      const std::string& key,
                                                      const std::string& path) const {
    std::vector<std::string> out;
    const YAML::Node node = parent[key];
    if (!node) return out;
    if (!node.IsSequence()) return Error(node, path + "." + key, "must be a list");
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar()) {
        return Error(node[i], absl::StrCat(path, ".", key, "[", i, "]"), "must be a plain value");
      }
      out.push_back(node[i].as<std::string>());
    }
    return out;
  }

 private:
  std::string_view source_;
};

}  // namespace

bool Organisation::Serves(std::string_view need) const {
  return std::find(needs.begin(), needs.end(), need) != needs.end();
}

bool Organisation::Covers(std::string_view region) const {
  return std::find(regions.begin(), regions.end(), region) != regions.end();
}

const Organisation* Network::FindOrganisation(std::string_view id) const {
  for (const Organisation& org : organisations) {
    if (org.id == id) return &org;
  }
  return nullptr;
}

bool Network::HasNeed(std::string_view id) const {
  return std::any_of(needs.begin(), needs.end(), [&](const NeedKind& n) { return n.id == id; });
}

bool Network::HasRegion(std::string_view id) const {
  return std::any_of(regions.begin(), regions.end(), [&](const Region& r) { return r.id == id; });
}

bool Network::HasLanguage(std::string_view code) const {
  return std::find(languages.begin(), languages.end(), code) != languages.end();
}

std::string InboxTopic(std::string_view organisation_id) {
  return absl::StrCat("schakel.inbox.", std::string(organisation_id));
}

std::vector<std::string> AllTopics(const Network& network) {
  std::vector<std::string> topics = {std::string(kSubmittedTopic), std::string(kStatusTopic),
                                     std::string(kUnroutableTopic)};
  for (const Organisation& org : network.organisations) topics.push_back(InboxTopic(org.id));
  return topics;
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
      const YAML::Node list = root[section];
      if (!list || !list.IsSequence() || list.size() == 0) {
        return p.Error(list ? list : root, section, "must be a non-empty list");
      }
      std::set<std::string> seen;
      for (std::size_t i = 0; i < list.size(); ++i) {
        const std::string path = absl::StrCat(section, "[", i, "]");
        if (!list[i].IsMap()) return p.Error(list[i], path, "must be a mapping with id and name");
        absl::StatusOr<std::string> id = p.RequiredId(list[i], path);
        if (!id.ok()) return id.status();
        if (!seen.insert(*id).second) return p.Error(list[i], path, "duplicate id '" + *id + "'");
        std::string name = list[i]["name"] ? list[i]["name"].as<std::string>() : *id;
        if (std::string(section) == "needs") {
          net.needs.push_back({*id, name});
        } else {
          net.regions.push_back({*id, name});
        }
      }
    }

    absl::StatusOr<std::vector<std::string>> languages = p.StringList(root, "languages", "(top)");
    if (!languages.ok()) return languages.status();
    net.languages = *languages;
    if (net.languages.empty()) return p.Error(root, "languages", "must be a non-empty list");
    static const std::regex kLanguage("^[a-z]{2}$");
    for (std::size_t i = 0; i < net.languages.size(); ++i) {
      if (!std::regex_match(net.languages[i], kLanguage)) {
        return p.Error(
            root["languages"][i], absl::StrCat("languages[", i, "]"),
            "'" + net.languages[i] + "' is not an ISO 639-1 code (two lowercase letters)");
      }
    }

    if (const YAML::Node topics = root["topics"]) {
      if (!topics.IsMap()) return p.Error(topics, "topics", "must be a mapping");
      if (topics["partitions"]) net.topics.partitions = topics["partitions"].as<int>();
      if (topics["replication_factor"]) {
        net.topics.replication_factor = topics["replication_factor"].as<int>();
      }
      if (net.topics.partitions < 1 || net.topics.partitions > 1000) {
        return p.Error(topics["partitions"], "topics.partitions", "must be between 1 and 1000");
      }
      if (net.topics.replication_factor < 1 || net.topics.replication_factor > 7) {
        return p.Error(topics["replication_factor"], "topics.replication_factor",
                       "must be between 1 and 7");
      }
    }

    const YAML::Node orgs = root["organisations"];
    if (!orgs || !orgs.IsSequence() || orgs.size() == 0) {
      return p.Error(orgs ? orgs : root, "organisations", "must be a non-empty list");
    }
    for (std::size_t i = 0; i < orgs.size(); ++i) {
      const std::string path = absl::StrCat("organisations[", i, "]");
      const YAML::Node node = orgs[i];
      if (!node.IsMap()) return p.Error(node, path, "must be a mapping");
      Organisation org;
      absl::StatusOr<std::string> id = p.RequiredId(node, path);
      if (!id.ok()) return id.status();
      org.id = *id;
      if (net.FindOrganisation(org.id) != nullptr) {
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
            return p.Error(node[rule.key][j], absl::StrCat(path, ".", rule.key, "[", j, "]"),
                           absl::StrCat("unknown ", rule.what, " '", (*values)[j], "'"));
          }
        }
        *rule.into = std::move(*values);
      }
      net.organisations.push_back(std::move(org));
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
