#include "tools/schakelctl/common.h"

#include <google/protobuf/util/time_util.h>

#include <iostream>

#include "libs/kafka/transactional_producer.h"

namespace schakel::ctl {

void AddNetworkOption(CLI::App* command, std::string& network, const std::string& help) {
  command->add_option("--network", network, help)->capture_default_str();
}

void AddKafkaOption(CLI::App* command, std::string& kafka, const std::string& help) {
  command->add_option("--kafka", kafka, help)->capture_default_str();
}

int Fail(const std::string& message) {
  std::cerr << "schakelctl: " << message << "\n";
  return 1;
}

int Fail(const absl::Status& status) { return Fail(std::string(status.message())); }

absl::Status AtKafka(const std::string& kafka, const absl::Status& status) {
  return absl::Status(status.code(), "Kafka at " + kafka + ": " + std::string(status.message()));
}

int KafkaFail(const std::string& kafka, const absl::Status& status) {
  return Fail(AtKafka(kafka, status));
}

absl::StatusOr<std::vector<kafka::Record>> ReadTopic(const std::string& kafka,
                                                     std::string_view topic, int partitions) {
  std::vector<kafka::Record> records;
  absl::Status read = kafka::ReadToEnd(kafka, std::string(topic), Partitions(partitions), kDeadline,
                                       [&](const kafka::Record& record, bool tombstone) {
                                         if (!tombstone) records.push_back(record);
                                       });
  if (!read.ok()) return AtKafka(kafka, read);
  return records;
}

std::vector<std::int32_t> Partitions(int count) {
  std::vector<std::int32_t> numbers;
  for (int p = 0; p < count; ++p) numbers.push_back(p);
  return numbers;
}

std::string StatusName(v1::AssignmentStatus status) {
  std::string name = v1::AssignmentStatus_Name(status);
  const std::string prefix = "ASSIGNMENT_STATUS_";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

std::string Time(const google::protobuf::Timestamp& at) {
  return google::protobuf::util::TimeUtil::ToString(at).substr(0, 19);
}

}  // namespace schakel::ctl
