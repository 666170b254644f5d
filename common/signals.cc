#include "common/signals.h"

#include <pthread.h>
#include <signal.h>

namespace dockyard {
namespace {

sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int PollTerminationSignal(long milliseconds) {
  sigset_t set = TerminationSignals();
  timespec timeout{milliseconds / 1000, (milliseconds % 1000) * 1000000};
  const int sig = sigtimedwait(&set, nullptr, &timeout);
  return sig > 0 ? sig : 0;
}

int WaitForTerminationSignal() {
  sigset_t set = TerminationSignals();
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace dockyard
