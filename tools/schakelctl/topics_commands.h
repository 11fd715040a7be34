// schakelctl topics create|retire: the Kafka topics a network needs, and those an earlier version
// used.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddTopicsCommands(CLI::App& app, Context& context);

}  // namespace schakel::ctl
