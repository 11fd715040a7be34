// Dead letters: a record a consumer cannot use goes to schakel.deadletters with the reason, so that
// the consumer can go on without losing it. Operators list and re-drive them with `schakelctl dlq`.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "libs/kafka/consumer.h"
#include "libs/kafka/publisher.h"
#include "schakel/v1/events.pb.h"

namespace schakel::deadletter {

// The key of a dead letter: "<topic>/<partition>/<offset>" of the original record.
std::string Key(const kafka::Record& record);
// The DeadLetter for `record`, refused by `consumer` because of `reason` (no payload in the
// reason).
v1::DeadLetter Make(const kafka::Record& record, std::string_view reason,
                    std::string_view consumer);

class DeadLetters {
 public:
  DeadLetters(kafka::Publisher& publisher, std::string consumer)
      : publisher_(publisher), consumer_(std::move(consumer)) {}

  // Publishes the dead letter and waits until Kafka acknowledged it, retrying (with a growing
  // pause) while it cannot; false only when `stopping` says to give up first (the record must then
  // not be marked done: it comes again after a restart).
  bool Send(const kafka::Record& record, std::string_view reason,
            const std::function<bool()>& stopping);

 private:
  kafka::Publisher& publisher_;
  std::string consumer_;
};

}  // namespace schakel::deadletter
