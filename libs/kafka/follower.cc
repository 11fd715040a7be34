#include "libs/kafka/follower.h"

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/kafka/client_config.h"

namespace schakel::kafka {

absl::StatusOr<std::unique_ptr<Follower>> Follower::Create(const std::string& bootstrap_servers,
                                                           const std::string& topic,
                                                           std::chrono::milliseconds timeout,
                                                           const Properties& extra) {
  return Create(bootstrap_servers, std::vector<std::string>{topic}, timeout, extra);
}

absl::StatusOr<std::unique_ptr<Follower>> Follower::Create(const std::string& bootstrap_servers,
                                                           const std::vector<std::string>& topics,
                                                           std::chrono::milliseconds timeout,
                                                           const Properties& extra) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  Properties props = WithConsumerConfig({
      {"bootstrap.servers", bootstrap_servers},
      {"client.id", "schakel-follower"},
      {"group.id", "schakel.follower"},  // required by the API; never joined (partitions assigned)
      {"enable.auto.commit", "false"},
      {"isolation.level", "read_committed"},
  });
  for (const auto& [key, value] : extra) props[key] = value;
  std::string error;
  for (const auto& [key, value] : props) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka follower property ", key, ": ", error));
    }
  }
  std::unique_ptr<Follower> self(new Follower());
  self->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!self->consumer_) return absl::InternalError(absl::StrCat("kafka follower: ", error));

  if (absl::Status added = self->Add(topics, timeout); !added.ok()) return added;
  return self;
}

absl::Status Follower::Add(const std::vector<std::string>& topics,
                           std::chrono::milliseconds timeout) {
  std::vector<std::string> added;
  std::vector<RdKafka::TopicPartition*> partitions;
  std::string error;
  for (const std::string& topic : topics) {
    if (std::find(topics_.begin(), topics_.end(), topic) != topics_.end() ||
        std::find(added.begin(), added.end(), topic) != added.end()) {
      continue;
    }
    std::unique_ptr<RdKafka::Topic> handle(
        RdKafka::Topic::create(consumer_.get(), topic, nullptr, error));
    RdKafka::Metadata* raw = nullptr;
    if (RdKafka::ErrorCode err =
            consumer_->metadata(false, handle.get(), &raw, static_cast<int>(timeout.count()));
        err != RdKafka::ERR_NO_ERROR) {
      RdKafka::TopicPartition::destroy(partitions);
      return absl::UnavailableError(
          absl::StrCat("kafka follower: metadata of ", topic, ": ", RdKafka::err2str(err)));
    }
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
    for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
      if (t->err() != RdKafka::ERR_NO_ERROR) {
        RdKafka::TopicPartition::destroy(partitions);
        return absl::UnavailableError(
            absl::StrCat("kafka follower: topic ", topic, ": ", RdKafka::err2str(t->err())));
      }
      for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
        partitions.push_back(
            RdKafka::TopicPartition::create(topic, p->id(), RdKafka::Topic::OFFSET_BEGINNING));
      }
    }
    added.push_back(topic);
  }
  if (partitions.empty()) return absl::OkStatus();
  // Added to what is followed, without moving the partitions already followed.
  std::unique_ptr<RdKafka::Error> failed(consumer_->incremental_assign(partitions));
  RdKafka::TopicPartition::destroy(partitions);
  if (failed) {
    return absl::InternalError(absl::StrCat("kafka follower: assign: ", failed->str()));
  }
  topics_.insert(topics_.end(), added.begin(), added.end());
  return absl::OkStatus();
}

Follower::~Follower() {
  if (consumer_) consumer_->close();
}

std::optional<Record> Follower::Poll(std::chrono::milliseconds timeout) {
  std::unique_ptr<RdKafka::Message> message(consumer_->consume(static_cast<int>(timeout.count())));
  if (message->err() != RdKafka::ERR_NO_ERROR) {
    if (message->err() != RdKafka::ERR__TIMED_OUT &&
        message->err() != RdKafka::ERR__PARTITION_EOF) {
      spdlog::warn("kafka follower: {}", message->errstr());
    }
    return std::nullopt;
  }
  return RecordOf(*message);
}

}  // namespace schakel::kafka
