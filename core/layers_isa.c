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
