/* conv2d_ref.c - see conv2d_ref.h.
 *
 * out[b][oy][ox][k] = bias[k] + sum_{i,j,c} inp[b][iy][ix][c0 + c] * w[i][j][c][k]
 * with iy = oy*sh - pad_top + i*dh, ix = ox*sw - pad_left + j*dw (outside = 0),
 * c over the Cg = C / groups channels of k's group, c0 = (k / (K / groups)) * Cg. */
#include "conv2d_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void conv2d_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                        enum activation_kind act, int n, const struct conv2d_geom *g)
{
    const int C = g->c, K = g->k, Cg = C / g->groups, Kg = K / g->groups;
    for (int b = 0; b < n; b++) {
        const float *x = inp + (size_t)b * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                float *o = out + (((size_t)b * g->oh + oy) * g->ow + ox) * K;
                for (int k = 0; k < K; k++) {
                    double s = bias ? bias[k] : 0.0;
                    for (int i = 0; i < g->kh; i++)
                        for (int j = 0; j < g->kw; j++) {
                            long t = conv2d_geom_tap(g, oy, ox, i, j);
                            const int c0 = k / Kg * Cg;
                            for (int c = 0; t >= 0 && c < Cg; c++)
                                s += (double)x[t + c0 + c] *
                                     weight[(((size_t)i * g->kw + j) * Cg + c) * K + k];
                        }
                    o[k] = (float)s;
                }
            }
    }
    activation_bias_forward(out, NULL, (size_t)n * g->oh * g->ow, K, act);
}

void conv2d_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                         const float *inp, const float *weight, int n,
                         const struct conv2d_geom *g)
{
    const int C = g->c, K = g->k, Cg = C / g->groups, Kg = K / g->groups;
    const size_t in_img = (size_t)g->h * g->w * C, out_img = (size_t)g->oh * g->ow * K;
    /* dbias[k] += sum over positions of dout */
    for (int k = 0; dbias && k < K; k++) {
        double s = 0;
        for (size_t p = 0; p < (size_t)n * g->oh * g->ow; p++)
            s += dout[p * K + k];
        dbias[k] += (float)s;
    }
    /* dweight[i][j][c][k] += sum_{b,oy,ox} inp[b][iy][ix][c0 + c] * dout[b][oy][ox][k] */
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++)
            for (int c = 0; c < Cg; c++)
                for (int k = 0; k < K; k++) {
                    const int c0 = k / Kg * Cg;
                    double s = 0;
                    for (int b = 0; b < n; b++)
                        for (int oy = 0; oy < g->oh; oy++)
                            for (int ox = 0; ox < g->ow; ox++) {
                                long t = conv2d_geom_tap(g, oy, ox, i, j);
                                if (t >= 0)
                                    s += (double)inp[b * in_img + t + c0 + c] *
                                         dout[b * out_img + ((size_t)oy * g->ow + ox) * K + k];
                            }
                    dweight[(((size_t)i * g->kw + j) * Cg + c) * K + k] += (float)s;
                }
    /* dinp[b][iy][ix][c] = sum over the (oy, ox, i, j) that read it of
     * w[i][j][c][k] * dout[b][oy][ox][k], gathered per input element */
    if (!dinp)
        return;
    double *acc = calloc(in_img, sizeof(double));
    for (int b = 0; acc && b < n; b++) {
        memset(acc, 0, in_img * sizeof(double));
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                const float *d = dout + b * out_img + ((size_t)oy * g->ow + ox) * K;
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        long t = conv2d_geom_tap(g, oy, ox, i, j);
                        for (int c = 0; t >= 0 && c < C; c++) {
                            const int gi = c / Cg;
                            const float *w =
                                weight + (((size_t)i * g->kw + j) * Cg + c % Cg) * K;
                            for (int k = gi * Kg; k < (gi + 1) * Kg; k++)
                                acc[t + c] += (double)w[k] * d[k];
                        }
                    }
            }
        for (size_t e = 0; e < in_img; e++)
            dinp[b * in_img + e] = (float)acc[e];
    }
    free(acc);
}

/* |G| g |G|^T, |B^T| d |B|, |A^T| m |A| of conv2d_winograd.c's matrices */
static const double wg_g[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}, {0, 0, 1}};
static const double wg_bt[4][4] = {{1, 0, 1, 0}, {0, 1, 1, 0}, {0, 1, 1, 0}, {0, 1, 0, 1}};
static const double wg_at[2][4] = {{1, 1, 1, 0}, {0, 1, 1, 1}};

void conv2d_winograd_scale_ref(float *scale, const float *inp, const float *weight,
                               const float *bias, int n, const struct conv2d_geom *g)
{
    const int C = g->c, K = g->k, th = (g->oh + 1) / 2, tw = (g->ow + 1) / 2;
    const size_t ck = (size_t)C * K;
    double *u = malloc(sizeof(double) * 16 * ck), *v = malloc(sizeof(double) * 16 * C);
    double *m = malloc(sizeof(double) * 16);
    for (size_t e = 0; u && e < ck; e++)
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                double s = 0;
                for (int i = 0; i < 3; i++)
                    for (int j = 0; j < 3; j++)
                        s += wg_g[a][i] * fabs(weight[(i * 3 + j) * ck + e]) * wg_g[b][j];
                u[(a * 4 + b) * ck + e] = s;
            }
    for (int bi = 0; u && v && m && bi < n; bi++)
        for (int ty = 0; ty < th; ty++)
            for (int tx = 0; tx < tw; tx++) {
                const float *x = inp + (size_t)bi * g->h * g->w * C;
                int iy0 = 2 * ty - g->pad_top, ix0 = 2 * tx - g->pad_left;
                for (int c = 0; c < C; c++)
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) {
                            double s = 0;
                            for (int i = 0; i < 4; i++)
                                for (int j = 0; j < 4; j++) {
                                    int iy = iy0 + i, ix = ix0 + j;
                                    if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
                                        s += wg_bt[a][i] *
                                             fabs(x[((size_t)iy * g->w + ix) * C + c]) *
                                             wg_bt[b][j];
                                }
                            v[(a * 4 + b) * C + c] = s;
                        }
                for (int k = 0; k < K; k++) {
                    for (int xi = 0; xi < 16; xi++) {
                        double s = 0;
                        for (int c = 0; c < C; c++)
                            s += u[xi * ck + (size_t)c * K + k] * v[xi * C + c];
                        m[xi] = s;
                    }
                    for (int r = 0; r < 2; r++)
                        for (int q = 0; q < 2; q++) {
                            int oy = 2 * ty + r, ox = 2 * tx + q;
                            if (oy >= g->oh || ox >= g->ow)
                                continue;
                            double s = bias ? fabs(bias[k]) : 0.0;
                            for (int a = 0; a < 4; a++)
                                for (int b = 0; b < 4; b++)
                                    s += wg_at[r][a] * m[a * 4 + b] * wg_at[q][b];
                            scale[(((size_t)bi * g->oh + oy) * g->ow + ox) * K + k] = (float)s;
                        }
                }
            }
    free(u), free(v), free(m);
}
