#include "services/intake/view_consumer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <vector>

#include "libs/kafka/poll_batch.h"

namespace schakel::intake {

void ViewConsumer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void ViewConsumer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void ViewConsumer::Run() {
  // A batch is what has arrived by the time the first record is in hand (up to kMaxBatch): it is
  // stored in one SQLite transaction, so the view costs one fsync per batch, not per record.
  constexpr std::size_t kMaxBatch = 500;
  while (!stop_.load()) {
    absl::StatusOr<std::vector<kafka::Record>> polled =
        kafka::PollBatch(consumer_, kMaxBatch, std::chrono::milliseconds(200));
    if (!polled.ok()) {
      spdlog::critical("referral view: {}", std::string(polled.status().message()));
      std::abort();  // a fatal consumer error: restart rather than serve a view that no longer
                     // moves
    }
    const std::vector<kafka::Record>& batch = *polled;
    if (batch.empty()) continue;
    std::vector<ReferralView::RecordRef> refs;
    refs.reserve(batch.size());
    for (const kafka::Record& r : batch) refs.push_back({r.topic, r.value});
    std::vector<absl::Status> results;
    absl::Status stored = view_.ApplyRecords(refs, &results);
    while (absl::IsUnavailable(stored) && !stop_.load()) {
      // The database is busy or full: store again (what is applied stays pending until it is).
      spdlog::warn("referral view: {}; retrying", std::string(stored.message()));
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::vector<absl::Status> ignored;
      stored = view_.ApplyRecords({}, &ignored);
    }
    if (!stored.ok()) return;  // stopping: not marked done, delivered again later
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const kafka::Record& r = batch[i];
      if (!results[i].ok()) {
        spdlog::error("referral view: cannot use {}[{}]@{}: {}", r.topic, r.partition, r.offset,
                      std::string(results[i].message()));
        if (dead_letters_ != nullptr && !dead_letters_->Send(r, std::string(results[i].message()),
                                                             [this] { return stop_.load(); })) {
          return;  // stopping first: not marked done, delivered again later
        }
      }
      if (absl::Status done = consumer_.MarkDone(r); !done.ok()) {
        spdlog::warn("referral view: {}", std::string(done.message()));
      }
    }
  }
}

}  // namespace schakel::intake
