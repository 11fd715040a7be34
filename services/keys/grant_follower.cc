#include "services/keys/grant_follower.h"

#include <vector>

#include "libs/referral/lifecycle.h"
#include "schakel/v1/events.pb.h"

namespace schakel::keys {
absl::StatusOr<std::optional<Grant>> GrantOf(const std::string& value) {
  v1::AssignmentStatusChanged change;
  if (!change.ParseFromString(value)) {
    return absl::InvalidArgumentError("not an AssignmentStatusChanged event");
  }
  // Only the router writes the topic, and only its own offers are REQUESTED by the network (an
  // organisation's change never goes to REQUESTED: referral::CheckStep).
  if (change.to_status() != v1::ASSIGNMENT_STATUS_REQUESTED ||
      change.by() != referral::kNetworkName) {
    return std::nullopt;
  }
  if (change.organisation().empty()) {
    return absl::InvalidArgumentError("an offer without its organisation");
  }
  if (change.meta().assignment_id().empty() || change.meta().referral_id().empty()) {
    return absl::InvalidArgumentError("an offer without meta.assignment_id or meta.referral_id");
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
    absl::StatusOr<std::optional<Grant>> grant = GrantOf(r.value);
    if (!grant.ok()) {
      out.outcomes.push_back(kafka::Outcome::Rejected(grant.status()));
      continue;
    }
    if (grant->has_value()) grants.push_back(**std::move(grant));
    out.outcomes.push_back(kafka::Outcome::Stored());  // or another fact: nothing to store
  }
  if (absl::Status added = store_.AddGrants(grants); !added.ok()) {
    return kafka::BatchOutcome::Retry(added);
  }
  if (stored_ && !grants.empty()) stored_();
  return out;
}

}  // namespace schakel::keys
