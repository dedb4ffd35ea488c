/* depthwise_conv2d.c - DepthwiseConv2D forward and backward (see layers.h):
 * each input channel c convolved with its own depth_multiplier filters,
 * output channel c * M + j, Keras' kernel layout (KH, KW, C, M), with the
 * geometry's dilation (groups unused).  Plain
 * loops: the layer is cheap next to the convolutions around it. */
#include <string.h>

#include "layers.h"

void depthwise_conv2d_forward(float *out, const float *inp, const float *weight,
                              const float *bias, enum activation_kind act, int n,
                              const struct conv2d_geom *g)
{
    const int C = g->c, M = g->k / g->c, K = g->k;
    for (int e = 0; e < n; e++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                float *o = out + (((size_t)e * g->oh + oy) * g->ow + ox) * K;
                for (int k = 0; k < K; k++)
                    o[k] = bias ? bias[k] : 0.0f;
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        long t = conv2d_geom_tap(g, oy, ox, i, j);
                        if (t < 0)
                            continue;
                        const float *x = inp + (size_t)e * g->h * g->w * C + t;
                        const float *wt = weight + ((size_t)i * g->kw + j) * C * M;
                        for (int c = 0; c < C; c++)
                            for (int m = 0; m < M; m++)
                                o[c * M + m] += x[c] * wt[c * M + m];
                    }
            }
    activation_bias_forward(out, NULL, (size_t)n * g->oh * g->ow, K, act);
}

void depthwise_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, int n,
                               const struct conv2d_geom *g)
{
    const int C = g->c, M = g->k / g->c, K = g->k;
    if (dinp)
        memset(dinp, 0, sizeof(float) * (size_t)n * g->h * g->w * C);
    for (int e = 0; e < n; e++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                const float *d = dout + (((size_t)e * g->oh + oy) * g->ow + ox) * K;
                if (dbias)
                    for (int k = 0; k < K; k++)
                        dbias[k] += d[k];
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        long t = conv2d_geom_tap(g, oy, ox, i, j);
                        if (t < 0)
                            continue;
                        size_t xo = (size_t)e * g->h * g->w * C + (size_t)t;
                        size_t wo = ((size_t)i * g->kw + j) * C * M;
                        for (int c = 0; c < C; c++)
                            for (int m = 0; m < M; m++) {
                                dweight[wo + c * M + m] += inp[xo + c] * d[c * M + m];
                                if (dinp)
                                    dinp[xo + c] += weight[wo + c * M + m] * d[c * M + m];
                            }
                    }
            }
}
