/* test_rng.c - determinism and ranges of core/rng. */
#include "rng.h"
#include "test.h"

#include <stdlib.h>

static void test_streams_repeat(void)
{
    struct rng a, b, c;
    rng_seed(&a, 42, 3);
    rng_seed(&b, 42, 3);
    rng_seed(&c, 42, 4);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rng_next(&a), y = rng_next(&b), z = rng_next(&c);
        CHECK(x == y);
        same_c += x == z;
    }
    CHECK(same_c == 0);
}

static void test_uniform_and_below(void)
{
    struct rng r;
    rng_seed(&r, 7, 0);
    double sum = 0;
    int counts[10] = {0};
    for (int i = 0; i < 100000; i++) {
        double u = rng_uniform(&r);
        CHECK(u >= 0.0 && u < 1.0);
        sum += u;
        counts[rng_below(&r, 10)]++;
        float h = rng_hash_uniform(1, 2, (uint64_t)i);
        CHECK(h >= 0.0f && h < 1.0f);
    }
    CHECK_CLOSE(sum / 100000, 0.5, 0, 0.01);
    for (int k = 0; k < 10; k++)
        CHECK_MSG(counts[k] > 9500 && counts[k] < 10500, "bucket %d: %d", k, counts[k]);
}

static void test_shuffle_is_permutation(void)
{
    struct rng r;
    rng_seed(&r, 1, 1);
    uint32_t idx[1000];
    for (uint32_t i = 0; i < 1000; i++)
        idx[i] = i;
    rng_shuffle_u32(&r, idx, 1000);
    int seen[1000] = {0}, moved = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 1000; i++)
        CHECK(seen[i] == 1);
    CHECK(moved > 900);
    CHECK(rng_hash3(1, 2, 3) == rng_hash3(1, 2, 3));
    CHECK(rng_hash3(1, 2, 3) != rng_hash3(1, 2, 4));
}

int main(void)
{
    TEST_RUN(test_streams_repeat);
    TEST_RUN(test_uniform_and_below);
    TEST_RUN(test_shuffle_is_permutation);
    return TEST_EXIT();
}
