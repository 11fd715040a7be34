// Runs the real binaries in end-to-end tests: start with arguments, a log file and optionally extra
// environment variables, stop with SIGTERM (the ordered shutdown path) or kill with any signal (a
// crash), and collect the exit status.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace schakel::testing {

class ChildProcess {
 public:
  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_path);
  // As above, with `extra_env` ("NAME=value") added to (or replacing in) the test's environment,
  // for this child only.
  ChildProcess(const std::string& program, const std::vector<std::string>& args,
               const std::string& log_path, const std::vector<std::string>& extra_env);
  ~ChildProcess();  // kills the process if it still runs
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool running();
  // SIGTERM, then wait up to `seconds`; returns the exit status (128+signal when killed), -1 on
  // time-out (the process is then killed).
  int Stop(int seconds = 20);
  // Sends `signo` (SIGKILL: a crash, no chance to clean up) and waits up to `seconds` for the
  // process to end; returns its exit status as Stop does (-1 on time-out, after a SIGKILL).
  int Kill(int signo, int seconds = 20);
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
