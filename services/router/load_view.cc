#include "services/router/load_view.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"

namespace schakel::router {
namespace {

constexpr std::chrono::seconds kTopicTimeout(30);

std::vector<std::string> LoadTopics(const std::vector<std::string>& organisations) {
  std::vector<std::string> topics;
  for (const std::string& org : organisations) topics.push_back(topology::LoadTopic(org));
  return topics;
}

}  // namespace

LoadView::~LoadView() { Stop(); }

absl::Status LoadView::Start(const std::string& bootstrap_servers, Organisations organisations,
                             std::chrono::milliseconds recheck) {
  organisations_ = std::move(organisations);
  // Each topic is added on its own (below): one organisation's topic that cannot be read yet must
  // not keep the router from routing for all of them.
  absl::StatusOr<std::unique_ptr<kafka::Follower>> follower =
      kafka::Follower::Create(bootstrap_servers, std::vector<std::string>{}, kTopicTimeout);
  if (!follower.ok()) return follower.status();
  follower_ = *std::move(follower);
  // A topic it cannot follow yet is tried again less often (each try logs a warning).
  const auto retry = std::max<std::chrono::milliseconds>(recheck, std::chrono::seconds(30));
  const bool all = FollowNewOrganisations(kTopicTimeout);
  thread_ = std::thread([this, recheck, retry, all] {
    auto next_check = std::chrono::steady_clock::now() + (all ? recheck : retry);
    while (!stop_.load()) {
      if (std::chrono::steady_clock::now() >= next_check) {
        next_check = std::chrono::steady_clock::now() +
                     (FollowNewOrganisations(std::chrono::seconds(5)) ? recheck : retry);
      }
      std::optional<kafka::Record> record = follower_->Poll(std::chrono::milliseconds(200));
      if (!record) continue;
      absl::Status s = Apply(*record);
      // A forged report was logged by Apply, with ids only.
      if (!s.ok() && s.code() != absl::StatusCode::kPermissionDenied) {
        spdlog::warn("router: load report {}[{}]@{} skipped: {}", record->topic, record->partition,
                     record->offset, std::string(s.message()));
      }
    }
  });
  return absl::OkStatus();
}

bool LoadView::FollowNewOrganisations(std::chrono::milliseconds timeout) {
  bool all = true;
  for (const std::string& topic : LoadTopics(organisations_())) {
    if (std::find(followed_.begin(), followed_.end(), topic) != followed_.end()) continue;
    // The topics of an organisation are made with the network (schakelctl topics create, or the
    // router when it takes a changed network file), and readable once the admin applied the
    // network's ACLs: until then it is tried again, and the organisation counts as 0 open.
    // (Organisations that left the network are still followed: harmless, the policy asks no more.)
    if (absl::Status s = follower_->Add({topic}, timeout); !s.ok()) {
      spdlog::warn("router: cannot follow {} yet (trying again): {}", topic,
                   std::string(s.message()));
      all = false;
      continue;
    }
    followed_.push_back(topic);
    spdlog::debug("router: following {}", topic);
  }
  return all;
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
  if (load.organisation().empty()) {
    return absl::InvalidArgumentError("the report names no organisation");
  }
  // Only the organisation itself may write its load topic (libs/routing/kafka_access.cc): the
  // topic is the author. What the report says of itself is believed only when it agrees.
  if (record.topic != topology::LoadTopic(load.organisation())) {
    forged_.fetch_add(1);
    spdlog::warn(
        "router: load report on {} ignored: it claims organisation \"{}\", whose load is only on "
        "its own topic",
        record.topic, absl::CHexEscape(load.organisation().substr(0, 64)));
    return absl::PermissionDeniedError(
        "the report claims another organisation than the one whose topic it is on");
  }
  if (load.organisation() != record.key) {
    return absl::InvalidArgumentError("the report's organisation does not match its key");
  }
  if (load.open() < 0) return absl::InvalidArgumentError("negative open count");
  absl::MutexLock lock(&mu_);
  open_[load.organisation()] = static_cast<int>(std::min<std::int64_t>(load.open(), 1 << 30));
  return absl::OkStatus();
}

routing::OpenAssignments LoadView::Snapshot() const {
  auto frozen = std::make_shared<absl::flat_hash_map<std::string, int>>();
  {
    absl::MutexLock lock(&mu_);
    *frozen = open_;
  }
  return [frozen](std::string_view organisation) {
    auto it = frozen->find(std::string(organisation));
    return it == frozen->end() ? 0 : it->second;
  };
}

}  // namespace schakel::router
