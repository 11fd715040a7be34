#include "services/ops/actions.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "libs/audit/entry.h"
#include "libs/kafka/transactional_producer.h"
#include "libs/referral/clock.h"
#include "libs/topology/topic_specs.h"

namespace schakel::ops {
namespace {

constexpr std::chrono::seconds kWait(15);

// Publishes and waits (at most kWait) for Kafka's answer: nullopt when none came in time.
std::optional<absl::Status> PublishAndWait(kafka::Publisher& publisher, const std::string& topic,
                                           const std::string& key, const std::string& value) {
  auto acknowledged = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> outcome = acknowledged->get_future();
  publisher.Publish(topic, key, value,
                    [acknowledged](absl::Status s) { acknowledged->set_value(std::move(s)); });
  if (outcome.wait_for(kWait) != std::future_status::ready) return std::nullopt;
  return outcome.get();
}

// ISO 8601 (UTC, to the second) of a protobuf time.
std::string Iso(const google::protobuf::Timestamp& at) {
  return google::protobuf::util::TimeUtil::ToString(at).substr(0, 19) + "Z";
}

}  // namespace

ConsoleServer::Reassign KafkaReassign(OpsView& view, kafka::Publisher& publisher,
                                      audit::AuditLog& audit_log) {
  return [&view, &publisher, &audit_log](const ReassignRequest& r) -> absl::Status {
    absl::StatusOr<v1::ReassignRequested> event =
        view.PrepareReassign(r.referral_id, r.need_index, r.organisation, r.reason, r.by);
    if (!event.ok()) return event.status();
    const std::optional<absl::Status> acknowledged =
        PublishAndWait(publisher, std::string(topology::kReassignTopic),
                       event->meta().referral_id(), event->SerializeAsString());
    if (!acknowledged) {
      return absl::UnavailableError("Kafka did not acknowledge the reassignment in time");
    }
    if (!acknowledged->ok()) {
      return absl::UnavailableError(
          absl::StrCat("Kafka did not take the reassignment: ", acknowledged->message()));
    }
    view.Reassigned(*event);
    spdlog::info("ops: reassignment of {} (need {}) to {} sent, by {}",
                 event->meta().assignment_id(), event->need_index(), event->to_organisation(),
                 r.by);
    // The operator's own words stay on the reassignment topic: the audit entry carries ids only.
    v1::AuditSubject subject;
    subject.set_referral_id(event->meta().referral_id());
    subject.add_assignment_ids(event->meta().assignment_id());
    subject.set_organisation(event->to_organisation());
    if (absl::Status audited = audit_log.RecordAndWait(
            audit::NewEntry(audit::OperatorActor(r.by), audit::kUnroutableReassigned, subject,
                            "console: reassign an unroutable need"),
            kWait);
        !audited.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "the reassignment was sent, but its audit entry was not recorded: ", audited.message()));
    }
    return absl::OkStatus();
  };
}

Redriver::Io KafkaRedriveIo(const std::string& bootstrap_servers, const routing::Network& network,
                            kafka::Publisher& publisher, audit::AuditLog& audit_log) {
  return {
      .read =
          [bootstrap_servers](const deadletter::Place& at) {
            return kafka::ReadAt(bootstrap_servers, at.topic, at.partition, at.offset, kWait);
          },
      .publish = [&publisher](const std::string& topic, const std::string& key,
                              const std::string& value) -> absl::Status {
        const std::optional<absl::Status> acknowledged =
            PublishAndWait(publisher, topic, key, value);
        return acknowledged ? *acknowledged : absl::UnavailableError("not acknowledged in time");
      },
      // Earlier redrives are in the chain "ops" (one partition; read to its end each time: a
      // redrive is rare, and the chain is the record that survives a restart).
      .find = [bootstrap_servers](
                  const std::string& dead_letter) -> absl::StatusOr<std::optional<PastRedrive>> {
        std::optional<PastRedrive> past;
        const std::string reason = RedriveReason(dead_letter);
        absl::Status read = kafka::ReadToEnd(
            bootstrap_servers, topology::AuditTopic("ops"), {0}, std::chrono::seconds(30),
            [&](const kafka::Record& record, bool tombstone) {
              v1::AuditEntry entry;
              if (tombstone || !entry.ParseFromString(record.value)) return;
              if (entry.action() == audit::kDeadLetterRedriven && entry.reason() == reason &&
                  !past) {
                past = PastRedrive{Iso(entry.at()), entry.actor().id()};
              }
            });
        if (!read.ok()) return read;
        return past;
      },
      .record = [&network, &audit_log](const std::string& dead_letter, const v1::DeadLetter&,
                                       const std::string& by) -> absl::Status {
        // Ids only: the dead letter's place (why), and the organisation whose inbox set it aside.
        v1::AuditSubject subject;
        const std::string principal =
            topology::DeadLetterPrincipalOf(network, dead_letter.substr(0, dead_letter.find('/')));
        if (principal.rfind("inbox-", 0) == 0) subject.set_organisation(principal.substr(6));
        return audit_log.RecordAndWait(
            audit::NewEntry(audit::OperatorActor(by), audit::kDeadLetterRedriven, subject,
                            RedriveReason(dead_letter)),
            kWait);
      },
      .now = [] { return Iso(referral::Now()); }};
}

}  // namespace schakel::ops
