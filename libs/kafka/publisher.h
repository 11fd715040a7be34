// The seam between services and Kafka's producer: services publish through this interface, so unit
// tests can hand them a fake; the real one is kafka::Producer.
#pragma once

#include <functional>
#include <string_view>

#include "absl/status/status.h"

namespace schakel::kafka {

class Publisher {
 public:
  // Called exactly once per Publish, from the producer's delivery thread: OK once the broker has
  // durably acknowledged the record (acks=all), UNAVAILABLE when it could not be delivered in time.
  using Done = std::function<void(absl::Status)>;

  virtual ~Publisher() = default;
  virtual void Publish(std::string_view topic, std::string_view key, std::string_view value,
                       Done done) = 0;
  // False while no broker can be reached: callers answer UNAVAILABLE at once instead of queueing.
  virtual bool Reachable() const = 0;
};

}  // namespace schakel::kafka
