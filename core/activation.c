/* activation.c - Keras activations (linear, relu, sigmoid, tanh, softmax,
 * elu, selu, gelu, swish, softplus, hard_sigmoid, leaky_relu), the bias +
 * activation epilogue of Conv2D and Dense, and the activation layers with
 * parameters (ReLU, LeakyReLU, ELU) and Rescaling (see layers.h).
 * Backward passes use the forward output, so activations can run in place;
 * gelu and swish also need the input (activation_backward_x). */
#include <math.h>

#include "layers.h"

static inline float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

#define SELU_ALPHA 1.6732632423543772f
#define SELU_SCALE 1.0507009873554805f
#define LEAKY_RELU_SLOPE 0.2f

/* The activations added after the first five, one element at a time. */
static float act_scalar(float x, enum activation_kind act)
{
    switch (act) {
    case ACTIVATION_KIND_ELU:
        return x > 0.0f ? x : expm1f(x);
    case ACTIVATION_KIND_SELU:
        return SELU_SCALE * (x > 0.0f ? x : SELU_ALPHA * expm1f(x));
    case ACTIVATION_KIND_GELU:
        return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
    case ACTIVATION_KIND_SWISH:
        return x * sigmoidf(x);
    case ACTIVATION_KIND_SOFTPLUS:
        return x > 0.0f ? x + log1pf(expf(-x)) : log1pf(expf(x));
    case ACTIVATION_KIND_HARD_SIGMOID: {
        float t = x + 3.0f;
        return (t < 0.0f ? 0.0f : t > 6.0f ? 6.0f : t) * (1.0f / 6.0f);
    }
    case ACTIVATION_KIND_LEAKY_RELU:
        return x > 0.0f ? x : LEAKY_RELU_SLOPE * x;
    default:
        return x;
    }
}

/* f'(x) of those activations from the output y (and the input x for gelu and
 * swish). */
static float act_deriv(float x, float y, enum activation_kind act)
{
    switch (act) {
    case ACTIVATION_KIND_ELU:
        return y > 0.0f ? 1.0f : y + 1.0f;
    case ACTIVATION_KIND_SELU:
        return y > 0.0f ? SELU_SCALE : y + SELU_SCALE * SELU_ALPHA;
    case ACTIVATION_KIND_GELU:
        return 0.5f * (1.0f + erff(x * (float)M_SQRT1_2)) +
               x * expf(-0.5f * x * x) * 0.3989422804014327f;
    case ACTIVATION_KIND_SWISH: {
        float sg = sigmoidf(x);
        return sg * (1.0f + x * (1.0f - sg));
    }
    case ACTIVATION_KIND_SOFTPLUS:
        return -expm1f(-y);
    case ACTIVATION_KIND_HARD_SIGMOID:
        return y > 0.0f && y < 1.0f ? 1.0f / 6.0f : 0.0f;
    case ACTIVATION_KIND_LEAKY_RELU:
        return y > 0.0f ? 1.0f : LEAKY_RELU_SLOPE;
    default:
        return 1.0f;
    }
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
        default:
            for (int i = 0; i < d; i++)
                row[i] = act_scalar(row[i], act);
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
    default:
        for (size_t i = 0; i < count; i++)
            out[i] = act_scalar(inp[i], act);
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
    default:
        for (size_t i = 0; i < count; i++)
            dinp[i] = dout[i] * act_deriv(0.0f, out[i], act);
        break;
    }
}

void activation_backward_x(float *dinp, const float *dout, const float *inp, const float *out,
                           size_t rows, int d, enum activation_kind act)
{
    if (!activation_kind_needs_input(act)) {
        activation_backward(dinp, dout, out, rows, d, act);
        return;
    }
    size_t count = rows * (size_t)d;
    for (size_t i = 0; i < count; i++)
        dinp[i] = dout[i] * act_deriv(inp[i], out[i], act);
}

/* ---------------------------------------- ReLU, LeakyReLU, ELU layers */

void relu_layer_forward(float *out, const float *inp, size_t count, float negative_slope,
                        float max_value, float threshold)
{
    for (size_t i = 0; i < count; i++) {
        float x = inp[i];
        float y = x > threshold ? x : 0.0f;
        y = y < 0.0f ? 0.0f : y > max_value ? max_value : y;
        if (x < threshold)
            y -= negative_slope * (threshold - x);
        out[i] = y;
    }
}

void relu_layer_backward(float *dinp, const float *dout, const float *inp, size_t count,
                         float negative_slope, float max_value, float threshold)
{
    for (size_t i = 0; i < count; i++) {
        float x = inp[i];
        float g = x < threshold ? negative_slope
                                : (x > threshold && x > 0.0f && x < max_value ? 1.0f : 0.0f);
        dinp[i] = dout[i] * g;
    }
}

void elu_layer_forward(float *out, const float *inp, size_t count, float alpha)
{
    for (size_t i = 0; i < count; i++)
        out[i] = inp[i] > 0.0f ? inp[i] : alpha * expm1f(inp[i]);
}

void elu_layer_backward(float *dinp, const float *dout, const float *inp, size_t count,
                        float alpha)
{
    for (size_t i = 0; i < count; i++)
        dinp[i] = inp[i] > 0.0f ? dout[i] : dout[i] * alpha * expf(inp[i]);
}

/* ------------------------------------------------------------ Rescaling */

void rescaling_forward(float *out, const float *inp, size_t count, float scale, float offset)
{
    for (size_t i = 0; i < count; i++)
        out[i] = inp[i] * scale + offset;
}

void rescaling_backward(float *dinp, const float *dout, size_t count, float scale)
{
    for (size_t i = 0; i < count; i++)
        dinp[i] = dout[i] * scale;
}
