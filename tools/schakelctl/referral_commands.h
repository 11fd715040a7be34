// schakelctl submit|explain: a referral as a partner's system sends it (JSON of
// schakel.v1.Referral), submitted to intake as the organisation --as names, or shown to the
// router to see where it would go and why.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "schakel/v1/referral.pb.h"
#include "tools/schakelctl/context.h"

namespace schakel::ctl {

void AddReferralCommands(CLI::App& app, Context& context);

// The referral in the JSON text `json`, read from `path` (named in the error).
absl::StatusOr<v1::Referral> ParseReferral(const std::string& json, const std::string& path);

}  // namespace schakel::ctl
