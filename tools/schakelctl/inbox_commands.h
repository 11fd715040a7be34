// schakelctl inbox list: what waits in an organisation's inbox, read as that organisation.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddInboxCommands(CLI::App& app, Context& context);

}  // namespace schakel::ctl
