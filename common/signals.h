// Waiting for SIGTERM/SIGINT in a daemon's main thread: block them in every thread
// (call before starting any), then wait synchronously.
#pragma once

namespace dockyard {

void BlockTerminationSignals();
// Returns the signal number that arrived.
int WaitForTerminationSignal();

}  // namespace dockyard
