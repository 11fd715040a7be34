// The inbox's audit queue: the entries of reads and changes wait in the inbox's own database (so
// that one recorded before a call was answered survives a crash, and a read needs no broker), and
// the audit writer (libs/audit) links them into the inbox's chain as it publishes them.
#pragma once

#include <cstdint>
#include <vector>

#include "libs/audit/writer.h"
#include "services/inbox/store/inbox_store.h"

namespace schakel::inbox {

class StoreAuditQueue final : public audit::Queue {
 public:
  explicit StoreAuditQueue(store::InboxStore& store) : store_(store) {}
  absl::StatusOr<std::vector<audit::Queued>> Pending(int limit) override;
  absl::Status Published(const std::vector<std::int64_t>& ids) override;

 private:
  store::InboxStore& store_;
};

}  // namespace schakel::inbox
