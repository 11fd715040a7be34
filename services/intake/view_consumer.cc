#include "services/intake/view_consumer.h"

#include <utility>

namespace schakel::intake {
ViewConsumer::ViewConsumer(kafka::RecordSource& source, ReferralView& view,
                           kafka::DeadLetterSink* dead_letters,
                           std::function<void(absl::Status)> on_fatal)
    : view_(view),
      loop_(source, [this](std::span<const kafka::Record> batch) { return Handle(batch); },
            {.name = "referral view",
             .dead_letters = dead_letters,
             .on_fatal = std::move(on_fatal)}) {}

kafka::BatchOutcome ViewConsumer::Handle(std::span<const kafka::Record> batch) {
  // When the view cannot store the batch, none of it is applied: the loop hands it again.
  std::vector<ReferralView::RecordRef> refs;
  refs.reserve(batch.size());
  for (const kafka::Record& r : batch) refs.push_back({r.topic, r.value});
  std::vector<absl::Status> applied;
  if (absl::Status stored = view_.ApplyRecords(refs, &applied); !stored.ok()) {
    return kafka::BatchOutcome::Retry(stored);
  }
  kafka::BatchOutcome out;
  for (absl::Status& result : applied) {
    out.outcomes.push_back(result.ok() ? kafka::Outcome::Stored()
                                       : kafka::Outcome::Rejected(std::move(result)));
  }
  return out;
}

}  // namespace schakel::intake
