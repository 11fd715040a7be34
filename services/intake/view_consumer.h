// Keeps the referral view up to date: a thread that consumes the submitted, status and unroutable
// topics and applies each record to the ReferralView, marking it done only once the view stored it.
#pragma once

#include <atomic>
#include <thread>

#include "libs/kafka/consumer.h"
#include "services/intake/referral_view.h"

namespace schakel::intake {

class ViewConsumer {
 public:
  ViewConsumer(kafka::Consumer& consumer, ReferralView& view) : consumer_(consumer), view_(view) {}
  ~ViewConsumer() { Stop(); }

  void Start();
  // Stops the thread; the caller then closes the consumer.
  void Stop();

 private:
  void Run();

  kafka::Consumer& consumer_;
  ReferralView& view_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace schakel::intake
