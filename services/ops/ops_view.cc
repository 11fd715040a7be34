#include "services/ops/ops_view.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/topology/topics.h"

namespace schakel::ops {
namespace {

using google::protobuf::util::TimeUtil;

std::string Iso(const google::protobuf::Timestamp& t) {
  // Whole seconds are enough for operators: "2026-11-29T00:30:00Z".
  google::protobuf::Timestamp whole;
  whole.set_seconds(t.seconds());
  return TimeUtil::ToString(whole);
}

std::string Iso(std::chrono::system_clock::time_point t) {
  return Iso(TimeUtil::SecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count()));
}

prometheus::ClientMetric Gauge(std::map<std::string, std::string> labels, double value) {
  prometheus::ClientMetric metric;
  for (auto& [name, label_value] : labels) metric.label.push_back({name, label_value});
  metric.gauge.value = value;
  return metric;
}

}  // namespace

std::vector<std::string> OpsView::Topics() const {
  std::vector<std::string> topics = {std::string(topology::kStatusTopic),
                                     std::string(topology::kUnroutableTopic),
                                     std::string(topology::kReassignTopic)};
  for (const routing::Organisation& org : network_.organisations) {
    topics.push_back(topology::LoadTopic(org.id));
    topics.push_back(topology::InboxTopic(org.id));
  }
  for (const std::string& principal : topology::DeadLetterPrincipals(network_)) {
    topics.push_back(topology::DeadLetterTopic(principal));
  }
  return topics;
}

absl::Status OpsView::Apply(const kafka::Record& record) {
  absl::MutexLock lock(&mu_);
  ++records_;
  absl::Status used = ApplyLocked(record);
  if (!used.ok() && !absl::IsFailedPrecondition(used)) ++unreadable_;
  return used;
}

absl::Status OpsView::ApplyLocked(const kafka::Record& record) {
  auto unreadable = [](const char* what) {
    return absl::InvalidArgumentError(absl::StrCat("not a ", what, " event"));
  };
  if (record.topic == topology::kStatusTopic) {
    v1::AssignmentStatusChanged change;
    if (!change.ParseFromString(record.value)) return unreadable("AssignmentStatusChanged");
    queues_.AddStatus(change);
  } else if (record.topic == topology::kUnroutableTopic) {
    v1::ReferralUnroutable unroutable;
    if (!unroutable.ParseFromString(record.value)) return unreadable("ReferralUnroutable");
    unroutable_.AddUnroutable(unroutable);
  } else if (record.topic == topology::kReassignTopic) {
    v1::ReassignRequested reassign;
    if (!reassign.ParseFromString(record.value)) return unreadable("ReassignRequested");
    unroutable_.AddReassign(reassign);
  } else if (record.topic.starts_with(topology::kDeadLetterTopicPrefix)) {
    v1::DeadLetter letter;
    if (record.value.empty() || !letter.ParseFromString(record.value)) {
      return unreadable("DeadLetter");
    }
    DeadLetterRow row = DeadLetterRowOf(letter);
    row.letter_topic = record.topic;
    row.letter_partition = record.partition;
    row.letter_offset = record.offset;
    dead_letters_.push_back(std::move(row));
  } else if (record.topic.rfind(topology::kLoadTopicPrefix, 0) == 0) {
    v1::InboxLoad load;
    if (!load.ParseFromString(record.value)) return unreadable("InboxLoad");
    // Whose report it is, the topic says (only that organisation writes it): one claiming another
    // organisation is not believed, or it could point the other's lag at a group of its choosing.
    if (record.topic != topology::LoadTopic(load.organisation())) {
      ++forged_;
      spdlog::warn("ops: load report on {} ignored: it claims organisation \"{}\"", record.topic,
                   absl::CHexEscape(load.organisation().substr(0, 64)));
      return absl::FailedPreconditionError(
          absl::StrCat("a load report on ", record.topic, " claims another organisation"));
    }
    if (!load.consumer_group().empty()) groups_[load.organisation()] = load.consumer_group();
  } else {
    // An inbox topic: everything on it is for its inbox to consume (the lag), offers count.
    for (const routing::Organisation& org : network_.organisations) {
      if (record.topic != topology::InboxTopic(org.id)) continue;
      topic_records_[org.id].Seen(record.partition, record.offset);
      v1::InboxEvent event;
      if (!event.ParseFromString(record.value)) return unreadable("InboxEvent");
      // An offer for another organisation on this one's topic is not the router's (the topic has
      // two writers: the router's offers, and the organisation's own echoes): not counted.
      if (event.has_requested() && event.requested().organisation() != org.id) {
        ++forged_;
        spdlog::warn("ops: an offer on {} for another organisation ignored", record.topic);
        return absl::FailedPreconditionError(
            absl::StrCat("an offer on ", record.topic, " for another organisation"));
      }
      if (event.has_requested()) {
        queues_.AddOffer(event.requested());
        unroutable_.AddOffer(event.requested());
      }
      break;
    }
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> OpsView::ConsumerGroups() const {
  absl::MutexLock lock(&mu_);
  return groups_;
}

void OpsView::SetCommitted(const std::string& organisation,
                           std::map<std::int32_t, std::int64_t> committed) {
  absl::MutexLock lock(&mu_);
  committed_[organisation] = std::move(committed);
}

std::map<std::string, std::int64_t> OpsView::LagLocked() const {
  std::map<std::string, std::int64_t> lag;
  for (const auto& [org, committed] : committed_) {
    const auto records = topic_records_.find(org);
    lag[org] = records == topic_records_.end() ? 0 : records->second.Behind(committed);
  }
  return lag;
}

nlohmann::json OpsView::Overview(std::chrono::system_clock::time_point now, bool kafka_reachable,
                                 const std::string& bootstrap) const {
  absl::MutexLock lock(&mu_);
  nlohmann::json out;
  out["generated_at"] = Iso(now);
  out["kafka"] = {{"reachable", kafka_reachable}, {"bootstrap", bootstrap}};
  nlohmann::json organisations = nlohmann::json::array();
  for (const QueueRow& row : queues_.Rows(network_, now, LagLocked())) {
    const routing::Organisation* org = network_.FindOrganisation(row.organisation);
    organisations.push_back({{"id", row.organisation},
                             {"name", org != nullptr ? org->name : row.organisation},
                             {"waiting", row.waiting},
                             {"overdue", row.overdue},
                             {"accepted", row.accepted},
                             {"in_progress", row.in_progress},
                             {"done", row.done},
                             {"lag", row.lag},
                             {"offered_per_minute", row.offered_per_minute},
                             {"accepted_per_minute", row.accepted_per_minute}});
  }
  out["organisations"] = std::move(organisations);
  nlohmann::json unroutable = nlohmann::json::array();
  for (const UnroutableNeed& need : unroutable_.Needs()) {
    nlohmann::json passed = nlohmann::json::array();
    for (const v1::PassedOver& p : need.passed_over) {
      passed.push_back({{"organisation", p.organisation()}, {"reason", p.reason()}});
    }
    unroutable.push_back({{"referral_id", need.referral_id},
                          {"need_index", need.need_index},
                          {"need_code", need.need_code},
                          {"urgency", v1::Urgency_Name(need.urgency)},
                          {"region", need.region},
                          {"referring_organisation", need.referring_organisation},
                          {"at", Iso(need.at)},
                          {"passed_over", std::move(passed)},
                          {"reassigned_to", need.reassigned_to},
                          {"requested_to", need.requested_to}});
  }
  out["unroutable"] = std::move(unroutable);
  nlohmann::json letters = nlohmann::json::array();
  for (const DeadLetterRow& l : dead_letters_) {
    letters.push_back({{"key", l.key},
                       {"topic", l.topic},
                       {"partition", l.partition},
                       {"offset", l.offset},
                       {"consumer", l.consumer},
                       {"dead_letter",
                        {{"topic", l.letter_topic},
                         {"partition", l.letter_partition},
                         {"offset", l.letter_offset}}},
                       {"reason", l.reason},
                       {"at", Iso(l.at)}});
  }
  out["dead_letters"] = std::move(letters);
  return out;
}

absl::StatusOr<v1::ReassignRequested> OpsView::PrepareReassign(const std::string& referral_id,
                                                               std::uint32_t need_index,
                                                               const std::string& organisation,
                                                               const std::string& reason,
                                                               const std::string& by) const {
  absl::MutexLock lock(&mu_);
  if (absl::Status s =
          unroutable_.CheckReassign(network_, referral_id, need_index, organisation, reason);
      !s.ok()) {
    return s;
  }
  return unroutable_.MakeReassign(*unroutable_.Find(referral_id, need_index), organisation, reason,
                                  by);
}

void OpsView::Reassigned(const v1::ReassignRequested& event) {
  absl::MutexLock lock(&mu_);
  unroutable_.AddReassign(event);
}

std::vector<prometheus::MetricFamily> OpsView::Families(
    std::chrono::system_clock::time_point now) const {
  absl::MutexLock lock(&mu_);
  prometheus::MetricFamily assignments{
      .name = "schakel_assignments",
      .help =
          "Open assignments per organisation and need, by state (waiting includes overdue; "
          "overdue: waiting past the network's SLA for its urgency)",
      .type = prometheus::MetricType::Gauge,
      .metric = {}};
  for (const QueueCell& cell : queues_.Cells(network_, now)) {
    const std::pair<const char*, int> states[] = {{"waiting", cell.waiting},
                                                  {"overdue", cell.overdue},
                                                  {"accepted", cell.accepted},
                                                  {"in_progress", cell.in_progress}};
    for (const auto& [state, value] : states) {
      assignments.metric.push_back(Gauge(
          {{"need", cell.need}, {"organisation", cell.organisation}, {"state", state}}, value));
    }
  }
  prometheus::MetricFamily unroutable{
      .name = "schakel_unroutable_needs",
      .help = "Needs in the unroutable queue (not reassigned), per need and referring organisation",
      .type = prometheus::MetricType::Gauge,
      .metric = {}};
  std::map<std::pair<std::string, std::string>, int> open;
  for (const UnroutableNeed& need : unroutable_.Needs()) {
    if (need.reassigned_to.empty()) ++open[{need.need_code, need.referring_organisation}];
  }
  for (const auto& [key, count] : open) {
    unroutable.metric.push_back(
        Gauge({{"need", key.first}, {"referring_organisation", key.second}}, count));
  }
  prometheus::MetricFamily dead{.name = "schakel_dead_letters",
                                .help =
                                    "Records set aside on schakel.deadletters.*, per topic and "
                                    "the consumer that could not use them",
                                .type = prometheus::MetricType::Gauge,
                                .metric = {}};
  std::map<std::pair<std::string, std::string>, int> letters;
  for (const DeadLetterRow& l : dead_letters_) ++letters[{l.consumer, l.topic}];
  for (const auto& [key, count] : letters) {
    dead.metric.push_back(Gauge({{"consumer", key.first}, {"topic", key.second}}, count));
  }
  prometheus::MetricFamily lag{
      .name = "schakel_inbox_lag",
      .help = "Records on an organisation's topic its inbox has not consumed yet",
      .type = prometheus::MetricType::Gauge,
      .metric = {}};
  for (const auto& [org, behind] : LagLocked()) {
    lag.metric.push_back(Gauge({{"organisation", org}}, static_cast<double>(behind)));
  }
  return {assignments, unroutable, dead, lag};
}

std::uint64_t OpsView::records() const {
  absl::MutexLock lock(&mu_);
  return records_;
}

std::uint64_t OpsView::forged() const {
  absl::MutexLock lock(&mu_);
  return forged_;
}

std::uint64_t OpsView::unreadable() const {
  absl::MutexLock lock(&mu_);
  return unreadable_;
}

}  // namespace schakel::ops
