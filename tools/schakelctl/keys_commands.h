// schakelctl erase: the right to erasure, through the key service (operators only).
#pragma once

#include <CLI/CLI.hpp>

#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddKeysCommands(CLI::App& app, Context& context);

}  // namespace schakel::ctl
