// The Kafka client properties of this process: how every client it makes proves who it is to the
// broker (mTLS or SASL) and whom it trusts. A service sets them once at start from --kafka-config
// (a file of librdkafka properties, e.g. deploy/local/pki's kafka/<principal>.properties); every
// producer, consumer, admin and probe in libs/kafka then adds them to its own configuration, so
// no client can forget them. A process that never sets them (a test, a benchmark) takes the file
// named by SCHAKEL_KAFKA_CONFIG, if any.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "libs/kafka/producer.h"

namespace schakel::kafka {

// Reads `key=value` lines ('#' starts a comment line; blank lines are skipped). The values may be
// secrets: no error names one.
absl::StatusOr<Properties> ReadClientConfigFile(const std::string& path);

// Sets this process's client properties (replacing any earlier ones, and the environment's).
void SetClientConfig(Properties properties);
// From a file; an empty path sets none (plaintext clients without identity) rather than the
// environment's.
absl::Status SetClientConfigFile(const std::string& path);

// This process's client properties.
Properties ClientConfig();

// `own` on top of this process's client properties, on top of what every client of ours sets
// (socket.nagle.disable=true): a client's own settings win.
Properties WithClientConfig(const Properties& own);
// The same for a consumer, which also fetches ahead only a few MiB (librdkafka's default is about
// a hundred MiB for a consumer that falls behind).
Properties WithConsumerConfig(const Properties& own);

}  // namespace schakel::kafka
