/* test_optimizer.c - Keras 2 SGD and Adam steps on a small hand-built
 * parameter set, against the Keras formulas written out here in double
 * precision; slots, iterations, the untouched non-trainable BN statistics and
 * the tf.keras config JSON. */
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

int main(void)
{
    TEST_RUN(test_sgd_nesterov_decay);
    TEST_RUN(test_sgd_momentum_plain);
    TEST_RUN(test_sgd_no_momentum);
    TEST_RUN(test_adam);
    TEST_RUN(test_adam_first_step_size);
    TEST_RUN(test_json);
    TEST_RUN(test_invalid_config);
    return TEST_EXIT();
}
