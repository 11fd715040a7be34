#include "services/keys/grant_follower.h"

#include <vector>

#include "schakel/v1/events.pb.h"

namespace schakel::keys {
absl::StatusOr<Grant> GrantOf(const std::string& value) {
  v1::AssignmentStatusChanged change;
  if (!change.ParseFromString(value)) {
    return absl::InvalidArgumentError("not an AssignmentStatusChanged event");
  }
  if (change.to_status() != v1::ASSIGNMENT_STATUS_REQUESTED) {
    return absl::InvalidArgumentError("not an offer: to_status is not REQUESTED");
  }
  if (change.organisation().empty()) return absl::InvalidArgumentError("organisation is missing");
  if (change.meta().assignment_id().empty() || change.meta().referral_id().empty()) {
    return absl::InvalidArgumentError("meta.assignment_id or meta.referral_id is missing");
  }
  return Grant{change.meta().assignment_id(), change.meta().referral_id(), change.organisation()};
}

GrantFollower::GrantFollower(kafka::RecordSource& source, KeyStore& store,
                             kafka::DeadLetterSink& dead_letters, std::function<void()> stored,
                             std::function<void(absl::Status)> on_fatal)
    : store_(store),
      stored_(std::move(stored)),
      loop_(source, [this](std::span<const kafka::Record> batch) { return Handle(batch); },
            {.name = "grants", .dead_letters = &dead_letters, .on_fatal = std::move(on_fatal)}) {}

kafka::BatchOutcome GrantFollower::Handle(std::span<const kafka::Record> batch) {
  // What has arrived by the time the first record is in hand is stored in one transaction.
  kafka::BatchOutcome out;
  std::vector<Grant> grants;
  for (const kafka::Record& r : batch) {
    absl::StatusOr<Grant> grant = GrantOf(r.value);
    if (grant.ok()) {
      grants.push_back(*std::move(grant));
      out.outcomes.push_back(kafka::Outcome::Stored());
    } else {
      out.outcomes.push_back(kafka::Outcome::Rejected(grant.status()));
    }
  }
  if (absl::Status added = store_.AddGrants(grants); !added.ok()) {
    return kafka::BatchOutcome::Retry(added);
  }
  if (stored_ && !grants.empty()) stored_();
  return out;
}

}  // namespace schakel::keys
