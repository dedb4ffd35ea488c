/* dropout.c - inverted Dropout (see layers.h).  Masks are deterministic:
 * example e of a step draws from its own xoshiro256** stream, seeded with
 * rng_seed(seed, rng_hash3(step, layer, e)); each 64-bit draw decides two
 * elements (keep when a 32-bit half >= rate * 2^32).  One hash per example,
 * not per element, and the mask of an example does not depend on which
 * thread draws it. */
#include "layers.h"
#include "rng.h"

void dropout_mask(uint8_t *mask, int n, size_t d, float rate, uint64_t seed, int64_t step,
                  int layer, int example0)
{
    double t = (double)rate * 4294967296.0;
    uint64_t thr = t >= 4294967296.0 ? UINT64_C(4294967296) : (uint64_t)t;
    for (int i = 0; i < n; i++) {
        struct rng r;
        rng_seed(&r, seed,
                 rng_hash3((uint64_t)step, (uint64_t)layer, (uint64_t)(example0 + i)));
        uint8_t *m = mask + (size_t)i * d;
        size_t j = 0;
        for (; j + 1 < d; j += 2) {
            uint64_t v = rng_next(&r);
            m[j] = (v & 0xffffffffu) >= thr;
            m[j + 1] = (v >> 32) >= thr;
        }
        if (j < d)
            m[j] = (rng_next(&r) & 0xffffffffu) >= thr;
    }
}

void dropout_forward(float *out, const float *inp, const uint8_t *mask, float rate,
                     size_t count)
{
    float scale = rate < 1.0f ? 1.0f / (1.0f - rate) : 0.0f;
    for (size_t i = 0; i < count; i++)
        out[i] = mask[i] ? inp[i] * scale : 0.0f;
}

void dropout_backward(float *dinp, const float *dout, const uint8_t *mask, float rate,
                      size_t count)
{
    float scale = rate < 1.0f ? 1.0f / (1.0f - rate) : 0.0f;
    for (size_t i = 0; i < count; i++)
        dinp[i] = mask[i] ? dout[i] * scale : 0.0f;
}

void spatial_dropout_mask(uint8_t *mask, uint8_t *chan, int n, int hw, int c, float rate,
                          uint64_t seed, int64_t step, int layer, int example0)
{
    dropout_mask(chan, n, (size_t)c, rate, seed, step, layer, example0);
    for (int e = 0; e < n; e++)
        for (int p = 0; p < hw; p++)
            for (int k = 0; k < c; k++)
                mask[((size_t)e * hw + p) * c + k] = chan[(size_t)e * c + k];
}
