/* rng.h - deterministic random numbers.
 *
 * A stream RNG (xoshiro256**, seeded with splitmix64) for sequential draws
 * such as weight initialisation and epoch shuffles, and a stateless
 * counter-based hash for values that must not depend on the order or the
 * thread that draws them (dropout masks: rng_hash(seed, step, layer, index)). */
#ifndef TRAIND_RNG_H
#define TRAIND_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
};

/* Seed from a 64-bit value and a stream id (e.g. epoch), independent streams per id. */
void rng_seed(struct rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(struct rng *r);
/* Uniform double in [0, 1). */
double rng_uniform(struct rng *r);
/* Uniform integer in [0, bound) without modulo bias; bound > 0. */
uint64_t rng_below(struct rng *r, uint64_t bound);
/* Fisher-Yates shuffle of idx[0..n). */
void rng_shuffle_u32(struct rng *r, uint32_t *idx, uint32_t n);

/* MT19937 as numpy's legacy RandomState(seed) (init_genrand), for orders
 * that must equal numpy's: image folders shuffled as Keras shuffles them. */
struct mt19937 {
    uint32_t mt[624];
    int i;
};
void mt19937_seed(struct mt19937 *m, uint32_t seed);
uint32_t mt19937_next(struct mt19937 *m);
/* numpy's random_interval: uniform in [0, max] by masked rejection
 * (the draws of RandomState.shuffle). */
uint64_t mt19937_interval(struct mt19937 *m, uint64_t max);

/* Stateless: a well-mixed 64-bit value of (a, b, c). */
uint64_t rng_hash3(uint64_t a, uint64_t b, uint64_t c);
/* Stateless uniform float in [0, 1) with 24 random bits from rng_hash3(a, b, c). */
static inline float rng_hash_uniform(uint64_t a, uint64_t b, uint64_t c)
{
    return (float)(rng_hash3(a, b, c) >> 40) * (1.0f / 16777216.0f);
}

#endif
