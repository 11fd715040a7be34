#include "tools/schakelctl/keys_commands.h"

#include <grpcpp/grpcpp.h>

#include <iostream>
#include <memory>
#include <string>

#include "schakel/v1/keys.grpc.pb.h"
#include "tools/schakelctl/common.h"
#include "tools/schakelctl/rpc.h"

namespace schakel::ctl {
namespace {

struct EraseFlags {
  std::string keys = "127.0.0.1:50058";
  std::string referral;
  std::string reason;
};

int Erase(const Context& context, const EraseFlags& flags) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> to_keys = context.Channel(flags.keys, "operator");
  if (!to_keys.ok()) return Fail("erase: " + std::string(to_keys.status().message()));
  auto stub = v1::KeyService::NewStub(*to_keys);
  v1::EraseClientRequest request;
  request.set_referral_id(flags.referral);
  request.set_reason(flags.reason);
  v1::EraseClientResponse response;
  grpc::Status status = stub->EraseClient(CallContext().get(), request, &response);
  if (!status.ok()) return RpcFail("erase", flags.keys, status);
  std::cout << "erased the client of " << flags.referral << ": " << response.keys_destroyed()
            << " key(s) destroyed; every inbox purges the client's personal data\n";
  return 0;
}

}  // namespace

void AddKeysCommands(CLI::App& app, Context& context) {
  auto flags = std::make_shared<EraseFlags>();
  auto* erase = app.add_subcommand(
      "erase",
      "Right to erasure (operators): destroy the keys of the client of a referral, so that every "
      "copy of the client's personal data on Kafka becomes unreadable, and have every inbox purge "
      "it. The assignments stay (shown as erased). Cannot be undone");
  erase->add_option("referral", flags->referral, "Any referral of the client (r-…)")->required();
  erase
      ->add_option("--reason", flags->reason,
                   "Why (required; recorded with the erasure; no personal data)")
      ->required();
  erase->add_option("--keys", flags->keys, "Key service address")->capture_default_str();
  context.Handle(erase, [&context, flags] { return Erase(context, *flags); });
}

}  // namespace schakel::ctl
