#include "services/inbox/audit_queue.h"

#include "absl/strings/str_cat.h"

namespace schakel::inbox {

absl::StatusOr<std::vector<audit::Queued>> StoreAuditQueue::Pending(int limit) {
  absl::StatusOr<std::vector<store::AuditRow>> rows = store_.PendingAudit(limit);
  if (!rows.ok()) return rows.status();
  std::vector<audit::Queued> queued;
  for (const store::AuditRow& row : *rows) {
    audit::Queued item;
    item.id = row.id;
    if (!item.entry.ParseFromString(row.entry)) {
      // Written by this program into its own database: a broken invariant, not bad input.
      return absl::DataLossError(
          absl::StrCat("inbox store: audit entry ", row.id, " cannot be parsed"));
    }
    queued.push_back(std::move(item));
  }
  return queued;
}

absl::Status StoreAuditQueue::Published(const std::vector<std::int64_t>& ids) {
  return store_.DeleteAudit(ids);
}

}  // namespace schakel::inbox
