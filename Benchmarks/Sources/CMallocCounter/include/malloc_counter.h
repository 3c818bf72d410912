#ifndef MESHSIM_MALLOC_COUNTER_H
#define MESHSIM_MALLOC_COUNTER_H
#include <stdint.h>
/// The number of heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) so far.
uint64_t meshsim_allocation_count(void);
#endif
