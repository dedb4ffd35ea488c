/* test_optimizer.c - Keras 2 SGD and Adam steps, and the Keras 3 RMSprop,
 * Adagrad, AdamW, Nadam, Adamax, amsgrad, clipping and weight decay, on a
 * small hand-built parameter set, against the Keras formulas written out
 * here in double precision; slots, iterations, the untouched non-trainable
 * BN statistics and the tf.keras config JSON. */
#include "optimizer.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

#define N_PARAMS 16

/* A two-layer model by hand: dense kernel (2, 3) + bias (3) at 0..8, one
 * element of padding at 9 (gaps must stay untouched too), then a
 * BatchNormalization layer: gamma 10..11, beta 12..13 (trainable),
 * moving_mean 14..15, moving_variance 16 (not trainable). */
struct toy {
    struct model m;
    struct layer layers[2];
    float params[N_PARAMS + 1];
    float grads[N_PARAMS + 1];
};

static void weight_set(struct weight *w, const char *name, size_t offset, size_t size,
                       bool trainable)
{
    w->name = name;
    w->ndim = 1;
    w->shape[0] = (int)size;
    w->offset = offset;
    w->size = size;
    w->trainable = trainable;
}

static void toy_init(struct toy *t)
{
    memset(t, 0, sizeof(*t));
    struct layer *d = &t->layers[0], *bn = &t->layers[1];
    d->cfg.kind = LAYER_KIND_DENSE;
    snprintf(d->cfg.name, sizeof(d->cfg.name), "dense");
    d->n_weights = 2;
    weight_set(&d->weights[0], "kernel", 0, 6, true);
    d->weights[0].ndim = 2;
    d->weights[0].shape[0] = 2;
    d->weights[0].shape[1] = 3;
    weight_set(&d->weights[1], "bias", 6, 3, true);
    bn->cfg.kind = LAYER_KIND_BATCH_NORMALIZATION;
    snprintf(bn->cfg.name, sizeof(bn->cfg.name), "batch_normalization");
    bn->n_weights = 4;
    weight_set(&bn->weights[0], "gamma", 10, 2, true);
    weight_set(&bn->weights[1], "beta", 12, 2, true);
    weight_set(&bn->weights[2], "moving_mean", 14, 2, false);
    weight_set(&bn->weights[3], "moving_variance", 16, 1, false); /* 1 element suffices */
    t->m.n_layers = 2;
    t->m.layers = t->layers;
    t->m.n_params = N_PARAMS + 1;
    t->m.n_trainable = 6 + 3 + 2 + 2;
    t->m.params = t->params;
    t->m.grads = t->grads;
    t->m.threads = 1;
    t->m.max_batch = 1;
    for (int i = 0; i < N_PARAMS + 1; i++) {
        t->params[i] = 0.5f - 0.13f * (float)i + 0.01f * (float)(i * i);
        /* non-zero gradients everywhere, also where nothing may move */
        t->grads[i] = (i % 3 == 0 ? -1.0f : 1.0f) * (0.05f + 0.07f * (float)i);
    }
}

static bool is_trainable(int i)
{
    return i <= 8 || (i >= 10 && i <= 13);
}

static void test_sgd_nesterov_decay(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.learning_rate = 0.05;
    c.decay = 0.3;
    c.momentum = 0.9;
    c.nesterov = true;
    struct optimizer *opt = NULL;
    struct diag d = {0};
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), 0);
    if (!opt)
        return;
    CHECK_INT_EQ(opt->n_slots, 1);
    CHECK_INT_EQ(opt->n, N_PARAMS + 1);
    CHECK_STR_EQ(optimizer_slot_name(opt, 0), "momentum");
    CHECK(optimizer_slot_name(opt, 1) == NULL);
    CHECK_STR_EQ(optimizer_class_name(opt), "SGD");
    /* resume-like state: 7 steps done, non-zero velocity */
    opt->iterations = 7;
    double p[N_PARAMS + 1], v[N_PARAMS + 1];
    for (int i = 0; i < N_PARAMS + 1; i++) {
        opt->slots[0][i] = 0.02f * (float)(i - 8);
        p[i] = t.params[i];
        v[i] = opt->slots[0][i];
    }
    for (int step = 0; step < 3; step++) {
        double lr_t = 0.05 / (1.0 + 0.3 * (double)(7 + step));
        CHECK_CLOSE(optimizer_current_lr(opt), lr_t, 1e-15, 0);
        optimizer_step(opt, &t.m);
        CHECK_INT_EQ(opt->iterations, 8 + step);
        for (int i = 0; i < N_PARAMS + 1; i++) {
            if (!is_trainable(i))
                continue;
            double g = t.grads[i];
            v[i] = 0.9 * v[i] - lr_t * g;
            p[i] += 0.9 * v[i] - lr_t * g;
        }
        for (int i = 0; i < N_PARAMS + 1; i++) {
            CHECK_CLOSE(t.params[i], p[i], 1e-6, 1e-7);
            CHECK_CLOSE(opt->slots[0][i], v[i], 1e-6, 1e-7);
        }
    }
    /* non-trainable and the gap: bit-for-bit as initialised */
    struct toy ref;
    toy_init(&ref);
    for (int i = 0; i < N_PARAMS + 1; i++)
        if (!is_trainable(i))
            CHECK(memcmp(&t.params[i], &ref.params[i], sizeof(float)) == 0);
    /* the first step actually moved things by the expected amount */
    CHECK(fabs(t.params[0] - ref.params[0]) > 1e-3);
    optimizer_free(opt);
}

static void test_sgd_momentum_plain(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.learning_rate = 0.1;
    c.momentum = 0.5;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    if (!opt)
        return;
    double p[N_PARAMS + 1], v[N_PARAMS + 1] = {0};
    for (int i = 0; i < N_PARAMS + 1; i++)
        p[i] = t.params[i];
    for (int step = 0; step < 2; step++) {
        optimizer_step(opt, &t.m);
        for (int i = 0; i < N_PARAMS + 1; i++)
            if (is_trainable(i)) {
                v[i] = 0.5 * v[i] - 0.1 * t.grads[i];
                p[i] += v[i];
            }
    }
    for (int i = 0; i < N_PARAMS + 1; i++) {
        CHECK_CLOSE(t.params[i], p[i], 1e-6, 1e-7);
        CHECK_CLOSE(opt->slots[0][i], v[i], 1e-6, 1e-7);
    }
    CHECK_INT_EQ(opt->iterations, 2);
    optimizer_free(opt);
}

static void test_sgd_no_momentum(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.decay = 0.01 / 40;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    if (!opt)
        return;
    CHECK_INT_EQ(opt->n_slots, 0);
    CHECK(opt->slots[0] == NULL && opt->slots[1] == NULL);
    CHECK(optimizer_slot_name(opt, 0) == NULL);
    opt->iterations = 1000;
    double lr_t = 0.01 / (1.0 + 0.00025 * 1000.0);
    double p[N_PARAMS + 1];
    for (int i = 0; i < N_PARAMS + 1; i++)
        p[i] = t.params[i] - (is_trainable(i) ? lr_t * t.grads[i] : 0.0);
    optimizer_step(opt, &t.m);
    for (int i = 0; i < N_PARAMS + 1; i++)
        CHECK_CLOSE(t.params[i], p[i], 1e-6, 1e-8);
    CHECK_INT_EQ(opt->iterations, 1001);
    CHECK_CLOSE(optimizer_current_lr(opt), 0.01 / (1.0 + 0.00025 * 1001.0), 1e-15, 0);
    optimizer_free(opt);
}

static void test_adam(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    CHECK_CLOSE(c.learning_rate, 0.001, 0, 0);
    CHECK_CLOSE(c.epsilon, 1e-7, 0, 0);
    c.learning_rate = 0.01;
    c.decay = 0.1;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    if (!opt)
        return;
    CHECK_INT_EQ(opt->n_slots, 2);
    CHECK_STR_EQ(optimizer_slot_name(opt, 0), "m");
    CHECK_STR_EQ(optimizer_slot_name(opt, 1), "v");
    CHECK_STR_EQ(optimizer_class_name(opt), "Adam");
    double p[N_PARAMS + 1], m1[N_PARAMS + 1] = {0}, m2[N_PARAMS + 1] = {0};
    for (int i = 0; i < N_PARAMS + 1; i++)
        p[i] = t.params[i];
    for (int step = 0; step < 3; step++) {
        /* vary the gradients between steps so that m and v differ from g */
        for (int i = 0; i < N_PARAMS + 1; i++)
            t.grads[i] = (float)(0.3 * sin(1.7 * i + step) + 0.01 * step);
        double it = (double)step, tt = it + 1;
        double lr_t = 0.01 / (1.0 + 0.1 * it) * sqrt(1.0 - pow(0.999, tt)) / (1.0 - pow(0.9, tt));
        CHECK_CLOSE(optimizer_current_lr(opt), 0.01 / (1.0 + 0.1 * it), 1e-15, 0);
        optimizer_step(opt, &t.m);
        for (int i = 0; i < N_PARAMS + 1; i++) {
            if (!is_trainable(i))
                continue;
            double g = t.grads[i];
            m1[i] = 0.9 * m1[i] + 0.1 * g;
            m2[i] = 0.999 * m2[i] + 0.001 * g * g;
            p[i] -= lr_t * m1[i] / (sqrt(m2[i]) + 1e-7);
        }
        for (int i = 0; i < N_PARAMS + 1; i++) {
            CHECK_CLOSE(t.params[i], p[i], 1e-5, 1e-7);
            CHECK_CLOSE(opt->slots[0][i], m1[i], 1e-5, 1e-9);
            CHECK_CLOSE(opt->slots[1][i], m2[i], 1e-5, 1e-11);
        }
        CHECK_INT_EQ(opt->iterations, step + 1);
    }
    struct toy ref;
    toy_init(&ref);
    for (int i = 0; i < N_PARAMS + 1; i++)
        if (!is_trainable(i))
            CHECK(memcmp(&t.params[i], &ref.params[i], sizeof(float)) == 0);
    /* first Adam step moves each parameter by about lr (bias-corrected m/sqrt(v) = sign(g)) */
    optimizer_free(opt);
}

static void test_adam_first_step_size(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    if (!opt)
        return;
    struct toy ref;
    toy_init(&ref);
    optimizer_step(opt, &t.m);
    /* t = 1: lr_t * m / sqrt(v) = 0.001 * sign(g) up to epsilon */
    for (int i = 0; i < N_PARAMS + 1; i++) {
        double want = is_trainable(i) ? -0.001 * (ref.grads[i] > 0 ? 1 : -1) : 0.0;
        CHECK_CLOSE((double)t.params[i] - ref.params[i], want, 1e-3, 1e-9);
    }
    optimizer_free(opt);
}

static void test_json(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.decay = 0.01 / 40;
    c.momentum = 0.9;
    c.nesterov = true;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    char *s = opt ? optimizer_to_keras_json(opt) : NULL;
    CHECK_STR_EQ(s, "{\"class_name\": \"SGD\", \"config\": {\"name\": \"SGD\", "
                    "\"learning_rate\": 0.01, \"decay\": 0.00025, \"momentum\": 0.9, "
                    "\"nesterov\": true}}");
    free(s);
    optimizer_free(opt);

    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    s = opt ? optimizer_to_keras_json(opt) : NULL;
    CHECK_STR_EQ(s, "{\"class_name\": \"SGD\", \"config\": {\"name\": \"SGD\", "
                    "\"learning_rate\": 0.01, \"decay\": 0.0, \"momentum\": 0.0, "
                    "\"nesterov\": false}}");
    free(s);
    optimizer_free(opt);

    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    s = opt ? optimizer_to_keras_json(opt) : NULL;
    CHECK_STR_EQ(s, "{\"class_name\": \"Adam\", \"config\": {\"name\": \"Adam\", "
                    "\"learning_rate\": 0.001, \"decay\": 0.0, \"beta_1\": 0.9, "
                    "\"beta_2\": 0.999, \"epsilon\": 1e-07, \"amsgrad\": false}}");
    free(s);
    optimizer_free(opt);

    /* Python repr forms: integral values keep ".0", large values go exponent at 1e16 */
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    c.learning_rate = 2;
    c.decay = 1e-5;
    c.epsilon = 1e-16;
    c.beta_1 = 0.123456789012345;
    opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    s = opt ? optimizer_to_keras_json(opt) : NULL;
    CHECK_STR_EQ(s, "{\"class_name\": \"Adam\", \"config\": {\"name\": \"Adam\", "
                    "\"learning_rate\": 2.0, \"decay\": 1e-05, \"beta_1\": 0.123456789012345, "
                    "\"beta_2\": 0.999, \"epsilon\": 1e-16, \"amsgrad\": false}}");
    free(s);
    optimizer_free(opt);
}

static void test_invalid_config(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    struct optimizer *opt = NULL;
    struct diag d = {0};
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.learning_rate = -1;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/learning_rate");
    CHECK(opt == NULL);
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.momentum = 1.5;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/momentum");
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.decay = NAN;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/decay");
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    c.beta_2 = 1.0;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/beta_2");
    CHECK(opt == NULL);
    optimizer_free(NULL);
}

/* --- Keras 3 optimizers, clipping, weight decay --------------------------------- */

/* Reference state in double for one kind: parameters and up to three slots. */
struct ref {
    double p[N_PARAMS + 1], s[3][N_PARAMS + 1];
    double nadam_prod;
};

static double step_grad(int i, int step)
{
    /* large first, then small: v decreases, so amsgrad's max matters */
    double scale = step == 0 ? 3.0 : 0.2;
    return scale * (0.3 * sin(1.7 * i + step) + 0.01 * step + 0.02);
}

/* One Keras step of c->kind in double on the trainable entries of r (t = step + 1). */
static void ref_step(const struct optimizer_config *c, struct ref *r, const float *gf, int step)
{
    double t = step + 1, lr = c->learning_rate, b1 = c->beta_1, b2 = c->beta_2, eps = c->epsilon;
    if (c->kind == OPTIMIZER_KIND_NADAM) /* Keras' _u_product before the update */
        r->nadam_prod *= b1 * (1 - 0.5 * pow(0.96, t));
    for (int i = 0; i < N_PARAMS + 1; i++) {
        if (!is_trainable(i))
            continue;
        double g = gf[i], *m = &r->s[0][i], *v = &r->s[1][i], *x = &r->s[2][i], *p = &r->p[i];
        if (c->weight_decay > 0)
            *p -= *p * c->weight_decay * lr;
        switch (c->kind) {
        case OPTIMIZER_KIND_ADAM:
        case OPTIMIZER_KIND_ADAMW: {
            *m += (g - *m) * (1 - b1);
            *v += (g * g - *v) * (1 - b2);
            double vv = *v;
            if (c->amsgrad) {
                *x = fmax(*x, *v);
                vv = *x;
            }
            *p -= lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t)) * *m / (sqrt(vv) + eps);
            break;
        }
        case OPTIMIZER_KIND_RMSPROP: {
            double *vel = &r->s[0][i], *mom = &r->s[1][i], *avg = &r->s[c->momentum > 0 ? 2 : 1][i];
            *vel = c->rho * *vel + (1 - c->rho) * g * g;
            double den = *vel + eps;
            if (c->centered) {
                *avg = c->rho * *avg + (1 - c->rho) * g;
                den = *vel - *avg * *avg + eps;
            }
            double inc = lr * g / sqrt(den);
            if (c->momentum > 0) {
                *mom = c->momentum * *mom + inc;
                *p -= *mom;
            } else {
                *p -= inc;
            }
            break;
        }
        case OPTIMIZER_KIND_ADAGRAD:
            *m += g * g;
            *p -= lr * g / sqrt(*m + eps);
            break;
        case OPTIMIZER_KIND_NADAM: {
            double u_t = b1 * (1 - 0.5 * pow(0.96, t)), u_t1 = b1 * (1 - 0.5 * pow(0.96, t + 1));
            *m += (g - *m) * (1 - b1);
            *v += (g * g - *v) * (1 - b2);
            double m_hat = u_t1 * *m / (1 - r->nadam_prod * u_t1) + (1 - u_t) * g / (1 - r->nadam_prod);
            double v_hat = *v / (1 - pow(b2, t));
            *p -= m_hat * lr / (sqrt(v_hat) + eps);
            break;
        }
        case OPTIMIZER_KIND_ADAMAX:
            *m += (g - *m) * (1 - b1);
            *v = fmax(b2 * *v, fabs(g));
            *p -= lr * *m / ((1 - pow(b1, t)) * (*v + eps));
            break;
        default:
            break;
        }
    }
}

/* Three steps of cfg against ref_step; slot count and names as given. */
static void check_kind(const struct optimizer_config *c, int n_slots, const char *const *names,
                       const char *class_name)
{
    struct toy t;
    toy_init(&t);
    struct optimizer *opt = NULL;
    struct diag d = {{0}, {0}};
    int rc = optimizer_create(&opt, c, &t.m, &d);
    CHECK_MSG(rc == 0, "%s: %s %s", class_name, d.field, d.message);
    if (!opt)
        return;
    CHECK_INT_EQ(opt->n_slots, n_slots);
    for (int s = 0; s < n_slots; s++)
        CHECK_STR_EQ(optimizer_slot_name(opt, s), names[s]);
    CHECK_STR_EQ(optimizer_class_name(opt), class_name);
    struct ref r;
    memset(&r, 0, sizeof(r));
    r.nadam_prod = 1.0;
    for (int i = 0; i < N_PARAMS + 1; i++) {
        r.p[i] = t.params[i];
        if (c->kind == OPTIMIZER_KIND_ADAGRAD)
            r.s[0][i] = c->initial_accumulator_value;
    }
    for (int step = 0; step < 4; step++) {
        for (int i = 0; i < N_PARAMS + 1; i++)
            t.grads[i] = (float)step_grad(i, step);
        ref_step(c, &r, t.grads, step);
        optimizer_step(opt, &t.m);
        for (int i = 0; i < N_PARAMS + 1; i++) {
            if (!is_trainable(i))
                continue;
            CHECK_MSG(fabs(t.params[i] - r.p[i]) <= 1e-5 * fabs(r.p[i]) + 1e-6,
                      "%s step %d param %d: %.9g vs %.9g", class_name, step, i, t.params[i], r.p[i]);
            for (int s = 0; s < n_slots; s++)
                CHECK_MSG(fabs(opt->slots[s][i] - r.s[s][i]) <= 1e-5 * fabs(r.s[s][i]) + 1e-9,
                          "%s step %d slot %d[%d]: %.9g vs %.9g", class_name, step, s, i,
                          opt->slots[s][i], r.s[s][i]);
        }
    }
    struct toy ref;
    toy_init(&ref);
    for (int i = 0; i < N_PARAMS + 1; i++)
        if (!is_trainable(i))
            CHECK(memcmp(&t.params[i], &ref.params[i], sizeof(float)) == 0);
    optimizer_free(opt);
}

static void test_keras3_optimizers(void)
{
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_RMSPROP);
    CHECK(c.learning_rate == 0.001 && c.rho == 0.9 && c.momentum == 0 && !c.centered &&
          c.epsilon == 1e-7);
    c.learning_rate = 0.01;
    check_kind(&c, 1, (const char *const[]){"rms"}, "RMSprop");
    c.momentum = 0.5;
    c.rho = 0.8;
    c.centered = true;
    check_kind(&c, 3, (const char *const[]){"rms", "momentum", "mg"}, "RMSprop");
    c.momentum = 0;
    check_kind(&c, 2, (const char *const[]){"rms", "mg"}, "RMSprop");

    optimizer_config_default(&c, OPTIMIZER_KIND_ADAGRAD);
    CHECK(c.initial_accumulator_value == 0.1 && c.learning_rate == 0.001);
    c.learning_rate = 0.05;
    check_kind(&c, 1, (const char *const[]){"accumulator"}, "Adagrad");

    optimizer_config_default(&c, OPTIMIZER_KIND_ADAMW);
    CHECK(c.weight_decay == 0.004);
    c.learning_rate = 0.01;
    c.weight_decay = 0.5; /* large enough to see */
    check_kind(&c, 2, (const char *const[]){"m", "v"}, "AdamW");
    c.amsgrad = true;
    check_kind(&c, 3, (const char *const[]){"m", "v", "vhat"}, "AdamW");

    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    c.learning_rate = 0.01;
    c.amsgrad = true;
    check_kind(&c, 3, (const char *const[]){"m", "v", "vhat"}, "Adam");

    optimizer_config_default(&c, OPTIMIZER_KIND_NADAM);
    c.learning_rate = 0.01;
    check_kind(&c, 2, (const char *const[]){"m", "v"}, "Nadam");

    optimizer_config_default(&c, OPTIMIZER_KIND_ADAMAX);
    c.learning_rate = 0.01;
    check_kind(&c, 2, (const char *const[]){"m", "v"}, "Adamax");
}

/* amsgrad changes the result once v decreases (the gradients shrink after step 1). */
static void test_amsgrad_differs(void)
{
    struct toy a, b;
    toy_init(&a);
    toy_init(&b);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAM);
    struct optimizer *oa = NULL, *ob = NULL;
    CHECK_INT_EQ(optimizer_create(&oa, &c, &a.m, NULL), 0);
    c.amsgrad = true;
    CHECK_INT_EQ(optimizer_create(&ob, &c, &b.m, NULL), 0);
    if (oa && ob)
        for (int step = 0; step < 3; step++) {
            for (int i = 0; i < N_PARAMS + 1; i++)
                a.grads[i] = b.grads[i] = (float)step_grad(i, step);
            optimizer_step(oa, &a.m);
            optimizer_step(ob, &b.m);
        }
    CHECK(memcmp(a.params, b.params, sizeof(a.params)) != 0);
    optimizer_free(oa);
    optimizer_free(ob);
}

/* Nadam's running product is rebuilt from iterations for a resumed
 * optimizer: both continue bit-identically. */
static void test_nadam_resume(void)
{
    struct toy a, b;
    toy_init(&a);
    toy_init(&b);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_NADAM);
    struct optimizer *oa = NULL, *ob = NULL;
    CHECK_INT_EQ(optimizer_create(&oa, &c, &a.m, NULL), 0);
    CHECK_INT_EQ(optimizer_create(&ob, &c, &b.m, NULL), 0);
    if (!oa || !ob) {
        optimizer_free(oa);
        optimizer_free(ob);
        return;
    }
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < N_PARAMS + 1; i++)
            a.grads[i] = (float)step_grad(i, step);
        optimizer_step(oa, &a.m);
        if (step == 2) { /* b takes a's state as a resume file would give it */
            memcpy(b.params, a.params, sizeof(a.params));
            for (int s = 0; s < oa->n_slots; s++)
                memcpy(ob->slots[s], oa->slots[s], sizeof(float) * oa->n);
            ob->iterations = oa->iterations;
        } else if (step > 2) {
            memcpy(b.grads, a.grads, sizeof(a.grads));
            optimizer_step(ob, &b.m);
        }
    }
    CHECK(memcmp(a.params, b.params, sizeof(a.params)) == 0);
    optimizer_free(oa);
    optimizer_free(ob);
}

/* Keras 3 clipping: clipnorm per weight, global_clipnorm over all, clipvalue;
 * with plain SGD at lr 1 the step is the clipped gradient. */
static void test_clipping(void)
{
    static const struct {
        size_t off, n;
    } weights[] = {{0, 6}, {6, 3}, {10, 2}, {12, 2}};
    for (int mode = 0; mode < 3; mode++) {
        struct toy t, ref;
        toy_init(&t);
        toy_init(&ref);
        struct optimizer_config c;
        optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
        c.learning_rate = 1.0;
        if (mode == 0)
            c.clipnorm = 0.1;
        else if (mode == 1)
            c.global_clipnorm = 0.3;
        else
            c.clipvalue = 0.4;
        struct optimizer *opt = NULL;
        CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
        if (!opt)
            continue;
        optimizer_step(opt, &t.m);
        double want[N_PARAMS + 1] = {0};
        double total = 0;
        for (int w = 0; w < 4; w++)
            for (size_t i = weights[w].off; i < weights[w].off + weights[w].n; i++)
                total += (double)ref.grads[i] * ref.grads[i];
        for (int w = 0; w < 4; w++) {
            double sq = 0;
            for (size_t i = weights[w].off; i < weights[w].off + weights[w].n; i++)
                sq += (double)ref.grads[i] * ref.grads[i];
            for (size_t i = weights[w].off; i < weights[w].off + weights[w].n; i++) {
                double g = ref.grads[i];
                if (mode == 0)
                    want[i] = g * 0.1 / fmax(sqrt(sq), 0.1);
                else if (mode == 1)
                    want[i] = g * 0.3 * fmin(1 / sqrt(total), 1 / 0.3);
                else
                    want[i] = fmin(fmax(g, -0.4), 0.4);
            }
        }
        for (int i = 0; i < N_PARAMS + 1; i++) {
            double step = (double)ref.params[i] - t.params[i];
            CHECK_MSG(fabs(step - (is_trainable(i) ? want[i] : 0)) <= 1e-6,
                      "mode %d param %d: step %.9g want %.9g", mode, i, step, want[i]);
        }
        optimizer_free(opt);
    }
    /* the sizes of the test are such that each mode clips something */
    struct toy t;
    toy_init(&t);
    CHECK(fabs(t.grads[16]) > 0.4);
}

static void test_keras3_config_json_and_errors(void)
{
    struct toy t;
    toy_init(&t);
    struct optimizer_config c;
    optimizer_config_default(&c, OPTIMIZER_KIND_RMSPROP);
    c.centered = true;
    c.clipnorm = 1.0;
    struct optimizer *opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    char *j = opt ? optimizer_to_keras_json(opt) : NULL;
    CHECK_STR_EQ(j, "{\"class_name\": \"RMSprop\", \"config\": {\"name\": \"RMSprop\", "
                    "\"learning_rate\": 0.001, \"decay\": 0.0, \"rho\": 0.9, \"momentum\": 0.0, "
                    "\"epsilon\": 1e-07, \"centered\": true, \"clipnorm\": 1.0}}");
    free(j);
    optimizer_free(opt);
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAMW);
    c.amsgrad = true;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, NULL), 0);
    j = opt ? optimizer_to_keras_json(opt) : NULL;
    CHECK_STR_EQ(j, "{\"class_name\": \"AdamW\", \"config\": {\"name\": \"AdamW\", "
                    "\"learning_rate\": 0.001, \"decay\": 0.0, \"weight_decay\": 0.004, "
                    "\"beta_1\": 0.9, \"beta_2\": 0.999, \"epsilon\": 1e-07, \"amsgrad\": true}}");
    free(j);
    optimizer_free(opt);

    struct diag d = {{0}, {0}};
    optimizer_config_default(&c, OPTIMIZER_KIND_SGD);
    c.clipnorm = 1;
    c.clipvalue = 1;
    opt = NULL;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), -EINVAL);
    CHECK(opt == NULL && strstr(d.message, "Only one of"));
    optimizer_config_default(&c, OPTIMIZER_KIND_RMSPROP);
    c.rho = 1.0;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/rho");
    optimizer_config_default(&c, OPTIMIZER_KIND_ADAMW);
    c.weight_decay = -1;
    CHECK_INT_EQ(optimizer_create(&opt, &c, &t.m, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/weight_decay");
    CHECK_INT_EQ(optimizer_kind_from_name("rmsprop"), OPTIMIZER_KIND_RMSPROP);
    CHECK_INT_EQ(optimizer_kind_from_name("AdamW"), OPTIMIZER_KIND_ADAMW);
    CHECK_INT_EQ(optimizer_kind_from_name("lion"), -1);
}

int main(void)
{
    TEST_RUN(test_sgd_nesterov_decay);
    TEST_RUN(test_sgd_momentum_plain);
    TEST_RUN(test_sgd_no_momentum);
    TEST_RUN(test_adam);
    TEST_RUN(test_adam_first_step_size);
    TEST_RUN(test_json);
    TEST_RUN(test_invalid_config);
    TEST_RUN(test_keras3_optimizers);
    TEST_RUN(test_amsgrad_differs);
    TEST_RUN(test_nadam_resume);
    TEST_RUN(test_clipping);
    TEST_RUN(test_keras3_config_json_and_errors);
    return TEST_EXIT();
}
