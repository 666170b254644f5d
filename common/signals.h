// Waiting for SIGTERM/SIGINT in a daemon's main thread: block them in every thread
// (call before starting any), then wait synchronously.
#pragma once

namespace dockyard {

void BlockTerminationSignals();
// Returns the signal number that arrived.
int WaitForTerminationSignal();
// Waits up to `milliseconds` for one; returns its number, or 0 when none came.
int PollTerminationSignal(long milliseconds);

}  // namespace dockyard
