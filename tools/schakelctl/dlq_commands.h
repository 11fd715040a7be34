// schakelctl dlq list|redrive: the dead letters, the records a consumer could not use, each on its
// consumer's own schakel.deadletters.<principal>. list reads them (and ops' audit chain for which
// were re-driven) with your Kafka identity; redrive asks the ops service to publish originals
// again, as the operator your certificate names.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddDlqCommands(CLI::App& app, Context& context);

// Where a dead letter is: DEAD-LETTER-TOPIC/PARTITION/OFFSET, as `dlq list` shows it.
struct DeadLetterPlace {
  std::string topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
};
// The place `text` names; nullopt when it is not DEAD-LETTER-TOPIC/PARTITION/OFFSET.
std::optional<DeadLetterPlace> ParseDeadLetterPlace(const std::string& text);

}  // namespace schakel::ctl
