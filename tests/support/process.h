// Runs the real binaries in end-to-end tests: start with arguments and a log file, stop with
// SIGTERM (the ordered shutdown path) and collect the exit status.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace schakel::testing {

class ChildProcess {
 public:
  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_path);
  ~ChildProcess();  // kills the process if it still runs
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool running();
  // SIGTERM, then wait up to `seconds`; returns the exit status (128+signal when killed), -1 on
  // time-out (the process is then killed).
  int Stop(int seconds = 20);
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// Runs a command to completion; returns its exit status and puts stdout+stderr in *output.
int RunCommand(const std::vector<std::string>& argv, std::string* output);

}  // namespace schakel::testing
