// An operator's redrive of a dead letter, done by ops (POST /api/redrive, `schakelctl dlq
// redrive`): read the dead letter where the operator says it is; check that the record it names is
// an input of the consumer whose dead-letter topic it is on (libs/deadletter/redrive.h); re-read
// that original record at its topic, partition and offset and check the dead letter holds exactly
// it; publish the original's key and value to its topic again; record the redrive in ops' audit
// chain with the operator's name. Once per dead letter: a second redrive is refused, naming when
// and by whom the first was done, also after ops restarted (the audit chain is where it finds
// earlier redrives).
//
// The Kafka and audit work is injected (Io), so the sequence is tested without a broker
// (redrive_test.cc) and main.cc gives it the real thing (tests/e2e/redrive_e2e_test.cc).
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/deadletter/redrive.h"
#include "libs/kafka/consumer.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"
#include "services/ops/console_http.h"

namespace schakel::ops {

// An earlier redrive of a dead letter: when (ISO 8601, UTC) and by whom.
struct PastRedrive {
  std::string at;
  std::string by;
};

// The audit entry's reason for the redrive of the dead letter at `dead_letter` ("<topic>/<p>/<o>"):
// how the redrive is found again.
std::string RedriveReason(const std::string& dead_letter);

class Redriver {
 public:
  struct Io {
    // The record at a place (kafka::ReadAt): NOT_FOUND when there is none.
    std::function<absl::StatusOr<kafka::Record>(const deadletter::Place&)> read;
    // Publishes and waits until Kafka acknowledged it.
    std::function<absl::Status(const std::string& topic, const std::string& key,
                               const std::string& value)>
        publish;
    // The earlier redrive of the dead letter at `dead_letter`, recorded in ops' audit chain.
    std::function<absl::StatusOr<std::optional<PastRedrive>>(const std::string& dead_letter)> find;
    // Records the redrive in ops' audit chain and waits until it is committed.
    std::function<absl::Status(const std::string& dead_letter, const v1::DeadLetter& letter,
                               const std::string& by)>
        record;
    // Now, as ISO 8601 (UTC).
    std::function<std::string()> now;
  };

  Redriver(routing::Network network, Io io) : network_(std::move(network)), io_(std::move(io)) {}

  // What was re-driven ({"dead_letter", "original", "consumer"}), or: INVALID_ARGUMENT (no
  // consumer's dead-letter topic), NOT_FOUND (no dead letter there, or its original is gone),
  // FAILED_PRECONDITION (re-driven already; not a dead letter; a record its consumer does not read;
  // a copy that differs from the original), UNAVAILABLE (Kafka). Nothing is published unless every
  // check passed. One redrive at a time.
  absl::StatusOr<nlohmann::json> Redrive(const RedriveRequest& request) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const routing::Network network_;
  Io io_;
  absl::Mutex mu_;  // held for a whole redrive
  // Redriven by this process (also found in the chain).
  std::map<std::string, PastRedrive> done_ ABSL_GUARDED_BY(mu_);
};

}  // namespace schakel::ops
