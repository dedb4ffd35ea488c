/* winograd_transforms.c - see winograd_transforms.h.  Built once per kernel
 * path with -DWINOGRAD_TABLE=winograd_transforms_<path>.
 *
 * F(2x2, 3x3) with the interpolation points 0, 1, -1:
 *   B^T = [1  0 -1  0]   G = [ 1    0    0 ]   A^T = [1 1  1  0]
 *         [0  1  1  0]       [1/2  1/2  1/2]         [0 1 -1 -1]
 *         [0 -1  1  0]       [1/2 -1/2  1/2]
 *         [0  1  0 -1]       [ 0    0    1 ]
 * xi = 4 * row + column of the 4x4 transform domain. */
#include "winograd_transforms.h"


#include <float.h>
#include <string.h>

/* Channels per step: the loops over a block of L channels have constant
 * bounds and work on local arrays, so GCC keeps them in vector registers
 * (16 floats = one zmm, two ymm, four xmm); the last partial block runs the
 * same code on the remaining count. */
#define L 16

/* memcpy of n <= L floats; the full block with a constant size, which GCC
 * turns into vector loads and stores instead of a call */
static inline void copy_lanes(float *dst, const float *src, size_t n)
{
    if (n == L)
        memcpy(dst, src, sizeof(float) * L);
    else
        memcpy(dst, src, sizeof(float) * n);
}

/* dst[0..L) = src[0..n) then zeros (the lanes past the data are computed
 * on but never stored) */
static inline void load_lanes(float *dst, const float *src, size_t n)
{
    if (n == L) {
        memcpy(dst, src, sizeof(float) * L);
        return;
    }
    memcpy(dst, src, sizeof(float) * n);
    memset(dst + n, 0, sizeof(float) * (L - n));
}

/* U[xi][c][k] = (G g G^T)[xi] for the (3, 3, C, K) kernel */
static void filter_transform(float *u, const float *weight, int C, int K)
{
    const size_t ck = (size_t)C * K;
    for (size_t e0 = 0; e0 < ck; e0 += L) {
        size_t n = ck - e0 < L ? ck - e0 : L;
        float g[9][L], r[4][3][L], o[16][L];
        for (int i = 0; i < 9; i++)
            load_lanes(g[i], weight + i * ck + e0, n);
        for (int j = 0; j < 3; j++)
            for (int l = 0; l < L; l++) {
                float g0 = g[j][l], g1 = g[3 + j][l], g2 = g[6 + j][l];
                r[0][j][l] = g0;
                r[1][j][l] = 0.5f * (g0 + g1 + g2);
                r[2][j][l] = 0.5f * (g0 - g1 + g2);
                r[3][j][l] = g2;
            }
        for (int a = 0; a < 4; a++)
            for (int l = 0; l < L; l++) {
                float r0 = r[a][0][l], r1 = r[a][1][l], r2 = r[a][2][l];
                o[4 * a][l] = r0;
                o[4 * a + 1][l] = 0.5f * (r0 + r1 + r2);
                o[4 * a + 2][l] = 0.5f * (r0 - r1 + r2);
                o[4 * a + 3][l] = r2;
            }
        for (int xi = 0; xi < 16; xi++)
            copy_lanes(u + xi * ck + e0, o[xi], n);
    }
}

static void input_transform(float *v, size_t vs, const float *const p[16], int C)
{
    for (int c0 = 0; c0 < C; c0 += L) {
        size_t n = C - c0 < L ? (size_t)(C - c0) : L;
        float d[16][L], t[4][4][L], o[16][L];
        for (int i = 0; i < 16; i++)
            load_lanes(d[i], p[i] + c0, n);
        for (int b = 0; b < 4; b++)
            for (int l = 0; l < L; l++) {
                float d0 = d[b][l], d1 = d[4 + b][l], d2 = d[8 + b][l], d3 = d[12 + b][l];
                t[0][b][l] = d0 - d2;
                t[1][b][l] = d1 + d2;
                t[2][b][l] = d2 - d1;
                t[3][b][l] = d1 - d3;
            }
        for (int a = 0; a < 4; a++)
            for (int l = 0; l < L; l++) {
                float t0 = t[a][0][l], t1 = t[a][1][l], t2 = t[a][2][l], t3 = t[a][3][l];
                o[4 * a][l] = t0 - t2;
                o[4 * a + 1][l] = t1 + t2;
                o[4 * a + 2][l] = t2 - t1;
                o[4 * a + 3][l] = t1 - t3;
            }
        for (int xi = 0; xi < 16; xi++)
            copy_lanes(v + xi * vs + c0, o[xi], n);
    }
}

static void output_transform(float *const q[4], const float *m, size_t ms, const float *bias,
                             bool relu, const float *scale, const float *shift, bool pool,
                             int K)
{
    for (int k0 = 0; k0 < K; k0 += L) {
        size_t n = K - k0 < L ? (size_t)(K - k0) : L;
        float x[16][L], t[2][4][L], y[4][L], bk[L], sc[L], sh[L];
        for (int xi = 0; xi < 16; xi++)
            load_lanes(x[xi], m + xi * ms + k0, n);
        if (bias)
            load_lanes(bk, bias + k0, n);
        else
            memset(bk, 0, sizeof(bk));
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < L; l++) {
                float m0 = x[j][l], m1 = x[4 + j][l], m2 = x[8 + j][l], m3 = x[12 + j][l];
                t[0][j][l] = m0 + m1 + m2;
                t[1][j][l] = m1 - m2 - m3;
            }
        for (int a = 0; a < 2; a++)
            for (int l = 0; l < L; l++) {
                y[2 * a][l] = t[a][0][l] + t[a][1][l] + t[a][2][l] + bk[l];
                y[2 * a + 1][l] = t[a][1][l] - t[a][2][l] - t[a][3][l] + bk[l];
            }
        if (relu)
            for (int i = 0; i < 4; i++)
                for (int l = 0; l < L; l++)
                    y[i][l] = y[i][l] > 0.0f ? y[i][l] : 0.0f;
        if (scale) {
            load_lanes(sc, scale + k0, n);
            load_lanes(sh, shift + k0, n);
            for (int i = 0; i < 4; i++)
                for (int l = 0; l < L; l++)
                    y[i][l] = y[i][l] * sc[l] + sh[l];
        }
        if (pool) {
            float p[L];
            for (int l = 0; l < L; l++)
                p[l] = -FLT_MAX;
            for (int i = 0; i < 4; i++)
                for (int l = 0; l < L; l++)
                    p[l] = y[i][l] > p[l] ? y[i][l] : p[l];
            copy_lanes(q[0] + k0, p, n);
            continue;
        }
        for (int i = 0; i < 4; i++)
            copy_lanes(q[i] + k0, y[i], n);
    }
}

const struct winograd_transforms WINOGRAD_TABLE = {
    .filter = filter_transform,
    .input = input_transform,
    .output = output_transform,
};
