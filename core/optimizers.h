/* optimizers.h - the update rules of the Keras optimizers as flat loops over
 * one weight's (param, grad, state..., n) arrays, and gradient clipping.
 * optimizer.c walks the trainable weights and calls these; each formula is
 * written next to its loop in optimizers.c (Keras 3 keras/src/optimizers/; SGD
 * and Adam as Keras 2, which Keras 3 matches for them).  Scalars that depend
 * on the step (bias corrections) are computed by the caller in double and
 * passed as float, as Keras casts them to the variable's float32. */
#ifndef TRAIND_OPTIMIZERS_H
#define TRAIND_OPTIMIZERS_H

#include <stdbool.h>
#include <stddef.h>

/* p, g, state: (n) each. */
void sgd_update(float *p, const float *g, float *v, size_t n, float lr, float momentum,
                bool nesterov);
/* alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t); c1 = 1 - beta_1, c2 = 1 - beta_2;
 * vhat NULL unless amsgrad. */
void adam_update(float *p, const float *g, float *m, float *v, float *vhat, size_t n,
                 float alpha, float c1, float c2, float eps);
/* mom NULL when momentum is 0; avg NULL unless centered. */
void rmsprop_update(float *p, const float *g, float *vel, float *mom, float *avg, size_t n,
                    float lr, float rho, float momentum, float eps);
void adagrad_update(float *p, const float *g, float *acc, size_t n, float lr, float eps);
/* k_m = u_{t+1} / (1 - prod_{t+1}), k_g = (1 - u_t) / (1 - prod_t),
 * bc2 = 1 - beta_2^t (see optimizers.c). */
void nadam_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float c1,
                  float c2, float k_m, float k_g, float bc2, float eps);
/* bc1 = 1 - beta_1^t. */
void adamax_update(float *p, const float *g, float *m, float *u, size_t n, float lr, float c1,
                   float beta_2, float bc1, float eps);
/* Decoupled weight decay (Keras 3 base optimizer): p -= p * wd * lr. */
void weight_decay_apply(float *p, size_t n, float wd, float lr);

/* Sum of squares of g, accumulated in double. */
double grad_sq_sum(const float *g, size_t n);
/* Keras clipnorm on one gradient: g * clipnorm / max(||g||, clipnorm), nothing
 * when ||g|| is 0; global_clipnorm passes the scale it computed over all
 * gradients to grad_scale. */
void grad_clip_norm(float *g, size_t n, float clipnorm);
void grad_scale(float *g, size_t n, float scale);
/* Keras clipvalue: g clipped to [-v, v]. */
void grad_clip_value(float *g, size_t n, float v);

#endif
