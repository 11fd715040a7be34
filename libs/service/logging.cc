#include "libs/service/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace schakel::service {
namespace {

// %j: the message, escaped for a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string escaped =
        JsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return spdlog::details::make_unique<JsonMessageFlag>();
  }
};

// %I: the ids the message names, as JSON fields after "msg" (nothing when it names none).
class JsonIdsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const LoggedIds ids = IdsIn(std::string_view(msg.payload.data(), msg.payload.size()));
    std::string out;
    auto field = [&out](const char* name, const std::vector<std::string>& values) {
      if (values.empty()) return;
      out += std::string(",\"") + name + "\":[";
      for (std::size_t i = 0; i < values.size(); ++i) {
        out += (i == 0 ? "\"" : ",\"") + values[i] + "\"";  // ids need no escaping
      }
      out += "]";
    };
    field("referral_ids", ids.referral_ids);
    field("assignment_ids", ids.assignment_ids);
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return spdlog::details::make_unique<JsonIdsFlag>();
  }
};

bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
constexpr std::size_t kIdHex = 24;

void AddOnce(std::vector<std::string>& list, std::string id) {
  if (std::find(list.begin(), list.end(), id) == list.end()) list.push_back(std::move(id));
}

}  // namespace

LoggedIds IdsIn(std::string_view message) {
  LoggedIds ids;
  for (std::size_t i = 0; i + 2 + kIdHex <= message.size(); ++i) {
    const char kind = message[i];
    if ((kind != 'r' && kind != 'a') || message[i + 1] != '-') continue;
    if (i > 0 && (std::isalnum(static_cast<unsigned char>(message[i - 1])) ||
                  message[i - 1] == '-' || message[i - 1] == '_')) {
      continue;  // inside a word
    }
    std::size_t end = i + 2;
    while (end < message.size() && end < i + 2 + kIdHex && IsHex(message[end])) ++end;
    if (end != i + 2 + kIdHex) continue;
    const std::string_view hex = message.substr(i + 2, kIdHex);
    if (kind == 'r') {
      if (end < message.size() && IsHex(message[end])) continue;  // longer than an id
      AddOnce(ids.referral_ids, "r-" + std::string(hex));
      i = end - 1;
      continue;
    }
    // a-<hex>-N, then .M steps
    if (end + 1 >= message.size() || message[end] != '-' || !IsDigit(message[end + 1])) continue;
    end += 1;
    while (end < message.size() &&
           (IsDigit(message[end]) ||
            (message[end] == '.' && end + 1 < message.size() && IsDigit(message[end + 1])))) {
      ++end;
    }
    AddOnce(ids.referral_ids, "r-" + std::string(hex));
    AddOnce(ids.assignment_ids, std::string(message.substr(i, end - i)));
    i = end - 1;
  }
  return ids;
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

bool SetupLogging(std::string_view service_name, bool json, std::string_view level) {
  // Again under the same name (a test, a process that logs before and after its flags): replaced.
  spdlog::drop(std::string(service_name));
  auto logger = spdlog::stderr_color_mt(std::string(service_name));
  spdlog::set_default_logger(logger);
  if (json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessageFlag>('j').add_flag<JsonIdsFlag>('I').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%f%z","level":"%l","service":"%n","msg":"%j"%I})");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %n: %v");
  }
  const spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  const bool known = parsed != spdlog::level::off || level == "off";
  spdlog::set_level(known ? parsed : spdlog::level::info);
  return known;
}

}  // namespace schakel::service
