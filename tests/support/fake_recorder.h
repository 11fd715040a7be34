// The audit stream behind our own Recorder interface, for unit tests: keeps the entries, durable at
// once (or failing, with `outcome_`, in which case nothing is kept).
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "libs/audit/writer.h"
#include "schakel/v1/audit.pb.h"

namespace schakel::testing {

class FakeRecorder final : public audit::Recorder {
 public:
  void Append(v1::AuditEntry entry, audit::Done done) override {
    absl::Status outcome;
    {
      std::lock_guard lock(mu_);
      outcome = outcome_;
      if (outcome.ok()) entries_.push_back(std::move(entry));
    }
    if (done) done(outcome);
  }
  std::vector<v1::AuditEntry> entries() {
    std::lock_guard lock(mu_);
    return entries_;
  }
  // The entries of one action.
  std::vector<v1::AuditEntry> entries(const std::string& action) {
    std::lock_guard lock(mu_);
    std::vector<v1::AuditEntry> found;
    for (const v1::AuditEntry& e : entries_) {
      if (e.action() == action) found.push_back(e);
    }
    return found;
  }
  absl::Status outcome_;  // set by the test before the calls it is for

 private:
  std::mutex mu_;
  std::vector<v1::AuditEntry> entries_;
};

}  // namespace schakel::testing
