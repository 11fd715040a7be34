// The network file the router runs on, picked up again when an operator changes it: a valid change
// replaces the policy for the next decisions; an invalid one is refused (logged with file, place
// and problem) while the running policy stays.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "libs/routing/policy.h"

namespace schakel::router {

class NetworkWatch {
 public:
  // Called with a changed, valid network before it is taken; an error refuses the change (e.g. the
  // topics of new organisations could not be created).
  using Prepare = std::function<absl::Status(const routing::Network&)>;

  // Loads `path`; an error when the file is not valid.
  static absl::StatusOr<std::unique_ptr<NetworkWatch>> Load(const std::string& path,
                                                            Prepare prepare = nullptr);

  // The policy for the next decision (safe from any thread).
  std::shared_ptr<const routing::Policy> Current() const ABSL_LOCKS_EXCLUDED(mu_);

  // Looks at the file again when its modification time or size changed. OK when nothing changed or
  // the change was taken; the refusal otherwise (the running policy stays).
  absl::Status CheckForChange() ABSL_LOCKS_EXCLUDED(mu_);

  std::uint64_t reloads() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  NetworkWatch(std::string path, Prepare prepare)
      : path_(std::move(path)), prepare_(std::move(prepare)) {}
  struct Stamp {
    std::filesystem::file_time_type modified{};
    std::uintmax_t size = 0;
    friend bool operator==(const Stamp&, const Stamp&) = default;
  };
  Stamp Read() const;

  std::string path_;
  Prepare prepare_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const routing::Policy> policy_ ABSL_GUARDED_BY(mu_);
  Stamp stamp_ ABSL_GUARDED_BY(mu_);
  std::uint64_t reloads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace schakel::router
