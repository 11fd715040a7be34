// The time an event carries (EventMeta.occurred_at, an assignment's timeline, a dead letter's, an
// inbox's load report): the wall clock now, to the microsecond. Protobuf 3.21's
// TimeUtil::GetCurrentTime() gives whole seconds on this platform, so events of one second could
// be neither ordered nor timed by it; every event time comes from here instead.
#pragma once

#include <google/protobuf/timestamp.pb.h>
#include <google/protobuf/util/time_util.h>

#include <chrono>

namespace schakel::referral {

inline google::protobuf::Timestamp Now() {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      std::chrono::duration_cast<std::chrono::microseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace schakel::referral
