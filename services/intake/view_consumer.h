// Keeps the referral view up to date: the submitted, status and unroutable topics, read through the
// consume loop, applied to the ReferralView a batch at a time (one SQLite transaction, so the view
// costs one fsync per batch, not per record); a record is marked done only once the view stored
// it, and one the view cannot use goes to intake's dead letters.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "libs/kafka/consume_loop.h"
#include "services/intake/referral_view.h"

namespace schakel::intake {

class ViewConsumer {
 public:
  // `dead_letters`, when given, receives the records the view cannot use (else they are logged).
  // `on_fatal`: the process's policy when the source fails for good (the loop then ends).
  ViewConsumer(kafka::RecordSource& source, ReferralView& view,
               kafka::DeadLetterSink* dead_letters = nullptr,
               std::function<void(absl::Status)> on_fatal = nullptr);
  ~ViewConsumer() { Stop(); }

  void Start() { loop_.Start(); }
  // Stops the loop; the caller then closes the source.
  void Stop() { loop_.Stop(); }

 private:
  kafka::BatchOutcome Handle(std::span<const kafka::Record> batch);

  ReferralView& view_;
  kafka::ConsumeLoop loop_;
};

}  // namespace schakel::intake
