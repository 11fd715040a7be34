#include "libs/kafka/probe.h"

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/kafka/client_config.h"

namespace schakel::kafka {

absl::StatusOr<std::unique_ptr<ReachabilityProbe>> ReachabilityProbe::Start(
    const std::string& bootstrap_servers, std::chrono::milliseconds every) {
  std::unique_ptr<ReachabilityProbe> self(new ReachabilityProbe());
  self->every_ = every;
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  const Properties props = WithClientConfig({
      {"bootstrap.servers", bootstrap_servers},
      {"client.id", "schakel-probe"},
      // Its failures are the point of it: the service logs the changes, not librdkafka each retry.
      {"log_level", "0"},
  });
  for (const auto& [key, value] : props) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka probe property ", key, ": ", error));
    }
  }
  self->client_.reset(RdKafka::Producer::create(conf.get(), error));
  if (!self->client_) return absl::InternalError(absl::StrCat("kafka probe: ", error));
  RdKafka::Metadata* metadata = nullptr;  // the first answer before anyone asks
  self->reachable_.store(self->client_->metadata(false, nullptr, &metadata, 3000) ==
                         RdKafka::ERR_NO_ERROR);
  delete metadata;
  self->thread_ = std::thread([raw = self.get()] { raw->Loop(); });
  return self;
}

ReachabilityProbe::~ReachabilityProbe() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;  // wakes StopWithin as the lock is released
  }
  if (thread_.joinable()) thread_.join();
}

bool ReachabilityProbe::StopWithin(absl::Duration wait) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&stop_), wait);
}

void ReachabilityProbe::Loop() {
  while (!StopWithin(absl::FromChrono(every_))) {
    RdKafka::Metadata* metadata = nullptr;
    const int timeout_ms = static_cast<int>(std::min<std::int64_t>(every_.count(), 1000));
    const bool answered =
        client_->metadata(false, nullptr, &metadata, timeout_ms) == RdKafka::ERR_NO_ERROR;
    delete metadata;
    if (answered != reachable_.exchange(answered)) {
      if (answered) {
        spdlog::info("kafka: a broker answers again");
      } else {
        spdlog::warn("kafka: no broker answers");
      }
    }
    client_->poll(0);
  }
}

}  // namespace schakel::kafka
