/* layers_isa.c - the public elementwise layer functions (layers.h), each
 * calling the copy of activation.c / batchnorm.c / pooling.c / dropout.c
 * built for the active kernel path: _avx2 (built with -mavx2 -mfma) on the
 * avx2 and avx512 paths, _generic otherwise.  See layers_isa.h. */
#include "kernels.h"
#include "layers.h"

#ifdef TRAIND_X86_KERNELS
static bool use_avx2(void)
{
    return kernels_active() != KERNELS_KIND_GENERIC;
}
#define DISPATCH(name, params, args)                                                   \
    void name##_generic params;                                                        \
    void name##_avx2 params;                                                           \
    void name params                                                                   \
    {                                                                                  \
        if (use_avx2())                                                                \
            name##_avx2 args;                                                          \
        else                                                                           \
            name##_generic args;                                                       \
    }
#else
#define DISPATCH(name, params, args)                                                   \
    void name##_generic params;                                                        \
    void name params                                                                   \
    {                                                                                  \
        name##_generic args;                                                           \
    }
#endif

DISPATCH(activation_forward,
         (float *out, const float *inp, size_t rows, int d, enum activation_kind act),
         (out, inp, rows, d, act))
DISPATCH(activation_bias_forward,
         (float *x, const float *bias, size_t rows, int d, enum activation_kind act),
         (x, bias, rows, d, act))
DISPATCH(activation_bias_copy,
         (float *out, const float *inp, const float *bias, size_t rows, int d,
          enum activation_kind act),
         (out, inp, bias, rows, d, act))
DISPATCH(activation_backward,
         (float *dinp, const float *dout, const float *out, size_t rows, int d,
          enum activation_kind act),
         (dinp, dout, out, rows, d, act))
DISPATCH(batchnorm_stats_accumulate,
         (double *sum, double *sumsq, const float *inp, size_t rows, int c),
         (sum, sumsq, inp, rows, c))
DISPATCH(batchnorm_stats_finalize,
         (float *mean, float *var, const double *sum, const double *sumsq, size_t count, int c),
         (mean, var, sum, sumsq, count, c))
DISPATCH(batchnorm_forward,
         (float *out, const float *inp, const float *mean, const float *var,
          const float *gamma, const float *beta, float eps, size_t rows, int c),
         (out, inp, mean, var, gamma, beta, eps, rows, c))
DISPATCH(batchnorm_update_moving,
         (float *moving_mean, float *moving_var, const float *mean, const float *var,
          size_t count, float momentum, bool bessel, int c),
         (moving_mean, moving_var, mean, var, count, momentum, bessel, c))
DISPATCH(batchnorm_backward_accumulate,
         (double *sum_dout, double *sum_dout_xhat, const float *dout, const float *inp,
          const float *mean, const float *var, float eps, size_t rows, int c),
         (sum_dout, sum_dout_xhat, dout, inp, mean, var, eps, rows, c))
DISPATCH(batchnorm_backward,
         (float *dinp, const float *dout, const float *inp, const float *mean,
          const float *var, const float *gamma, const double *sum_dout,
          const double *sum_dout_xhat, size_t count, float eps, bool relu_mask, size_t rows,
          int c),
         (dinp, dout, inp, mean, var, gamma, sum_dout, sum_dout_xhat, count, eps, relu_mask,
          rows, c))
DISPATCH(pool2d_geom_init,
         (struct pool2d_geom *g, int h, int w, int c, int ph, int pw, int sh, int sw,
          enum padding_kind padding),
         (g, h, w, c, ph, pw, sh, sw, padding))
DISPATCH(maxpool2d_forward, (float *out, const float *inp, int n, const struct pool2d_geom *g),
         (out, inp, n, g))
DISPATCH(maxpool2d_backward,
         (float *dinp, const float *dout, const float *inp, int n, const struct pool2d_geom *g),
         (dinp, dout, inp, n, g))
DISPATCH(avgpool2d_forward, (float *out, const float *inp, int n, const struct pool2d_geom *g),
         (out, inp, n, g))
DISPATCH(avgpool2d_backward, (float *dinp, const float *dout, int n, const struct pool2d_geom *g),
         (dinp, dout, n, g))
DISPATCH(dropout_mask,
         (uint8_t *mask, int n, size_t d, float rate, uint64_t seed, int64_t step, int layer,
          int example0),
         (mask, n, d, rate, seed, step, layer, example0))
DISPATCH(dropout_forward,
         (float *out, const float *inp, const uint8_t *mask, float rate, size_t count),
         (out, inp, mask, rate, count))
DISPATCH(dropout_backward,
         (float *dinp, const float *dout, const uint8_t *mask, float rate, size_t count),
         (dinp, dout, mask, rate, count))
DISPATCH(activation_backward_x,
         (float *dinp, const float *dout, const float *inp, const float *out, size_t rows,
          int d, enum activation_kind act),
         (dinp, dout, inp, out, rows, d, act))
DISPATCH(relu_layer_forward,
         (float *out, const float *inp, size_t count, float negative_slope, float max_value,
          float threshold),
         (out, inp, count, negative_slope, max_value, threshold))
DISPATCH(relu_layer_backward,
         (float *dinp, const float *dout, const float *inp, size_t count, float negative_slope,
          float max_value, float threshold),
         (dinp, dout, inp, count, negative_slope, max_value, threshold))
DISPATCH(elu_layer_forward, (float *out, const float *inp, size_t count, float alpha),
         (out, inp, count, alpha))
DISPATCH(elu_layer_backward,
         (float *dinp, const float *dout, const float *inp, size_t count, float alpha),
         (dinp, dout, inp, count, alpha))
DISPATCH(rescaling_forward,
         (float *out, const float *inp, size_t count, float scale, float offset),
         (out, inp, count, scale, offset))
DISPATCH(rescaling_backward, (float *dinp, const float *dout, size_t count, float scale),
         (dinp, dout, count, scale))
DISPATCH(global_avgpool_forward, (float *out, const float *inp, int n, int hw, int c),
         (out, inp, n, hw, c))
DISPATCH(global_avgpool_backward, (float *dinp, const float *dout, int n, int hw, int c),
         (dinp, dout, n, hw, c))
DISPATCH(global_maxpool_forward, (float *out, const float *inp, int n, int hw, int c),
         (out, inp, n, hw, c))
DISPATCH(global_maxpool_backward,
         (float *dinp, const float *dout, const float *inp, int n, int hw, int c),
         (dinp, dout, inp, n, hw, c))
DISPATCH(zero_padding2d_forward,
         (float *out, const float *inp, int n, int h, int w, int c, const int pad[4]),
         (out, inp, n, h, w, c, pad))
DISPATCH(zero_padding2d_backward,
         (float *dinp, const float *dout, int n, int h, int w, int c, const int pad[4]),
         (dinp, dout, n, h, w, c, pad))
DISPATCH(add_forward, (float *out, const float *const *inps, int n_inputs, size_t count),
         (out, inps, n_inputs, count))
DISPATCH(concat_forward,
         (float *out, const float *const *inps, const int *c, int n_inputs, size_t rows),
         (out, inps, c, n_inputs, rows))
DISPATCH(concat_backward_part,
         (float *dinp, const float *dout, size_t rows, int ctotal, int c0, int c, bool add),
         (dinp, dout, rows, ctotal, c0, c, add))
DISPATCH(spatial_dropout_mask,
         (uint8_t *mask, uint8_t *chan, int n, int hw, int c, float rate, uint64_t seed,
          int64_t step, int layer, int example0),
         (mask, chan, n, hw, c, rate, seed, step, layer, example0))
