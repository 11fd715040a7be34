// Fakes of our own Kafka seams, for unit tests of consumers: a RecordSource that hands out queued
// records and remembers what was marked done, and a Publisher that keeps what was published
// (delivered at once). Never a fake Kafka: integration tests use the real broker.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "libs/kafka/consume_loop.h"
#include "libs/kafka/publisher.h"

namespace schakel::kafka::testing {

class FakeSource final : public RecordSource {
 public:
  // Shared with the test, which may keep it after the source is gone.
  struct State {
    std::mutex mu;
    std::deque<absl::StatusOr<std::optional<Record>>> queue;  // what Poll returns next
    std::vector<std::int64_t> done;                           // offsets marked done, in order
    bool closed = false;
    int marked_after_close = 0;
  };
  explicit FakeSource(std::shared_ptr<State> state) : state_(std::move(state)) {}

  absl::StatusOr<std::optional<Record>> Poll(std::chrono::milliseconds timeout) override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      if (!state_->queue.empty()) {
        auto next = std::move(state_->queue.front());
        state_->queue.pop_front();
        return next;
      }
    }
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(5)));
    return std::optional<Record>();
  }
  absl::Status MarkDone(const Record& record) override {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->closed) ++state_->marked_after_close;
    state_->done.push_back(record.offset);
    return absl::OkStatus();
  }
  void Close() override {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->closed = true;
  }

 private:
  std::shared_ptr<State> state_;
};

// Queues `records` in `state`, in order.
inline void Queue(FakeSource::State& state, const std::vector<Record>& records) {
  std::lock_guard<std::mutex> lock(state.mu);
  for (const Record& r : records) state.queue.push_back(std::optional<Record>(r));
}

// Waits (bounded: five seconds) until `ready` holds, evaluated under the state's lock; the loop
// runs on its own thread.
template <typename Ready>
bool Eventually(FakeSource::State& state, Ready ready) {
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> lock(state.mu);
      if (ready()) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Keeps what was published; delivery succeeds.
class RecordingPublisher final : public Publisher {
 public:
  void Publish(std::string_view topic, std::string_view key, std::string_view value,
               Done done) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      keys.push_back(std::string(topic) + " " + std::string(key));
      values.push_back(std::string(value));
    }
    done(absl::OkStatus());
  }
  bool Reachable() const override { return true; }
  std::mutex mu;
  std::vector<std::string> keys;  // "<topic> <key>"
  std::vector<std::string> values;
};

}  // namespace schakel::kafka::testing
