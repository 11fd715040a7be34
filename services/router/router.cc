#include "services/router/router.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "libs/referral/ids.h"

namespace schakel::router {
namespace {

constexpr std::size_t kMaxBatch = 500;

v1::EventMeta Meta(const v1::ReferralSubmitted& submitted, const std::string& assignment_id) {
  v1::EventMeta meta;
  meta.set_schema_version(1);
  meta.set_event_id(referral::NewEventId());
  *meta.mutable_occurred_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
  meta.set_referral_id(submitted.meta().referral_id());
  meta.set_assignment_id(assignment_id);
  return meta;
}

}  // namespace

absl::StatusOr<std::vector<OutgoingEvent>> RouteReferral(const routing::Policy& policy,
                                                         const v1::ReferralSubmitted& submitted) {
  if (submitted.meta().schema_version() != 1) {
    return absl::InvalidArgumentError("unknown schema version");
  }
  if (submitted.meta().referral_id().empty()) return absl::InvalidArgumentError("no referral id");

  routing::RouteRequest request;
  request.region = submitted.region();
  for (const v1::NeedRequest& need : submitted.needs()) request.need_codes.push_back(need.code());
  request.sharing_organisations.assign(submitted.sharing().organisations().begin(),
                                       submitted.sharing().organisations().end());
  const std::vector<routing::NeedDecision> decisions = policy.Decide(request);

  std::vector<OutgoingEvent> events;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    const routing::NeedDecision& decision = decisions[i];
    const std::uint32_t index = static_cast<std::uint32_t>(i);
    const std::string assignment_id = referral::AssignmentId(submitted.meta().referral_id(), index);
    if (decision.routable()) {
      // Only this need travels to this organisation: the client's other needs stay out of its
      // topic.
      v1::AssignmentRequested assignment;
      *assignment.mutable_meta() = Meta(submitted, assignment_id);
      assignment.set_organisation(decision.organisation);
      assignment.set_need_code(decision.need_code);
      assignment.set_need_details(submitted.needs(static_cast<int>(i)).details());
      assignment.set_client_pseudonym(submitted.client_pseudonym());
      assignment.set_urgency(submitted.urgency());
      assignment.set_region(submitted.region());
      *assignment.mutable_languages() = submitted.languages();
      assignment.set_referring_organisation(submitted.referring_organisation());
      assignment.set_need_index(index);
      events.push_back({routing::InboxTopic(decision.organisation), assignment_id,
                        assignment.SerializeAsString()});
    } else {
      v1::ReferralUnroutable unroutable;
      *unroutable.mutable_meta() = Meta(submitted, assignment_id);
      unroutable.set_need_code(decision.need_code);
      unroutable.set_need_index(index);
      unroutable.set_region(submitted.region());
      unroutable.set_urgency(submitted.urgency());
      unroutable.set_referring_organisation(submitted.referring_organisation());
      for (const routing::PassedOver& p : decision.passed_over) {
        v1::PassedOver* out = unroutable.add_passed_over();
        out->set_organisation(p.organisation);
        out->set_reason(p.reason);
      }
      events.push_back({std::string(routing::kUnroutableTopic), submitted.meta().referral_id(),
                        unroutable.SerializeAsString()});
    }
  }
  return events;
}

bool Router::PublishAll(const std::vector<OutgoingEvent>& events) {
  for (auto backoff = std::chrono::milliseconds(200); !stop_.load();
       backoff = std::min(backoff * 2, std::chrono::milliseconds(5000))) {
    struct Pending {
      std::mutex mu;
      std::condition_variable cv;
      std::size_t left = 0;
      absl::Status first_error;
    };
    auto pending = std::make_shared<Pending>();
    pending->left = events.size();
    for (const OutgoingEvent& event : events) {
      publisher_.Publish(event.topic, event.key, event.value, [pending](absl::Status status) {
        std::lock_guard lock(pending->mu);
        if (!status.ok() && pending->first_error.ok()) pending->first_error = status;
        if (--pending->left == 0) pending->cv.notify_all();
      });
    }
    std::unique_lock lock(pending->mu);
    pending->cv.wait(lock, [&] { return pending->left == 0; });
    if (pending->first_error.ok()) return true;
    spdlog::warn("router: publishing {} events failed ({}); retrying in {} ms", events.size(),
                 std::string(pending->first_error.message()), backoff.count());
    lock.unlock();
    std::this_thread::sleep_for(backoff);
  }
  return false;
}

absl::Status Router::Run() {
  while (!stop_.load()) {
    // Gather a batch: what arrives within a short wait, at most kMaxBatch records.
    std::vector<kafka::Record> batch;
    std::vector<OutgoingEvent> events;
    auto timeout = std::chrono::milliseconds(200);
    while (batch.size() < kMaxBatch) {
      absl::StatusOr<std::optional<kafka::Record>> record = consumer_.Poll(timeout);
      if (!record.ok()) return record.status();
      if (!record->has_value()) break;
      timeout = std::chrono::milliseconds(0);  // take what is already there, then publish
      v1::ReferralSubmitted submitted;
      absl::StatusOr<std::vector<OutgoingEvent>> routed =
          submitted.ParseFromString((*record)->value)
              ? RouteReferral(policy_, submitted)
              : absl::InvalidArgumentError("not a ReferralSubmitted event");
      if (routed.ok()) {
        events.insert(events.end(), routed->begin(), routed->end());
        routed_.fetch_add(1);
      } else {
        // Never log the payload: it holds personal data. Dead-lettering comes with the delivery
        // issue.
        spdlog::error("router: skipping {}[{}]@{}: {}", (*record)->topic, (*record)->partition,
                      (*record)->offset, std::string(routed.status().message()));
        rejected_.fetch_add(1);
      }
      batch.push_back(std::move(**record));
    }
    if (batch.empty()) continue;
    if (!events.empty() && !PublishAll(events)) break;  // stopping: the batch will be routed again
    for (const kafka::Record& record : batch) {
      if (absl::Status s = consumer_.MarkDone(record); !s.ok()) {
        spdlog::warn("router: {}", std::string(s.message()));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace schakel::router
