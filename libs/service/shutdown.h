// SIGINT and SIGTERM take the ordered shutdown path. Call BlockShutdownSignals() first thing in
// main (before any thread starts, so every thread inherits the mask), then WaitForShutdownSignal()
// where the main thread has nothing else to do.
#pragma once

namespace schakel::service {

void BlockShutdownSignals();
// Returns the signal number that arrived.
int WaitForShutdownSignal();

}  // namespace schakel::service
