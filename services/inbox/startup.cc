#include "services/inbox/startup.h"

#include <chrono>
#include <map>

#include "libs/routing/network.h"
#include "libs/topology/topics.h"

namespace schakel::inbox {

absl::StatusOr<kafka::ConsumerOptions> TopicConsumerOptions(const std::string& organisation,
                                                            store::InboxStore& store,
                                                            const std::string& bootstrap_servers) {
  absl::StatusOr<std::string> instance = store.InstanceId();
  if (!instance.ok()) return instance.status();
  const std::string topic = topology::InboxTopic(organisation);
  return kafka::ConsumerOptions{.bootstrap_servers = bootstrap_servers,
                                .group_id = topic + "." + *instance,
                                .topics = {topic},
                                .client_id = "inbox-" + organisation,
                                .extra = {}};
}

kafka::ConsumerOptions ErasureConsumerOptions(const kafka::ConsumerOptions& inbox) {
  kafka::ConsumerOptions erasures = inbox;
  erasures.group_id = inbox.group_id + ".erasures";
  erasures.topics = {std::string(topology::kErasuresTopic)};
  erasures.on_lag = nullptr;
  return erasures;
}

absl::Status ReplayIfNew(store::InboxStore& store, kafka::Consumer& consumer,
                         AssignmentIngest& ingest, const std::string& topic) {
  absl::StatusOr<std::int64_t> last = store.LastSequence();
  if (!last.ok() || *last != 0) return absl::OkStatus();
  absl::StatusOr<std::map<std::int32_t, std::int64_t>> ends =
      consumer.EndOffsets(topic, std::chrono::seconds(10));
  return ends.ok() ? ingest.ReplayUntil(*ends) : ends.status();
}

}  // namespace schakel::inbox
