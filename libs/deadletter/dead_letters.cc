#include "libs/deadletter/dead_letters.h"

#include <google/protobuf/util/time_util.h>
#include <spdlog/spdlog.h>

#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "libs/referral/clock.h"
#include "libs/routing/network.h"

namespace schakel::deadletter {

std::string Key(const kafka::Record& record) {
  return absl::StrCat(record.topic, "/", record.partition, "/", record.offset);
}

v1::DeadLetter Make(const kafka::Record& record, std::string_view reason,
                    std::string_view consumer) {
  v1::DeadLetter letter;
  letter.set_topic(record.topic);
  letter.set_partition(record.partition);
  letter.set_offset(record.offset);
  letter.set_key(record.key);
  letter.set_value(record.value);
  letter.set_reason(std::string(reason));
  letter.set_consumer(std::string(consumer));
  *letter.mutable_at() = referral::Now();
  return letter;
}

bool DeadLetters::Send(const kafka::Record& record, std::string_view reason,
                       const std::function<bool()>& stopping) {
  const std::string value = Make(record, reason, consumer_).SerializeAsString();
  const std::string key = Key(record);
  auto pause = std::chrono::milliseconds(200);
  while (true) {
    auto acknowledged = std::make_shared<std::promise<absl::Status>>();
    std::future<absl::Status> outcome = acknowledged->get_future();
    publisher_.Publish(topic_, key, value,
                       [acknowledged](absl::Status s) { acknowledged->set_value(std::move(s)); });
    const absl::Status status = outcome.get();
    if (status.ok()) {
      spdlog::warn("{}: {} sent to {}: {}", consumer_, key, topic_, std::string(reason));
      return true;
    }
    spdlog::error("{}: cannot send dead letter {}: {}; retrying", consumer_, key,
                  std::string(status.message()));
    if (stopping && stopping()) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace schakel::deadletter
