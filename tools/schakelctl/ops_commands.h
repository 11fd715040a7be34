// schakelctl unroutable [reassign], referral, queues: what operators read straight from the topics
// with their Kafka identity (no personal data): the needs nobody could take, one referral's
// timeline across organisations, each organisation's queue; and reassign, which goes through the
// ops service as the operator the certificate names (operators write no topic).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "libs/kafka/consumer.h"
#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddOpsCommands(CLI::App& app, Context& context);

// The timeline of `referral_id` from the records of the status, unroutable and reassignment
// topics: one line per event of the referral, "<time>  <what>", oldest first (records that are
// no such event, or of another referral, are left out).
std::vector<std::string> ReferralTimeline(const std::string& referral_id,
                                          const std::vector<kafka::Record>& statuses,
                                          const std::vector<kafka::Record>& unroutable,
                                          const std::vector<kafka::Record>& reassignments);

}  // namespace schakel::ctl
