#include "libs/deadletter/redrive.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/topology/topics.h"

namespace schakel::deadletter {

std::string Name(const Place& place) {
  return absl::StrCat(place.topic, "/", place.partition, "/", place.offset);
}

Place OriginalOf(const v1::DeadLetter& letter) {
  return {letter.topic(), letter.partition(), letter.offset()};
}

std::vector<std::string> InputsOf(const routing::Network& network, std::string_view principal) {
  if (principal == "router") {
    std::vector<std::string> inputs = {std::string(topology::kSubmittedTopic),
                                       std::string(topology::kCancellationsTopic),
                                       std::string(topology::kReassignTopic)};
    // Each organisation's own outgoing topic (its requests; only it writes it).
    for (const routing::Organisation& org : network.organisations) {
      inputs.push_back(topology::FromTopic(org.id));
    }
    return inputs;
  }
  if (principal == "intake") {
    return {std::string(topology::kSubmittedTopic), std::string(topology::kStatusTopic),
            std::string(topology::kUnroutableTopic)};
  }
  if (principal == "keys") return {std::string(topology::kStatusTopic)};
  for (const routing::Organisation& org : network.organisations) {
    if (principal == "inbox-" + org.id) {
      return {topology::InboxTopic(org.id), std::string(topology::kErasuresTopic)};
    }
  }
  return {};
}

absl::Status CheckOrigin(const routing::Network& network, std::string_view dead_letter_topic,
                         const v1::DeadLetter& letter) {
  const std::string principal = topology::DeadLetterPrincipalOf(network, dead_letter_topic);
  if (principal == "ops") {
    // What ops could not show is read again, from the beginning, at its next start: there is
    // nothing to publish again.
    return absl::InvalidArgumentError(absl::StrCat(
        "dead_letter_topic: '", std::string(dead_letter_topic),
        "' is no consumer's dead-letter topic that is re-driven: ops sets aside what it cannot "
        "show and reads it again at every start"));
  }
  if (principal.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dead_letter_topic: '", std::string(dead_letter_topic),
                     "' is no consumer's dead-letter topic of this network (",
                     std::string(topology::kDeadLetterTopicPrefix), "<principal>)"));
  }
  const std::vector<std::string> inputs = InputsOf(network, principal);
  const Place original = OriginalOf(letter);
  if (std::find(inputs.begin(), inputs.end(), letter.topic()) == inputs.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused: the dead letter names ", Name(original), ", but ",
                     letter.topic().empty() ? "''" : letter.topic(), " is not an input of ",
                     principal, ", whose dead-letter topic it is on (", principal, " reads ",
                     absl::StrJoin(inputs, ", "), "); nothing was published"));
  }
  if (letter.topic() == topology::kStatusTopic) {
    // The facts, the offers the key service grants keys on among them: only the router writes
    // them, so that what they say is the router's word; a copy by anyone else, ops included, would
    // not be.
    return absl::FailedPreconditionError(
        absl::StrCat("refused: ", letter.topic(),
                     " is written by the router only; its records are not re-driven"));
  }
  if (letter.partition() < 0 || letter.offset() < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused: the dead letter names ", Name(original), ", which is no place"));
  }
  return absl::OkStatus();
}

absl::Status CheckOriginal(const v1::DeadLetter& letter, const kafka::Record& original) {
  const std::string where = Name(OriginalOf(letter));
  if (original.key != letter.key()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused: the dead letter's key differs from the record's at ", where,
                     " (the dead letter was planted or altered); nothing was published"));
  }
  if (original.value != letter.value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused: the dead letter's value differs from the record's at ", where,
                     " (the dead letter was planted or altered); nothing was published"));
  }
  return absl::OkStatus();
}

}  // namespace schakel::deadletter
