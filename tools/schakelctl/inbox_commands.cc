#include "tools/schakelctl/inbox_commands.h"

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>

#include "schakel/v1/inbox.grpc.pb.h"
#include "tools/schakelctl/common.h"
#include "tools/schakelctl/rpc.h"

namespace schakel::ctl {
namespace {

struct ListFlags {
  std::string inbox = "127.0.0.1:50061";
  std::string need;
  bool overdue = false;
  std::string as_org;
};

int ListInbox(const Context& context, const ListFlags& flags) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> to_inbox =
      context.Channel(flags.inbox, flags.as_org);
  if (!to_inbox.ok()) return Fail("inbox list: " + std::string(to_inbox.status().message()));
  auto stub = v1::InboxService::NewStub(*to_inbox);
  v1::ListAssignmentsRequest request;
  request.set_need_code(flags.need);
  request.set_overdue(flags.overdue);
  request.set_page_size(500);
  std::printf("%-32s %-16s %-10s %-10s %s\n", "ASSIGNMENT", "NEED", "STATUS", "URGENCY", "FROM");
  int count = 0;
  do {
    v1::ListAssignmentsResponse response;
    grpc::Status status = stub->ListAssignments(CallContext().get(), request, &response);
    if (!status.ok()) return RpcFail("inbox list", flags.inbox, status);
    for (const auto& a : response.assignments()) {
      std::string urgency = v1::Urgency_Name(a.urgency());
      urgency = urgency.substr(urgency.find('_') + 1);
      std::printf("%-32s %-16s %-10s %-10s %s\n", a.assignment_id().c_str(), a.need_code().c_str(),
                  StatusName(a.status()).c_str(), urgency.c_str(),
                  a.referring_organisation().c_str());
      ++count;
    }
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  std::printf("(%d assignments)\n", count);
  return 0;
}

}  // namespace

void AddInboxCommands(CLI::App& app, Context& context) {
  auto* inbox = app.add_subcommand("inbox", "An organisation's inbox");
  inbox->require_subcommand(1);
  auto flags = std::make_shared<ListFlags>();
  auto* list = inbox->add_subcommand("list", "List the assignments in an inbox");
  list->add_option("--inbox", flags->inbox, "Inbox address")->capture_default_str();
  list->add_option("--need", flags->need, "Only this need code");
  list->add_flag("--overdue", flags->overdue,
                 "Only what was not accepted in time (the network's SLA)");
  list->add_option("--as", flags->as_org, "The inbox's organisation (only it may read its inbox)")
      ->required();
  context.Handle(list, [&context, flags] { return ListInbox(context, *flags); });
}

}  // namespace schakel::ctl
