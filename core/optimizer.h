/* optimizer.h - Keras 2 optimizers over a model's flat parameter arena.
 *
 * SGD (Keras 2 / tf.keras legacy semantics):
 *   lr_t = learning_rate / (1 + decay * iterations)
 *   v    = momentum * v - lr_t * g
 *   p   += nesterov ? momentum * v - lr_t * g : v
 * Adam (Keras 2): t = iterations + 1,
 *   lr_t = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
 *   m = beta_1 m + (1 - beta_1) g;  v = beta_2 v + (1 - beta_2) g^2
 *   p -= lr_t * m / (sqrt(v) + epsilon)
 * RMSprop, Adagrad, AdamW, Nadam, Adamax and Adam's amsgrad follow Keras 3
 * (formulas in optimizers.c), with Keras 3's defaults and config keys.  On
 * every optimizer, in Keras 3's order: the gradients are clipped (clipnorm
 * per weight, global_clipnorm over all, or clipvalue; at most one), then
 * weight_decay shrinks the weights (p -= p * weight_decay * lr), then the
 * update runs.  lr_t (time decay, or a schedule) is the rate of every kind.
 * iterations is incremented after each step.  Only trainable weights move.
 *
 * Ownership: the optimizer owns its slot arena (one float array per slot kind,
 * same layout as model->params); optimizer_free(NULL) is a no-op. */
#ifndef TRAIND_OPTIMIZER_H
#define TRAIND_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "lr_schedule.h"
#include "model.h"

enum optimizer_kind {
    OPTIMIZER_KIND_SGD,
    OPTIMIZER_KIND_ADAM,
    OPTIMIZER_KIND_RMSPROP,
    OPTIMIZER_KIND_ADAGRAD,
    OPTIMIZER_KIND_ADAMW,
    OPTIMIZER_KIND_NADAM,
    OPTIMIZER_KIND_ADAMAX,
};

#define OPTIMIZER_MAX_SLOTS 3

struct optimizer_config {
    enum optimizer_kind kind;
    double learning_rate; /* SGD 0.01, the others 0.001 */
    double decay;         /* time decay, 0 */
    double momentum;      /* SGD, RMSprop: 0 */
    bool nesterov;        /* SGD, false */
    double beta_1;        /* Adam, AdamW, Nadam, Adamax: 0.9 */
    double beta_2;        /* 0.999 */
    double epsilon;       /* all but SGD: 1e-7 */
    bool amsgrad;         /* Adam, AdamW: false */
    double rho;           /* RMSprop 0.9 */
    bool centered;        /* RMSprop false */
    double initial_accumulator_value; /* Adagrad 0.1 */
    double weight_decay;  /* AdamW 0.004, the others 0 (None) */
    double clipnorm;      /* 0 = None */
    double clipvalue;     /* 0 = None */
    double global_clipnorm; /* 0 = None */
    /* A Keras 3 schedule as learning_rate (kind NONE: the constant
     * learning_rate); the rate of a step is then schedule(iterations),
     * still divided by (1 + decay * iterations) when decay is set. */
    struct lr_schedule schedule;
};

struct optimizer {
    struct optimizer_config cfg;
    int64_t iterations;
    size_t n;            /* = model->n_params */
    int n_slots;         /* see optimizer_slot_name */
    float *slots[OPTIMIZER_MAX_SLOTS]; /* (n) each, same layout as model->params */
    /* Nadam's u_1 * ... * u_t (Keras' _u_product) for t = nadam_product_step;
     * recomputed from iterations when they differ (a resumed run). */
    double nadam_product;
    int64_t nadam_product_step;
};

/* Keras' class name of kind, and the kind of a name (case-insensitive, also
 * "sgd", "rmsprop", ...); -1 when unknown. */
const char *optimizer_kind_class_name(enum optimizer_kind kind);
int optimizer_kind_from_name(const char *name);
/* Defaults as Keras for kind. */
void optimizer_config_default(struct optimizer_config *ret, enum optimizer_kind kind);
int optimizer_create(struct optimizer **ret, const struct optimizer_config *cfg,
                     const struct model *m, struct diag *d);
void optimizer_free(struct optimizer *opt);
/* Learning rate the next step will use: learning_rate (or the schedule's value
 * at iterations) / (1 + decay * iterations)
 * (for Adam without the bias correction factor, as Keras' optimizer.lr reads). */
double optimizer_current_lr(const struct optimizer *opt);
/* Apply m->grads to m->params; iterations++. */
void optimizer_step(struct optimizer *opt, struct model *m);
/* Keras names of the slots (tf.keras checkpoint names): SGD {"momentum"},
 * Adam and AdamW {"m", "v"} + "vhat" with amsgrad, Nadam and Adamax {"m", "v"},
 * RMSprop {"rms"} + "momentum" (momentum > 0) + "mg" (centered), Adagrad
 * {"accumulator"}; and the optimizer's Keras class name ("SGD", "Adam",
 * "RMSprop", "Adagrad", "AdamW", "Nadam", "Adamax"). */
const char *optimizer_slot_name(const struct optimizer *opt, int slot);
const char *optimizer_class_name(const struct optimizer *opt);
/* The Keras optimizer config JSON as tf.keras 2.x (legacy optimizer_v2)
 * get_config() gives it, numbers as Python's repr; Adam: {"class_name": "Adam",
 * "config": {"name": "Adam", "learning_rate": 0.001, "decay": 0.0, "beta_1": 0.9,
 * "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}}; SGD e.g. {"class_name": "SGD",
 * "config": {"name": "SGD", "learning_rate": 0.01, "decay": 0.00025, "momentum": 0.9,
 * "nesterov": true}}
 * (malloc'ed; caller frees). */
char *optimizer_to_keras_json(const struct optimizer *opt);
/* The optimizer as the flavour's Keras serializes it: tf.keras 2 as
 * optimizer_to_keras_json, Keras 3 as serialize_keras_object(optimizer)
 * ({"module": "keras.optimizers", "class_name", "config": {"name",
 * "learning_rate", "weight_decay", "clipnorm", "global_clipnorm",
 * "clipvalue", "use_ema", "ema_momentum", "ema_overwrite_frequency",
 * "loss_scale_factor", "gradient_accumulation_steps", then the class's
 * keys}, "registered_name": null}; the Keras 2 time decay has no Keras 3
 * key and is left out).  Malloc'ed; caller frees. */
char *optimizer_to_json_flavour(const struct optimizer *opt, enum keras_flavour flavour);

#endif
