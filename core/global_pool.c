/* global_pool.c - GlobalAveragePooling2D, GlobalMaxPooling2D and
 * ZeroPadding2D (see layers.h): the whole-image reductions and the padding
 * that CNN heads and ResNet stems use. */
#include <string.h>

#include "layers.h"

void global_avgpool_forward(float *out, const float *inp, int n, int hw, int c)
{
    float inv = 1.0f / (float)hw;
    for (int e = 0; e < n; e++) {
        float *o = out + (size_t)e * c;
        const float *x = inp + (size_t)e * hw * c;
        for (int k = 0; k < c; k++)
            o[k] = 0.0f;
        for (int p = 0; p < hw; p++)
            for (int k = 0; k < c; k++)
                o[k] += x[(size_t)p * c + k];
        for (int k = 0; k < c; k++)
            o[k] *= inv;
    }
}

void global_avgpool_backward(float *dinp, const float *dout, int n, int hw, int c)
{
    float inv = 1.0f / (float)hw;
    for (int e = 0; e < n; e++) {
        const float *g = dout + (size_t)e * c;
        float *dx = dinp + (size_t)e * hw * c;
        for (int p = 0; p < hw; p++)
            for (int k = 0; k < c; k++)
                dx[(size_t)p * c + k] = g[k] * inv;
    }
}

void global_maxpool_forward(float *out, const float *inp, int n, int hw, int c)
{
    for (int e = 0; e < n; e++) {
        float *o = out + (size_t)e * c;
        const float *x = inp + (size_t)e * hw * c;
        memcpy(o, x, sizeof(float) * (size_t)c);
        for (int p = 1; p < hw; p++)
            for (int k = 0; k < c; k++)
                if (x[(size_t)p * c + k] > o[k])
                    o[k] = x[(size_t)p * c + k];
    }
}

void global_maxpool_backward(float *dinp, const float *dout, const float *inp, int n, int hw,
                             int c)
{
    memset(dinp, 0, sizeof(float) * (size_t)n * hw * c);
    for (int e = 0; e < n; e++) {
        const float *x = inp + (size_t)e * hw * c;
        float *dx = dinp + (size_t)e * hw * c;
        for (int k = 0; k < c; k++) {
            int am = 0;
            for (int p = 1; p < hw; p++)
                if (x[(size_t)p * c + k] > x[(size_t)am * c + k])
                    am = p;
            dx[(size_t)am * c + k] = dout[(size_t)e * c + k];
        }
    }
}

void zero_padding2d_forward(float *out, const float *inp, int n, int h, int w, int c,
                            const int pad[4])
{
    int oh = h + pad[0] + pad[1], ow = w + pad[2] + pad[3];
    memset(out, 0, sizeof(float) * (size_t)n * oh * ow * c);
    for (int e = 0; e < n; e++)
        for (int y = 0; y < h; y++)
            memcpy(out + (((size_t)e * oh + y + pad[0]) * ow + pad[2]) * c,
                   inp + ((size_t)e * h + y) * w * c, sizeof(float) * (size_t)w * c);
}

void zero_padding2d_backward(float *dinp, const float *dout, int n, int h, int w, int c,
                             const int pad[4])
{
    int oh = h + pad[0] + pad[1], ow = w + pad[2] + pad[3];
    for (int e = 0; e < n; e++)
        for (int y = 0; y < h; y++)
            memcpy(dinp + ((size_t)e * h + y) * w * c,
                   dout + (((size_t)e * oh + y + pad[0]) * ow + pad[2]) * c,
                   sizeof(float) * (size_t)w * c);
}
