/* optimizers.c - the Keras optimizers' update rules as flat loops (see
 * optimizers.h).  In every loop p, g and the state arrays are one weight's
 * (n) values; the formulas are Keras':
 *
 * SGD (Keras 2):   v = mu v - lr g;  p += nesterov ? mu v - lr g : v
 * Adam:            m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2)
 *                  amsgrad: vhat = max(vhat, v), used for v
 *                  p -= alpha m / (sqrt(v) + eps)
 * RMSprop:         vel = rho vel + (1 - rho) g^2
 *                  centered: avg = rho avg + (1 - rho) g; den = vel - avg^2 + eps
 *                  else den = vel + eps
 *                  inc = lr g / sqrt(den)
 *                  momentum > 0: mom = momentum mom + inc; p -= mom  else p -= inc
 * Adagrad:         acc += g^2;  p -= lr g / sqrt(acc + eps)
 *                  (acc starts at initial_accumulator_value)
 * Nadam:           m, v as Adam;  m_hat = u_{t+1} m / (1 - prod_{t+1})
 *                  + (1 - u_t) g / (1 - prod_t);  v_hat = v / (1 - b2^t)
 *                  p -= lr m_hat / (sqrt(v_hat) + eps)
 *                  with u_t = b1 (1 - 0.5 * 0.96^t), prod_t = u_1 ... u_t
 * Adamax:          m += (g - m)(1 - b1);  u = max(b2 u, |g|)
 *                  p -= lr m / ((1 - b1^t)(u + eps))
 * t = iterations + 1. */
#include "optimizers.h"

#include <math.h>

void sgd_update(float *p, const float *g, float *v, size_t n, float lr, float mu, bool nesterov)
{
    if (!v) {
        for (size_t i = 0; i < n; i++)
            p[i] -= lr * g[i];
    } else if (nesterov) {
        for (size_t i = 0; i < n; i++) {
            float vi = mu * v[i] - lr * g[i];
            v[i] = vi;
            p[i] += mu * vi - lr * g[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            float vi = mu * v[i] - lr * g[i];
            v[i] = vi;
            p[i] += vi;
        }
    }
}

void adam_update(float *p, const float *g, float *m, float *v, float *vhat, size_t n,
                 float alpha, float c1, float c2, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        if (vhat) {
            vi = vi > vhat[i] ? vi : vhat[i];
            vhat[i] = vi;
        }
        p[i] -= alpha * mi / (sqrtf(vi) + eps);
    }
}

void rmsprop_update(float *p, const float *g, float *vel, float *mom, float *avg, size_t n,
                    float lr, float rho, float momentum, float eps)
{
    float c = 1.0f - rho;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float vi = rho * vel[i] + c * (gi * gi);
        vel[i] = vi;
        float den;
        if (avg) {
            float ai = rho * avg[i] + c * gi;
            avg[i] = ai;
            den = vi - ai * ai + eps;
        } else {
            den = vi + eps;
        }
        float inc = lr * gi / sqrtf(den);
        if (mom) {
            float mi = momentum * mom[i] + inc;
            mom[i] = mi;
            p[i] -= mi;
        } else {
            p[i] -= inc;
        }
    }
}

void adagrad_update(float *p, const float *g, float *acc, size_t n, float lr, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float ai = acc[i] + g[i] * g[i];
        acc[i] = ai;
        p[i] -= lr * g[i] / sqrtf(ai + eps);
    }
}

void nadam_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float c1,
                  float c2, float k_m, float k_g, float bc2, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * c1;
        float vi = v[i] + (gi * gi - v[i]) * c2;
        m[i] = mi;
        v[i] = vi;
        float m_hat = k_m * mi + k_g * gi;
        float v_hat = vi / bc2;
        p[i] -= m_hat * lr / (sqrtf(v_hat) + eps);
    }
}

void adamax_update(float *p, const float *g, float *m, float *u, size_t n, float lr, float c1,
                   float beta_2, float bc1, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * c1;
        float ui = beta_2 * u[i];
        float ag = fabsf(gi);
        ui = ui > ag ? ui : ag;
        m[i] = mi;
        u[i] = ui;
        p[i] -= lr * mi / (bc1 * (ui + eps));
    }
}

void weight_decay_apply(float *p, size_t n, float wd, float lr)
{
    for (size_t i = 0; i < n; i++)
        p[i] = p[i] - p[i] * wd * lr;
}

double grad_sq_sum(const float *g, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * (double)g[i];
    return s;
}

void grad_clip_norm(float *g, size_t n, float clipnorm)
{
    double l2sum = grad_sq_sum(g, n);
    if (!(l2sum > 0))
        return;
    float norm = (float)sqrt(l2sum);
    float den = norm > clipnorm ? norm : clipnorm;
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] * clipnorm / den;
}

void grad_scale(float *g, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        g[i] *= scale;
}

void grad_clip_value(float *g, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] < -v ? -v : g[i] > v ? v : g[i];
}
