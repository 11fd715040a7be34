// What every schakelctl command group shares: the defaults of the flags several commands take, how
// a command fails (a line on stderr, exit status 1), and reading a topic or printing a time the
// same way everywhere.
#pragma once

#include <google/protobuf/timestamp.pb.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "schakel/v1/events.pb.h"

namespace schakel::ctl {

// Every call to a service waits at most this long; so does every read of Kafka that names no
// other bound.
inline constexpr std::chrono::seconds kDeadline{15};

inline constexpr char kDefaultNetworkFile[] = "deploy/local/network.yaml";
inline constexpr char kDefaultKafka[] = "127.0.0.1:9092";
inline constexpr char kDefaultOps[] = "127.0.0.1:8080";

// The network file and the Kafka brokers a command reads, with their defaults.
struct NetworkAndKafka {
  std::string network = kDefaultNetworkFile;
  std::string kafka = kDefaultKafka;
};

// --network (with its default shown in the help).
void AddNetworkOption(CLI::App* command, std::string& network,
                      const std::string& help = "The network file");
// --kafka (with its default shown in the help).
void AddKafkaOption(CLI::App* command, std::string& kafka,
                    const std::string& help = "Kafka bootstrap servers");

// Prints "schakelctl: <message>" on stderr; returns the exit status of a failed command (1).
int Fail(const std::string& message);
// Fail with the status's message (which names what is wrong: a file, a field).
int Fail(const absl::Status& status);
// A failed request to Kafka, its message naming the brokers: "Kafka at <kafka>: ...".
absl::Status AtKafka(const std::string& kafka, const absl::Status& status);
// Fail(AtKafka(kafka, status)).
int KafkaFail(const std::string& kafka, const absl::Status& status);

// Every record of `topic` (all `partitions` partitions) as it is now, read committed; the error
// names the brokers (AtKafka).
absl::StatusOr<std::vector<kafka::Record>> ReadTopic(const std::string& kafka,
                                                     std::string_view topic, int partitions);
// The partition numbers 0 .. count-1.
std::vector<std::int32_t> Partitions(int count);

// A status without its ASSIGNMENT_STATUS_ prefix: OFFERED, ACCEPTED, ...
std::string StatusName(v1::AssignmentStatus status);
// `at` to the second, in UTC: 2024-05-01T12:00:00.
std::string Time(const google::protobuf::Timestamp& at);

}  // namespace schakel::ctl
