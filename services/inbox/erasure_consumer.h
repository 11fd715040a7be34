// Right to erasure in the inbox: a thread that reads schakel.clients.erasures (ClientErased,
// written by the key service when an operator erases a client) and purges that client's personal
// data from this inbox's database: name, contact and need details are removed from every assignment
// and from the changes feed; the assignments themselves stay (marked erased), so work on them goes
// on. A record is marked done only once the purge is durable.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox {

// Purges the client a ClientErased record names; the number of assignments erased now.
// INVALID_ARGUMENT when the record is not a usable ClientErased.
absl::StatusOr<std::size_t> ApplyErasure(store::InboxStore& store, const std::string& value);

class ErasureConsumer {
 public:
  ErasureConsumer(std::string organisation, kafka::Consumer& consumer, store::InboxStore& store)
      : organisation_(std::move(organisation)), consumer_(consumer), store_(store) {}
  ~ErasureConsumer() { Stop(); }
  void Start();
  // Stops the thread; the caller then closes the consumer.
  void Stop();

 private:
  void Run();
  std::string organisation_;
  kafka::Consumer& consumer_;
  store::InboxStore& store_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace schakel::inbox
