// How an inbox answers when it holds a million assignments: fills an inbox database directly
// through its library (inbox::store::InboxStore::Insert, the same call the inbox's ingest makes),
// then serves it with the real InboxService on a loopback port in this process and times
// ListAssignments through a gRPC client, one call at a time, for filters and paging as partners
// use them.
//
//   inbox_scale_bench --network tests/bench/network.yaml --org zorg --db /dev/shm/x.db
//                     [--assignments 1000000] [--queries 1000]
//
// A database that already holds at least --assignments is reused as it is (filling takes a while).
// The store commits every insert with fsync (synchronous=FULL), so put --db on a tmpfs to fill in
// reasonable time; queries read from the page cache either way. Prints one JSON object: the fill,
// and per query case the rows returned per call and the latency summary in milliseconds.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "bench/latency_stats.h"
#include "libs/routing/network.h"
#include "libs/service/identity.h"
#include "libs/service/server.h"
#include "libs/service/test_identity.h"
#include "schakel/v1/inbox.grpc.pb.h"
#include "services/inbox/inbox_service.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::bench {
namespace {

using Clock = std::chrono::steady_clock;
using v1::AssignmentStatus;

// SplitMix64: the same database on every machine.
std::uint64_t Mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A long-running inbox: most assignments are done, a tenth in progress, a few waiting.
AssignmentStatus StatusFor(std::uint64_t r) {
  const int p = static_cast<int>(r % 1000);
  if (p < 600) return v1::ASSIGNMENT_STATUS_COMPLETED;
  if (p < 700) return v1::ASSIGNMENT_STATUS_REJECTED;
  if (p < 750) return v1::ASSIGNMENT_STATUS_CANCELLED;
  if (p < 780) return v1::ASSIGNMENT_STATUS_FAILED;
  if (p < 880) return v1::ASSIGNMENT_STATUS_IN_PROGRESS;
  if (p < 910) return v1::ASSIGNMENT_STATUS_ON_HOLD;
  if (p < 950) return v1::ASSIGNMENT_STATUS_ACCEPTED;
  if (p < 995) return v1::ASSIGNMENT_STATUS_RECEIVED;
  return v1::ASSIGNMENT_STATUS_REQUESTED;
}

v1::Assignment MakeAssignment(std::int64_t i, const std::string& org,
                              const std::vector<std::string>& needs) {
  const std::uint64_t r = Mix(static_cast<std::uint64_t>(i));
  char id[64];
  std::snprintf(id, sizeof id, "%024llx", static_cast<unsigned long long>(r) & 0xffffffffffffULL);
  v1::Assignment a;
  a.set_assignment_id(std::string("a-") + id + "-0");
  a.set_referral_id(std::string("r-") + id);
  a.set_organisation(org);
  a.set_need_code(needs[(r >> 16) % needs.size()]);
  a.set_need_details(
      "Synthetic assignment for the inbox scale benchmark; about as long as a short note from a "
      "referrer.");
  a.set_status(StatusFor(r >> 24));
  a.set_client_pseudonym(std::string("p-") + id + id);
  a.set_urgency((r >> 40) % 10 == 0 ? v1::URGENCY_URGENT : v1::URGENCY_NORMAL);
  a.set_region("stad");
  a.add_languages("nl");
  a.set_referring_organisation("verwijzer");
  // One a minute from 2023-01-01 on: a million span almost two years.
  const std::int64_t at = 1672531200 + i * 60;
  a.mutable_requested_at()->set_seconds(at);
  a.mutable_updated_at()->set_seconds(at + 3600);
  a.set_version(2);
  v1::StatusChange* received = a.add_history();
  received->set_from_status(v1::ASSIGNMENT_STATUS_REQUESTED);
  received->set_to_status(v1::ASSIGNMENT_STATUS_RECEIVED);
  received->mutable_at()->set_seconds(at + 1);
  received->set_by(org);
  received->set_version(1);
  if (a.status() != v1::ASSIGNMENT_STATUS_RECEIVED &&
      a.status() != v1::ASSIGNMENT_STATUS_REQUESTED) {
    v1::StatusChange* last = a.add_history();
    last->set_from_status(v1::ASSIGNMENT_STATUS_RECEIVED);
    last->set_to_status(a.status());
    last->mutable_at()->set_seconds(at + 3600);
    last->set_by(org);
    last->set_version(2);
  }
  a.mutable_sharing()->set_basis(v1::SHARING_BASIS_CONSENT);
  a.mutable_sharing()->add_organisations(org);
  return a;
}

struct Case {
  std::string name;
  v1::ListAssignmentsRequest request;
  bool follow_pages = false;  // each call asks for the page after the previous call's
};

}  // namespace
}  // namespace schakel::bench

int main(int argc, char** argv) {
  using namespace schakel;
  using namespace schakel::bench;
  std::string network_file;
  std::string org;
  std::string db_path;
  std::int64_t assignments = 1000000;
  int queries = 1000;
  CLI::App app{"ListAssignments on an inbox holding a million assignments"};
  app.add_option("--network", network_file, "network file")->required();
  app.add_option("--org", org, "the inbox's organisation")->required();
  app.add_option("--db", db_path, "inbox database (reused when it holds enough)")->required();
  app.add_option("--assignments", assignments, "how many the inbox holds")->capture_default_str();
  app.add_option("--queries", queries, "calls per case")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<routing::Network> network = routing::LoadNetworkFile(network_file);
  if (!network.ok()) {
    std::cerr << "inbox_scale_bench: " << network.status().message() << "\n";
    return 2;
  }
  const routing::Organisation* organisation = network->FindOrganisation(org);
  if (organisation == nullptr || organisation->needs.empty()) {
    std::cerr << "inbox_scale_bench: no organisation " << org << " with needs in the network\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<inbox::store::InboxStore>> store =
      inbox::store::InboxStore::Open(db_path);
  if (!store.ok()) {
    std::cerr << "inbox_scale_bench: " << store.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<std::int64_t> have = (*store)->Count();
  if (!have.ok()) {
    std::cerr << "inbox_scale_bench: " << have.status().message() << "\n";
    return 1;
  }
  double fill_s = 0;
  const std::int64_t had = *have;
  if (*have < assignments) {
    const auto t0 = Clock::now();
    for (std::int64_t i = *have; i < assignments; ++i) {
      absl::StatusOr<bool> stored = (*store)->Insert(MakeAssignment(i, org, organisation->needs));
      if (!stored.ok()) {
        std::cerr << "inbox_scale_bench: insert " << i << ": " << stored.status().message() << "\n";
        return 1;
      }
      if ((i + 1) % 100000 == 0) std::cerr << "inbox_scale_bench: " << i + 1 << " stored\n";
    }
    fill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  }

  inbox::InboxService service(org, **store, *network);
  // In-process and plaintext: this measures the service's queries, not TLS; the caller names
  // itself in a header (the unit tests' authenticator).
  service::UseAuthenticator(std::make_shared<service::HeaderAuthenticatorForTests>());
  absl::StatusOr<service::RunningServer> server =
      service::StartServer("127.0.0.1:0", grpc::InsecureServerCredentials(), {&service});
  if (!server.ok()) {
    std::cerr << "inbox_scale_bench: " << server.status().message() << "\n";
    return 1;
  }
  auto stub = v1::InboxService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(server->port), grpc::InsecureChannelCredentials()));

  const std::string& need = organisation->needs.back();
  std::vector<Case> cases;
  const auto add = [&cases](std::string name, AssignmentStatus status, std::string need_code,
                            int page_size, bool overdue, bool follow) {
    Case c;
    c.name = std::move(name);
    c.request.set_status(status);
    c.request.set_need_code(std::move(need_code));
    c.request.set_page_size(page_size);
    c.request.set_overdue(overdue);
    c.follow_pages = follow;
    cases.push_back(std::move(c));
  };
  add("all, first page of 50", v1::ASSIGNMENT_STATUS_UNSPECIFIED, "", 50, false, false);
  add("status in_progress (10%)", v1::ASSIGNMENT_STATUS_IN_PROGRESS, "", 50, false, false);
  add("status requested (0.5%)", v1::ASSIGNMENT_STATUS_REQUESTED, "", 50, false, false);
  add("need " + need, v1::ASSIGNMENT_STATUS_UNSPECIFIED, need, 50, false, false);
  add("status accepted + need " + need, v1::ASSIGNMENT_STATUS_ACCEPTED, need, 50, false, false);
  add("all, page of 500", v1::ASSIGNMENT_STATUS_UNSPECIFIED, "", 500, false, false);
  add("status completed, next pages", v1::ASSIGNMENT_STATUS_COMPLETED, "", 50, false, true);
  add("need " + need + ", next pages", v1::ASSIGNMENT_STATUS_UNSPECIFIED, need, 50, false, true);
  add("overdue, first page", v1::ASSIGNMENT_STATUS_UNSPECIFIED, "", 50, true, false);

  std::string json = "{\"assignments\":" + std::to_string(assignments) +
                     ",\"had\":" + std::to_string(had) + ",\"fill_s\":" + std::to_string(fill_s) +
                     ",\"db_bytes\":" + std::to_string(std::filesystem::file_size(db_path)) +
                     ",\"via\":\"InboxService.ListAssignments over gRPC (loopback, in-process "
                     "server, one call at a time)\",\"cases\":[";
  bool first_case = true;
  for (Case& c : cases) {
    std::vector<double> ms;
    std::int64_t rows = 0;
    std::string token;
    int errors = 0;
    for (int i = -50; i < queries; ++i) {  // the first 50 warm the cache and are not counted
      v1::ListAssignmentsRequest request = c.request;
      if (c.follow_pages) request.set_page_token(token);
      v1::ListAssignmentsResponse response;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      context.AddMetadata(service::kTestOrganisationHeader, org);
      const auto t0 = Clock::now();
      const grpc::Status status = stub->ListAssignments(&context, request, &response);
      const auto t1 = Clock::now();
      if (!status.ok()) {
        if (errors++ == 0) {
          std::cerr << "inbox_scale_bench: " << c.name << ": " << status.error_message() << "\n";
        }
        continue;
      }
      token = response.next_page_token();
      if (i < 0) continue;
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      rows += response.assignments_size();
    }
    const Summary s = Summarise(ms);
    char head[512];
    std::snprintf(
        head, sizeof head,
        "%s{\"name\":\"%s\",\"rows_per_call\":%.1f,\"errors\":%d,\"ms\":", first_case ? "" : ",",
        c.name.c_str(),
        s.count == 0 ? 0.0 : static_cast<double>(rows) / static_cast<double>(s.count), errors);
    json += head + ToJson(s) + "}";
    first_case = false;
  }
  json += "]}";
  std::printf("%s\n", json.c_str());
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
