#include "services/inbox/erasure_consumer.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "schakel/v1/events.pb.h"
#include "services/inbox/personal_data.h"

namespace schakel::inbox {

absl::StatusOr<std::size_t> ApplyErasure(store::InboxStore& store, const std::string& value) {
  v1::ClientErased erased;
  if (!erased.ParseFromString(value)) {
    return absl::InvalidArgumentError("not a ClientErased event");
  }
  if (erased.client_pseudonym().rfind("p-", 0) != 0) {
    return absl::InvalidArgumentError("client_pseudonym is missing");
  }
  absl::StatusOr<std::vector<std::string>> ids =
      store.EraseClient(erased.client_pseudonym(), ErasePersonalData);
  if (!ids.ok()) return ids.status();
  return ids->size();
}

void ErasureConsumer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ErasureConsumer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ErasureConsumer::Run() {
  while (!stop_.load()) {
    absl::StatusOr<std::optional<kafka::Record>> polled =
        consumer_.Poll(std::chrono::milliseconds(200));
    if (!polled.ok()) {
      spdlog::critical("inbox {}: erasures: {}", organisation_,
                       std::string(polled.status().message()));
      std::abort();  // restart rather than keep data an operator erased
    }
    if (!polled->has_value()) continue;
    const kafka::Record& record = **polled;
    absl::StatusOr<std::size_t> purged = ApplyErasure(store_, record.value);
    while (!purged.ok() && !absl::IsInvalidArgument(purged.status())) {
      spdlog::error("inbox {}: erasure {}/{}@{} not applied yet, retrying: {}", organisation_,
                    record.topic, record.partition, record.offset,
                    std::string(purged.status().message()));
      for (int i = 0; i < 10 && !stop_.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (stop_.load()) return;  // not marked done: applied after the restart
      purged = ApplyErasure(store_, record.value);
    }
    if (!purged.ok()) {
      spdlog::error("inbox {}: erasure {}/{}@{} is unusable: {}", organisation_, record.topic,
                    record.partition, record.offset, std::string(purged.status().message()));
    } else {
      spdlog::info("inbox {}: erasure {}/{}@{}: {} assignment(s) purged of personal data",
                   organisation_, record.topic, record.partition, record.offset, *purged);
    }
    if (absl::Status done = consumer_.MarkDone(record); !done.ok()) {
      spdlog::warn("inbox {}: erasures: {}", organisation_, std::string(done.message()));
    }
  }
}

}  // namespace schakel::inbox
