#include "libs/kafka/transactional_producer.h"

#include <librdkafka/rdkafkacpp.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "libs/kafka/client_config.h"

namespace schakel::kafka {
namespace {

// Maps a librdkafka transactional error to what the caller should do.
absl::Status TxnError(std::string_view what, RdKafka::Error* raw) {
  std::unique_ptr<RdKafka::Error> error(raw);
  if (!error) return absl::OkStatus();
  const std::string text =
      absl::StrCat("kafka transaction: ", std::string(what), ": ", error->str());
  if (error->is_fatal()) return absl::FailedPreconditionError(text);
  if (error->txn_requires_abort()) return absl::AbortedError(text);
  if (error->is_retriable()) return absl::UnavailableError(text);
  return absl::AbortedError(text);
}

absl::Status SetAll(RdKafka::Conf* conf, const Properties& props, std::string_view who) {
  std::string error;
  for (const auto& [key, value] : props) {
    if (conf->set(key, value, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(who), " property ", key, ": ", error));
    }
  }
  return absl::OkStatus();
}

}  // namespace

// Client events, and delivery reports. The reports carry nothing the transaction does not also
// report at commit (a failed record fails the commit), but librdkafka needs them: without a
// delivery-report callback, the flush inside commit_transaction learns that the last record is
// delivered only by polling in 10 ms slices; with one, the report wakes it at once. That was ~6 ms
// of every commit (issue 20).
class TransactionalProducer::Callbacks final : public RdKafka::EventCb,
                                               public RdKafka::DeliveryReportCb {
 public:
  void dr_cb(RdKafka::Message& message) override {
    if (message.err() != RdKafka::ERR_NO_ERROR) {
      spdlog::debug("kafka transactional producer: a record for {} failed: {}",
                    message.topic_name(), RdKafka::err2str(message.err()));
    }
  }
  void event_cb(RdKafka::Event& event) override {
    if (event.type() == RdKafka::Event::EVENT_ERROR) {
      if (event.fatal()) {
        spdlog::critical("kafka transactional producer: fatal: {}", event.str());
      } else {
        spdlog::warn("kafka transactional producer: {}: {}", RdKafka::err2str(event.err()),
                     event.str());
      }
    } else if (event.type() == RdKafka::Event::EVENT_LOG) {
      if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
        spdlog::warn("kafka transactional producer: {} {}", event.fac(), event.str());
      } else {
        spdlog::debug("kafka transactional producer: {} {}", event.fac(), event.str());
      }
    }
  }
};

absl::StatusOr<std::unique_ptr<TransactionalProducer>> TransactionalProducer::Create(
    const TransactionalOptions& options, std::chrono::milliseconds timeout) {
  if (options.transactional_id.empty()) {
    return absl::InvalidArgumentError("kafka transactional producer: transactional id is required");
  }
  std::unique_ptr<TransactionalProducer> self(new TransactionalProducer());
  self->options_ = options;
  self->callbacks_ = std::make_unique<Callbacks>();
  if (absl::Status s = self->Connect(timeout); !s.ok()) return s;
  return self;
}

absl::Status TransactionalProducer::Connect(std::chrono::milliseconds timeout) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  Properties props = WithClientConfig({
      {"bootstrap.servers", options_.bootstrap_servers},
      {"client.id", options_.client_id},
      {"transactional.id", options_.transactional_id},
      {"transaction.timeout.ms", std::to_string(options_.transaction_timeout.count())},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "2"},
      {"compression.type", "lz4"},
      // librdkafka's default of 100 ms is what a transaction waited each time the coordinator
      // answered CONCURRENT_TRANSACTIONS (the previous commit's markers still being written, a
      // matter of a millisecond or two here): the router's AddOffsetsToTxn met it in a third of its
      // commits (issue 20).
      {"retry.backoff.ms", "10"},
  });
  for (const auto& [key, value] : options_.extra) props[key] = value;
  if (const char* debug = std::getenv("SCHAKEL_KAFKA_DEBUG")) props["debug"] = debug;
  if (absl::Status s = SetAll(conf.get(), props, "kafka transactional producer"); !s.ok()) return s;
  std::string error;
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(callbacks_.get()), error) !=
          RdKafka::Conf::CONF_OK ||
      conf->set("dr_cb", static_cast<RdKafka::DeliveryReportCb*>(callbacks_.get()), error) !=
          RdKafka::Conf::CONF_OK) {
    return absl::InternalError(absl::StrCat("kafka transactional producer callbacks: ", error));
  }
  producer_.reset(RdKafka::Producer::create(conf.get(), error));
  if (!producer_) {
    return absl::InternalError(absl::StrCat("kafka transactional producer: ", error));
  }
  if (absl::Status s =
          TxnError("init", producer_->init_transactions(static_cast<int>(timeout.count())));
      !s.ok()) {
    return absl::UnavailableError(s.message());
  }
  return absl::OkStatus();
}

absl::Status TransactionalProducer::Renew(std::chrono::milliseconds timeout) {
  // The old producer's transaction can never commit: drop it without waiting for anything.
  if (producer_)
    producer_->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
  producer_.reset();
  ++renewed_;
  return Connect(timeout);
}

TransactionalProducer::~TransactionalProducer() {
  if (producer_) producer_->flush(1000);
}

absl::Status TransactionalProducer::Begin() {
  const auto settled = last_commit_ + options_.settle_after_commit;
  if (std::chrono::steady_clock::now() < settled) std::this_thread::sleep_until(settled);
  return TxnError("begin", producer_->begin_transaction());
}

absl::Status TransactionalProducer::Produce(std::string_view topic, std::string_view key,
                                            const std::optional<std::string>& value) {
  while (true) {
    const RdKafka::ErrorCode err = producer_->produce(
        std::string(topic), RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
        value ? const_cast<char*>(value->data()) : nullptr, value ? value->size() : 0, key.data(),
        key.size(), 0, nullptr, nullptr);
    if (err == RdKafka::ERR__QUEUE_FULL) {
      producer_->poll(50);  // let deliveries drain, then queue again
      continue;
    }
    producer_->poll(0);
    if (err == RdKafka::ERR_NO_ERROR) return absl::OkStatus();
    return absl::AbortedError(absl::StrCat("kafka transaction: cannot queue a record for ",
                                           std::string(topic), ": ", RdKafka::err2str(err)));
  }
}

absl::Status TransactionalProducer::CommitWithPositions(Consumer& consumer,
                                                        std::chrono::milliseconds timeout) {
  std::vector<RdKafka::TopicPartition*> positions;
  if (RdKafka::ErrorCode err = consumer.consumer_->assignment(positions);
      err != RdKafka::ERR_NO_ERROR) {
    return absl::AbortedError(
        absl::StrCat("kafka transaction: assignment: ", RdKafka::err2str(err)));
  }
  consumer.consumer_->position(positions);
  // Partitions not read yet have no position (offset INVALID): nothing to commit for them.
  std::vector<RdKafka::TopicPartition*> offsets;
  for (RdKafka::TopicPartition* tp : positions) {
    if (tp->offset() >= 0) offsets.push_back(tp);
  }
  absl::Status sent = absl::OkStatus();
  if (!offsets.empty()) {
    std::unique_ptr<RdKafka::ConsumerGroupMetadata> group(consumer.consumer_->groupMetadata());
    sent = TxnError("send offsets", producer_->send_offsets_to_transaction(
                                        offsets, group.get(), static_cast<int>(timeout.count())));
  }
  RdKafka::TopicPartition::destroy(positions);
  if (!sent.ok())
    return sent.code() == absl::StatusCode::kUnavailable ? absl::AbortedError(sent.message())
                                                         : sent;
  return Commit(timeout);
}

absl::Status TransactionalProducer::Commit(std::chrono::milliseconds timeout) {
  absl::Status committed =
      TxnError("commit", producer_->commit_transaction(static_cast<int>(timeout.count())));
  if (committed.ok()) {
    ++committed_;
    last_commit_ = std::chrono::steady_clock::now();
    return committed;
  }
  // A retriable commit error (a time-out) leaves the outcome open, and librdkafka then allows only
  // the same commit again: a new producer (Renew) settles it either way, and the caller reads the
  // committed positions again.
  if (committed.code() == absl::StatusCode::kUnavailable) {
    return absl::FailedPreconditionError(
        absl::StrCat(committed.message(), " (outcome unknown: renew the producer)"));
  }
  return committed;
}

absl::Status TransactionalProducer::Abort(std::chrono::milliseconds timeout) {
  ++aborted_;
  return TxnError("abort", producer_->abort_transaction(static_cast<int>(timeout.count())));
}

absl::Status ReadToEnd(const std::string& bootstrap_servers, const std::string& topic,
                       const std::vector<std::int32_t>& partitions,
                       std::chrono::milliseconds timeout,
                       const std::function<void(const Record&, bool tombstone)>& fn,
                       const Properties& extra) {
  if (partitions.empty()) return absl::OkStatus();
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  Properties props = WithConsumerConfig({
      {"bootstrap.servers", bootstrap_servers},
      {"client.id", "schakel-restore"},
      // Required by the high-level consumer; never joined or committed (partitions are assigned).
      {"group.id", "schakel.restore"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "true"},
      {"isolation.level", "read_committed"},
  });
  for (const auto& [key, value] : extra) props[key] = value;
  if (absl::Status s = SetAll(conf.get(), props, "kafka restore"); !s.ok()) return s;
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) return absl::InternalError(absl::StrCat("kafka restore: ", error));
  std::vector<RdKafka::TopicPartition*> assignment;
  for (std::int32_t p : partitions) {
    assignment.push_back(
        RdKafka::TopicPartition::create(topic, p, RdKafka::Topic::OFFSET_BEGINNING));
  }
  RdKafka::ErrorCode err = consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka restore: assign: ", RdKafka::err2str(err)));
  }
  std::set<std::int32_t> open(partitions.begin(), partitions.end());
  // A big topic takes as long as it takes: the time allowed starts again with every record read.
  auto give_up = std::chrono::steady_clock::now() + timeout;
  std::uint64_t read = 0;
  absl::Status result;
  while (!open.empty()) {
    if (std::chrono::steady_clock::now() >= give_up) {
      result = absl::UnavailableError(
          absl::StrCat("kafka restore: ", topic, " not read to its end: ", read,
                       " records read, then nothing for ", timeout.count(), " ms"));
      break;
    }
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        fn(RecordOf(*message), message->payload() == nullptr);
        ++read;
        give_up = std::chrono::steady_clock::now() + timeout;
        break;
      }
      case RdKafka::ERR__PARTITION_EOF: {
        // Read committed, the end is the last stable offset; below the high watermark a
        // transaction is still open there (a former owner's): wait for it to end.
        std::int64_t low = 0;
        std::int64_t high = 0;
        if (consumer->query_watermark_offsets(topic, message->partition(), &low, &high, 5000) ==
                RdKafka::ERR_NO_ERROR &&
            message->offset() >= high) {
          open.erase(message->partition());
        }
        break;
      }
      case RdKafka::ERR__TIMED_OUT:
        break;
      default:
        spdlog::warn("kafka restore: {}", message->errstr());
        break;
    }
  }
  consumer->close();
  return result;
}

absl::StatusOr<Record> ReadAt(const std::string& bootstrap_servers, const std::string& topic,
                              std::int32_t partition, std::int64_t offset,
                              std::chrono::milliseconds timeout, const Properties& extra) {
  const std::string where = absl::StrCat(topic, "/", partition, "/", offset);
  if (partition < 0 || offset < 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no such place"));
  }
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  Properties props = WithConsumerConfig({
      {"bootstrap.servers", bootstrap_servers},
      {"client.id", "schakel-read-at"},
      // Required by the high-level consumer; never joined or committed (the partition is assigned).
      {"group.id", "schakel.restore"},
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "true"},
      {"isolation.level", "read_committed"},
      // A missing offset must not silently become another one.
      {"auto.offset.reset", "error"},
  });
  for (const auto& [key, value] : extra) props[key] = value;
  if (absl::Status s = SetAll(conf.get(), props, "kafka read"); !s.ok()) return s;
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  if (!consumer) return absl::InternalError(absl::StrCat("kafka read: ", error));
  std::vector<RdKafka::TopicPartition*> assignment = {
      RdKafka::TopicPartition::create(topic, partition, offset)};
  RdKafka::ErrorCode err = consumer->assign(assignment);
  RdKafka::TopicPartition::destroy(assignment);
  if (err != RdKafka::ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka read: assign: ", RdKafka::err2str(err)));
  }
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  absl::StatusOr<Record> result =
      absl::UnavailableError(absl::StrCat("kafka read: ", where, " not read in time"));
  bool done = false;
  while (!done && std::chrono::steady_clock::now() < give_up) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    switch (message->err()) {
      case RdKafka::ERR_NO_ERROR: {
        done = true;
        if (message->offset() != offset) {
          result = absl::NotFoundError(
              absl::StrCat("no record at ", where, " (deleted, or a transaction marker)"));
          break;
        }
        result = RecordOf(*message);
        break;
      }
      case RdKafka::ERR__PARTITION_EOF:
        // At the end before reaching it: the offset is past the last (stable) record.
        done = true;
        result = absl::NotFoundError(absl::StrCat("no record at ", where, " (past the end)"));
        break;
      case RdKafka::ERR__TIMED_OUT:
        break;
      case RdKafka::ERR__AUTO_OFFSET_RESET:
      case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
        done = true;
        result = absl::NotFoundError(
            absl::StrCat("no record at ", where, " (out of range: ", message->errstr(), ")"));
        break;
      default:
        done = true;
        result =
            absl::UnavailableError(absl::StrCat("kafka read: ", where, ": ", message->errstr()));
        break;
    }
  }
  consumer->close();
  return result;
}

}  // namespace schakel::kafka
