#include "tools/schakelctl/referral_commands.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "schakel/v1/intake.grpc.pb.h"
#include "schakel/v1/routing.grpc.pb.h"
#include "tools/schakelctl/common.h"
#include "tools/schakelctl/rpc.h"

namespace schakel::ctl {
namespace {

struct SubmitFlags {
  std::string intake = "127.0.0.1:50051";
  std::string as_org;
  std::string file;
  std::string idempotency_key;
};

struct ExplainFlags {
  std::string router = "127.0.0.1:50052";
  std::string file;
};

// The referral in the file at `path`, or on standard input for "-".
absl::StatusOr<v1::Referral> ReadReferral(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(path + ": cannot open");
    text << in.rdbuf();
  }
  return ParseReferral(text.str(), path);
}

int Submit(const Context& context, const SubmitFlags& flags) {
  v1::SubmitReferralRequest request;
  absl::StatusOr<v1::Referral> referral = ReadReferral(flags.file);
  if (!referral.ok()) return Fail(referral.status());
  *request.mutable_referral() = *std::move(referral);
  request.set_idempotency_key(flags.idempotency_key);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> to_intake =
      context.Channel(flags.intake, flags.as_org);
  if (!to_intake.ok()) return Fail("submit: " + std::string(to_intake.status().message()));
  auto stub = v1::IntakeService::NewStub(*to_intake);
  v1::SubmitReferralResponse response;
  grpc::Status status = stub->SubmitReferral(CallContext().get(), request, &response);
  if (!status.ok()) return RpcFail("submit", flags.intake, status);
  std::cout << "referral " << response.referral_id() << " accepted\n";
  for (int i = 0; i < response.assignment_ids_size(); ++i) {
    std::cout << "  need " << request.referral().needs(i).code() << ": assignment "
              << response.assignment_ids(i) << "\n";
  }
  return 0;
}

int Explain(const Context& context, const ExplainFlags& flags) {
  v1::ExplainRouteRequest request;
  absl::StatusOr<v1::Referral> referral = ReadReferral(flags.file);
  if (!referral.ok()) return Fail(referral.status());
  *request.mutable_referral() = *std::move(referral);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> to_router =
      context.Channel(flags.router, "operator");
  if (!to_router.ok()) return Fail("explain: " + std::string(to_router.status().message()));
  auto stub = v1::RoutingService::NewStub(*to_router);
  v1::ExplainRouteResponse response;
  grpc::Status status = stub->ExplainRoute(CallContext().get(), request, &response);
  if (!status.ok()) return RpcFail("explain", flags.router, status);
  for (const auto& route : response.routes()) {
    std::cout << route.need_code() << " -> "
              << (route.organisation().empty() ? "(nobody: unroutable)" : route.organisation())
              << "\n";
    for (const auto& passed : route.passed_over()) {
      std::cout << "    " << passed.organisation() << ": " << passed.reason() << "\n";
    }
  }
  return 0;
}

}  // namespace

absl::StatusOr<v1::Referral> ParseReferral(const std::string& json, const std::string& path) {
  v1::Referral referral;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &referral);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        path + ": not a schakel.v1.Referral in JSON: " + std::string(status.message()));
  }
  return referral;
}

void AddReferralCommands(CLI::App& app, Context& context) {
  auto submit_flags = std::make_shared<SubmitFlags>();
  auto* submit = app.add_subcommand("submit", "Submit a referral (JSON of schakel.v1.Referral)");
  submit->add_option("--intake", submit_flags->intake, "Intake address")->capture_default_str();
  submit->add_option("--as", submit_flags->as_org, "The submitting organisation")->required();
  submit->add_option("--file", submit_flags->file, "JSON file, or - for standard input")
      ->required();
  submit->add_option("--idempotency-key", submit_flags->idempotency_key,
                     "The same key again returns the first referral instead of a second one");
  context.Handle(submit, [&context, submit_flags] { return Submit(context, *submit_flags); });

  auto explain_flags = std::make_shared<ExplainFlags>();
  auto* explain = app.add_subcommand("explain", "Show where a referral would be routed, and why");
  explain->add_option("--router", explain_flags->router, "Router address")->capture_default_str();
  explain->add_option("--file", explain_flags->file, "JSON file, or - for standard input")
      ->required();
  context.Handle(explain, [&context, explain_flags] { return Explain(context, *explain_flags); });
}

}  // namespace schakel::ctl
