// How Dockyard's programs use glibc's allocator. Transfers move 1 MiB chunks (blobs,
// artifacts, log batches); by default each such buffer is a fresh mmap that the kernel
// faults in page by page and unmaps on free, which cost the controller most of its CPU
// serving an artifact. Called once, first thing, from each main().
#pragma once

namespace dockyard {

// Buffers up to 32 MiB come from the heap and are reused; freed memory stays with the
// process up to 64 MiB before it is handed back; two arenas instead of eight per core.
void TuneAllocator();
// Hands memory the process freed back to the kernel (after a stage, when it goes idle).
void ReleaseFreeMemory();

}  // namespace dockyard
