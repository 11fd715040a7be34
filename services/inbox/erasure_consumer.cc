#include "services/inbox/erasure_consumer.h"

#include <spdlog/spdlog.h>

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

ErasureConsumer::ErasureConsumer(std::string organisation, kafka::RecordSource& source,
                                 store::InboxStore& store, kafka::DeadLetterSink& dead_letters,
                                 std::function<void(absl::Status)> on_fatal)
    : organisation_(std::move(organisation)),
      store_(store),
      loop_(source, [this](std::span<const kafka::Record> batch) { return Handle(batch); },
            {.name = "inbox " + organisation_ + " erasures",
             .dead_letters = &dead_letters,
             .on_fatal = std::move(on_fatal)}) {}

kafka::BatchOutcome ErasureConsumer::Handle(std::span<const kafka::Record> batch) {
  kafka::BatchOutcome out;
  for (const kafka::Record& record : batch) {
    absl::StatusOr<std::size_t> purged = ApplyErasure(store_, record.value);
    if (absl::IsInvalidArgument(purged.status())) {
      out.outcomes.push_back(kafka::Outcome::Rejected(purged.status()));
      continue;
    }
    if (!purged.ok()) {
      // Not applied yet: nothing after it is done either (it is applied after a restart at worst).
      out.retry = purged.status();
      break;
    }
    spdlog::info("inbox {}: erasure {}/{}@{}: {} assignment(s) purged of personal data",
                 organisation_, record.topic, record.partition, record.offset, *purged);
    out.outcomes.push_back(kafka::Outcome::Stored());
  }
  return out;
}

}  // namespace schakel::inbox
