// What waits where: per organisation, its assignments by where they stand, folded from the events
// (the offers on the inbox topics, every status change on the status topic). No personal data: the
// figures are counts, and only ids, need codes, statuses and times are read.
#pragma once

#include <chrono>
#include <cstdint>
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
  // Records on the organisation's topic its inbox has not consumed yet; -1: not known.
  std::int64_t lag = -1;
  // Throughput over the last kThroughputWindow: offers made to it, and offers it accepted.
  double offered_per_minute = 0;
  double accepted_per_minute = 0;
};

// The same figures per organisation and need (for the metrics), without lag and throughput.
struct QueueCell {
  std::string organisation;
  std::string need;
  int waiting = 0;
  int overdue = 0;
  int accepted = 0;
  int in_progress = 0;
  int done = 0;
};

inline constexpr std::chrono::minutes kThroughputWindow{5};

// How far an inbox is behind on its topic: the records (not transaction markers) at or after its
// group's committed offset, counted from the offsets of the records read.
class TopicLag {
 public:
  void Seen(std::int32_t partition, std::int64_t offset);
  // `committed`: partition → next offset the group reads (a partition absent: nothing committed).
  std::int64_t Behind(const std::map<std::int32_t, std::int64_t>& committed) const;

 private:
  std::map<std::int32_t, std::vector<std::int64_t>> offsets_;  // ascending per partition
};

class QueueFigures {
 public:
  // An offer (AssignmentRequested from an inbox topic): when it was made and how urgent it is.
  void AddOffer(const v1::AssignmentRequested& offer);
  // A status change: the newest version of each assignment counts.
  void AddStatus(const v1::AssignmentStatusChanged& change);

  // One row per organisation of the network, in its order (organisations with nothing: zeros);
  // `lag` by organisation id where known.
  std::vector<QueueRow> Rows(const routing::Network& network,
                             std::chrono::system_clock::time_point now,
                             const std::map<std::string, std::int64_t>& lag = {}) const;
  // Per organisation and need, for organisations of the network, ordered by both.
  std::vector<QueueCell> Cells(const routing::Network& network,
                               std::chrono::system_clock::time_point now) const;

 private:
  struct Assignment {
    std::string organisation;
    std::string need;
    v1::AssignmentStatus status = v1::ASSIGNMENT_STATUS_REQUESTED;
    std::uint64_t version = 0;
    bool urgent = false;
    std::chrono::system_clock::time_point offered_at{};
    bool offered = false;  // the offer itself was read (else no deadline is known)
    std::chrono::system_clock::time_point accepted_at{};  // when first accepted; epoch: never
  };
  // Waiting for acceptance past the network's SLA for its urgency (known only once its offer was
  // read).
  static bool Overdue(const routing::Network& network, const Assignment& a,
                      std::chrono::system_clock::time_point now);

  std::map<std::string, Assignment> assignments_;  // by assignment id
};

// A fixed-width table with a header, and the same rows as a JSON array.
std::string QueueTable(const std::vector<QueueRow>& rows);
std::string QueueJson(const std::vector<QueueRow>& rows);

}  // namespace schakel::ops
