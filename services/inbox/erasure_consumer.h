// Right to erasure in the inbox: schakel.clients.erasures (ClientErased, written by the key service
// when an operator erases a client), read through the consume loop, purges that client's personal
// data from this inbox's database: name, contact and need details are removed from every assignment
// and from the changes feed; the assignments themselves stay (marked erased), so work on them goes
// on. A record is marked done only once the purge is durable; one that is no usable ClientErased
// goes to the inbox's dead letters.
#pragma once

#include <functional>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "libs/kafka/consume_loop.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox {

// Purges the client a ClientErased record names; the number of assignments erased now.
// INVALID_ARGUMENT when the record is not a usable ClientErased.
absl::StatusOr<std::size_t> ApplyErasure(store::InboxStore& store, const std::string& value);

class ErasureConsumer {
 public:
  // `source`, `store` and `dead_letters` must outlive this object. `on_fatal`: the process's policy
  // when the source fails for good (the loop then ends).
  ErasureConsumer(std::string organisation, kafka::RecordSource& source, store::InboxStore& store,
                  kafka::DeadLetterSink& dead_letters,
                  std::function<void(absl::Status)> on_fatal = nullptr);
  ~ErasureConsumer() { Stop(); }
  void Start() { loop_.Start(); }
  // Stops the loop; the caller then closes the source.
  void Stop() { loop_.Stop(); }

 private:
  kafka::BatchOutcome Handle(std::span<const kafka::Record> batch);
  std::string organisation_;
  store::InboxStore& store_;
  kafka::ConsumeLoop loop_;
};

}  // namespace schakel::inbox
