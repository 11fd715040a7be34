// Process-wide logging with spdlog: readable lines on a terminal, or one JSON object per line:
//   {"time":"…","level":"info","service":"router","msg":"router: a-…-0 declined (alpha); …",
//    "referral_ids":["r-…"],"assignment_ids":["a-…-0","a-…-0.1"]}
// where the id fields (present only when the message names ids) let a log search follow one
// referral across services. Log ids and codes only; never personal data (names, BSNs, client
// codes, free text).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace schakel::service {

// level: trace, debug, info, warn, error. Returns false for an unknown level (info is used).
bool SetupLogging(std::string_view service_name, bool json, std::string_view level = "info");

// Escapes text for use inside a JSON string.
std::string JsonEscape(std::string_view text);

// The referral ids ("r-" + 24 hex) and assignment ids ("a-" + 24 hex + "-N", "-N.M") a message
// names, each once in order of appearance; an assignment id also names its referral.
struct LoggedIds {
  std::vector<std::string> referral_ids;
  std::vector<std::string> assignment_ids;
};
LoggedIds IdsIn(std::string_view message);

}  // namespace schakel::service
