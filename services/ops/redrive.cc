#include "services/ops/redrive.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "libs/topology/topics.h"

namespace schakel::ops {

std::string RedriveReason(const std::string& dead_letter) {
  return absl::StrCat("redrive ", dead_letter);
}

absl::StatusOr<nlohmann::json> Redriver::Redrive(const RedriveRequest& request) {
  absl::MutexLock lock(&mu_);
  const deadletter::Place at{request.dead_letter_topic, request.partition, request.offset};
  const std::string name = deadletter::Name(at);
  const std::string principal = topology::DeadLetterPrincipalOf(network_, at.topic);
  if (principal.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dead_letter_topic: '", at.topic, "' is no consumer's dead-letter topic of this network (",
        std::string(topology::kDeadLetterTopicPrefix), "<principal>)"));
  }
  // Once: this process's own redrives, then the audit chain (an earlier process's).
  std::optional<PastRedrive> past;
  if (auto it = done_.find(name); it != done_.end()) {
    past = it->second;
  } else {
    absl::StatusOr<std::optional<PastRedrive>> found = io_.find(name);
    if (!found.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot tell whether ", name, " was re-driven before: ", found.status().message()));
    }
    past = *found;
  }
  if (past) {
    return absl::FailedPreconditionError(absl::StrCat("refused: ", name, " was re-driven at ",
                                                      past->at, " by ", past->by,
                                                      "; a dead letter is re-driven once"));
  }

  absl::StatusOr<kafka::Record> stored = io_.read(at);
  if (!stored.ok()) {
    if (absl::IsNotFound(stored.status())) {
      return absl::NotFoundError(absl::StrCat("no dead letter at ", name));
    }
    return stored.status();
  }
  v1::DeadLetter letter;
  if (stored->value.empty() || !letter.ParseFromString(stored->value)) {
    return absl::FailedPreconditionError(
        absl::StrCat("refused: the record at ", name, " is not a DeadLetter"));
  }
  if (absl::Status s = deadletter::CheckOrigin(network_, at.topic, letter); !s.ok()) {
    spdlog::warn("ops: redrive of {} by {} refused: {}", name, request.by,
                 std::string(s.message()));
    return s;
  }
  const deadletter::Place original_at = deadletter::OriginalOf(letter);
  absl::StatusOr<kafka::Record> original = io_.read(original_at);
  if (!original.ok()) {
    if (absl::IsNotFound(original.status())) {
      return absl::NotFoundError(absl::StrCat("refused: ", original.status().message(),
                                              ", where the dead letter at ", name,
                                              " says its original is; nothing was published"));
    }
    return original.status();
  }
  if (absl::Status s = deadletter::CheckOriginal(letter, *original); !s.ok()) {
    spdlog::warn("ops: redrive of {} by {} refused: {}", name, request.by,
                 std::string(s.message()));
    return s;
  }

  // The original's bytes, as they are at its place: never the dead letter's copy.
  if (absl::Status s = io_.publish(original->topic, original->key, original->value); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("Kafka did not take the redrive of ", name, ": ", s.message()));
  }
  done_[name] = {io_.now(), request.by};
  spdlog::info("ops: re-drove {} ({} of {}) to {}, by {}", name, deadletter::Name(original_at),
               principal, original->topic, request.by);
  if (absl::Status s = io_.record(name, letter, request.by); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("re-driven, but its audit entry was not recorded: ", s.message()));
  }
  return nlohmann::json{{"dead_letter", name},
                        {"original", deadletter::Name(original_at)},
                        {"consumer", principal},
                        {"by", request.by}};
}

}  // namespace schakel::ops
