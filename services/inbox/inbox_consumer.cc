#include "services/inbox/inbox_consumer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
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

absl::Status InboxConsumer::Collect(std::vector<kafka::Record>& batch) {
  batch.clear();
  std::chrono::milliseconds timeout = options_.poll_timeout;
  std::chrono::steady_clock::time_point give_up = std::chrono::steady_clock::time_point::max();
  const std::size_t max_batch = std::max<std::size_t>(options_.max_batch, 1);
  while (batch.size() < max_batch && std::chrono::steady_clock::now() < give_up) {
    absl::StatusOr<std::optional<kafka::Record>> polled = source_->Poll(timeout);
    if (!polled.ok()) return polled.status();
    if (!polled->has_value()) break;
    batch.push_back(**std::move(polled));
    if (batch.size() == 1) {
      // The rest of the batch is what is there already: no more waiting.
      timeout = std::chrono::milliseconds(0);
      give_up = std::chrono::steady_clock::now() + options_.max_batch_time;
    }
    if (StopRequested()) break;
  }
  return absl::OkStatus();
}

bool InboxConsumer::Finish(const kafka::Record& record, const IngestResult& result) {
  if (result.outcome == IngestOutcome::kRejected && options_.dead_letters != nullptr &&
      !options_.dead_letters->Send(record, result.rejection, [this] { return StopRequested(); })) {
    return false;  // stopping before the dead letter was acknowledged: the record comes again
  }
  if (absl::Status done = source_->MarkDone(record); !done.ok()) {
    // The outcome is durable; at worst the record comes again and is found to be a duplicate.
    spdlog::warn("inbox {}: record {}/{}@{}: {}", ingest_.organisation(), record.topic,
                 record.partition, record.offset, std::string(done.message()));
  }
  return true;
}

bool InboxConsumer::Process(const std::vector<kafka::Record>& batch) {
  const std::string& org = ingest_.organisation();
  absl::StatusOr<std::vector<IngestResult>> results = ingest_.IngestBatch(batch);
  if (results.ok()) {
    // In order, so that a stop half-way leaves only records after the ones marked done unmarked.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!Finish(batch[i], (*results)[i])) return false;
    }
    return true;
  }
  spdlog::error(
      "inbox {}: cannot store a batch of {} records from {}/{}@{}, retrying one by one: {}", org,
      batch.size(), batch.front().topic, batch.front().partition, batch.front().offset,
      std::string(results.status().message()));
  // Until its outcome is durable a record is not done; nothing after it may be committed either.
  // Stopping here leaves it unmarked: it is delivered again after a restart.
  if (WaitForStop(options_.retry_backoff)) return false;
  for (const kafka::Record& record : batch) {
    absl::StatusOr<std::vector<IngestResult>> one = ingest_.IngestBatch({&record, 1});
    while (!one.ok()) {
      spdlog::error("inbox {}: cannot store record {}/{}@{}, retrying: {}", org, record.topic,
                    record.partition, record.offset, std::string(one.status().message()));
      if (WaitForStop(options_.retry_backoff)) return false;
      one = ingest_.IngestBatch({&record, 1});
    }
    if (!Finish(record, one->front())) return false;
  }
  return true;
}

void InboxConsumer::Run() {
  const std::string& org = ingest_.organisation();
  std::vector<kafka::Record> batch;
  while (!StopRequested()) {
    absl::Status polled = Collect(batch);
    // What arrived before a failure of the source is still stored and marked done.
    if (!batch.empty() && !Process(batch)) return;
    if (!polled.ok()) {
      spdlog::error("inbox {}: consumer failed: {}", org, std::string(polled.message()));
      if (options_.on_fatal) options_.on_fatal(polled);
      return;
    }
  }
}

}  // namespace schakel::inbox
