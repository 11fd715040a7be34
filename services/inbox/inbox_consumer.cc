#include "services/inbox/inbox_consumer.h"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace schakel::inbox {

KafkaRecordSource::KafkaRecordSource(std::unique_ptr<kafka::Consumer> consumer)
    : consumer_(std::move(consumer)) {}

absl::StatusOr<std::optional<kafka::Record>> KafkaRecordSource::Poll(
    std::chrono::milliseconds timeout) {
  return consumer_->Poll(timeout);
}

absl::Status KafkaRecordSource::MarkDone(const kafka::Record& record) {
  return consumer_->MarkDone(record);
}

void KafkaRecordSource::Close() { consumer_->Close(); }

InboxConsumer::InboxConsumer(std::unique_ptr<RecordSource> source, AssignmentIngest& ingest,
                             InboxConsumerOptions options)
    : source_(std::move(source)), ingest_(ingest), options_(std::move(options)) {}

InboxConsumer::~InboxConsumer() { Stop(); }

void InboxConsumer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void InboxConsumer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  if (!closed_) {
    closed_ = true;
    source_->Close();
  }
}

bool InboxConsumer::StopRequested() {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_;
}

bool InboxConsumer::WaitForStop(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return stop_cv_.wait_for(lock, timeout, [this] { return stop_; });
}

void InboxConsumer::Run() {
  const std::string& org = ingest_.organisation();
  while (!StopRequested()) {
    absl::StatusOr<std::optional<kafka::Record>> polled = source_->Poll(options_.poll_timeout);
    if (!polled.ok()) {
      spdlog::error("inbox {}: consumer failed: {}", org, std::string(polled.status().message()));
      if (options_.on_fatal) options_.on_fatal(polled.status());
      return;
    }
    if (!polled->has_value()) continue;
    const kafka::Record& record = **polled;

    // Until the outcome is durable the record is not done; nothing after it may be committed
    // either.
    absl::StatusOr<IngestOutcome> outcome = ingest_.Ingest(record);
    while (!outcome.ok()) {
      spdlog::error("inbox {}: cannot store record {}/{}@{}, retrying: {}", org, record.topic,
                    record.partition, record.offset, std::string(outcome.status().message()));
      // Stopping here leaves the record unmarked: it is delivered again after a restart.
      if (WaitForStop(options_.retry_backoff)) return;
      outcome = ingest_.Ingest(record);
    }
    if (*outcome == IngestOutcome::kRejected && options_.dead_letters != nullptr &&
        !options_.dead_letters->Send(record, ingest_.last_rejection(),
                                     [this] { return StopRequested(); })) {
      return;  // stopping before the dead letter was acknowledged: the record comes again
    }
    if (absl::Status done = source_->MarkDone(record); !done.ok()) {
      // The outcome is durable; at worst the record comes again and is found to be a duplicate.
      spdlog::warn("inbox {}: record {}/{}@{}: {}", org, record.topic, record.partition,
                   record.offset, std::string(done.message()));
    }
  }
}

}  // namespace schakel::inbox
