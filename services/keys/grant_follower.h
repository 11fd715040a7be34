// Learns which organisation each assignment was offered to: the grants topic
// (topology::kKeyGrantsTopic, written by the router alone: one REQUESTED status change for each
// offer, in the same transaction as the offer itself), read through the consume loop, with a grant
// stored for each, records marked done only once the grants are durable. Anything else on that
// topic is unusable and goes to the key service's dead letters.
#pragma once

#include <functional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "libs/kafka/consume_loop.h"
#include "libs/topology/topics.h"
#include "services/keys/key_store.h"

namespace schakel::keys {

// The grant an offer's status record makes. INVALID_ARGUMENT, saying why, for a record that does
// not parse or is not an offer.
absl::StatusOr<Grant> GrantOf(const std::string& value);

class GrantFollower {
 public:
  // `stored` (when given) runs on the loop's thread after each batch of grants is stored.
  // `on_fatal`: the process's policy when the source fails for good (the loop then ends).
  GrantFollower(kafka::RecordSource& source, KeyStore& store, kafka::DeadLetterSink& dead_letters,
                std::function<void()> stored = nullptr,
                std::function<void(absl::Status)> on_fatal = nullptr);
  ~GrantFollower() { Stop(); }
  void Start() { loop_.Start(); }
  // Stops the loop; the caller then closes the source.
  void Stop() { loop_.Stop(); }

 private:
  kafka::BatchOutcome Handle(std::span<const kafka::Record> batch);
  KeyStore& store_;
  std::function<void()> stored_;
  kafka::ConsumeLoop loop_;
};

}  // namespace schakel::keys
