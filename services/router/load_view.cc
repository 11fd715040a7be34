#include "services/router/load_view.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"

namespace schakel::router {

LoadView::~LoadView() { Stop(); }

absl::Status LoadView::Start(const std::string& bootstrap_servers) {
  absl::StatusOr<std::unique_ptr<kafka::Follower>> follower = kafka::Follower::Create(
      bootstrap_servers, std::string(routing::kInboxLoadTopic), std::chrono::seconds(30));
  if (!follower.ok()) return follower.status();
  follower_ = *std::move(follower);
  thread_ = std::thread([this] {
    while (!stop_.load()) {
      std::optional<kafka::Record> record = follower_->Poll(std::chrono::milliseconds(200));
      if (!record) continue;
      if (absl::Status s = Apply(*record); !s.ok()) {
        spdlog::warn("router: load report {}[{}]@{} skipped: {}", record->topic, record->partition,
                     record->offset, std::string(s.message()));
      }
    }
  });
  return absl::OkStatus();
}

void LoadView::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  follower_.reset();
}

absl::Status LoadView::Apply(const kafka::Record& record) {
  v1::InboxLoad load;
  if (!load.ParseFromString(record.value)) {
    return absl::InvalidArgumentError("not an InboxLoad report");
  }
  if (load.organisation().empty() || load.organisation() != record.key) {
    return absl::InvalidArgumentError("the report's organisation does not match its key");
  }
  if (load.open() < 0) return absl::InvalidArgumentError("negative open count");
  std::lock_guard lock(mu_);
  open_[load.organisation()] = static_cast<int>(std::min<std::int64_t>(load.open(), 1 << 30));
  return absl::OkStatus();
}

routing::OpenAssignments LoadView::Snapshot() const {
  auto frozen = std::make_shared<absl::flat_hash_map<std::string, int>>();
  {
    std::lock_guard lock(mu_);
    *frozen = open_;
  }
  return [frozen](std::string_view organisation) {
    auto it = frozen->find(std::string(organisation));
    return it == frozen->end() ? 0 : it->second;
  };
}

}  // namespace schakel::router
