#include "libs/kafka/client_config.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <optional>

#include "absl/base/const_init.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace schakel::kafka {
namespace {

ABSL_CONST_INIT absl::Mutex mu(absl::kConstInit);
std::optional<Properties> configured ABSL_GUARDED_BY(mu);

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

absl::StatusOr<Properties> ReadClientConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("kafka client config ", path, ": cannot read"));
  Properties properties;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string_view text = Trim(line);
    if (text.empty() || text.front() == '#') continue;
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos || Trim(text.substr(0, eq)).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka client config ", path, ":", number, ": expected key=value"));
    }
    properties[std::string(Trim(text.substr(0, eq)))] = std::string(Trim(text.substr(eq + 1)));
  }
  return properties;
}

void SetClientConfig(Properties properties) {
  absl::MutexLock lock(&mu);
  configured = std::move(properties);
}

absl::Status SetClientConfigFile(const std::string& path) {
  if (path.empty()) {
    SetClientConfig({});
    return absl::OkStatus();
  }
  absl::StatusOr<Properties> properties = ReadClientConfigFile(path);
  if (!properties.ok()) return properties.status();
  SetClientConfig(*std::move(properties));
  return absl::OkStatus();
}

Properties ClientConfig() {
  {
    absl::MutexLock lock(&mu);
    if (configured) return *configured;
  }
  // Read at every use, not kept: a test may make the file (its broker's) after its first client.
  const char* path = std::getenv("SCHAKEL_KAFKA_CONFIG");
  if (path == nullptr || *path == '\0') return {};
  absl::StatusOr<Properties> properties = ReadClientConfigFile(path);
  if (!properties.ok()) {
    spdlog::error("SCHAKEL_KAFKA_CONFIG: {}", std::string(properties.status().message()));
    return {};
  }
  return *std::move(properties);
}

Properties WithClientConfig(const Properties& own) {
  // librdkafka leaves Nagle's algorithm on by default: a small request then waits for the ACK of
  // the one before it (delayed ACK, tens of milliseconds on loopback). A transaction is a string
  // of small requests (add partitions, produce, end the transaction), and a consumer's fetch and
  // offset commit are small too, so every client turns it off (Kafka's Java clients do as well).
  Properties all = {{"socket.nagle.disable", "true"}};
  for (const auto& [key, value] : ClientConfig()) all[key] = value;
  for (const auto& [key, value] : own) all[key] = value;
  return all;
}

Properties WithConsumerConfig(const Properties& own) {
  // librdkafka fetches ahead up to 64 MiB (queued.max.messages.kbytes) and 50 MiB per fetch
  // (fetch.max.bytes): a consumer that falls behind then holds a hundred MiB of records it has
  // not read yet (an inbox grew from 44 to 196 MiB that way in the history bench, issue 20). A
  // batch of ours is at most 500 records of a few KiB, so 4 MiB ahead is plenty.
  Properties all = WithClientConfig({{"queued.max.messages.kbytes", "4096"},
                                     {"queued.min.messages", "1000"},
                                     {"fetch.max.bytes", "4194304"}});
  for (const auto& [key, value] : own) all[key] = value;
  return all;
}

}  // namespace schakel::kafka
