#include "tests/support/kafka_test_env.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "libs/kafka/client_config.h"

namespace schakel::testing {

std::string TestKafka() {
  const char* address = std::getenv("SCHAKEL_TEST_KAFKA");
  if (address == nullptr || *address == '\0') {
    ADD_FAILURE()
        << "SCHAKEL_TEST_KAFKA is not set: run the tests with tests/run, which starts a broker";
    return "127.0.0.1:1";
  }
  return address;
}

namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, at most `cap`; 0 once it has passed.
int MillisLeft(Clock::time_point deadline, std::chrono::milliseconds cap) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::clamp(left, std::chrono::milliseconds(0), cap).count());
}

}  // namespace

TopicContent ReadTopicUntil(const std::string& bootstrap, const std::string& topic,
                            Clock::time_point deadline) {
  TopicContent content;
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const auto& [key, value] : kafka::ClientConfig()) conf->set(key, value, error);
  conf->set("bootstrap.servers", bootstrap, error);
  conf->set("group.id", "schakel-test-reader",
            error);  // never joins: partitions are assigned by hand
  conf->set("enable.auto.commit", "false", error);
  conf->set("isolation.level", "read_committed", error);
  // Every partition is read from offset 0, so no offset has to be asked for: librdkafka before
  // 2.3.0 (upstream #4460) does not keep to the time-out of its watermark query, which held the
  // fault suite's checker for minutes after a broker of a cluster died although fetching worked.
  // A log that no longer starts at 0 is read from where it starts.
  conf->set("auto.offset.reset", "earliest", error);
  // The end of a partition written in transactions is a commit marker, never delivered: the
  // reader knows it is at the end from the partition's end-of-file.
  conf->set("enable.partition.eof", "true", error);
  // An end-of-file comes once the broker has held an empty fetch this long: 100 ms, not 500.
  conf->set("fetch.wait.max.ms", "100", error);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) {
    content.error = "no consumer: " + error;
    return content;
  }
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(consumer.get(), topic, nullptr, error));
  if (!handle) {
    content.error = "no topic handle: " + error;
    return content;
  }
  RdKafka::Metadata* raw = nullptr;
  const RdKafka::ErrorCode listed =
      consumer->metadata(false, handle.get(), &raw, MillisLeft(deadline, std::chrono::seconds(10)));
  if (listed != RdKafka::ERR_NO_ERROR) {
    content.error = "no metadata: " + RdKafka::err2str(listed);
    return content;
  }
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::vector<RdKafka::TopicPartition*> assignment;
  std::set<int> open;  // partitions not yet read to their end
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      assignment.push_back(RdKafka::TopicPartition::create(topic, p->id(), 0));
      open.insert(p->id());
    }
  }
  if (assignment.empty()) {  // no such topic (yet): nothing in it
    content.complete = true;
    return content;
  }
  const RdKafka::ErrorCode assigned = consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (assigned != RdKafka::ERR_NO_ERROR) {
    content.error = "assign: " + RdKafka::err2str(assigned);
    consumer->close();
    return content;
  }
  // Partition -> the offset it is read to: the high watermark the fetch that first reached the
  // partition's end-of-file reported. An end-of-file comes at the last stable offset; below that
  // watermark it means a transaction is still open, and the reader waits for its outcome rather
  // than skip what the partition already held.
  std::map<int, std::int64_t> target;
  const std::size_t partitions = open.size();
  std::map<int, std::vector<kafka::Record>> by_partition;
  while (!open.empty()) {
    const int wait = MillisLeft(deadline, std::chrono::milliseconds(200));
    if (wait == 0) break;
    std::unique_ptr<RdKafka::Message> m(consumer->consume(wait));
    const int partition = m->partition();
    if (m->err() == RdKafka::ERR__PARTITION_EOF) {
      // Every record before the end-of-file's offset has been delivered before it.
      auto [it, first] = target.try_emplace(partition, m->offset());
      std::int64_t low = 0, high = 0;
      if (first &&
          consumer->get_watermark_offsets(topic, partition, &low, &high) == RdKafka::ERR_NO_ERROR) {
        it->second = std::max(it->second, high);
      }
      if (m->offset() >= it->second) open.erase(partition);
      continue;
    }
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    by_partition[partition].push_back(
        kafka::Record{m->topic_name(), partition, m->offset(), m->key() ? *m->key() : "",
                      m->payload() ? std::string(static_cast<const char*>(m->payload()), m->len())
                                   : std::string()});
  }
  content.complete = open.empty();
  if (!content.complete) {
    content.error = std::to_string(open.size()) + " of " + std::to_string(partitions) +
                    " partitions not read to their end by the deadline";
  }
  consumer->close();
  for (auto& [partition, list] : by_partition) {
    content.records.insert(content.records.end(), std::make_move_iterator(list.begin()),
                           std::make_move_iterator(list.end()));
  }
  return content;
}

std::vector<kafka::Record> ReadWholeTopic(const std::string& bootstrap, const std::string& topic,
                                          std::chrono::milliseconds timeout) {
  TopicContent content = ReadTopicUntil(bootstrap, topic, Clock::now() + timeout);
  EXPECT_TRUE(content.complete) << "reader: " << topic << ": " << content.error;
  return std::move(content.records);
}

bool AnyRecordContains(const std::string& bootstrap, const std::vector<std::string>& topics,
                       const std::string& needle) {
  for (const std::string& topic : topics) {
    for (const kafka::Record& r : ReadWholeTopic(bootstrap, topic)) {
      if (r.key.find(needle) != std::string::npos || r.value.find(needle) != std::string::npos)
        return true;
    }
  }
  return false;
}

int FreePort() {
  // The kernel may hand the same free port out again until someone binds it; a test that asks for
  // several ports before starting what uses them (a service's gRPC, metrics and console ports) must
  // get different ones.
  static std::mutex mu;
  static std::set<int> given;
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) ::close(fd);
      continue;
    }
    ::close(fd);
    const int port = ntohs(addr.sin_port);
    if (given.insert(port).second) return port;
  }
  ADD_FAILURE() << "no free port";
  return 0;
}

}  // namespace schakel::testing
