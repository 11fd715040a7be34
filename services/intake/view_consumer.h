// Keeps the referral view up to date: a thread that consumes the submitted, status and unroutable
// topics and applies each record to the ReferralView, marking it done only once the view stored it.
#pragma once

#include <atomic>
#include <thread>

#include "libs/deadletter/dead_letters.h"
#include "libs/kafka/consumer.h"
#include "services/intake/referral_view.h"

namespace schakel::intake {

class ViewConsumer {
 public:
  // `dead_letters`, when given, receives the records the view cannot use (else they are logged).
  ViewConsumer(kafka::Consumer& consumer, ReferralView& view,
               deadletter::DeadLetters* dead_letters = nullptr)
      : consumer_(consumer), view_(view), dead_letters_(dead_letters) {}
  ~ViewConsumer() { Stop(); }

  void Start();
  // Stops the thread; the caller then closes the consumer.
  void Stop();

 private:
  void Run();

  kafka::Consumer& consumer_;
  ReferralView& view_;
  deadletter::DeadLetters* dead_letters_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace schakel::intake
