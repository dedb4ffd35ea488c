/* conv2d_winograd.c - see conv2d_winograd.h.
 *
 * F(2x2, 3x3) with the interpolation points 0, 1, -1:
 *   B^T = [1  0 -1  0]   G = [ 1    0    0 ]   A^T = [1 1  1  0]
 *         [0  1  1  0]       [1/2  1/2  1/2]         [0 1 -1 -1]
 *         [0 -1  1  0]       [1/2 -1/2  1/2]
 *         [0  1  0 -1]       [ 0    0    1 ]
 * The only constants are 0, +-1 and 1/2 (exact in binary), so the transforms
 * add at most 2 (input), 4 (filter) and 4 (output) roundings to the direct
 * sum: fl(y) - y stays within gamma(C + 11) times the same computation on the
 * magnitudes (conv2d_winograd_scale_ref, the bound the tests check).
 * Layouts: U[xi][c][k], V[xi][t][c], M[xi][t][k] with xi = 4 * row + column
 * of the 4x4 transform domain and t the tile within the block. */
#include "conv2d_winograd.h"

#include <string.h>

#include "gemm.h"

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
    return g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->oh > 0 && g->ow > 0;
}

bool conv2d_winograd_pays(const struct conv2d_geom *g)
{
    return conv2d_winograd_shape(g) && g->c >= WINO_MIN_C && g->k >= WINO_MIN_K;
}

/* Tiles per block: a multiple of 12 (the avx512 kernel's row tile) */
static int block_tiles(const struct conv2d_geom *g)
{
    int tb = WINO_BLOCK_BUDGET / (16 * (g->c + g->k));
    tb = tb / 12 * 12;
    return tb < 12 ? 12 : tb;
}

size_t conv2d_winograd_scratch_floats(const struct conv2d_geom *g)
{
    size_t tb = (size_t)block_tiles(g);
    return round16((size_t)16 * g->c * g->k) + round16(16 * tb * g->c) +
           round16(16 * tb * g->k) + round16((size_t)g->c) + round16((size_t)g->k) + 16;
}

/* U[xi][c][k] = (G g G^T)[xi] for the (3, 3, C, K) kernel */
static void filter_transform(float *u, const float *weight, int C, int K)
{
    const size_t ck = (size_t)C * K;
    for (size_t e = 0; e < ck; e++) {
        float g[3][3], r[4][3];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                g[i][j] = weight[(i * 3 + j) * ck + e];
        for (int j = 0; j < 3; j++) {
            r[0][j] = g[0][j];
            r[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
            r[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
            r[3][j] = g[2][j];
        }
        for (int a = 0; a < 4; a++) {
            float *ua = u + (size_t)a * 4 * ck + e;
            ua[0] = r[a][0];
            ua[ck] = 0.5f * (r[a][0] + r[a][1] + r[a][2]);
            ua[2 * ck] = 0.5f * (r[a][0] - r[a][1] + r[a][2]);
            ua[3 * ck] = r[a][2];
        }
    }
}

/* V[xi][t][0..C) = (B^T d B)[xi] for the 4x4 patch whose rows start at p[0..16)
 * (each a C-vector: an input pixel or the zero vector); vs = 16 V's row stride */
static void input_transform(float *v, size_t vs, const float *const p[16], int C)
{
#pragma GCC ivdep
    for (int c = 0; c < C; c++) {
        float t[4][4];
        for (int b = 0; b < 4; b++) {
            float d0 = p[b][c], d1 = p[4 + b][c], d2 = p[8 + b][c], d3 = p[12 + b][c];
            t[0][b] = d0 - d2;
            t[1][b] = d1 + d2;
            t[2][b] = d2 - d1;
            t[3][b] = d1 - d3;
        }
        for (int a = 0; a < 4; a++) {
            float *va = v + (size_t)a * 4 * vs + c;
            va[0] = t[a][0] - t[a][2];
            va[vs] = t[a][1] + t[a][2];
            va[2 * vs] = t[a][2] - t[a][1];
            va[3 * vs] = t[a][1] - t[a][3];
        }
    }
}

/* The 2x2 outputs q[0..4) (K-vectors, row-major) = A^T M A (+ bias, ReLU);
 * m = M[0][t], ms = 16 M's stride */
static void output_transform(float *const q[4], const float *m, size_t ms, const float *bias,
                             bool relu, int K)
{
#pragma GCC ivdep
    for (int k = 0; k < K; k++) {
        float t[2][4];
        for (int j = 0; j < 4; j++) {
            float m0 = m[j * ms + k], m1 = m[(4 + j) * ms + k];
            float m2 = m[(8 + j) * ms + k], m3 = m[(12 + j) * ms + k];
            t[0][j] = m0 + m1 + m2;
            t[1][j] = m1 - m2 - m3;
        }
        float bk = bias ? bias[k] : 0.0f;
        for (int a = 0; a < 2; a++) {
            float y0 = t[a][0] + t[a][1] + t[a][2] + bk;
            float y1 = t[a][1] - t[a][2] - t[a][3] + bk;
            if (relu) {
                y0 = y0 > 0.0f ? y0 : 0.0f;
                y1 = y1 > 0.0f ? y1 : 0.0f;
            }
            q[2 * a][k] = y0;
            q[2 * a + 1][k] = y1;
        }
    }
}

void conv2d_winograd_forward(float *out, float *scratch, const float *inp, const float *weight,
                             const float *bias, enum activation_kind act, int n,
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

    filter_transform(u, weight, C, K);
    const size_t in_img = (size_t)H * W * C, out_img = (size_t)OH * OW * K;
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
            input_transform(v + (size_t)t * C, (size_t)tb * C, p, C);
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
            for (int a = 0; a < 2; a++)
                for (int c = 0; c < 2; c++)
                    q[2 * a + c] = oy + a < OH && ox + c < OW
                                       ? o + ((size_t)(oy + a) * OW + ox + c) * K
                                       : sink;
            output_transform(q, mm + (size_t)t * K, (size_t)tb * K, ebias,
                             act == ACTIVATION_KIND_RELU, K);
        }
    }
    if (!fused)
        activation_bias_forward(out, bias, (size_t)n * OH * OW, K, act);
}
