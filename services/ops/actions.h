// What operators ask the ops service to do, with the real Kafka and ops' audit chain behind it:
// a reassignment of an unroutable need (checked by OpsView, published to the reassign topic) and
// the Kafka and audit work of a redrive of a dead letter (the checks are Redriver's, redrive.h).
// Each answers once Kafka acknowledged it and its audit entry is committed, with the operator's
// name.
#pragma once

#include <string>

#include "libs/audit/writer.h"
#include "libs/kafka/publisher.h"
#include "libs/routing/network.h"
#include "services/ops/console_http.h"
#include "services/ops/ops_view.h"
#include "services/ops/redrive.h"

namespace schakel::ops {

// The console's reassignment: checked against what `view` knows, then on Kafka (the router acts
// on it). Everything given outlives what is returned.
ConsoleServer::Reassign KafkaReassign(OpsView& view, kafka::Publisher& publisher,
                                      audit::AuditLog& audit_log);

// A redrive's reads and writes on the Kafka at `bootstrap_servers`, through `publisher`,
// with earlier redrives found in and new ones recorded to ops' audit chain. Everything given
// outlives what is returned.
Redriver::Io KafkaRedriveIo(const std::string& bootstrap_servers, const routing::Network& network,
                            kafka::Publisher& publisher, audit::AuditLog& audit_log);

}  // namespace schakel::ops
