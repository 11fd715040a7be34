// What waits where: per organisation, its assignments by where they stand, folded from the events
// (the offers on the inbox topics, every status change on the status topic). No personal data: the
// figures are counts, and only ids, need codes, statuses and times are read.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "libs/routing/network.h"
#include "schakel/v1/events.pb.h"

namespace schakel::ops {

struct QueueRow {
  std::string organisation;
  int waiting = 0;  // offered, not yet accepted (requested or received)
  int overdue = 0;  // of those, past the network's SLA for their urgency
  int accepted = 0;
  int in_progress = 0;  // in progress or on hold
  int done = 0;         // completed, failed, cancelled or declined/forwarded (final)
};

class QueueFigures {
 public:
  // An offer (AssignmentRequested from an inbox topic): when it was made and how urgent it is.
  void AddOffer(const v1::AssignmentRequested& offer);
  // A status change: the newest version of each assignment counts.
  void AddStatus(const v1::AssignmentStatusChanged& change);

  // One row per organisation of the network, in its order (organisations with nothing: zeros).
  std::vector<QueueRow> Rows(const routing::Network& network,
                             std::chrono::system_clock::time_point now) const;

 private:
  struct Assignment {
    std::string organisation;
    v1::AssignmentStatus status = v1::ASSIGNMENT_STATUS_REQUESTED;
    std::uint64_t version = 0;
    bool urgent = false;
    std::chrono::system_clock::time_point offered_at{};
    bool offered = false;  // the offer itself was read (else no deadline is known)
  };
  std::map<std::string, Assignment> assignments_;  // by assignment id
};

// A fixed-width table with a header, and the same rows as a JSON array.
std::string QueueTable(const std::vector<QueueRow>& rows);
std::string QueueJson(const std::vector<QueueRow>& rows);

}  // namespace schakel::ops
