/* optimizer.c - the Keras optimizers over a model's flat parameter arena:
 * configuration, slots, the step (clipping, weight decay, then each
 * trainable weight's update from optimizers.c) and the Keras optimizer
 * config JSON (get_config()).  The slots are one arena per slot kind in the
 * layout of model->params, so each update is a flat loop over a weight. */
#include "optimizer.h"

#include "aligned.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "optimizers.h"
#include "pyfmt.h"

static const char *const class_names[] = {
    [OPTIMIZER_KIND_SGD] = "SGD",         [OPTIMIZER_KIND_ADAM] = "Adam",
    [OPTIMIZER_KIND_RMSPROP] = "RMSprop", [OPTIMIZER_KIND_ADAGRAD] = "Adagrad",
    [OPTIMIZER_KIND_ADAMW] = "AdamW",     [OPTIMIZER_KIND_NADAM] = "Nadam",
    [OPTIMIZER_KIND_ADAMAX] = "Adamax",
};
#define N_KINDS ((int)(sizeof(class_names) / sizeof(class_names[0])))

const char *optimizer_kind_class_name(enum optimizer_kind kind)
{
    return (int)kind >= 0 && (int)kind < N_KINDS ? class_names[kind] : "";
}

int optimizer_kind_from_name(const char *name)
{
    for (int k = 0; k < N_KINDS; k++)
        if (strcasecmp(name, class_names[k]) == 0)
            return k;
    return -1;
}

static bool adam_like(enum optimizer_kind kind)
{
    return kind == OPTIMIZER_KIND_ADAM || kind == OPTIMIZER_KIND_ADAMW;
}

void optimizer_config_default(struct optimizer_config *ret, enum optimizer_kind kind)
{
    memset(ret, 0, sizeof(*ret));
    ret->kind = kind;
    ret->learning_rate = kind == OPTIMIZER_KIND_SGD ? 0.01 : 0.001;
    ret->decay = 0.0;
    ret->momentum = 0.0;
    ret->nesterov = false;
    ret->beta_1 = 0.9;
    ret->beta_2 = 0.999;
    ret->epsilon = 1e-7;
    ret->rho = 0.9;
    ret->initial_accumulator_value = 0.1;
    ret->weight_decay = kind == OPTIMIZER_KIND_ADAMW ? 0.004 : 0.0;
}

static int check_nonneg(double x, const char *field, struct diag *d)
{
    if (!isfinite(x) || x < 0)
        return diag_set(d, -EINVAL, field, "must be a finite number >= 0");
    return 0;
}

static int optimizer_check_config(const struct optimizer_config *c, struct diag *d)
{
    if ((int)c->kind < 0 || (int)c->kind >= N_KINDS)
        return diag_set(d, -EINVAL, "/name", "unknown optimizer kind %d", (int)c->kind);
    int r;
    if ((r = check_nonneg(c->learning_rate, "/learning_rate", d)) < 0 ||
        (r = check_nonneg(c->decay, "/decay", d)) < 0 ||
        (r = check_nonneg(c->weight_decay, "/weight_decay", d)) < 0 ||
        (r = check_nonneg(c->clipnorm, "/clipnorm", d)) < 0 ||
        (r = check_nonneg(c->clipvalue, "/clipvalue", d)) < 0 ||
        (r = check_nonneg(c->global_clipnorm, "/global_clipnorm", d)) < 0 ||
        (r = check_nonneg(c->epsilon, "/epsilon", d)) < 0)
        return r;
    if ((c->clipnorm > 0) + (c->clipvalue > 0) + (c->global_clipnorm > 0) > 1)
        return diag_set(d, -EINVAL, c->clipnorm > 0 ? "/clipnorm" : "/clipvalue",
                        "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set");
    if (!(c->momentum >= 0 && c->momentum <= 1))
        return diag_set(d, -EINVAL, "/momentum", "must be in [0, 1]");
    if (!(c->beta_1 >= 0 && c->beta_1 < 1))
        return diag_set(d, -EINVAL, "/beta_1", "must be in [0, 1)");
    if (!(c->beta_2 >= 0 && c->beta_2 < 1))
        return diag_set(d, -EINVAL, "/beta_2", "must be in [0, 1)");
    if (!(c->rho >= 0 && c->rho < 1))
        return diag_set(d, -EINVAL, "/rho", "must be in [0, 1)");
    if ((r = check_nonneg(c->initial_accumulator_value, "/initial_accumulator_value", d)) < 0)
        return r;
    return 0;
}

/* Slot layout of each kind: which slot index holds what (-1: none). */
struct slot_map {
    int n;
    int s[OPTIMIZER_MAX_SLOTS];
    const char *name[OPTIMIZER_MAX_SLOTS];
};

static struct slot_map slot_map_of(const struct optimizer_config *c)
{
    struct slot_map sm = {0, {-1, -1, -1}, {NULL, NULL, NULL}};
#define ADD(label) (sm.name[sm.n] = (label), sm.s[sm.n] = sm.n, sm.n++)
    switch (c->kind) {
    case OPTIMIZER_KIND_SGD:
        if (c->momentum != 0)
            ADD("momentum");
        break;
    case OPTIMIZER_KIND_ADAM:
    case OPTIMIZER_KIND_ADAMW:
        ADD("m");
        ADD("v");
        if (c->amsgrad)
            ADD("vhat");
        break;
    case OPTIMIZER_KIND_NADAM:
    case OPTIMIZER_KIND_ADAMAX:
        ADD("m");
        ADD("v");
        break;
    case OPTIMIZER_KIND_RMSPROP:
        ADD("rms");
        if (c->momentum > 0)
            ADD("momentum");
        if (c->centered)
            ADD("mg");
        break;
    case OPTIMIZER_KIND_ADAGRAD:
        ADD("accumulator");
        break;
    }
#undef ADD
    return sm;
}

int optimizer_create(struct optimizer **ret, const struct optimizer_config *cfg,
                     const struct model *m, struct diag *d)
{
    int r = optimizer_check_config(cfg, d);
    if (r < 0)
        return r;
    struct optimizer *opt = calloc(1, sizeof(*opt));
    if (!opt)
        return diag_set(d, -ENOMEM, "", "out of memory for the optimizer");
    opt->cfg = *cfg;
    opt->n = m->n_params;
    opt->n_slots = slot_map_of(cfg).n;
    opt->nadam_product = 1.0;
    for (int s = 0; s < opt->n_slots; s++) {
        opt->slots[s] = aligned_zalloc(opt->n * sizeof(float));
        if (!opt->slots[s]) {
            optimizer_free(opt);
            return diag_set(d, -ENOMEM, "", "out of memory for %zu optimizer slot values",
                            opt->n);
        }
    }
    if (cfg->kind == OPTIMIZER_KIND_ADAGRAD)
        for (size_t i = 0; i < opt->n; i++)
            opt->slots[0][i] = (float)cfg->initial_accumulator_value;
    *ret = opt;
    return 0;
}

void optimizer_free(struct optimizer *opt)
{
    if (!opt)
        return;
    for (int s = 0; s < OPTIMIZER_MAX_SLOTS; s++)
        free(opt->slots[s]);
    free(opt);
}

/* Keras 2 time decay: lr / (1 + decay * iterations), lr from the schedule
 * when there is one. */
static double optimizer_decayed_lr(const struct optimizer *opt)
{
    double lr = opt->cfg.schedule.kind != LR_SCHEDULE_NONE
                    ? lr_schedule_at(&opt->cfg.schedule, opt->iterations)
                    : opt->cfg.learning_rate;
    return lr / (1.0 + opt->cfg.decay * (double)opt->iterations);
}

double optimizer_current_lr(const struct optimizer *opt)
{
    return optimizer_decayed_lr(opt);
}

/* Nadam's u_t = beta_1 (1 - 0.5 * 0.96^t). */
static double nadam_u(double beta_1, double t)
{
    return beta_1 * (1.0 - 0.5 * pow(0.96, t));
}

/* Keras' clipnorm / global_clipnorm / clipvalue on the trainable gradients. */
static void clip_gradients(const struct optimizer_config *c, struct model *m)
{
    if (!(c->clipnorm > 0 || c->clipvalue > 0 || c->global_clipnorm > 0))
        return;
    double global_sq = 0;
    for (int pass = 0; pass < (c->global_clipnorm > 0 ? 2 : 1); pass++) {
        float scale = 1.0f;
        if (pass == 1) {
            /* scale = clip_norm * min(1 / norm, 1 / clip_norm) + (norm - norm) */
            double norm = sqrt(global_sq);
            scale = (float)(c->global_clipnorm * fmin(1.0 / norm, 1.0 / c->global_clipnorm) +
                            (norm - norm));
        }
        for (int l = 0; l < m->n_layers; l++)
            for (int w = 0; w < m->layers[l].n_weights; w++) {
                const struct weight *wt = &m->layers[l].weights[w];
                if (!wt->trainable || wt->size == 0)
                    continue;
                float *g = m->grads + wt->offset;
                if (c->clipnorm > 0)
                    grad_clip_norm(g, wt->size, (float)c->clipnorm);
                else if (c->clipvalue > 0)
                    grad_clip_value(g, wt->size, (float)c->clipvalue);
                else if (pass == 0)
                    global_sq += grad_sq_sum(g, wt->size);
                else
                    grad_scale(g, wt->size, scale);
            }
    }
}

/* What one step's updates share: the rates and bias corrections of this
 * iteration, formed once in double precision. */
struct step_consts {
    float lr, alpha, c1, c2, eps, k_m, k_g, bc1, bc2;
};

/* The update of parameters [lo, lo + n) (a run of adjacent trainable
 * weights) with their gradients and slots. */
static void update_range(struct optimizer *opt, struct model *m, size_t lo, size_t n,
                         const struct step_consts *k)
{
    const struct optimizer_config *c = &opt->cfg;
    if (n == 0)
        return;
    struct slot_map sm = slot_map_of(c);
    float *p = m->params + lo;
    const float *g = m->grads + lo;
    float *s0 = opt->slots[0] + lo;
    if (c->weight_decay > 0)
        weight_decay_apply(p, n, (float)c->weight_decay, k->lr);
    switch (c->kind) {
    case OPTIMIZER_KIND_SGD:
        sgd_update(p, g, sm.n ? s0 : NULL, n, k->lr, (float)c->momentum, c->nesterov);
        break;
    case OPTIMIZER_KIND_ADAM:
    case OPTIMIZER_KIND_ADAMW:
        adam_update(p, g, s0, opt->slots[1] + lo, c->amsgrad ? opt->slots[2] + lo : NULL, n,
                    k->alpha, k->c1, k->c2, k->eps);
        break;
    case OPTIMIZER_KIND_RMSPROP: {
        float *mom = c->momentum > 0 ? opt->slots[1] + lo : NULL;
        float *avg = c->centered ? opt->slots[sm.n - 1] + lo : NULL;
        rmsprop_update(p, g, s0, mom, avg, n, k->lr, (float)c->rho, (float)c->momentum, k->eps);
        break;
    }
    case OPTIMIZER_KIND_ADAGRAD:
        adagrad_update(p, g, s0, n, k->lr, k->eps);
        break;
    case OPTIMIZER_KIND_NADAM:
        nadam_update(p, g, s0, opt->slots[1] + lo, n, k->lr, k->c1, k->c2, k->k_m, k->k_g,
                     k->bc2, k->eps);
        break;
    case OPTIMIZER_KIND_ADAMAX:
        adamax_update(p, g, s0, opt->slots[1] + lo, n, k->lr, k->c1, (float)c->beta_2, k->bc1,
                      k->eps);
        break;
    }
}

void optimizer_step(struct optimizer *opt, struct model *m)
{
    const struct optimizer_config *c = &opt->cfg;
    double lr = optimizer_decayed_lr(opt);
    double t = (double)(opt->iterations + 1);
    struct step_consts k = {
        .lr = (float)lr,
        .alpha = (float)(lr * sqrt(1.0 - pow(c->beta_2, t)) / (1.0 - pow(c->beta_1, t))),
        .c1 = (float)(1.0 - c->beta_1), /* formed in double: 1 - 0.999f is 1.3e-5 off */
        .c2 = (float)(1.0 - c->beta_2),
        .eps = (float)c->epsilon,
        .bc1 = (float)(1.0 - pow(c->beta_1, t)),
        .bc2 = (float)(1.0 - pow(c->beta_2, t)),
    };
    if (c->kind == OPTIMIZER_KIND_NADAM) {
        if (opt->nadam_product_step != opt->iterations) { /* a resumed run */
            opt->nadam_product = 1.0;
            for (int64_t i = 1; i <= opt->iterations; i++)
                opt->nadam_product *= nadam_u(c->beta_1, (double)i);
        }
        double u_t = nadam_u(c->beta_1, t), u_t1 = nadam_u(c->beta_1, t + 1);
        double prod_t = opt->nadam_product * u_t, prod_t1 = prod_t * u_t1;
        k.k_m = (float)(u_t1 / (1.0 - prod_t1));
        k.k_g = (float)((1.0 - u_t) / (1.0 - prod_t));
        opt->nadam_product = prod_t;
        opt->nadam_product_step = opt->iterations + 1;
    }

    clip_gradients(c, m); /* per weight (Keras clips each variable) */
    /* One loop over each run of adjacent trainable weights: a model from
     * model_create() keeps them all in one block, [0, n_trainable). */
    size_t lo = 0, hi = 0;
    for (int l = 0; l < m->n_layers; l++) {
        const struct layer *ly = &m->layers[l];
        for (int w = 0; w < ly->n_weights; w++) {
            const struct weight *wt = &ly->weights[w];
            if (!wt->trainable || wt->size == 0)
                continue;
            if (wt->offset != hi) {
                update_range(opt, m, lo, hi - lo, &k);
                lo = wt->offset;
            }
            hi = wt->offset + wt->size;
        }
    }
    update_range(opt, m, lo, hi - lo, &k);
    opt->iterations++;
}

const char *optimizer_slot_name(const struct optimizer *opt, int slot)
{
    if (slot < 0 || slot >= opt->n_slots)
        return NULL;
    return slot_map_of(&opt->cfg).name[slot];
}

const char *optimizer_class_name(const struct optimizer *opt)
{
    return optimizer_kind_class_name(opt->cfg.kind);
}

/* Append `, "key": value` to *buf (a malloc'd string); false when out of memory. */
static bool append(char **buf, const char *key, const char *value)
{
    char *next = NULL;
    if (asprintf(&next, "%s, \"%s\": %s", *buf, key, value) < 0)
        return false;
    free(*buf);
    *buf = next;
    return true;
}

static bool append_num(char **buf, const char *key, double x)
{
    char v[40];
    pyfmt_double(v, x, PYFMT_NONFINITE_JSON);
    return append(buf, key, v);
}

/* `, "key": x` or `, "key": null` when x is 0 (Keras' None). */
static bool append_num_or_null(char **buf, const char *key, double x)
{
    return x > 0 ? append_num(buf, key, x) : append(buf, key, "null");
}

/* The optimizer's config as the flavour's Keras get_config() gives it.
 * Keras 3 (KERAS3_FORM_VERSION): the BaseOptimizer keys, then the class's
 * own; learning_rate is a float32 variable there, printed as the double it
 * reads back as; the constructors' default names are "SGD" and lower case
 * for the others. */
char *optimizer_to_json_flavour(const struct optimizer *opt, enum keras_flavour flavour)
{
    const struct optimizer_config *c = &opt->cfg;
    const bool k3 = flavour == KERAS_FLAVOUR_KERAS3;
    const char *cls = optimizer_class_name(opt);
    char name[16];
    snprintf(name, sizeof(name), "%s", cls);
    for (char *p = name; k3 && c->kind != OPTIMIZER_KIND_SGD && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    char *buf = NULL;
    if (asprintf(&buf, "{%s\"class_name\": \"%s\", \"config\": {\"name\": \"%s\"",
                 k3 ? "\"module\": \"keras.optimizers\", " : "", cls, name) < 0)
        return NULL;
    bool ok;
    if (c->schedule.kind != LR_SCHEDULE_NONE) {
        char *schedule = lr_schedule_to_json(&c->schedule);
        ok = schedule && append(&buf, "learning_rate", schedule);
        free(schedule);
    } else {
        double lr = k3 ? (double)(float)c->learning_rate : c->learning_rate;
        ok = append_num(&buf, "learning_rate", lr);
    }
    if (k3)
        ok = ok && append_num_or_null(&buf, "weight_decay", c->weight_decay) &&
             append_num_or_null(&buf, "clipnorm", c->clipnorm) &&
             append_num_or_null(&buf, "global_clipnorm", c->global_clipnorm) &&
             append_num_or_null(&buf, "clipvalue", c->clipvalue) &&
             append(&buf, "use_ema", "false") && append_num(&buf, "ema_momentum", 0.99) &&
             append(&buf, "ema_overwrite_frequency", "null") &&
             append(&buf, "loss_scale_factor", "null") &&
             append(&buf, "gradient_accumulation_steps", "null");
    else
        ok = ok && append_num(&buf, "decay", c->decay);
    switch (c->kind) {
    case OPTIMIZER_KIND_SGD:
        ok = ok && append_num(&buf, "momentum", c->momentum) &&
             append(&buf, "nesterov", c->nesterov ? "true" : "false");
        break;
    case OPTIMIZER_KIND_RMSPROP:
        ok = ok && append_num(&buf, "rho", c->rho) && append_num(&buf, "momentum", c->momentum) &&
             append_num(&buf, "epsilon", c->epsilon) &&
             append(&buf, "centered", c->centered ? "true" : "false");
        break;
    case OPTIMIZER_KIND_ADAGRAD:
        ok = ok && append_num(&buf, "initial_accumulator_value", c->initial_accumulator_value) &&
             append_num(&buf, "epsilon", c->epsilon);
        break;
    default:
        if (!k3 && c->kind == OPTIMIZER_KIND_ADAMW)
            ok = ok && append_num(&buf, "weight_decay", c->weight_decay);
        ok = ok && append_num(&buf, "beta_1", c->beta_1) && append_num(&buf, "beta_2", c->beta_2) &&
             append_num(&buf, "epsilon", c->epsilon);
        if (adam_like(c->kind))
            ok = ok && append(&buf, "amsgrad", c->amsgrad ? "true" : "false");
        break;
    }
    if (!k3) {
        /* tf.keras 2 writes the optional keys only when set */
        if (c->kind != OPTIMIZER_KIND_ADAMW && c->weight_decay > 0)
            ok = ok && append_num(&buf, "weight_decay", c->weight_decay);
        if (c->clipnorm > 0)
            ok = ok && append_num(&buf, "clipnorm", c->clipnorm);
        if (c->global_clipnorm > 0)
            ok = ok && append_num(&buf, "global_clipnorm", c->global_clipnorm);
        if (c->clipvalue > 0)
            ok = ok && append_num(&buf, "clipvalue", c->clipvalue);
    }
    char *out = NULL;
    if (!ok || asprintf(&out, "%s}%s}", buf, k3 ? ", \"registered_name\": null" : "") < 0)
        out = NULL;
    free(buf);
    return out;
}

char *optimizer_to_keras_json(const struct optimizer *opt)
{
    return optimizer_to_json_flavour(opt, KERAS_FLAVOUR_TF2);
}
