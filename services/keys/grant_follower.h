// Learns which organisation each assignment was offered to: the router's facts
// (topology::kStatusTopic, written by the router alone), of which every offer's REQUESTED status
// change by the network (referral::kNetworkName) is a grant, written in the same transaction as the
// offer itself. Read through the consume loop, with a grant stored for each, records marked done
// only once the grants are durable; every other fact is passed over. A record that is not a status
// change at all, or an offer without what a grant needs, is unusable and goes to the key service's
// dead letters.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "libs/kafka/consume_loop.h"
#include "libs/topology/topics.h"
#include "services/keys/key_store.h"

namespace schakel::keys {

// The grant a status record makes when it is an offer (REQUESTED, by the network); nullopt for any
// other fact. INVALID_ARGUMENT, saying why, for a record that does not parse or an offer without
// its organisation or ids.
absl::StatusOr<std::optional<Grant>> GrantOf(const std::string& value);

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
