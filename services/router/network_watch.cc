#include "services/router/network_watch.h"

#include <spdlog/spdlog.h>

#include <system_error>

#include "absl/strings/str_cat.h"

namespace schakel::router {

absl::StatusOr<std::unique_ptr<NetworkWatch>> NetworkWatch::Load(const std::string& path,
                                                                 Prepare prepare) {
  std::unique_ptr<NetworkWatch> watch(new NetworkWatch(path, std::move(prepare)));
  const Stamp stamp = watch->Read();
  absl::StatusOr<routing::Network> network = routing::LoadNetworkFile(path);
  if (!network.ok()) return network.status();
  {
    absl::MutexLock lock(&watch->mu_);  // not shared yet; taken as the members' annotations ask
    watch->stamp_ = stamp;
    watch->policy_ = std::make_shared<const routing::Policy>(*std::move(network));
  }
  return watch;
}

NetworkWatch::Stamp NetworkWatch::Read() const {
  std::error_code ec;
  Stamp stamp;
  stamp.modified = std::filesystem::last_write_time(path_, ec);
  stamp.size = std::filesystem::file_size(path_, ec);
  return stamp;
}

std::uint64_t NetworkWatch::reloads() const {
  absl::MutexLock lock(&mu_);
  return reloads_;
}

std::shared_ptr<const routing::Policy> NetworkWatch::Current() const {
  absl::MutexLock lock(&mu_);
  return policy_;
}

absl::Status NetworkWatch::CheckForChange() {
  const Stamp now = Read();
  {
    absl::MutexLock lock(&mu_);
    if (now == stamp_) return absl::OkStatus();
    stamp_ = now;  // a refused version is reported once, not on every check
  }
  absl::StatusOr<routing::Network> network = routing::LoadNetworkFile(path_);
  if (!network.ok()) {
    spdlog::error("router: network file changed but is not valid; keeping the running network: {}",
                  std::string(network.status().message()));
    return network.status();
  }
  const routing::TopicSettings running = Current()->network().topics;
  if (network->topics.partitions != running.partitions ||
      network->topics.replication_factor != running.replication_factor) {
    const std::string problem = absl::StrCat(
        path_,
        ": topics: partitions and replication factor cannot change while the network runs "
        "(they are fixed when the topics are created); keeping the running network");
    spdlog::error("router: {}", problem);
    return absl::FailedPreconditionError(problem);
  }
  if (prepare_) {
    if (absl::Status prepared = prepare_(*network); !prepared.ok()) {
      spdlog::error(
          "router: network file changed but cannot be taken; keeping the running "
          "network: {}",
          std::string(prepared.message()));
      return prepared;
    }
  }
  auto policy = std::make_shared<const routing::Policy>(*std::move(network));
  const std::size_t organisations = policy->network().organisations.size();
  {
    absl::MutexLock lock(&mu_);
    policy_ = std::move(policy);
    ++reloads_;
  }
  spdlog::info("router: network file {} reloaded ({} organisations)", path_, organisations);
  return absl::OkStatus();
}

}  // namespace schakel::router
