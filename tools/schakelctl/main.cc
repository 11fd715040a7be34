// schakelctl: one command line for operators and for trying Schakel out. Each command group lives
// in its own file (<group>_commands.h) and registers its subcommands with what they run; the
// client set-up they share (TLS, channels, the Kafka identity) is Context's. Every call to a
// service has a deadline; an unreachable service or broker is named with its address.
#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>

#include "tools/schakelctl/access_commands.h"
#include "tools/schakelctl/audit_commands.h"
#include "tools/schakelctl/common.h"
#include "tools/schakelctl/context.h"
#include "tools/schakelctl/dlq_commands.h"
#include "tools/schakelctl/inbox_commands.h"
#include "tools/schakelctl/keys_commands.h"
#include "tools/schakelctl/network_commands.h"
#include "tools/schakelctl/ops_commands.h"
#include "tools/schakelctl/referral_commands.h"
#include "tools/schakelctl/topics_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"schakelctl: operate and try out a Schakel network."};
  app.require_subcommand(1);
  spdlog::set_level(spdlog::level::warn);
  // A record that is no event (a poison record) is skipped where it is read; protobuf's own log
  // line about it would only clutter the output.
  google::protobuf::SetLogHandler(nullptr);

  schakel::ctl::Context context;
  context.AddFlags(app);
  // In the order `schakelctl --help` lists them.
  schakel::ctl::AddNetworkCommands(app, context);
  schakel::ctl::AddTopicsCommands(app, context);
  schakel::ctl::AddAccessCommands(app, context);
  schakel::ctl::AddReferralCommands(app, context);
  schakel::ctl::AddKeysCommands(app, context);
  schakel::ctl::AddInboxCommands(app, context);
  schakel::ctl::AddDlqCommands(app, context);
  schakel::ctl::AddOpsCommands(app, context);
  schakel::ctl::AddAuditCommands(app, context);
  CLI11_PARSE(app, argc, argv);

  if (absl::Status identity = context.UseKafkaIdentity(); !identity.ok()) {
    return schakel::ctl::Fail(identity);
  }
  return context.Run();
}
