// Learns which organisation each assignment was offered to: a thread that consumes the grants topic
// (topology::kKeyGrantsTopic, written by the router alone: one REQUESTED status change for each
// offer, in the same transaction as the offer itself) and stores a grant for each, marking records
// done only once the grants are durable.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <thread>

#include "libs/kafka/consumer.h"
#include "libs/topology/topics.h"
#include "services/keys/key_store.h"

namespace schakel::keys {

// The grant a status record makes, if any (nullopt for every other record, and for one that does
// not parse: the key service only needs the offers).
std::optional<Grant> GrantOf(const std::string& value);

class GrantFollower {
 public:
  // `stored` (when given) runs on the follower's thread after each batch of grants is stored.
  GrantFollower(kafka::Consumer& consumer, KeyStore& store, std::function<void()> stored = nullptr)
      : consumer_(consumer), store_(store), stored_(std::move(stored)) {}
  ~GrantFollower() { Stop(); }
  void Start();
  // Stops the thread; the caller then closes the consumer.
  void Stop();

 private:
  void Run();
  kafka::Consumer& consumer_;
  KeyStore& store_;
  std::function<void()> stored_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace schakel::keys
