/* lr_schedule.h - Keras 3 learning-rate schedules as an optimizer's
 * learning_rate: the value at optimizer step `iterations` (the step count
 * before the update, as Keras' optimizer reads self.iterations).
 *
 * The JSON form is what keras.optimizers.schedules.serialize prints:
 *   {"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
 *    "config": {"initial_learning_rate": 0.1, "decay_steps": 1000,
 *               "decay_rate": 0.96, "staircase": false, "name": "ExponentialDecay"},
 *    "registered_name": null}
 * ("module" and "registered_name" may be left out, as Keras 2's
 * {"class_name", "config"} form does).  Classes and config keys (Keras 3.x
 * learning_rate_schedule.py, defaults in brackets):
 *   ExponentialDecay       initial_learning_rate, decay_steps > 0, decay_rate,
 *                          staircase [false], name
 *                          lr = init * decay_rate ^ p, p = step / decay_steps
 *                          (floored with staircase)
 *   PiecewiseConstantDecay boundaries (increasing), values (one more), name
 *                          lr = values[i] for boundaries[i-1] < step <= boundaries[i]
 *   InverseTimeDecay       initial_learning_rate, decay_steps > 0, decay_rate,
 *                          staircase [false], name
 *                          lr = init / (1 + decay_rate * p)
 *   PolynomialDecay        initial_learning_rate, decay_steps > 0,
 *                          end_learning_rate [0.0001], power [1.0], cycle [false], name
 *                          lr = (init - end) * (1 - s / D) ^ power + end with
 *                          s = min(step, D), D = decay_steps; with cycle
 *                          D = decay_steps * ceil(step / decay_steps) (1 at step 0)
 *   CosineDecay            initial_learning_rate, decay_steps > 0, alpha [0.0],
 *                          warmup_target [null], warmup_steps [0], name
 *                          decay(s, D, from) = from * ((1 - alpha) * 0.5 *
 *                          (1 + cos(pi * s / D)) + alpha); without warmup
 *                          decay(min(step, D), D, init); with warmup_target w,
 *                          s = min(step, D + W): s < W: (w - init) * s / W + init,
 *                          else decay(s - W, D, w)
 *   CosineDecayRestarts    initial_learning_rate, first_decay_steps > 0,
 *                          t_mul [2.0], m_mul [1.0], alpha [0.0], name
 *                          f = step / first_decay_steps; t_mul == 1: i = floor(f),
 *                          f -= i; else i = floor(log(1 - f (1 - t_mul)) / log(t_mul)),
 *                          f = (f - (1 - t_mul^i) / (1 - t_mul)) / t_mul^i;
 *                          lr = init * ((1 - alpha) * 0.5 m_mul^i (1 + cos(pi f)) + alpha)
 * Keras evaluates these in float32 (the dtype of initial_learning_rate);
 * traind evaluates them in double and the optimizer then uses the float
 * rounding, so a value may differ from Keras' in the last float32 bit. */
#ifndef TRAIND_LR_SCHEDULE_H
#define TRAIND_LR_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"

enum lr_schedule_kind {
    LR_SCHEDULE_NONE,
    LR_SCHEDULE_EXPONENTIAL_DECAY,
    LR_SCHEDULE_PIECEWISE_CONSTANT_DECAY,
    LR_SCHEDULE_INVERSE_TIME_DECAY,
    LR_SCHEDULE_POLYNOMIAL_DECAY,
    LR_SCHEDULE_COSINE_DECAY,
    LR_SCHEDULE_COSINE_DECAY_RESTARTS,
};

#define LR_SCHEDULE_MAX_BOUNDARIES 32

struct lr_schedule {
    enum lr_schedule_kind kind;
    char name[64];                 /* Keras "name"; "" when null */
    bool name_null;
    double initial_learning_rate;
    double decay_steps;            /* first_decay_steps for CosineDecayRestarts */
    double decay_rate;
    bool staircase;
    double end_learning_rate;      /* 0.0001 */
    double power;                  /* 1.0 */
    bool cycle;
    double alpha;                  /* 0.0 */
    bool has_warmup_target;
    double warmup_target;
    double warmup_steps;           /* 0 */
    double t_mul, m_mul;           /* 2.0, 1.0 */
    int n_boundaries;
    double boundaries[LR_SCHEDULE_MAX_BOUNDARIES];
    double values[LR_SCHEDULE_MAX_BOUNDARIES + 1];
};

/* Parse the serialize() JSON of one schedule.  Unknown classes and keys,
 * missing required keys and Keras' own ValueErrors are rejected with
 * d->field a JSON pointer inside the object ("/config/decay_steps").
 * ret is written only on success. */
int lr_schedule_parse_json(struct lr_schedule *ret, const char *json, struct diag *d);
/* The learning rate at optimizer step `step` (>= 0). */
double lr_schedule_at(const struct lr_schedule *s, int64_t step);
/* The Keras class name ("ExponentialDecay"). */
const char *lr_schedule_class_name(const struct lr_schedule *s);
/* serialize()'s JSON, numbers as Python prints them (malloc'd; caller
 * frees; NULL when out of memory).  lr_schedule_parse_json reads it back. */
char *lr_schedule_to_json(const struct lr_schedule *s);

#endif
