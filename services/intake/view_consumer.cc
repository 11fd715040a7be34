#include "services/intake/view_consumer.h"

#include <spdlog/spdlog.h>

namespace schakel::intake {

void ViewConsumer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ViewConsumer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ViewConsumer::Run() {
  while (!stop_.load()) {
    absl::StatusOr<std::optional<kafka::Record>> record =
        consumer_.Poll(std::chrono::milliseconds(200));
    if (!record.ok()) {
      spdlog::critical("referral view: {}", std::string(record.status().message()));
      std::abort();  // a fatal consumer error: restart rather than serve a view that no longer
                     // moves
    }
    if (!record->has_value()) continue;
    const kafka::Record& r = **record;
    absl::Status applied = view_.ApplyRecord(r.topic, r.value);
    while (absl::IsUnavailable(applied) && !stop_.load()) {
      // The database is busy or full: retry the same record rather than skip it.
      spdlog::warn("referral view: {}; retrying", std::string(applied.message()));
      std::this_thread::sleep_for(std::chrono::seconds(1));
      applied = view_.ApplyRecord(r.topic, r.value);
    }
    if (absl::IsUnavailable(applied)) return;  // stopping: not marked done, delivered again later
    if (!applied.ok()) {
      spdlog::error("referral view: cannot use {}[{}]@{}: {}", r.topic, r.partition, r.offset,
                    std::string(applied.message()));
      if (dead_letters_ != nullptr && !dead_letters_->Send(r, std::string(applied.message()),
                                                           [this] { return stop_.load(); })) {
        return;  // stopping first: not marked done, delivered again later
      }
    }
    if (absl::Status done = consumer_.MarkDone(r); !done.ok()) {
      spdlog::warn("referral view: {}", std::string(done.message()));
    }
  }
}

}  // namespace schakel::intake
