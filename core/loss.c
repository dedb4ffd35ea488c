/* loss.c - categorical cross-entropy fused with the final softmax (see
 * layers.h).
 *
 * Keras computes CE on the softmax output with the probabilities clipped to
 * [1e-7, 1 - 1e-7].  Here the loss uses the stable log-softmax
 * log p_j = z_j - max(z) - log(sum exp(z - max(z))) and floors it at
 * log(1e-7): loss = -sum_j y_j * max(log p_j, log 1e-7).  That matches Keras
 * wherever p >= 1e-7 (the only place it differs is the upper clip at
 * 1 - 1e-7, a loss difference below 1e-7).  The gradient is the exact
 * softmax-CE gradient (p - y) / N, ignoring the clip, as frameworks that fuse
 * the two do.  A NaN (diverged weights, infinite logits) stays NaN, as in
 * Keras, so that ModelCheckpoint and EarlyStopping see it. */
#include <math.h>

#include "layers.h"

/* The row's maximum and log(sum_j exp(z_j - max)): log p_j = z_j - max - lse. */
static void row_log_softmax(const float *z, int classes, float *ret_max, double *ret_lse)
{
    float mx = z[0];
    for (int j = 1; j < classes; j++)
        mx = z[j] > mx ? z[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < classes; j++)
        sum += exp((double)z[j] - mx);
    *ret_max = mx;
    *ret_lse = log(sum);
}

/* -max(lp, log 1e-7), NaN kept. */
static double floored_nll(double lp)
{
    const double log_floor = log(1e-7);
    return -(lp > log_floor || isnan(lp) ? lp : log_floor);
}

/* One row: p = softmax(z) and the row's loss against the target row y or,
 * when y is NULL, the one-hot row of label (no one-hot copy). */
static double row_softmax_crossentropy(float *p, const float *z, const float *y, int label,
                                       int classes)
{
    float mx;
    double lse;
    row_log_softmax(z, classes, &mx, &lse);
    double loss = 0.0;
    for (int j = 0; j < classes; j++) {
        double lp = (double)z[j] - mx - lse;
        p[j] = (float)exp(lp);
        float yj = y ? y[j] : (j == label ? 1.0f : 0.0f);
        if (yj != 0.0f)
            loss += yj * floored_nll(lp);
    }
    return loss;
}

void softmax_crossentropy_forward(float *probs, float *losses, const float *logits,
                                  const float *y, int n, int classes)
{
    for (int i = 0; i < n; i++) {
        size_t off = (size_t)i * classes;
        double loss = row_softmax_crossentropy(probs + off, logits + off, y + off, 0, classes);
        if (losses)
            losses[i] = (float)loss;
    }
}

void softmax_crossentropy_backward(float *dlogits, const float *probs, const float *y,
                                   float scale, int n, int classes)
{
    size_t count = (size_t)n * classes;
    for (size_t i = 0; i < count; i++)
        dlogits[i] = (probs[i] - y[i]) * scale;
}

void softmax_sparse_crossentropy_forward(float *probs, float *losses, const float *logits,
                                         const uint8_t *labels, int n, int classes)
{
    for (int i = 0; i < n; i++) {
        size_t off = (size_t)i * classes;
        double loss =
            row_softmax_crossentropy(probs + off, logits + off, NULL, labels[i], classes);
        if (losses)
            losses[i] = (float)loss;
    }
}

void softmax_sparse_crossentropy_backward(float *dlogits, const float *probs,
                                          const uint8_t *labels, float scale, int n, int classes)
{
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * classes;
        float *g = dlogits + (size_t)i * classes;
        for (int j = 0; j < classes; j++)
            g[j] = (p[j] - (j == labels[i] ? 1.0f : 0.0f)) * scale;
    }
}
