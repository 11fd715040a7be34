#include "tools/schakelctl/network_commands.h"

#include <iostream>
#include <memory>
#include <string>

#include "libs/routing/network.h"
#include "tools/schakelctl/common.h"

namespace schakel::ctl {
namespace {

int CheckNetwork(const std::string& file) {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(file);
  if (!net.ok()) return Fail(net.status());
  std::cout << file << ": valid (" << net->organisations.size() << " organisations, "
            << net->needs.size() << " needs, " << net->regions.size() << " regions)\n";
  return 0;
}

int PrintOrganisations(const std::string& file) {
  absl::StatusOr<routing::Network> net = routing::LoadNetworkFile(file);
  if (!net.ok()) return Fail(net.status());
  for (const auto& org : net->organisations) std::cout << org.id << "\t" << org.name << "\n";
  return 0;
}

}  // namespace

void AddNetworkCommands(CLI::App& app, Context& context) {
  auto* network = app.add_subcommand("network", "Network file commands");
  network->require_subcommand(1);

  auto check_file = std::make_shared<std::string>();
  auto* check = network->add_subcommand("check", "Validate a network file");
  check->add_option("file", *check_file, "The network file")->required();
  context.Handle(check, [check_file] { return CheckNetwork(*check_file); });

  auto list_file = std::make_shared<std::string>();
  auto* organisations = network->add_subcommand(
      "organisations", "Print each organisation's id and name, in file order");
  organisations->add_option("file", *list_file, "The network file")->required();
  context.Handle(organisations, [list_file] { return PrintOrganisations(*list_file); });
}

}  // namespace schakel::ctl
