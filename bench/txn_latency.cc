// The floor under every commit in Schakel: how long one Kafka transaction of one record takes on
// this broker (begin, produce, commit, one after another, as an audit chain or the router commits
// them when one call or one record arrives at a time). Prints JSON:
//
//   {"count":…,"produce_ms":{…},"commit_ms":{…},"total_ms":{…}}
//
//   txn_latency --kafka 127.0.0.1:9092 --kafka-config admin.properties --topic T [--count 300]
//
// The topic must exist; the identity of --kafka-config must be allowed to write it and to use the
// transactional id (--transactional-id, default "schakel-bench-txn").
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "bench/latency_stats.h"
#include "libs/kafka/client_config.h"
#include "libs/kafka/transactional_producer.h"

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"One Kafka transaction of one record, again and again: the time of each step"};
  std::string kafka = "127.0.0.1:9092";
  std::string kafka_config;
  std::string topic;
  std::string transactional_id = "schakel-bench-txn";
  int count = 300;
  int gap_ms = 0;
  app.add_option("--kafka", kafka, "the broker");
  app.add_option("--kafka-config", kafka_config, "librdkafka properties (TLS), key=value lines");
  app.add_option("--topic", topic, "an existing topic to write to")->required();
  app.add_option("--transactional-id", transactional_id, "the transactional id to use");
  app.add_option("--count", count, "how many transactions")->check(CLI::PositiveNumber);
  app.add_option("--gap-ms", gap_ms,
                 "wait this long after each commit before the next transaction");
  CLI11_PARSE(app, argc, argv);
  // SCHAKEL_KAFKA_DEBUG=eos shows librdkafka's own account of each step.
  if (std::getenv("SCHAKEL_KAFKA_DEBUG") != nullptr) spdlog::set_level(spdlog::level::debug);

  schakel::kafka::Properties extra;
  if (!kafka_config.empty()) {
    absl::StatusOr<schakel::kafka::Properties> read =
        schakel::kafka::ReadClientConfigFile(kafka_config);
    if (!read.ok()) {
      std::cerr << "txn_latency: " << read.status().message() << "\n";
      return 1;
    }
    extra = *read;
  }
  auto producer =
      schakel::kafka::TransactionalProducer::Create({.bootstrap_servers = kafka,
                                                     .client_id = "schakel-bench-txn",
                                                     .transactional_id = transactional_id,
                                                     .extra = extra},
                                                    std::chrono::seconds(30));
  if (!producer.ok()) {
    std::cerr << "txn_latency: " << producer.status().message() << "\n";
    return 1;
  }
  const std::string value(300, 'x');  // about an audit entry's size
  std::vector<double> produce_ms, commit_ms, total_ms;
  for (int i = 0; i < count; ++i) {
    if (gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    const Clock::time_point start = Clock::now();
    absl::Status s = (*producer)->Begin();
    if (s.ok()) s = (*producer)->Produce(topic, "bench", value);
    produce_ms.push_back(MsSince(start));
    const Clock::time_point commit_start = Clock::now();
    if (s.ok()) s = (*producer)->Commit(std::chrono::seconds(10));
    commit_ms.push_back(MsSince(commit_start));
    total_ms.push_back(MsSince(start));
    if (!s.ok()) {
      std::cerr << "txn_latency: transaction " << i << ": " << s.message() << "\n";
      return 1;
    }
  }
  std::printf("{\"count\":%d,\"produce_ms\":%s,\"commit_ms\":%s,\"total_ms\":%s}\n", count,
              schakel::bench::ToJson(schakel::bench::Summarise(produce_ms)).c_str(),
              schakel::bench::ToJson(schakel::bench::Summarise(commit_ms)).c_str(),
              schakel::bench::ToJson(schakel::bench::Summarise(total_ms)).c_str());
  return 0;
}
