// schakelctl audit verify|export: the audit stream, one hash chain per writer, each in its own
// topic schakel.audit.<writer>. verify checks every chain (on Kafka, or in an export); export
// prints every entry as a JSON line to keep.
#pragma once

#include <CLI/CLI.hpp>

#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddAuditCommands(CLI::App& app, Context& context);

}  // namespace schakel::ctl
