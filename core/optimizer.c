/* optimizer.c - Keras 2 SGD (momentum, nesterov, time decay) and Adam over a
 * model's flat parameter arena; the slots are one arena per slot kind in the
 * layout of model->params, so each step is a flat loop over the trainable
 * weights.  Also the tf.keras optimizer config JSON (get_config()). */
#include "optimizer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyfloat.h"

void optimizer_config_default(struct optimizer_config *ret, enum optimizer_kind kind)
{
    memset(ret, 0, sizeof(*ret));
    ret->kind = kind;
    ret->learning_rate = kind == OPTIMIZER_KIND_ADAM ? 0.001 : 0.01;
    ret->decay = 0.0;
    ret->momentum = 0.0;
    ret->nesterov = false;
    ret->beta_1 = 0.9;
    ret->beta_2 = 0.999;
    ret->epsilon = 1e-7;
}

static int optimizer_check_config(const struct optimizer_config *c, struct diag *d)
{
    if (c->kind != OPTIMIZER_KIND_SGD && c->kind != OPTIMIZER_KIND_ADAM)
        return diag_set(d, -EINVAL, "/name", "unknown optimizer kind %d", (int)c->kind);
    if (!isfinite(c->learning_rate) || c->learning_rate < 0)
        return diag_set(d, -EINVAL, "/learning_rate", "must be a finite number >= 0");
    if (!isfinite(c->decay) || c->decay < 0)
        return diag_set(d, -EINVAL, "/decay", "must be a finite number >= 0");
    if (c->kind == OPTIMIZER_KIND_SGD) {
        if (!(c->momentum >= 0 && c->momentum <= 1))
            return diag_set(d, -EINVAL, "/momentum", "must be in [0, 1]");
    } else {
        if (!(c->beta_1 >= 0 && c->beta_1 < 1))
            return diag_set(d, -EINVAL, "/beta_1", "must be in [0, 1)");
        if (!(c->beta_2 >= 0 && c->beta_2 < 1))
            return diag_set(d, -EINVAL, "/beta_2", "must be in [0, 1)");
        if (!isfinite(c->epsilon) || c->epsilon < 0)
            return diag_set(d, -EINVAL, "/epsilon", "must be a finite number >= 0");
    }
    return 0;
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
    if (cfg->kind == OPTIMIZER_KIND_ADAM)
        opt->n_slots = 2;
    else
        opt->n_slots = cfg->momentum != 0 ? 1 : 0;
    /* 64-byte aligned, size rounded up as aligned_alloc requires. */
    size_t bytes = (opt->n * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0)
        bytes = 64;
    for (int s = 0; s < opt->n_slots; s++) {
        opt->slots[s] = aligned_alloc(64, bytes);
        if (!opt->slots[s]) {
            optimizer_free(opt);
            return diag_set(d, -ENOMEM, "", "out of memory for %zu optimizer slot values",
                            opt->n);
        }
        memset(opt->slots[s], 0, bytes);
    }
    *ret = opt;
    return 0;
}

void optimizer_free(struct optimizer *opt)
{
    if (!opt)
        return;
    for (int s = 0; s < 2; s++)
        free(opt->slots[s]);
    free(opt);
}

/* Keras 2 time decay: lr / (1 + decay * iterations). */
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

/* p, g, v: (n) views at one weight's offset. */
static void sgd_update(float *p, const float *g, float *v, size_t n, float lr, float mu,
                       bool nesterov)
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

/* p, g, m1, m2: (n) views at one weight's offset. */
/* c1 = 1 - beta_1, c2 = 1 - beta_2 (formed in double: 1 - 0.999f is 1.3e-5 off). */
static void adam_update(float *p, const float *g, float *m1, float *m2, size_t n, float lr,
                        float c1, float c2, float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m1[i] + (gi - m1[i]) * c1;
        float vi = m2[i] + (gi * gi - m2[i]) * c2;
        m1[i] = mi;
        m2[i] = vi;
        p[i] -= lr * mi / (sqrtf(vi) + eps);
    }
}

void optimizer_step(struct optimizer *opt, struct model *m)
{
    const struct optimizer_config *c = &opt->cfg;
    double lr = optimizer_decayed_lr(opt);
    if (c->kind == OPTIMIZER_KIND_ADAM) {
        double t = (double)(opt->iterations + 1);
        lr *= sqrt(1.0 - pow(c->beta_2, t)) / (1.0 - pow(c->beta_1, t));
    }
    for (int l = 0; l < m->n_layers; l++) {
        const struct layer *ly = &m->layers[l];
        for (int w = 0; w < ly->n_weights; w++) {
            const struct weight *wt = &ly->weights[w];
            if (!wt->trainable || wt->size == 0)
                continue;
            float *p = m->params + wt->offset;
            const float *g = m->grads + wt->offset;
            if (c->kind == OPTIMIZER_KIND_ADAM)
                adam_update(p, g, opt->slots[0] + wt->offset, opt->slots[1] + wt->offset,
                            wt->size, (float)lr, (float)(1.0 - c->beta_1), (float)(1.0 - c->beta_2),
                            (float)c->epsilon);
            else
                sgd_update(p, g, opt->n_slots ? opt->slots[0] + wt->offset : NULL, wt->size,
                           (float)lr, (float)c->momentum, c->nesterov);
        }
    }
    opt->iterations++;
}

const char *optimizer_slot_name(const struct optimizer *opt, int slot)
{
    if (slot < 0 || slot >= opt->n_slots)
        return NULL;
    if (opt->cfg.kind == OPTIMIZER_KIND_ADAM)
        return slot == 0 ? "m" : "v";
    return "momentum";
}

const char *optimizer_class_name(const struct optimizer *opt)
{
    return opt->cfg.kind == OPTIMIZER_KIND_ADAM ? "Adam" : "SGD";
}

char *optimizer_to_keras_json(const struct optimizer *opt)
{
    const struct optimizer_config *c = &opt->cfg;
    char lr[64], decay[64], a[64], b[64], eps[64];
    py_float_repr(lr, sizeof(lr), c->learning_rate);
    py_float_repr(decay, sizeof(decay), c->decay);
    const char *name = optimizer_class_name(opt);
    char *schedule = NULL;
    if (c->schedule.kind != LR_SCHEDULE_NONE) {
        schedule = lr_schedule_to_json(&c->schedule);
        if (!schedule)
            return NULL;
    }
    const char *lr_json = schedule ? schedule : lr;
    char *buf = NULL;
    int n;
    if (c->kind == OPTIMIZER_KIND_ADAM) {
        py_float_repr(a, sizeof(a), c->beta_1);
        py_float_repr(b, sizeof(b), c->beta_2);
        py_float_repr(eps, sizeof(eps), c->epsilon);
        n = asprintf(&buf,
                     "{\"class_name\": \"%s\", \"config\": {\"name\": \"%s\", "
                     "\"learning_rate\": %s, \"decay\": %s, \"beta_1\": %s, \"beta_2\": %s, "
                     "\"epsilon\": %s, \"amsgrad\": false}}",
                     name, name, lr_json, decay, a, b, eps);
    } else {
        py_float_repr(a, sizeof(a), c->momentum);
        n = asprintf(&buf,
                     "{\"class_name\": \"%s\", \"config\": {\"name\": \"%s\", "
                     "\"learning_rate\": %s, \"decay\": %s, \"momentum\": %s, "
                     "\"nesterov\": %s}}",
                     name, name, lr_json, decay, a, c->nesterov ? "true" : "false");
    }
    free(schedule);
    return n < 0 ? NULL : buf;
}
