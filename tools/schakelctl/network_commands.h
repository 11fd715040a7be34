// schakelctl network check|organisations: what a network file says, without any service.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddNetworkCommands(CLI::App& app, Context& context);

}  // namespace schakel::ctl
