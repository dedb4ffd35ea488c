/* pooling.c - MaxPooling2D and AveragePooling2D (see layers.h).  NHWC: each
 * window reduces C contiguous channels at once.  Padding follows TF: 'same'
 * pads with pad_total = max((ceil(in/s) - 1) * s + p - in, 0), half before;
 * padded positions never win a max and do not count in an average. */
#include <float.h>
#include <string.h>

#include "layers.h"

void pool2d_geom_init(struct pool2d_geom *g, int h, int w, int c, int ph, int pw, int sh,
                      int sw, enum padding_kind padding)
{
    g->h = h, g->w = w, g->c = c;
    g->ph = ph, g->pw = pw, g->sh = sh, g->sw = sw;
    if (padding == PADDING_KIND_SAME) {
        g->oh = (h + sh - 1) / sh;
        g->ow = (w + sw - 1) / sw;
        int th = (g->oh - 1) * sh + ph - h, tw = (g->ow - 1) * sw + pw - w;
        g->pad_top = th > 0 ? th / 2 : 0;
        g->pad_left = tw > 0 ? tw / 2 : 0;
    } else {
        g->oh = (h - ph) / sh + 1;
        g->ow = (w - pw) / sw + 1;
        g->pad_top = g->pad_left = 0;
    }
}

/* Window of output (oy, ox) clipped to the input: rows [*y0, *y1), cols [*x0, *x1). */
static void pool_window(const struct pool2d_geom *g, int oy, int ox, int *y0, int *y1, int *x0,
                        int *x1)
{
    int ys = oy * g->sh - g->pad_top, xs = ox * g->sw - g->pad_left;
    *y0 = ys < 0 ? 0 : ys;
    *x0 = xs < 0 ? 0 : xs;
    *y1 = ys + g->ph < g->h ? ys + g->ph : g->h;
    *x1 = xs + g->pw < g->w ? xs + g->pw : g->w;
}

void maxpool2d_forward(float *out, const float *inp, int n, const struct pool2d_geom *g)
{
    const int C = g->c;
    for (int b = 0; b < n; b++) {
        const float *x = inp + (size_t)b * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                float *o = out + (((size_t)b * g->oh + oy) * g->ow + ox) * C;
                int y0, y1, x0, x1;
                pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int c = 0; c < C; c++)
                    o[c] = -FLT_MAX;
                for (int y = y0; y < y1; y++)
                    for (int xx = x0; xx < x1; xx++) {
                        const float *v = x + ((size_t)y * g->w + xx) * C;
                        for (int c = 0; c < C; c++)
                            o[c] = v[c] > o[c] ? v[c] : o[c];
                    }
            }
    }
}

void maxpool2d_backward(float *dinp, const float *dout, const float *inp, int n,
                        const struct pool2d_geom *g)
{
    enum { CB = 64 }; /* channels per block: best value and position per channel */
    const int C = g->c;
    float best[CB];
    int at[CB];
    /* windows that tile the input exactly (pool 2 stride 2 on an even size):
     * every input element is written below, no clearing pass */
    const bool tiles = g->ph == g->sh && g->pw == g->sw && g->pad_top == 0 &&
                       g->pad_left == 0 && g->oh * g->sh == g->h && g->ow * g->sw == g->w;
    if (!tiles)
        memset(dinp, 0, sizeof(float) * (size_t)n * g->h * g->w * C);
    for (int b = 0; b < n; b++) {
        const float *x = inp + (size_t)b * g->h * g->w * C;
        float *dx = dinp + (size_t)b * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                const float *d = dout + (((size_t)b * g->oh + oy) * g->ow + ox) * C;
                int y0, y1, x0, x1;
                pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int c0 = 0; c0 < C; c0 += CB) {
                    int cn = C - c0 < CB ? C - c0 : CB;
                    int first = y0 * g->w + x0;
                    const float *v = x + (size_t)first * C + c0;
                    for (int c = 0; c < cn; c++)
                        best[c] = v[c], at[c] = first;
                    /* window positions in row-major order: the first maximum wins */
                    for (int y = y0; y < y1; y++)
                        for (int xx = y == y0 ? x0 + 1 : x0; xx < x1; xx++) {
                            int pos = y * g->w + xx;
                            v = x + (size_t)pos * C + c0;
                            for (int c = 0; c < cn; c++) {
                                bool gt = v[c] > best[c];
                                best[c] = gt ? v[c] : best[c];
                                at[c] = gt ? pos : at[c];
                            }
                        }
                    if (tiles) {
                        for (int y = y0; y < y1; y++)
                            for (int xx = x0; xx < x1; xx++) {
                                int pos = y * g->w + xx;
                                float *o = dx + (size_t)pos * C + c0;
                                for (int c = 0; c < cn; c++) {
                                    float dv = d[c0 + c]; /* unconditional: vectorises */
                                    o[c] = at[c] == pos ? dv : 0.0f;
                                }
                            }
                    } else {
                        for (int c = 0; c < cn; c++)
                            dx[(size_t)at[c] * C + c0 + c] += d[c0 + c];
                    }
                }
            }
    }
}

void avgpool2d_forward(float *out, const float *inp, int n, const struct pool2d_geom *g)
{
    const int C = g->c;
    for (int b = 0; b < n; b++) {
        const float *x = inp + (size_t)b * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                float *o = out + (((size_t)b * g->oh + oy) * g->ow + ox) * C;
                int y0, y1, x0, x1;
                pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
                for (int c = 0; c < C; c++)
                    o[c] = 0.0f;
                for (int y = y0; y < y1; y++)
                    for (int xx = x0; xx < x1; xx++) {
                        const float *v = x + ((size_t)y * g->w + xx) * C;
                        for (int c = 0; c < C; c++)
                            o[c] += v[c];
                    }
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int c = 0; c < C; c++)
                    o[c] *= inv;
            }
    }
}

void avgpool2d_backward(float *dinp, const float *dout, int n, const struct pool2d_geom *g)
{
    const int C = g->c;
    memset(dinp, 0, sizeof(float) * (size_t)n * g->h * g->w * C);
    for (int b = 0; b < n; b++) {
        float *dx = dinp + (size_t)b * g->h * g->w * C;
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                const float *d = dout + (((size_t)b * g->oh + oy) * g->ow + ox) * C;
                int y0, y1, x0, x1;
                pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
                float inv = 1.0f / (float)((y1 - y0) * (x1 - x0));
                for (int y = y0; y < y1; y++)
                    for (int xx = x0; xx < x1; xx++) {
                        float *v = dx + ((size_t)y * g->w + xx) * C;
                        for (int c = 0; c < C; c++)
                            v[c] += d[c] * inv;
                    }
            }
    }
}
