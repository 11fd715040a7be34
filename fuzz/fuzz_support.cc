#include "fuzz/fuzz_support.h"

#include <google/protobuf/stubs/logging.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "absl/status/statusor.h"
#include "libs/topology/topics.h"

namespace schakel::fuzz {

const routing::Network& ExampleNetwork() {
  static const routing::Network* network = [] {
    absl::StatusOr<routing::Network> loaded = routing::LoadNetworkFile(SCHAKEL_EXAMPLE_NETWORK);
    if (!loaded.ok()) Fail(std::string(loaded.status().message()));
    return new routing::Network(*std::move(loaded));
  }();
  return *network;
}

bool IsStrictUtf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > text.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

void SilenceLogs() {
  spdlog::set_level(spdlog::level::off);
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
}

void Fail(std::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

const std::vector<std::string>& Topics() {
  static const std::vector<std::string>* topics = [] {
    auto* t = new std::vector<std::string>{
        std::string(topology::kSubmittedTopic), std::string(topology::kStatusTopic),
        std::string(topology::kUnroutableTopic), topology::FromTopic(kSeedOwner),
        std::string(topology::kCancellationsTopic), std::string(topology::kReassignTopic),
        std::string(topology::kRouterStateTopic),
        // A topic the router's Escalation never reads (index 7, as the shared load topic had:
        // the stored corpus keeps its meaning): the first organisation's load topic.
        topology::LoadTopic(ExampleNetwork().organisations.front().id),
        topology::DeadLetterTopic("router")};
    for (const routing::Organisation& org : ExampleNetwork().organisations) {
      t->push_back(topology::InboxTopic(org.id));
    }
    t->push_back("schakel.nobody.reads.this");
    return t;
  }();
  return *topics;
}

const std::string& TopicOf(std::uint8_t topic_byte) {
  return Topics()[(topic_byte & 0x0F) % Topics().size()];
}

std::uint8_t TopicIndex(std::string_view topic) {
  for (std::size_t i = 0; i < Topics().size() && i < 16; ++i) {
    if (Topics()[i] == topic) return static_cast<std::uint8_t>(i);
  }
  Fail("no such topic in the fuzz stream format: " + std::string(topic));
}

std::vector<StreamRecord> DecodeStream(const std::uint8_t* data, std::size_t size,
                                       std::uint8_t* consumer) {
  std::vector<StreamRecord> records;
  *consumer = size > 0 ? data[0] : 0;
  std::size_t at = 1;
  while (at + 2 <= size) {
    StreamRecord r;
    r.topic_byte = data[at];
    const std::size_t key_len = data[at + 1];
    at += 2;
    if (at + key_len + 2 > size) break;
    r.key.assign(reinterpret_cast<const char*>(data + at), key_len);
    at += key_len;
    const std::size_t value_len = data[at] | (static_cast<std::size_t>(data[at + 1]) << 8);
    at += 2;
    if (at + value_len > size) break;
    r.value.assign(reinterpret_cast<const char*>(data + at), value_len);
    at += value_len;
    records.push_back(std::move(r));
  }
  return records;
}

std::string EncodeStream(std::uint8_t consumer, const std::vector<StreamRecord>& records) {
  std::string out(1, static_cast<char>(consumer));
  for (const StreamRecord& r : records) {
    if (r.key.size() > 0xFF || r.value.size() > 0xFFFF) Fail("seed record too large");
    out += static_cast<char>(r.topic_byte);
    out += static_cast<char>(r.key.size());
    out += r.key;
    out += static_cast<char>(r.value.size() & 0xFF);
    out += static_cast<char>(r.value.size() >> 8);
    out += r.value;
  }
  return out;
}

}  // namespace schakel::fuzz
