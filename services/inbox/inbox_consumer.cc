#include "services/inbox/inbox_consumer.h"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace schakel::inbox {
namespace {

kafka::ConsumeLoopOptions LoopOptions(const std::string& organisation,
                                      InboxConsumerOptions options) {
  kafka::ConsumeLoopOptions loop;
  loop.name = "inbox " + organisation;
  loop.poll_timeout = options.poll_timeout;
  loop.max_batch = options.max_batch;
  loop.max_batch_time = options.max_batch_time;
  loop.backoff = options.retry_backoff;
  loop.max_backoff = options.retry_backoff;
  loop.dead_letters = options.dead_letters;
  if (options.on_fatal) {
    loop.on_fatal = [on_fatal = std::move(options.on_fatal)](absl::Status s) { on_fatal(s); };
  }
  return loop;
}

kafka::Outcome OutcomeOf(const IngestResult& result) {
  switch (result.outcome) {
    case IngestOutcome::kStored:
      return kafka::Outcome::Stored();
    case IngestOutcome::kDuplicate:
      return kafka::Outcome::Duplicate();
    case IngestOutcome::kRejected:
      break;
  }
  return kafka::Outcome::Rejected(absl::InvalidArgumentError(result.rejection));
}

}  // namespace

InboxConsumer::InboxConsumer(std::unique_ptr<kafka::RecordSource> source, AssignmentIngest& ingest,
                             InboxConsumerOptions options)
    : source_(std::move(source)),
      ingest_(ingest),
      loop_(
          *source_, [this](std::span<const kafka::Record> batch) { return Handle(batch); },
          LoopOptions(ingest.organisation(), std::move(options))) {}

InboxConsumer::~InboxConsumer() { Stop(); }

void InboxConsumer::Start() { loop_.Start(); }

void InboxConsumer::Stop() {
  loop_.Stop();
  absl::MutexLock lock(&mu_);
  if (!closed_) {
    closed_ = true;
    source_->Close();
  }
}

kafka::BatchOutcome InboxConsumer::Handle(std::span<const kafka::Record> batch) {
  kafka::BatchOutcome out;
  absl::StatusOr<std::vector<IngestResult>> results = ingest_.IngestBatch(batch);
  if (results.ok()) {
    for (const IngestResult& result : *results) out.outcomes.push_back(OutcomeOf(result));
    return out;
  }
  spdlog::error("inbox {}: cannot store a batch of {} records from {}/{}@{}, trying one by one: {}",
                ingest_.organisation(), batch.size(), batch.front().topic, batch.front().partition,
                batch.front().offset, std::string(results.status().message()));
  // Until its outcome is durable a record is not done; nothing after it may be done either: the
  // loop hands it and the rest again after a pause.
  for (const kafka::Record& record : batch) {
    absl::StatusOr<std::vector<IngestResult>> one = ingest_.IngestBatch({&record, 1});
    if (!one.ok()) {
      out.retry = one.status();
      break;
    }
    out.outcomes.push_back(OutcomeOf(one->front()));
  }
  return out;
}

}  // namespace schakel::inbox
