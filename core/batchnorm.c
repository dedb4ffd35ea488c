/* batchnorm.c - BatchNormalization kernels (see layers.h for how the model
 * splits the whole-batch reductions across threads).
 *
 * Statistics are sums over the rows of a part in double, accumulated from
 * float partial sums over blocks of BN_BLOCK rows (fast, and the float sums
 * stay short).  Normalisation uses the biased batch variance, as Keras.
 *
 * Moving variance, what Keras (tf.keras 2.x, BatchNormalizationBase) does:
 *   - 4D inputs (after Conv2D/pooling) take the fused path,
 *     tf.compat.v1.nn.fused_batch_norm(..., exponential_avg_factor = 1 -
 *     momentum).  The fused kernel feeds the batch variance WITH Bessel's
 *     correction, var * n / (n - 1) with n = N*H*W, to the moving average.
 *     Keras' wrapper _maybe_add_or_remove_bessels_correction would undo it,
 *     but it returns the variance unchanged because the layer sets
 *     self._bessels_correction_test_only = True in __init__, so the corrected
 *     value is what lands in moving_variance.
 *   - 2D inputs (after Dense/Flatten) take the non-fused path:
 *     tf.nn.moments gives the biased variance, and
 *     moving = moving * momentum + var * (1 - momentum) uses it as is.
 * The model passes bessel = (input rank is 4). */
#include <math.h>
#include <string.h>

#include "layers.h"

#define BN_BLOCK 64
#define BN_MAX_STACK_C 1024

void batchnorm_stats_accumulate(double *sum, double *sumsq, const float *inp, size_t rows, int c)
{
    float ps[BN_MAX_STACK_C], pq[BN_MAX_STACK_C];
    for (int c0 = 0; c0 < c; c0 += BN_MAX_STACK_C) {
        int cn = c - c0 < BN_MAX_STACK_C ? c - c0 : BN_MAX_STACK_C;
        for (size_t r0 = 0; r0 < rows; r0 += BN_BLOCK) {
            size_t r1 = r0 + BN_BLOCK < rows ? r0 + BN_BLOCK : rows;
            memset(ps, 0, sizeof(float) * cn);
            memset(pq, 0, sizeof(float) * cn);
            for (size_t r = r0; r < r1; r++) {
                const float *x = inp + r * (size_t)c + c0;
                for (int i = 0; i < cn; i++) {
                    ps[i] += x[i];
                    pq[i] += x[i] * x[i];
                }
            }
            for (int i = 0; i < cn; i++) {
                sum[c0 + i] += ps[i];
                sumsq[c0 + i] += pq[i];
            }
        }
    }
}

void batchnorm_stats_finalize(float *mean, float *var, const double *sum, const double *sumsq,
                              size_t count, int c)
{
    for (int i = 0; i < c; i++) {
        double m = sum[i] / (double)count;
        double v = sumsq[i] / (double)count - m * m;
        mean[i] = (float)m;
        var[i] = (float)(v > 0.0 ? v : 0.0);
    }
}

void batchnorm_forward(float *out, const float *inp, const float *mean, const float *var,
                       const float *gamma, const float *beta, float eps, size_t rows, int c)
{
    float scale[BN_MAX_STACK_C], shift[BN_MAX_STACK_C];
    for (int c0 = 0; c0 < c; c0 += BN_MAX_STACK_C) {
        int cn = c - c0 < BN_MAX_STACK_C ? c - c0 : BN_MAX_STACK_C;
        for (int i = 0; i < cn; i++) {
            float s = (gamma ? gamma[c0 + i] : 1.0f) / sqrtf(var[c0 + i] + eps);
            scale[i] = s;
            shift[i] = (beta ? beta[c0 + i] : 0.0f) - mean[c0 + i] * s;
        }
        for (size_t r = 0; r < rows; r++) {
            const float *x = inp + r * (size_t)c + c0;
            float *y = out + r * (size_t)c + c0;
            for (int i = 0; i < cn; i++)
                y[i] = x[i] * scale[i] + shift[i];
        }
    }
}

void batchnorm_update_moving(float *moving_mean, float *moving_var, const float *mean,
                             const float *var, size_t count, float momentum, bool bessel, int c)
{
    float corr = bessel && count > 1 ? (float)((double)count / (double)(count - 1)) : 1.0f;
    for (int i = 0; i < c; i++) {
        moving_mean[i] = moving_mean[i] * momentum + mean[i] * (1.0f - momentum);
        moving_var[i] = moving_var[i] * momentum + var[i] * corr * (1.0f - momentum);
    }
}

void batchnorm_backward_accumulate(double *sum_dout, double *sum_dout_xhat, const float *dout,
                                   const float *inp, const float *mean, const float *var,
                                   float eps, size_t rows, int c)
{
    float ps[BN_MAX_STACK_C], pq[BN_MAX_STACK_C], rstd[BN_MAX_STACK_C];
    for (int c0 = 0; c0 < c; c0 += BN_MAX_STACK_C) {
        int cn = c - c0 < BN_MAX_STACK_C ? c - c0 : BN_MAX_STACK_C;
        for (int i = 0; i < cn; i++)
            rstd[i] = 1.0f / sqrtf(var[c0 + i] + eps);
        for (size_t r0 = 0; r0 < rows; r0 += BN_BLOCK) {
            size_t r1 = r0 + BN_BLOCK < rows ? r0 + BN_BLOCK : rows;
            memset(ps, 0, sizeof(float) * cn);
            memset(pq, 0, sizeof(float) * cn);
            for (size_t r = r0; r < r1; r++) {
                const float *x = inp + r * (size_t)c + c0;
                const float *g = dout + r * (size_t)c + c0;
                for (int i = 0; i < cn; i++) {
                    ps[i] += g[i];
                    pq[i] += g[i] * (x[i] - mean[c0 + i]);
                }
            }
            for (int i = 0; i < cn; i++) {
                sum_dout[c0 + i] += ps[i];
                sum_dout_xhat[c0 + i] += (double)pq[i] * rstd[i];
            }
        }
    }
}

void batchnorm_backward(float *dinp, const float *dout, const float *inp, const float *mean,
                        const float *var, const float *gamma, const double *sum_dout,
                        const double *sum_dout_xhat, size_t count, float eps, bool relu_mask,
                        size_t rows, int c)
{
    /* dinp = gamma*rstd * (dout - sum_dout/count - xhat * sum_dout_xhat/count)
     *      = a * dout + b * x + d  per channel */
    float a[BN_MAX_STACK_C], b[BN_MAX_STACK_C], d[BN_MAX_STACK_C];
    for (int c0 = 0; c0 < c; c0 += BN_MAX_STACK_C) {
        int cn = c - c0 < BN_MAX_STACK_C ? c - c0 : BN_MAX_STACK_C;
        for (int i = 0; i < cn; i++) {
            int ch = c0 + i;
            double rstd = 1.0 / sqrt((double)var[ch] + eps);
            double gr = (gamma ? gamma[ch] : 1.0) * rstd;
            double mg = sum_dout[ch] / (double)count;
            double mgx = sum_dout_xhat[ch] / (double)count;
            a[i] = (float)gr;
            b[i] = (float)(-gr * mgx * rstd);
            d[i] = (float)(gr * (-mg + mgx * rstd * mean[ch]));
        }
        if (relu_mask)
            for (size_t r = 0; r < rows; r++) {
                const float *x = inp + r * (size_t)c + c0;
                const float *g = dout + r * (size_t)c + c0;
                float *o = dinp + r * (size_t)c + c0;
                for (int i = 0; i < cn; i++) {
                    float v = a[i] * g[i] + b[i] * x[i] + d[i];
                    o[i] = x[i] > 0.0f ? v : 0.0f;
                }
            }
        else
            for (size_t r = 0; r < rows; r++) {
                const float *x = inp + r * (size_t)c + c0;
                const float *g = dout + r * (size_t)c + c0;
                float *o = dinp + r * (size_t)c + c0;
                for (int i = 0; i < cn; i++)
                    o[i] = a[i] * g[i] + b[i] * x[i] + d[i];
            }
    }
}
