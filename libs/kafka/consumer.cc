#include "libs/kafka/consumer.h"

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "libs/kafka/client_config.h"

namespace schakel::kafka {

class Consumer::Callbacks final : public RdKafka::EventCb, public RdKafka::RebalanceCb {
 public:
  Callbacks(RebalanceListener listener,
            std::function<void(const std::vector<PartitionLag>&)> on_lag)
      : listener_(std::move(listener)), on_lag_(std::move(on_lag)) {}

  void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                    std::vector<RdKafka::TopicPartition*>& partitions) override {
    std::vector<TopicPartition> list;
    for (const RdKafka::TopicPartition* tp : partitions) {
      list.push_back({tp->topic(), tp->partition(), tp->offset()});
    }
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      // Tell the listener first: it must know before any record of these partitions arrives.
      if (listener_) listener_(true, list);
      if (RdKafka::ErrorCode e = consumer->assign(partitions); e != RdKafka::ERR_NO_ERROR) {
        spdlog::error("kafka consumer: assign: {}", RdKafka::err2str(e));
      }
    } else {
      if (RdKafka::ErrorCode e = consumer->unassign(); e != RdKafka::ERR_NO_ERROR) {
        spdlog::error("kafka consumer: unassign: {}", RdKafka::err2str(e));
      }
      if (listener_) listener_(false, list);
    }
  }

  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_ERROR) {
      spdlog::warn("kafka consumer: {}: {}", RdKafka::err2str(event.err()), event.str());
    } else if (event.type() == RdKafka::Event::EVENT_LOG &&
               event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
      spdlog::warn("kafka consumer: {} {}", event.fac(), event.str());
    } else if (event.type() == RdKafka::Event::EVENT_LOG) {
      spdlog::debug("kafka consumer: {} {}", event.fac(), event.str());
    } else if (event.type() == RdKafka::Event::EVENT_STATS && on_lag_) {
      on_lag_(ConsumerLagFromStatistics(event.str()));
    }
  }

 private:
  RebalanceListener listener_;
  std::function<void(const std::vector<PartitionLag>&)> on_lag_;
};

std::vector<PartitionLag> ConsumerLagFromStatistics(const std::string& statistics_json) {
  std::vector<PartitionLag> lags;
  const nlohmann::json stats = nlohmann::json::parse(statistics_json, nullptr, false);
  if (stats.is_discarded() || !stats.contains("topics") || !stats["topics"].is_object()) {
    return lags;
  }
  for (const auto& [topic, t] : stats["topics"].items()) {
    if (!t.contains("partitions") || !t["partitions"].is_object()) continue;
    for (const auto& [partition, p] : t["partitions"].items()) {
      // "-1" is librdkafka's internal unassigned partition; -1 means not known (yet).
      if (partition == "-1" || !p.contains("consumer_lag") || !p["consumer_lag"].is_number()) {
        continue;
      }
      const std::int64_t lag = p["consumer_lag"].get<std::int64_t>();
      if (lag < 0) continue;
      lags.push_back({topic, std::stoi(partition), lag});
    }
  }
  return lags;
}

absl::StatusOr<std::map<std::int32_t, std::int64_t>> CommittedOffsets(
    const std::string& bootstrap_servers, const std::string& group_id, const std::string& topic,
    const std::vector<std::int32_t>& partitions, std::chrono::milliseconds timeout) {
  if (group_id.empty()) return absl::InvalidArgumentError("kafka: committed offsets: no group id");
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  // The group's id, to ask its coordinator; never subscribed, so never a member.
  const Properties props = WithConsumerConfig({{"bootstrap.servers", bootstrap_servers},
                                               {"client.id", "schakel-lag"},
                                               {"group.id", group_id},
                                               {"enable.auto.commit", "false"}});
  for (const auto& [key, value] : props) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka property ", key, ": ", error));
    }
  }
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) return absl::InternalError(absl::StrCat("kafka: ", error));
  std::vector<RdKafka::TopicPartition*> asked;
  for (std::int32_t p : partitions) asked.push_back(RdKafka::TopicPartition::create(topic, p));
  const RdKafka::ErrorCode err = consumer->committed(asked, static_cast<int>(timeout.count()));
  std::map<std::int32_t, std::int64_t> offsets;
  for (const RdKafka::TopicPartition* tp : asked) {
    if (err == RdKafka::ERR_NO_ERROR && tp->err() == RdKafka::ERR_NO_ERROR && tp->offset() >= 0) {
      offsets[tp->partition()] = tp->offset();
    }
  }
  RdKafka::TopicPartition::destroy(asked);
  consumer->close();
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka: committed offsets of group ", group_id, ": ", RdKafka::err2str(err)));
  }
  return offsets;
}

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerOptions& options) {
  if (options.group_id.empty())
    return absl::InvalidArgumentError("kafka consumer: group id is required");
  if (options.topics.empty()) return absl::InvalidArgumentError("kafka consumer: no topics");
  std::unique_ptr<Consumer> self(new Consumer());
  self->callbacks_ = std::make_unique<Callbacks>(options.on_rebalance, options.on_lag);
  self->on_record_ = options.on_record;

  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  Properties props = WithConsumerConfig({
      {"bootstrap.servers", options.bootstrap_servers},
      {"client.id", options.client_id},
      {"group.id", options.group_id},
      {"enable.auto.offset.store", "false"},  // only what MarkDone stored gets committed
      {"enable.auto.commit", "true"},
      {"auto.commit.interval.ms", "1000"},
      {"auto.offset.reset", "earliest"},
      {"isolation.level", "read_committed"},
      // Not cooperative-sticky: librdkafka 2.0.2 then often skips the LeaveGroup on close, and the
      // group waits a whole session timeout before another member takes over. The eager protocol
      // leaves.
      {"partition.assignment.strategy", "roundrobin"},
      {"enable.partition.eof", "false"},
      // A member that crashed (or could not leave) holds its partitions this long: keep it short.
      {"session.timeout.ms", "10000"},
  });
  if (options.on_lag) props["statistics.interval.ms"] = "5000";
  for (const auto& [key, value] : options.extra) props[key] = value;
  // Troubleshooting: SCHAKEL_KAFKA_DEBUG=cgrp,protocol turns on librdkafka debug logging.
  if (const char* debug = std::getenv("SCHAKEL_KAFKA_DEBUG")) props["debug"] = debug;
  std::string error;
  for (const auto& [key, value] : props) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("kafka consumer property ", key, ": ", error));
    }
  }
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(self->callbacks_.get()), error) !=
      RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka consumer callbacks: ", error));
  }
  if (options.on_rebalance &&
      conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(self->callbacks_.get()),
                error) != RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka consumer rebalance callback: ", error));
  }
  self->consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!self->consumer_) return absl::InternalError(absl::StrCat("kafka consumer: ", error));
  if (RdKafka::ErrorCode err = self->consumer_->subscribe(options.topics);
      err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka consumer: subscribe: ", RdKafka::err2str(err)));
  }
  return self;
}

Record RecordOf(const RdKafka::Message& message) {
  Record record;
  record.topic = message.topic_name();
  record.partition = message.partition();
  record.offset = message.offset();
  if (message.key() != nullptr) record.key = *message.key();
  if (message.payload() != nullptr) {
    record.value.assign(static_cast<const char*>(message.payload()), message.len());
  }
  return record;
}

absl::StatusOr<std::optional<Record>> Consumer::Poll(std::chrono::milliseconds timeout) {
  std::unique_ptr<RdKafka::Message> message(consumer_->consume(static_cast<int>(timeout.count())));
  switch (message->err()) {
    case RdKafka::ERR_NO_ERROR: {
      Record record = RecordOf(*message);
      if (on_record_) on_record_(record);
      return std::optional<Record>(std::move(record));
    }
    case RdKafka::ERR__TIMED_OUT:
    case RdKafka::ERR__PARTITION_EOF:
      return std::optional<Record>();
    default:
      if (message->err() == RdKafka::ERR__FATAL) {
        return absl::InternalError(absl::StrCat("kafka consumer: fatal: ", message->errstr()));
      }
      spdlog::warn("kafka consumer: {}", message->errstr());
      return std::optional<Record>();
  }
}

absl::Status Consumer::MarkDone(const Record& record) {
  std::unique_ptr<RdKafka::TopicPartition> tp(
      RdKafka::TopicPartition::create(record.topic, record.partition, record.offset + 1));
  std::vector<RdKafka::TopicPartition*> offsets = {tp.get()};
  RdKafka::ErrorCode err = consumer_->offsets_store(offsets);
  if (err == RdKafka::ERR_NO_ERROR) err = tp->err();
  // After a rebalance the partition may belong to another member; it will redo the work
  // (idempotently).
  if (err != RdKafka::ERR_NO_ERROR && err != RdKafka::ERR__STATE) {
    return absl::InternalError(
        absl::StrCat("kafka consumer: store offset: ", RdKafka::err2str(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::int32_t, std::int64_t>> Consumer::EndOffsets(
    const std::string& topic, std::chrono::milliseconds timeout) {
  // Right after a topic is created its partitions may have no leader yet ("not leader"): ask again
  // until the time is up.
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (true) {
    absl::StatusOr<std::map<std::int32_t, std::int64_t>> ends =
        EndOffsetsOnce(topic, std::chrono::milliseconds(2000));
    if (ends.ok() || std::chrono::steady_clock::now() >= give_up) return ends;
    spdlog::info("kafka consumer: {}; asking again", std::string(ends.status().message()));
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

absl::StatusOr<std::map<std::int32_t, std::int64_t>> Consumer::EndOffsetsOnce(
    const std::string& topic, std::chrono::milliseconds timeout) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> handle(
      RdKafka::Topic::create(consumer_.get(), topic, nullptr, error));
  if (!handle)
    return absl::InternalError(absl::StrCat("kafka consumer: topic ", topic, ": ", error));
  RdKafka::Metadata* raw = nullptr;
  if (RdKafka::ErrorCode err =
          consumer_->metadata(false, handle.get(), &raw, static_cast<int>(timeout.count()));
      err != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("kafka consumer: metadata of ", topic, ": ", RdKafka::err2str(err)));
  }
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::map<std::int32_t, std::int64_t> ends;
  for (const RdKafka::TopicMetadata* t : *metadata->topics()) {
    if (t->err() != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(
          absl::StrCat("kafka consumer: topic ", topic, ": ", RdKafka::err2str(t->err())));
    }
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) {
      std::int64_t low = 0;
      std::int64_t high = 0;
      if (RdKafka::ErrorCode err = consumer_->query_watermark_offsets(
              topic, p->id(), &low, &high, static_cast<int>(timeout.count()));
          err != RdKafka::ERR_NO_ERROR) {
        return absl::UnavailableError(absl::StrCat("kafka consumer: end of ", topic, "[", p->id(),
                                                   "]: ", RdKafka::err2str(err)));
      }
      ends[p->id()] = high;
    }
  }
  return ends;
}

absl::StatusOr<std::vector<TopicPartition>> Consumer::Positions() {
  std::vector<RdKafka::TopicPartition*> assigned;
  if (RdKafka::ErrorCode err = consumer_->assignment(assigned); err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka consumer: assignment: ", RdKafka::err2str(err)));
  }
  RdKafka::ErrorCode err = consumer_->position(assigned);
  std::vector<TopicPartition> positions;
  for (const RdKafka::TopicPartition* tp : assigned) {
    positions.push_back({tp->topic(), tp->partition(), tp->offset()});
  }
  RdKafka::TopicPartition::destroy(assigned);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka consumer: position: ", RdKafka::err2str(err)));
  }
  return positions;
}

absl::Status Consumer::RewindToCommitted(std::chrono::milliseconds timeout) {
  std::vector<RdKafka::TopicPartition*> assigned;
  if (RdKafka::ErrorCode err = consumer_->assignment(assigned); err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka consumer: assignment: ", RdKafka::err2str(err)));
  }
  absl::Status result;
  if (RdKafka::ErrorCode err = consumer_->committed(assigned, static_cast<int>(timeout.count()));
      err != RdKafka::ERR_NO_ERROR) {
    result = absl::UnavailableError(
        absl::StrCat("kafka consumer: committed offsets: ", RdKafka::err2str(err)));
  }
  for (RdKafka::TopicPartition* tp : assigned) {
    if (!result.ok()) break;
    if (tp->offset() < 0) tp->set_offset(RdKafka::Topic::OFFSET_BEGINNING);
    if (RdKafka::ErrorCode err = consumer_->seek(*tp, static_cast<int>(timeout.count()));
        err != RdKafka::ERR_NO_ERROR) {
      result = absl::UnavailableError(absl::StrCat("kafka consumer: seek ", tp->topic(), "[",
                                                   tp->partition(), "]: ", RdKafka::err2str(err)));
    }
  }
  RdKafka::TopicPartition::destroy(assigned);
  return result;
}

void Consumer::Close() {
  if (closed_ || !consumer_) return;
  closed_ = true;
  if (RdKafka::ErrorCode err = consumer_->close(); err != RdKafka::ERR_NO_ERROR) {
    spdlog::warn("kafka consumer: close: {}", RdKafka::err2str(err));
  }
}

Consumer::~Consumer() { Close(); }

}  // namespace schakel::kafka
