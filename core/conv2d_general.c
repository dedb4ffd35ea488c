/* conv2d_general.c - dilated and grouped Conv2D (see layers.h): Keras'
 * dilation_rate and groups.
 *
 * Grouped im2col + GEMM in chunks of output rows, one group at a time:
 *   col (rows, KH*KW*Cg) holds group gi's input channels c0 = gi*Cg.. with
 *   tap (i, j) read at (oy*sh - pad_top + i*dh, ox*sw - pad_left + j*dw);
 *   the kernel (KH, KW, Cg, K) is a (KH*KW*Cg, K) matrix whose columns
 *   gi*Kg.. are group gi's filters, so out[:, gi*Kg..] = col * W[:, gi*Kg..]
 *   with leading dimension K (no copy of the kernel).
 * Backward per chunk and group: dW[:, gi*Kg..] += col^T dout[:, gi*Kg..],
 * dcol = dout[:, gi*Kg..] W[:, gi*Kg..]^T scattered back by col2im.
 * conv2d.c dispatches here for every geometry with a dilation or groups
 * other than 1; its faster paths (implicit GEMM, Winograd, flipped-kernel
 * dinp) assume neither. */
#include <cblas.h>
#include <string.h>

#include "conv2d_general.h"

/* Target size of the column buffer (floats), as conv2d.c's */
#define GEN_COL_BUDGET (64 * 1024)

static int imax(int a, int b)
{
    return a > b ? a : b;
}

void conv2d_geom_init_dilated(struct conv2d_geom *g, int h, int w, int c, int k, int kh, int kw,
                              int sh, int sw, int dh, int dw, int groups,
                              enum padding_kind padding)
{
    int ekh = (kh - 1) * dh + 1, ekw = (kw - 1) * dw + 1; /* effective kernel */
    conv2d_geom_init(g, h, w, c, k, ekh, ekw, sh, sw, padding);
    g->kh = kh, g->kw = kw;
    g->dh = dh, g->dw = dw;
    g->groups = groups;
}

bool conv2d_geom_general(const struct conv2d_geom *g)
{
    return g->dh != 1 || g->dw != 1 || g->groups != 1;
}

static int gen_chunk_rows(const struct conv2d_geom *g)
{
    int kkg = g->kh * g->kw * (g->c / g->groups);
    return imax(16, GEN_COL_BUDGET / kkg);
}

size_t conv2d_general_scratch_floats(const struct conv2d_geom *g)
{
    return (size_t)gen_chunk_rows(g) * g->kh * g->kw * (g->c / g->groups);
}

/* The input column of output row m (flattened over n, oy, ox): its image,
 * top-left input position. */
static const float *row_origin(const float *inp, long m, const struct conv2d_geom *g, int *iy0,
                               int *ix0)
{
    const long ohw = (long)g->oh * g->ow;
    long img = m / ohw;
    int r = (int)(m - img * ohw);
    int oy = r / g->ow, ox = r - oy * g->ow;
    *iy0 = oy * g->sh - g->pad_top;
    *ix0 = ox * g->sw - g->pad_left;
    return inp + (size_t)img * g->h * g->w * g->c;
}

/* col (m1 - m0, KH*KW*Cg) of group channels c0..c0+Cg-1 for output rows m0..m1. */
static void im2col_group(float *col, const float *inp, long m0, long m1, int c0,
                         const struct conv2d_geom *g)
{
    const int C = g->c, Cg = g->c / g->groups;
    const size_t kkg = (size_t)g->kh * g->kw * Cg;
    for (long m = m0; m < m1; m++) {
        int iy0, ix0;
        const float *base = row_origin(inp, m, g, &iy0, &ix0);
        float *dst = col + (size_t)(m - m0) * kkg;
        for (int i = 0; i < g->kh; i++) {
            int iy = iy0 + i * g->dh;
            for (int j = 0; j < g->kw; j++) {
                int ix = ix0 + j * g->dw;
                float *d = dst + ((size_t)i * g->kw + j) * Cg;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                    memset(d, 0, sizeof(float) * (size_t)Cg);
                else
                    memcpy(d, base + ((size_t)iy * g->w + ix) * C + c0, sizeof(float) * (size_t)Cg);
            }
        }
    }
}

/* dinp += scatter of dcol rows m0..m1 into group channels c0.. (inverse of im2col_group). */
static void col2im_group_add(float *dinp, const float *dcol, long m0, long m1, int c0,
                             const struct conv2d_geom *g)
{
    const int C = g->c, Cg = g->c / g->groups;
    const size_t kkg = (size_t)g->kh * g->kw * Cg;
    for (long m = m0; m < m1; m++) {
        int iy0, ix0;
        float *base = (float *)row_origin(dinp, m, g, &iy0, &ix0);
        const float *src = dcol + (size_t)(m - m0) * kkg;
        for (int i = 0; i < g->kh; i++) {
            int iy = iy0 + i * g->dh;
            if (iy < 0 || iy >= g->h)
                continue;
            for (int j = 0; j < g->kw; j++) {
                int ix = ix0 + j * g->dw;
                if (ix < 0 || ix >= g->w)
                    continue;
                const float *s = src + ((size_t)i * g->kw + j) * Cg;
                float *d = base + ((size_t)iy * g->w + ix) * C + c0;
                for (int e = 0; e < Cg; e++)
                    d[e] += s[e];
            }
        }
    }
}

void conv2d_general_forward(float *out, float *scratch, const float *inp, const float *weight,
                            const float *bias, enum activation_kind act, int n,
                            const struct conv2d_geom *g)
{
    const int K = g->k, G = g->groups, Cg = g->c / G, Kg = K / G;
    const int kkg = g->kh * g->kw * Cg;
    const long M = (long)n * g->oh * g->ow, step = gen_chunk_rows(g);
    for (long m0 = 0; m0 < M; m0 += step) {
        long m1 = m0 + step < M ? m0 + step : M;
        int rows = (int)(m1 - m0);
        float *o = out + (size_t)m0 * K;
        for (int gi = 0; gi < G; gi++) {
            im2col_group(scratch, inp, m0, m1, gi * Cg, g);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, Kg, kkg, 1.0f, scratch,
                        kkg, weight + (size_t)gi * Kg, K, 0.0f, o + (size_t)gi * Kg, K);
        }
        activation_bias_forward(o, bias, (size_t)rows, K, act);
    }
}

void conv2d_general_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                             const float *dout, const float *inp, const float *weight, int n,
                             const struct conv2d_geom *g)
{
    const int K = g->k, G = g->groups, Cg = g->c / G, Kg = K / G;
    const int kkg = g->kh * g->kw * Cg;
    const long M = (long)n * g->oh * g->ow, step = gen_chunk_rows(g);
    if (dinp)
        memset(dinp, 0, sizeof(float) * (size_t)n * g->h * g->w * g->c);
    for (long m0 = 0; m0 < M; m0 += step) {
        long m1 = m0 + step < M ? m0 + step : M;
        int rows = (int)(m1 - m0);
        const float *d = dout + (size_t)m0 * K;
        if (dbias)
            for (int r = 0; r < rows; r++)
                for (int k = 0; k < K; k++)
                    dbias[k] += d[(size_t)r * K + k];
        for (int gi = 0; gi < G; gi++) {
            im2col_group(scratch, inp, m0, m1, gi * Cg, g);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kkg, Kg, rows, 1.0f, scratch,
                        kkg, d + (size_t)gi * Kg, K, 1.0f, dweight + (size_t)gi * Kg, K);
            if (!dinp)
                continue;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, kkg, Kg, 1.0f,
                        d + (size_t)gi * Kg, K, weight + (size_t)gi * Kg, K, 0.0f, scratch, kkg);
            col2im_group_add(dinp, scratch, m0, m1, gi * Cg, g);
        }
    }
}
