/* aligned.h - the engine's aligned allocation: every arena (parameters,
 * gradients, optimizer slots, activations, per-thread scratch) starts on a
 * 64-byte boundary, a cache line and one AVX-512 register, and is sized in
 * whole 64-byte units as aligned_alloc requires.  Freed with free(). */
#ifndef TRAIND_ALIGNED_H
#define TRAIND_ALIGNED_H

#include <stdlib.h>
#include <string.h>

#define ALIGNED_BYTES 64

/* bytes rounded up to a multiple of ALIGNED_BYTES. */
static inline size_t aligned_round(size_t bytes)
{
    return (bytes + ALIGNED_BYTES - 1) / ALIGNED_BYTES * ALIGNED_BYTES;
}

/* A zeroed, ALIGNED_BYTES-aligned block of at least bytes (at least one
 * unit when bytes is 0); NULL when out of memory. */
static inline void *aligned_zalloc(size_t bytes)
{
    size_t n = bytes ? aligned_round(bytes) : ALIGNED_BYTES;
    void *p = aligned_alloc(ALIGNED_BYTES, n);
    if (p)
        memset(p, 0, n);
    return p;
}

#endif
