// Test helpers around the real broker that tests/run starts: its address, and reading a topic's
// whole content (every partition, from the beginning up to the current end) without joining a
// group.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "libs/kafka/consumer.h"

namespace schakel::testing {

// The broker tests/run started (SCHAKEL_TEST_KAFKA); the calling test fails when it is not set.
std::string TestKafka();

// What ReadTopicUntil read.
struct TopicContent {
  std::vector<kafka::Record> records;  // in partition then offset order
  bool complete = false;               // every partition was read to its end before the deadline
  std::string error;                   // why not, when not
};

// Every record now in `topic` (committed ones: a transaction still open is waited for), read
// without joining a group. No step waits past `deadline`: what was read by then comes back with
// `complete` false. Asks the brokers for no offsets (a partition's end is where fetching reaches
// it), so it works as long as fetching does.
TopicContent ReadTopicUntil(const std::string& bootstrap, const std::string& topic,
                            std::chrono::steady_clock::time_point deadline);

// Every record now in `topic`, in partition then offset order; the calling test fails when the
// topic could not be read to its end within `timeout`.
std::vector<kafka::Record> ReadWholeTopic(
    const std::string& bootstrap, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(20));

// True when any record of any of the topics contains `needle` in its key or value.
bool AnyRecordContains(const std::string& bootstrap, const std::vector<std::string>& topics,
                       const std::string& needle);

// A TCP port on 127.0.0.1 that nothing listens on right now.
int FreePort();

}  // namespace schakel::testing
