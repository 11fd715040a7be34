// What the inbox's main needs besides the process shell: the consumer groups of its two consumers,
// named after its database, and the rebuild of a new database from the topic's history.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/kafka/consumer.h"
#include "services/inbox/store/inbox_store.h"
#include "services/inbox/ingest.h"

namespace schakel::inbox {

// The consumer of the inbox's topic on `bootstrap_servers`: one consumer group per
// database file (schakel.inbox.<org>.<instance id>), so that a new database reads the whole topic
// again and so rebuilds the inbox, and a restart on the same file resumes where it was.
absl::StatusOr<kafka::ConsumerOptions> TopicConsumerOptions(const std::string& organisation,
                                                            store::InboxStore& store,
                                                            const std::string& bootstrap_servers);

// The erasures' consumer: the same group naming (a new database applies every erasure again), and
// no lag figures (the lag gauge reports the inbox's own topic: one lag source per process).
kafka::ConsumerOptions ErasureConsumerOptions(const kafka::ConsumerOptions& inbox);

// A new database (first start, or a rebuild after losing the old one) replays the topic's history
// up to its end now, before the inbox consumes; a database with history: nothing to do.
absl::Status ReplayIfNew(store::InboxStore& store, kafka::Consumer& consumer,
                         AssignmentIngest& ingest, const std::string& topic);

}  // namespace schakel::inbox
