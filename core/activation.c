/* activation.c - Keras activations (linear, relu, sigmoid, tanh, softmax) and
 * the bias + activation epilogue of Conv2D and Dense (see layers.h).
 * Backward passes use the forward output, so activations can run in place. */
#include <math.h>

#include "layers.h"

static inline float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void activation_bias_copy(float *out, const float *inp, const float *bias, size_t rows, int d,
                          enum activation_kind act)
{
    for (size_t r = 0; r < rows; r++) {
        const float *x = inp + r * (size_t)d;
        float *row = out + r * (size_t)d;
        if (bias)
            for (int i = 0; i < d; i++)
                row[i] = x[i] + bias[i];
        else if (row != x)
            for (int i = 0; i < d; i++)
                row[i] = x[i];
        switch (act) {
        case ACTIVATION_KIND_RELU:
            for (int i = 0; i < d; i++)
                row[i] = row[i] > 0.0f ? row[i] : 0.0f;
            break;
        case ACTIVATION_KIND_SIGMOID:
            for (int i = 0; i < d; i++)
                row[i] = sigmoidf(row[i]);
            break;
        case ACTIVATION_KIND_TANH:
            for (int i = 0; i < d; i++)
                row[i] = tanhf(row[i]);
            break;
        case ACTIVATION_KIND_SOFTMAX: /* not an epilogue; callers use activation_forward */
        case ACTIVATION_KIND_LINEAR:
            break;
        }
    }
}

void activation_bias_forward(float *x, const float *bias, size_t rows, int d,
                             enum activation_kind act)
{
    activation_bias_copy(x, x, bias, rows, d, act);
}

static void softmax_row(float *out, const float *inp, int d)
{
    float mx = inp[0];
    for (int i = 1; i < d; i++)
        mx = inp[i] > mx ? inp[i] : mx;
    float sum = 0.0f;
    for (int i = 0; i < d; i++) {
        out[i] = expf(inp[i] - mx);
        sum += out[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < d; i++)
        out[i] *= inv;
}

void activation_forward(float *out, const float *inp, size_t rows, int d,
                        enum activation_kind act)
{
    size_t count = rows * (size_t)d;
    switch (act) {
    case ACTIVATION_KIND_LINEAR:
        if (out != inp)
            for (size_t i = 0; i < count; i++)
                out[i] = inp[i];
        break;
    case ACTIVATION_KIND_RELU:
        for (size_t i = 0; i < count; i++)
            out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
        break;
    case ACTIVATION_KIND_SIGMOID:
        for (size_t i = 0; i < count; i++)
            out[i] = sigmoidf(inp[i]);
        break;
    case ACTIVATION_KIND_TANH:
        for (size_t i = 0; i < count; i++)
            out[i] = tanhf(inp[i]);
        break;
    case ACTIVATION_KIND_SOFTMAX:
        for (size_t r = 0; r < rows; r++)
            softmax_row(out + r * (size_t)d, inp + r * (size_t)d, d);
        break;
    }
}

void activation_backward(float *dinp, const float *dout, const float *out, size_t rows, int d,
                         enum activation_kind act)
{
    size_t count = rows * (size_t)d;
    switch (act) {
    case ACTIVATION_KIND_LINEAR:
        if (dinp != dout)
            for (size_t i = 0; i < count; i++)
                dinp[i] = dout[i];
        break;
    case ACTIVATION_KIND_RELU:
        for (size_t i = 0; i < count; i++)
            dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
        break;
    case ACTIVATION_KIND_SIGMOID:
        for (size_t i = 0; i < count; i++)
            dinp[i] = dout[i] * out[i] * (1.0f - out[i]);
        break;
    case ACTIVATION_KIND_TANH:
        for (size_t i = 0; i < count; i++)
            dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
        break;
    case ACTIVATION_KIND_SOFTMAX:
        for (size_t r = 0; r < rows; r++) {
            const float *p = out + r * (size_t)d, *g = dout + r * (size_t)d;
            float dot = 0.0f;
            for (int i = 0; i < d; i++)
                dot += g[i] * p[i];
            float *o = dinp + r * (size_t)d;
            for (int i = 0; i < d; i++)
                o[i] = p[i] * (g[i] - dot);
        }
        break;
    }
}
