// Process-wide settings each Dockyard program makes once, first thing in main().
#pragma once

namespace dockyard {

// glibc's allocator: transfers move 1 MiB chunks (blobs, artifacts, log batches); by
// default each such buffer is a fresh mmap that the kernel faults in page by page and
// unmaps on free, which cost the controller most of its CPU serving an artifact. So
// buffers up to 32 MiB come from the heap and are reused; freed memory stays with the
// process up to 64 MiB before it is handed back; two arenas instead of eight per core.
//
// Abseil's mutexes: Debian builds Abseil with lock-order (deadlock) checking on, which
// records every acquisition in a global graph under a global lock: a tenth of the
// controller's CPU under load. The daemons turn it off; tests keep it on, so a
// lock-order inversion still fails there.
void TuneProcess();
// Hands memory the process freed back to the kernel (after a stage, when it goes idle).
void ReleaseFreeMemory();

}  // namespace dockyard
