// Process-wide logging with spdlog: readable lines on a terminal, or one JSON object per line.
// Log ids and codes only; never personal data (names, BSNs, client codes, free text).
#pragma once

#include <string>
#include <string_view>

namespace schakel::service {

// level: trace, debug, info, warn, error. Returns false for an unknown level (info is used).
bool SetupLogging(std::string_view service_name, bool json, std::string_view level = "info");

// Escapes text for use inside a JSON string.
std::string JsonEscape(std::string_view text);

}  // namespace schakel::service
