#include "common/allocator.h"

#include <malloc.h>

namespace dockyard {

void TuneAllocator() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_ARENA_MAX, 2);
}

void ReleaseFreeMemory() { malloc_trim(0); }

}  // namespace dockyard
