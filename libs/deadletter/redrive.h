// What ops checks before it re-drives a dead letter (an operator's request, through its API): the
// dead letter's own topic says which consumer set it aside (only that principal may write it), so
// the record it names must be one that consumer reads; and what is published again is the original
// record, re-read at the place the dead letter names, never the dead letter's copy of it. A dead
// letter whose copy differs from the original is refused: it was planted or altered.
//
// Pure: services/ops/redrive.h does the reading, publishing and recording.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"

namespace schakel::deadletter {

// A place in Kafka: a dead letter's, or an original record's.
struct Place {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  friend bool operator==(const Place&, const Place&) = default;
};
// "<topic>/<partition>/<offset>".
std::string Name(const Place& place);
// The place a dead letter names (the original record's).
Place OriginalOf(const v1::DeadLetter& letter);

// The topics `principal` consumes, whose records may be in its dead letters: the router its
// inputs (submitted, cancellations, reassignments, each organisation's schakel.from.<org>, status,
// forwarding); intake its view's (submitted, status, unroutable); the key service the grants; an
// inbox its own topic and the erasures. Empty for a principal whose dead letters are not re-driven
// (ops) or that dead-letters nothing.
std::vector<std::string> InputsOf(const routing::Network& network, std::string_view principal);

// Whether the dead letter found on `dead_letter_topic` may be re-driven: that topic is a consumer's
// dead-letter topic of `network` (INVALID_ARGUMENT otherwise) and the record the letter names is on
// one of that consumer's inputs (FAILED_PRECONDITION otherwise, saying what it reads). The grants
// topic, which only the router writes, is refused too. Ops' own dead letters are never re-driven
// (INVALID_ARGUMENT): ops reads its topics again from their beginning at every start.
absl::Status CheckOrigin(const routing::Network& network, std::string_view dead_letter_topic,
                         const v1::DeadLetter& letter);

// Whether `original` (read at the place the letter names) is the record the letter holds: the same
// key and value, byte for byte (FAILED_PRECONDITION otherwise; no payload in the message).
absl::Status CheckOriginal(const v1::DeadLetter& letter, const kafka::Record& original);

}  // namespace schakel::deadletter
