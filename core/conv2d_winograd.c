/* conv2d_winograd.c - see conv2d_winograd.h.
 *
 * The transforms (winograd_transforms.c, one copy per kernel path) use no
 * constant but 0, +-1 and 1/2 (exact in binary), so they
 * add at most 2 (input), 4 (filter) and 4 (output) roundings to the direct
 * sum: fl(y) - y stays within gamma(C + 11) times the same computation on the
 * magnitudes (conv2d_winograd_scale_ref, the bound the tests check).
 * Layouts: U[xi][c][k], V[xi][t][c], M[xi][t][k] with xi = 4 * row + column
 * of the 4x4 transform domain and t the tile within the block. */
#include "conv2d_winograd.h"

#include <string.h>

#include "gemm.h"
#include "kernels.h"
#include "winograd_transforms.h"

/* Floats of V + M per block: ~512 KiB, half of a Zen4 L2. */
#define WINO_BLOCK_BUDGET (128 * 1024)
/* Channels in and out below which the direct paths are faster (measured with
 * MiniVGGNet's layers: its first layer, C = 1 or 3, stays direct). */
#define WINO_MIN_C 8
#define WINO_MIN_K 8

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

bool conv2d_winograd_shape(const struct conv2d_geom *g)
{
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->oh > 0 && g->ow > 0 &&
           !conv2d_geom_general(g); /* no dilation, no groups */
}

bool conv2d_winograd_fits(const struct conv2d_geom *g)
{
    return conv2d_winograd_shape(g) && g->c >= WINO_MIN_C && g->k >= WINO_MIN_K;
}

bool conv2d_winograd_pays(const struct conv2d_geom *g)
{
    return kernels_winograd_allowed() && conv2d_winograd_fits(g);
}

/* Tiles per block: a multiple of 12 (the avx512 kernel's row tile) */
static int block_tiles(const struct conv2d_geom *g)
{
    int tb = WINO_BLOCK_BUDGET / (16 * (g->c + g->k));
    tb = tb / 12 * 12;
    return tb < 12 ? 12 : tb;
}

static const struct winograd_transforms *active_transforms(void)
{
    switch (kernels_active()) {
#ifdef TRAIND_X86_KERNELS
    case KERNELS_KIND_AVX2:
        return &winograd_transforms_avx2;
    case KERNELS_KIND_AVX512:
        return &winograd_transforms_avx512;
#endif
    default:
        return &winograd_transforms_generic;
    }
}

size_t conv2d_winograd_scratch_floats(const struct conv2d_geom *g)
{
    size_t tb = (size_t)block_tiles(g);
    return round16((size_t)16 * g->c * g->k) + round16(16 * tb * g->c) +
           round16(16 * tb * g->k) + round16((size_t)g->c) + round16((size_t)g->k) + 16;
}

size_t conv2d_winograd_u_floats(const struct conv2d_geom *g)
{
    return (size_t)16 * g->c * g->k;
}

void conv2d_winograd_filter(float *u, const float *weight, const struct conv2d_geom *g)
{
    active_transforms()->filter(u, weight, g->c, g->k);
}

void conv2d_winograd_forward(float *out, float *scratch, const float *inp, const float *weight,
                             const float *bias, enum activation_kind act, int n,
                             const struct conv2d_geom *g)
{
    conv2d_winograd_forward_post(out, scratch, inp, weight, NULL, bias, act, NULL, NULL, false, n,
                                 g);
}

void conv2d_winograd_forward_post(float *out, float *scratch, const float *inp,
                                  const float *weight, const float *wu, const float *bias,
                                  enum activation_kind act, const float *scale,
                                  const float *shift, bool pool, int n,
                                  const struct conv2d_geom *g)
{
    const int C = g->c, K = g->k, H = g->h, W = g->w, OH = g->oh, OW = g->ow;
    const int th = (OH + 1) / 2, tw = (OW + 1) / 2, tb = block_tiles(g);
    const long tiles = (long)n * th * tw;
    float *u = scratch;
    float *v = u + round16((size_t)16 * C * K);
    float *mm = v + round16((size_t)16 * tb * C);
    float *zero = mm + round16((size_t)16 * tb * K);
    float *sink = zero + round16((size_t)C);
    memset(zero, 0, sizeof(float) * (size_t)C);
    const bool fused = act == ACTIVATION_KIND_LINEAR || act == ACTIVATION_KIND_RELU;
    const float *ebias = fused ? bias : NULL;

    const struct winograd_transforms *tf = active_transforms();
    if (wu)
        u = (float *)wu; /* read only */
    else
        tf->filter(u, weight, C, K);
    const size_t in_img = (size_t)H * W * C;
    const size_t out_img = pool ? (size_t)(OH / 2) * (OW / 2) * K : (size_t)OH * OW * K;
    for (long t0 = 0; t0 < tiles; t0 += tb) {
        int nt = tiles - t0 < tb ? (int)(tiles - t0) : tb;
        for (int t = 0; t < nt; t++) {
            long tile = t0 + t;
            int b = (int)(tile / ((long)th * tw)), r = (int)(tile % ((long)th * tw));
            int iy0 = 2 * (r / tw) - g->pad_top, ix0 = 2 * (r % tw) - g->pad_left;
            const float *img = inp + b * in_img;
            const float *p[16];
            for (int a = 0; a < 4; a++)
                for (int c = 0; c < 4; c++) {
                    int iy = iy0 + a, ix = ix0 + c;
                    p[4 * a + c] = iy >= 0 && iy < H && ix >= 0 && ix < W
                                       ? img + ((size_t)iy * W + ix) * C
                                       : zero;
                }
            tf->input(v + (size_t)t * C, (size_t)tb * C, p, C);
        }
        for (int xi = 0; xi < 16; xi++)
            gemm_nn(mm + (size_t)xi * tb * K, v + (size_t)xi * tb * C, u + (size_t)xi * C * K,
                    nt, K, C, C, K, K);
        for (int t = 0; t < nt; t++) {
            long tile = t0 + t;
            int b = (int)(tile / ((long)th * tw)), r = (int)(tile % ((long)th * tw));
            int oy = 2 * (r / tw), ox = 2 * (r % tw);
            float *o = out + b * out_img;
            float *q[4];
            if (pool) {
                q[0] = o + ((size_t)(oy / 2) * (OW / 2) + ox / 2) * K;
                q[1] = q[2] = q[3] = sink;
            }
            for (int a = 0; !pool && a < 2; a++)
                for (int c = 0; c < 2; c++)
                    q[2 * a + c] = oy + a < OH && ox + c < OW
                                       ? o + ((size_t)(oy + a) * OW + ox + c) * K
                                       : sink;
            tf->output(q, mm + (size_t)t * K, (size_t)tb * K, ebias, act == ACTIVATION_KIND_RELU,
                       scale, shift, pool, K);
        }
    }
    if (!fused)
        activation_bias_forward(out, bias, (size_t)n * OH * OW, K, act);
}
