#include "libs/service/shutdown.h"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>

namespace schakel::service {
namespace {

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockShutdownSignals() {
  sigset_t set = ShutdownSignals();
  if (pthread_sigmask(SIG_BLOCK, &set, nullptr) != 0) std::abort();
}

int WaitForShutdownSignal() {
  sigset_t set = ShutdownSignals();
  int signal = 0;
  if (sigwait(&set, &signal) != 0) std::abort();
  return signal;
}

}  // namespace schakel::service
