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

// Every record now in `topic`, in partition then offset order.
std::vector<kafka::Record> ReadWholeTopic(
    const std::string& bootstrap, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(20));

// True when any record of any of the topics contains `needle` in its key or value.
bool AnyRecordContains(const std::string& bootstrap, const std::vector<std::string>& topics,
                       const std::string& needle);

// A TCP port on 127.0.0.1 that nothing listens on right now.
int FreePort();

}  // namespace schakel::testing
