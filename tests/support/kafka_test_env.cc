#include "tests/support/kafka_test_env.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
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

std::vector<kafka::Record> ReadWholeTopic(const std::string& bootstrap, const std::string& topic,
                                          std::chrono::milliseconds timeout) {
  std::string error;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const auto& [key, value] : kafka::ClientConfig()) conf->set(key, value, error);
  conf->set("bootstrap.servers", bootstrap, error);
  conf->set("group.id", "schakel-test-reader",
            error);  // never joins: partitions are assigned by hand
  conf->set("enable.auto.commit", "false", error);
  conf->set("isolation.level", "read_committed", error);
  // The end of a partition written in transactions is a commit marker, never delivered: the
  // reader is done at the partition's end-of-file at (or past) the high watermark.
  conf->set("enable.partition.eof", "true", error);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) {
    ADD_FAILURE() << "reader: " << error;
    return {};
  }
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(consumer.get(), topic, nullptr, error));
  RdKafka::Metadata* raw = nullptr;
  if (consumer->metadata(false, handle.get(), &raw, 10000) != RdKafka::ERR_NO_ERROR) {
    ADD_FAILURE() << "reader: no metadata for " << topic;
    return {};
  }
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::map<int, std::int64_t> end;  // partition -> high watermark
  std::vector<RdKafka::TopicPartition*> assignment;
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      std::int64_t low = 0, high = 0;
      if (consumer->query_watermark_offsets(topic, p->id(), &low, &high, 3000) !=
          RdKafka::ERR_NO_ERROR) {
        // Seen after a broker of a cluster died: the query waits out its time-out although
        // fetching works. Read from the beginning; the partition's end-of-file then decides.
        end[p->id()] = 0;
        assignment.push_back(
            RdKafka::TopicPartition::create(topic, p->id(), RdKafka::Topic::OFFSET_BEGINNING));
        continue;
      }
      end[p->id()] = high;
      if (high > low) assignment.push_back(RdKafka::TopicPartition::create(topic, p->id(), low));
    }
  }
  std::vector<kafka::Record> records;
  if (assignment.empty()) return records;
  consumer->assign(assignment);
  std::size_t open = assignment.size();
  RdKafka::TopicPartition::destroy(assignment);
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  std::map<int, std::vector<kafka::Record>> by_partition;
  std::set<int> done;
  while (open > 0 && std::chrono::steady_clock::now() < give_up) {
    std::unique_ptr<RdKafka::Message> m(consumer->consume(200));
    if (m->err() == RdKafka::ERR__PARTITION_EOF && m->offset() >= end[m->partition()] &&
        done.insert(m->partition()).second) {
      --open;
    }
    if (m->err() != RdKafka::ERR_NO_ERROR) continue;
    kafka::Record r{m->topic_name(), m->partition(), m->offset(), m->key() ? *m->key() : "",
                    m->payload() ? std::string(static_cast<const char*>(m->payload()), m->len())
                                 : std::string()};
    by_partition[r.partition].push_back(r);
  }
  EXPECT_EQ(open, 0u) << "reader: did not reach the end of " << topic << " in time";
  consumer->close();
  for (auto& [partition, list] : by_partition)
    records.insert(records.end(), list.begin(), list.end());
  return records;
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
