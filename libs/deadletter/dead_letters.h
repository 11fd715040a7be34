// Dead letters: a record a consumer cannot use goes to its own dead-letter topic,
// schakel.deadletters.<principal> (topology::DeadLetterTopic), with the reason, so that the
// consumer can go on without losing it. Only that principal may write its topic, so the topic
// proves who set the record aside. Operators list them with `schakelctl dlq list` and re-drive them
// through ops
// (`schakelctl dlq redrive`, the console), which republishes the original record, re-read from its
// topic, never the copy in the dead letter.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "libs/kafka/consume_loop.h"
#include "libs/kafka/consumer.h"
#include "libs/kafka/publisher.h"
#include "libs/routing/network.h"
#include "libs/topology/topics.h"
#include "schakel/v1/events.pb.h"

namespace schakel::deadletter {

// The key of a dead letter: "<topic>/<partition>/<offset>" of the original record.
std::string Key(const kafka::Record& record);
// The DeadLetter for `record`, refused by `consumer` because of `reason` (no payload in the
// reason).
v1::DeadLetter Make(const kafka::Record& record, std::string_view reason,
                    std::string_view consumer);

// The consume loop's dead letters (kafka::ConsumeLoopOptions::dead_letters).
class DeadLetters final : public kafka::DeadLetterSink {
 public:
  // `consumer` names the consumer in each dead letter (e.g. "intake-view"); `principal` is the
  // Kafka principal it runs as, whose dead-letter topic it writes (e.g. "intake").
  DeadLetters(kafka::Publisher& publisher, std::string consumer, std::string_view principal)
      : publisher_(publisher),
        consumer_(std::move(consumer)),
        topic_(topology::DeadLetterTopic(principal)) {}

  const std::string& topic() const { return topic_; }

  // Publishes the dead letter and waits until Kafka acknowledged it, retrying (with a growing
  // pause) while it cannot; false only when `stopping` says to give up first (the record must then
  // not be marked done: it comes again after a restart).
  bool Send(const kafka::Record& record, std::string_view reason,
            const std::function<bool()>& stopping) override;

 private:
  kafka::Publisher& publisher_;
  std::string consumer_;
  std::string topic_;
};

}  // namespace schakel::deadletter
