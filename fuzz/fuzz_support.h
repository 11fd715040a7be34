// What the fuzz targets and the seed generator share: the example network, a strict UTF-8 check
// that does not reuse the code under test, and the record-stream format of event_decoding_fuzz.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libs/routing/network.h"

namespace schakel::fuzz {

// deploy/local/network.yaml, loaded once (aborts when it does not load: the fuzzers need it).
const routing::Network& ExampleNetwork();

// RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool IsStrictUtf8(std::string_view text);

// Turns off spdlog's and protobuf's logging (the code under test logs every record it refuses).
void SilenceLogs();

// Reports a broken invariant and aborts, so that libFuzzer records the input as a crash.
[[noreturn]] void Fail(std::string_view what);

// event_decoding_fuzz reads its input as a stream of Kafka records:
//   byte 0                     which consumer reads them (see event_decoding_fuzz.cc)
//   then per record:           topic byte (low 4 bits: index into Topics(), high 4 bits: hours the
//                              clock moves on before the record), key length (1 byte), key,
//                              value length (2 bytes, little endian), value.
// A truncated record ends the stream.
struct StreamRecord {
  std::uint8_t topic_byte = 0;
  std::string key;
  std::string value;
};

// The topics a record can claim to come from: every topic some consumer reads or writes, each
// organisation's inbox topic, and one that nobody reads.
const std::vector<std::string>& Topics();
// The organisation whose own topic (schakel.from.<org>) is in Topics(): the one the seed referral's
// first need goes to in the example network, so that the seeds' status changes are its own.
inline constexpr char kSeedOwner[] = "mjd";
const std::string& TopicOf(std::uint8_t topic_byte);
// The index of `topic` in Topics() (aborts when it is not there).
std::uint8_t TopicIndex(std::string_view topic);

std::vector<StreamRecord> DecodeStream(const std::uint8_t* data, std::size_t size,
                                       std::uint8_t* consumer);
std::string EncodeStream(std::uint8_t consumer, const std::vector<StreamRecord>& records);

}  // namespace schakel::fuzz
