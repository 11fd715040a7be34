// A batch from a consumer: what has arrived by the time the first record is in hand, so that a
// caller can store it in one transaction (one fsync per batch, not per record).
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "libs/kafka/consumer.h"

namespace schakel::kafka {

// Waits up to `first_wait` for a record, then takes what is already there, up to `max` records.
// Empty when nothing arrived; the consumer's fatal error as a status.
inline absl::StatusOr<std::vector<Record>> PollBatch(Consumer& consumer, std::size_t max,
                                                     std::chrono::milliseconds first_wait) {
  std::vector<Record> batch;
  auto timeout = first_wait;
  while (batch.size() < max) {
    absl::StatusOr<std::optional<Record>> record = consumer.Poll(timeout);
    if (!record.ok()) return record.status();
    if (!record->has_value()) break;
    batch.push_back(**std::move(record));
    timeout = std::chrono::milliseconds(0);
  }
  return batch;
}

}  // namespace schakel::kafka
