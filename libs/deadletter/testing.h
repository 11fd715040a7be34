// For unit tests of consumers: the dead letters a kafka::testing::RecordingPublisher was given, one
// line each, so that a test states exactly where each went and why.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "libs/kafka/fakes.h"
#include "schakel/v1/events.pb.h"

namespace schakel::deadletter::testing {

// "<dead-letter topic> <original topic/partition/offset>: <reason> (<consumer>)" for each dead
// letter published, in order; "<topic> <key>: not a DeadLetter" for anything else.
inline std::vector<std::string> Sent(kafka::testing::RecordingPublisher& publisher) {
  std::lock_guard<std::mutex> lock(publisher.mu);
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < publisher.keys.size(); ++i) {
    v1::DeadLetter letter;
    sent.push_back(publisher.keys[i] + ": " +
                   (letter.ParseFromString(publisher.values[i])
                        ? letter.reason() + " (" + letter.consumer() + ")"
                        : std::string("not a DeadLetter")));
  }
  return sent;
}

}  // namespace schakel::deadletter::testing
