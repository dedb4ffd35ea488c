/* test_callbacks.c - the callback list and the decisions of EarlyStopping,
 * ReduceLROnPlateau, the step-decay LearningRateScheduler and TerminateOnNaN,
 * each case worked out by hand from tf.keras 2.15's code (quoted in the
 * cb_*.c files); the expected learning-rate strings are what Python prints
 * for numpy.float32(lr) * factor. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "callbacks.h"
#include "test.h"

static struct logs logs_of(const char *key, double v)
{
    struct logs l = {0};
    logs_set(&l, "loss", 0.5);
    logs_set(&l, key, v);
    return l;
}

/* --- the list ---------------------------------------------------------------- */

struct rec {
    char calls[256];
    int epoch_end_result;
};

static void note(struct rec *r, const char *what)
{
    size_t n = strlen(r->calls);
    snprintf(r->calls + n, sizeof(r->calls) - n, "%s ", what);
}

static int rec_begin(void *ctx, const struct fit_progress *p)
{
    (void)p;
    note(ctx, "B");
    return 0;
}

static int rec_epoch_begin(void *ctx, const struct fit_progress *p)
{
    (void)p;
    note(ctx, "EB");
    return 0;
}

static int rec_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *l)
{
    (void)p;
    (void)l;
    struct rec *r = ctx;
    note(r, "EE");
    return r->epoch_end_result;
}

static void rec_end(void *ctx, const struct fit_progress *p, int status)
{
    (void)p;
    note(ctx, status == 1 ? "T1" : "T");
}

static void test_list_order_and_stop(void)
{
    struct rec a = {"", 1}, b = {"", 0}, c = {"", -EIO}, d = {"", 0};
    struct cb_list l = {0};
    struct callback cb = {.name = "rec",
                          .hooks = {.train_begin = rec_begin, .epoch_begin = rec_epoch_begin,
                                    .epoch_end = rec_epoch_end, .train_end = rec_end}};
    cb.hooks.ctx = &a;
    CHECK_INT_EQ(cb_list_add(&l, &cb), 0);
    cb.hooks.ctx = &b;
    CHECK_INT_EQ(cb_list_add(&l, &cb), 0);
    struct fit_callbacks fc;
    cb_list_bind(&l, &fc);
    struct fit_progress p = {0};
    struct logs lg = {0};
    CHECK_INT_EQ(fc.train_begin(fc.ctx, &p), 0);
    CHECK_INT_EQ(fc.epoch_begin(fc.ctx, &p), 0);
    /* a asks to stop; b is still called (Keras runs every callback). */
    CHECK_INT_EQ(fc.epoch_end(fc.ctx, &p, &lg), 1);
    fc.train_end(fc.ctx, &p, 1);
    CHECK_STR_EQ(a.calls, "B EB EE T1 ");
    CHECK_STR_EQ(b.calls, "B EB EE T1 ");
    /* An error stops the calls at once and is returned. */
    cb.hooks.ctx = &c;
    CHECK_INT_EQ(cb_list_add(&l, &cb), 0);
    cb.hooks.ctx = &d;
    CHECK_INT_EQ(cb_list_add(&l, &cb), 0);
    CHECK_INT_EQ(fc.epoch_end(fc.ctx, &p, &lg), -EIO);
    CHECK_STR_EQ(c.calls, "EE ");
    CHECK_STR_EQ(d.calls, "");
    /* Full list. */
    while (l.n < CB_LIST_MAX)
        CHECK_INT_EQ(cb_list_add(&l, &cb), 0);
    CHECK_INT_EQ(cb_list_add(&l, &cb), -ENOSPC);
}

/* --- auto modes ------------------------------------------------------------------ */

static void test_auto_modes(void)
{
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_EARLY_STOPPING, "val_accuracy", CKPT_MODE_AUTO), CKPT_MODE_MAX);
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_EARLY_STOPPING, "val_acc", CKPT_MODE_AUTO), CKPT_MODE_MAX);
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_EARLY_STOPPING, "auc", CKPT_MODE_AUTO), CKPT_MODE_MAX);
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_EARLY_STOPPING, "val_loss", CKPT_MODE_AUTO), CKPT_MODE_MIN);
    /* tf.keras 2.15 EarlyStopping: endswith, so "acc_x" is min ... */
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_EARLY_STOPPING, "acc_x", CKPT_MODE_AUTO), CKPT_MODE_MIN);
    /* ... while ReduceLROnPlateau tests '"acc" in monitor'. */
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_REDUCE_LR_ON_PLATEAU, "acc_x", CKPT_MODE_AUTO), CKPT_MODE_MAX);
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_REDUCE_LR_ON_PLATEAU, "val_loss", CKPT_MODE_AUTO), CKPT_MODE_MIN);
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_MODEL_CHECKPOINT, "val_loss", CKPT_MODE_AUTO), CKPT_MODE_MIN);
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_MODEL_CHECKPOINT, "weird", CKPT_MODE_AUTO), CKPT_MODE_AUTO);
    CHECK_INT_EQ(cb_resolve_mode(CB_KIND_MODEL_CHECKPOINT, "weird", CKPT_MODE_MAX), CKPT_MODE_MAX);
    CHECK_STR_EQ(cb_mode_name(CKPT_MODE_MIN), "min");
}

/* --- EarlyStopping -------------------------------------------------------------------- */

/* Runs values through EarlyStopping; returns the 1-based epoch that stopped (0: none). */
static int es_run(const struct es_config *cfg, struct es_state *s, const double *values, int n,
                  struct es_decision *last)
{
    es_state_init(s, cfg);
    for (int i = 0; i < n; i++) {
        struct logs l = logs_of(cfg->monitor, values[i]);
        es_on_epoch_end(cfg, s, i + 1, &l, last);
        if (last->stop)
            return i + 1;
    }
    return 0;
}

static void test_es_patience(void)
{
    struct es_config c;
    es_config_default(&c);
    c.enabled = true;
    c.patience = 2;
    struct es_state s;
    struct es_decision dec;
    /* 1.0 best, 0.9 better, 0.95 wait 1, 0.93 wait 2 >= 2: stop at epoch 4. */
    double v[] = {1.0, 0.9, 0.95, 0.93, 0.8};
    CHECK_INT_EQ(es_run(&c, &s, v, 5, &dec), 4);
    CHECK_STR_EQ(dec.message, "Epoch 4: early stopping");
    CHECK(!dec.restore_weights);
    CHECK_INT_EQ(s.stopped_epoch, 3);
    CHECK_INT_EQ(s.best_epoch, 1);
    CHECK(s.best == 0.9);
    /* Patience 0 never stops at the first epoch (Keras: epoch > 0). */
    c.patience = 0;
    double w[] = {1.0, 2.0};
    CHECK_INT_EQ(es_run(&c, &s, w, 1, &dec), 0);
    CHECK_INT_EQ(es_run(&c, &s, w, 2, &dec), 2);
}

static void test_es_min_delta_and_max(void)
{
    struct es_config c;
    es_config_default(&c);
    c.enabled = true;
    c.patience = 1;
    c.min_delta = -0.01; /* Keras takes the absolute value */
    struct es_state s;
    struct es_decision dec;
    double v[] = {1.0, 0.995, 0.98};
    /* 0.995 + 0.01 < 1.0 is false: wait 1 >= 1 at epoch 2. */
    CHECK_INT_EQ(es_run(&c, &s, v, 3, &dec), 2);
    snprintf(c.monitor, sizeof(c.monitor), "val_accuracy");
    double a[] = {0.5, 0.7, 0.705, 0.8};
    /* auto = max; 0.705 - 0.01 > 0.7 false: stop at epoch 3. */
    CHECK_INT_EQ(es_run(&c, &s, a, 4, &dec), 3);
    CHECK(s.best == 0.7);
}

static void test_es_baseline(void)
{
    struct es_config c;
    es_config_default(&c);
    c.enabled = true;
    c.patience = 2;
    c.has_baseline = true;
    c.baseline = 0.5;
    struct es_state s;
    struct es_decision dec;
    /* Improvements that miss the baseline keep counting wait but never stop ... */
    double v[] = {1.0, 0.9, 0.8, 0.7};
    CHECK_INT_EQ(es_run(&c, &s, v, 4, &dec), 0);
    CHECK_INT_EQ(s.wait, 4);
    /* ... the first non-improvement with wait >= patience does. */
    double w[] = {1.0, 1.1};
    CHECK_INT_EQ(es_run(&c, &s, w, 2, &dec), 2);
    /* Beating the baseline resets wait. */
    double x[] = {1.0, 0.4, 0.45};
    CHECK_INT_EQ(es_run(&c, &s, x, 3, &dec), 0);
    CHECK_INT_EQ(s.wait, 1);
}

static void test_es_restore_best_weights(void)
{
    struct es_config c;
    es_config_default(&c);
    c.enabled = true;
    c.patience = 2;
    c.restore_best_weights = true;
    struct es_state s;
    struct es_decision dec;
    es_state_init(&s, &c);
    double v[] = {1.0, 0.8, 0.9, 0.95};
    bool keep[] = {true, true, false, false};
    for (int i = 0; i < 4; i++) {
        struct logs l = logs_of("val_loss", v[i]);
        es_on_epoch_end(&c, &s, i + 1, &l, &dec);
        CHECK_INT_EQ(dec.keep_weights, keep[i]);
    }
    CHECK(dec.stop && dec.restore_weights);
    CHECK_STR_EQ(dec.restore_message, "Restoring model weights from the end of the best epoch: 2.");
    /* Nothing ever improves after a NaN first epoch: its weights are kept. */
    double w[] = {NAN, NAN, NAN};
    CHECK_INT_EQ(es_run(&c, &s, w, 3, &dec), 2);
    CHECK(dec.restore_weights);
    CHECK_STR_EQ(dec.restore_message, "Restoring model weights from the end of the best epoch: 1.");
}

static void test_es_start_from_epoch_and_missing(void)
{
    struct es_config c;
    es_config_default(&c);
    c.enabled = true;
    c.patience = 1;
    c.start_from_epoch = 2; /* Keras epochs 0 and 1 are not monitored */
    struct es_state s;
    struct es_decision dec;
    double v[] = {0.1, 0.2, 1.0, 1.1};
    CHECK_INT_EQ(es_run(&c, &s, v, 4, &dec), 4);
    CHECK(s.best == 1.0);
    CHECK_INT_EQ(s.best_epoch, 2);
    /* Monitor absent: nothing happens. */
    es_state_init(&s, &c);
    struct logs l = logs_of("val_accuracy", 1);
    es_on_epoch_end(&c, &s, 5, &l, &dec);
    CHECK(!dec.monitored && !dec.stop && s.wait == 0);
}

static void test_es_state_json(void)
{
    struct es_config c;
    es_config_default(&c);
    c.enabled = true;
    struct es_state s, t;
    es_state_init(&s, &c);
    char *j = NULL;
    CHECK_INT_EQ(es_state_to_json(&s, &j), 0);
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(es_state_from_json(&c, j, &t, &d), 0);
    CHECK(isinf(t.best) && t.best > 0);
    free(j);
    s.best = 0.1 + 0.2; /* not a short decimal */
    s.wait = 3;
    s.best_epoch = 7;
    s.stopped_epoch = 9;
    s.stopped = true;
    s.has_best_weights = true;
    CHECK_INT_EQ(es_state_to_json(&s, &j), 0);
    CHECK_INT_EQ(es_state_from_json(&c, j, &t, &d), 0);
    CHECK(memcmp(&s.best, &t.best, sizeof(double)) == 0);
    CHECK(t.wait == 3 && t.best_epoch == 7 && t.stopped_epoch == 9 && t.stopped &&
          t.has_best_weights);
    free(j);
    const char *bad[] = {
        "{}", "[]", "not json",
        "{\"wait\":1.5,\"best\":1,\"best_epoch\":0,\"stopped_epoch\":0,\"has_best_weights\":false,\"stopped\":false}",
        "{\"wait\":1,\"best\":\"nan\",\"best_epoch\":0,\"stopped_epoch\":0,\"has_best_weights\":false,\"stopped\":false}",
        "{\"wait\":1,\"best\":1,\"best_epoch\":0,\"stopped_epoch\":0,\"has_best_weights\":0,\"stopped\":false}",
        "{\"wait\":1,\"best\":1,\"best_epoch\":0,\"stopped_epoch\":0,\"has_best_weights\":false,\"stopped\":false,\"x\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t.wait = 42;
        CHECK_MSG(es_state_from_json(&c, bad[i], &t, &d) == -EINVAL, "%s", bad[i]);
        CHECK_INT_EQ(t.wait, 42);
    }
    CHECK_INT_EQ(es_state_from_json(&c, "{\"wait\":-1,\"best\":1,\"best_epoch\":0,\"stopped_epoch\":0,"
                                        "\"has_best_weights\":false,\"stopped\":false}", &t, &d),
                 -EINVAL);
    CHECK_STR_EQ(d.field, "/wait");
}

/* --- ReduceLROnPlateau ---------------------------------------------------------------- */

static void test_rlrop_reduces_after_patience(void)
{
    struct rlrop_config c;
    rlrop_config_default(&c);
    c.enabled = true;
    c.patience = 2;
    struct rlrop_state s;
    rlrop_state_init(&s, &c);
    struct lr_change ch;
    double lr = 0.01;
    double v[] = {1.0, 1.0, 1.0};
    for (int i = 0; i < 3; i++) {
        struct logs l = logs_of("val_loss", v[i]);
        rlrop_on_epoch_end(&c, &s, i + 1, &l, lr, &ch);
        CHECK_INT_EQ(ch.changed, i == 2);
    }
    CHECK_STR_EQ(ch.message, "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.0009999999776482583.");
    CHECK(ch.new_lr == (double)(float)0.0009999999776482583);
    CHECK(ch.old_lr == (double)0.01f);
    CHECK_INT_EQ(s.wait, 0);
    /* factor 0.5 on float32(0.01) */
    c.factor = 0.5;
    rlrop_state_init(&s, &c);
    for (int i = 0; i < 3; i++) {
        struct logs l = logs_of("val_loss", 2.0);
        rlrop_on_epoch_end(&c, &s, i + 1, &l, lr, &ch);
    }
    CHECK_STR_EQ(ch.message, "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.004999999888241291.");
}

static void test_rlrop_min_delta_mode(void)
{
    struct rlrop_config c;
    rlrop_config_default(&c);
    c.enabled = true;
    c.patience = 1;
    struct rlrop_state s;
    rlrop_state_init(&s, &c);
    struct lr_change ch;
    struct logs l = logs_of("val_loss", 1.0);
    rlrop_on_epoch_end(&c, &s, 1, &l, 0.1, &ch);
    /* 0.99995 < 1.0 - 1e-4 is false: not better, wait 1 >= 1: reduce. */
    l = logs_of("val_loss", 0.99995);
    rlrop_on_epoch_end(&c, &s, 2, &l, 0.1, &ch);
    CHECK(ch.changed);
    CHECK(s.best == 1.0);
    /* Accuracy: auto = max. */
    snprintf(c.monitor, sizeof(c.monitor), "val_accuracy");
    rlrop_state_init(&s, &c);
    CHECK(isinf(s.best) && s.best < 0);
    l = logs_of("val_accuracy", 0.5);
    rlrop_on_epoch_end(&c, &s, 1, &l, 0.1, &ch);
    l = logs_of("val_accuracy", 0.6);
    rlrop_on_epoch_end(&c, &s, 2, &l, 0.1, &ch);
    CHECK(!ch.changed && s.best == 0.6);
    /* Monitor missing: nothing at all. */
    l = logs_of("val_loss", 0.1);
    rlrop_on_epoch_end(&c, &s, 3, &l, 0.1, &ch);
    CHECK(!ch.changed && !ch.has_message && s.wait == 0);
}

static void test_rlrop_cooldown_and_min_lr(void)
{
    struct rlrop_config c;
    rlrop_config_default(&c);
    c.enabled = true;
    c.patience = 1;
    c.cooldown = 2;
    struct rlrop_state s;
    rlrop_state_init(&s, &c);
    double lr = 0.02;
    int reduced_at[8], n = 0;
    for (int e = 1; e <= 7; e++) {
        struct lr_change ch;
        struct logs l = logs_of("val_loss", 1.0);
        rlrop_on_epoch_end(&c, &s, e, &l, lr, &ch);
        if (ch.changed) {
            reduced_at[n++] = e;
            lr = ch.new_lr;
        }
    }
    /* 1: best; 2: reduce, cooldown 2; 3: cooldown 1 (wait 0); 4: cooldown 0,
     * then wait 1: reduce; 5: cooldown; 6: reduce. */
    CHECK_INT_EQ(n, 3);
    CHECK_INT_EQ(reduced_at[0], 2);
    CHECK_INT_EQ(reduced_at[1], 4);
    CHECK_INT_EQ(reduced_at[2], 6);

    c.cooldown = 0;
    c.min_lr = 0.005;
    rlrop_state_init(&s, &c);
    struct lr_change ch;
    struct logs l = logs_of("val_loss", 1.0);
    rlrop_on_epoch_end(&c, &s, 1, &l, 0.01, &ch);
    rlrop_on_epoch_end(&c, &s, 2, &l, 0.01, &ch);
    CHECK_STR_EQ(ch.message, "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.005.");
    CHECK(ch.new_lr == (double)0.005f);
    /* float32(lr) > float32(min_lr) is false now: no change, no message. */
    rlrop_on_epoch_end(&c, &s, 3, &l, ch.new_lr, &ch);
    CHECK(!ch.changed && !ch.has_message);

    struct diag d = {{0}, {0}};
    c.factor = 1.0;
    CHECK_INT_EQ(rlrop_config_validate(&c, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/factor");
    c.factor = 0.5;
    c.min_lr = -1;
    CHECK_INT_EQ(rlrop_config_validate(&c, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/min_lr");
}

static void test_rlrop_state_json(void)
{
    struct rlrop_state s = {.best = 0.1 + 0.2, .wait = 4, .cooldown_counter = 2}, t;
    char *j = NULL;
    CHECK_INT_EQ(rlrop_state_to_json(&s, &j), 0);
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(rlrop_state_from_json(j, &t, &d), 0);
    CHECK(memcmp(&s, &t, sizeof(s)) == 0);
    free(j);
    CHECK_INT_EQ(rlrop_state_from_json("{\"best\":\"-inf\",\"wait\":0,\"cooldown_counter\":0}", &t, &d), 0);
    CHECK(isinf(t.best) && t.best < 0);
    CHECK_INT_EQ(rlrop_state_from_json("{\"best\":1,\"wait\":0}", &t, &d), -EINVAL);
    CHECK_INT_EQ(rlrop_state_from_json("{\"best\":1,\"wait\":0,\"cooldown_counter\":true}", &t, &d),
                 -EINVAL);
    CHECK_STR_EQ(d.field, "/cooldown_counter");
}

/* --- step decay, TerminateOnNaN ------------------------------------------------------------ */

static void test_step_decay(void)
{
    struct lr_step_decay_config c = {.enabled = true, .initial_learning_rate = 0.01,
                                     .factor = 0.25, .drop_every = 5};
    struct diag d = {{0}, {0}};
    CHECK_INT_EQ(lr_step_decay_validate(&c, &d), 0);
    /* PyImageSearch: alpha = 0.01 * 0.25 ** floor((1 + epoch) / 5), 0-based epoch. */
    for (int e = 1; e <= 4; e++)
        CHECK(lr_step_decay_at(&c, e) == 0.01);
    for (int e = 5; e <= 9; e++)
        CHECK(lr_step_decay_at(&c, e) == 0.0025);
    CHECK(lr_step_decay_at(&c, 10) == 0.000625);
    struct lr_change ch;
    lr_step_decay_on_epoch_begin(&c, 4, (double)0.01f, &ch);
    CHECK(!ch.changed);
    CHECK_STR_EQ(ch.message, "Epoch 4: LearningRateScheduler setting learning rate to 0.01.");
    lr_step_decay_on_epoch_begin(&c, 5, (double)0.01f, &ch);
    CHECK(ch.changed && ch.new_lr == (double)0.0025f);
    CHECK_STR_EQ(ch.message, "Epoch 5: LearningRateScheduler setting learning rate to 0.0025.");
    c.drop_every = 0;
    CHECK_INT_EQ(lr_step_decay_validate(&c, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/drop_every");
}

static void test_terminate_on_nan(void)
{
    char msg[96] = "";
    struct logs l = {0};
    CHECK(!ton_on_batch_end(1, &l, msg, sizeof(msg)));
    logs_set(&l, "loss", 1.5);
    CHECK(!ton_on_batch_end(1, &l, msg, sizeof(msg)));
    logs_set(&l, "loss", NAN);
    CHECK(ton_on_batch_end(3, &l, msg, sizeof(msg)));
    CHECK_STR_EQ(msg, "Batch 2: Invalid loss, terminating training");
    logs_set(&l, "loss", -INFINITY);
    CHECK(ton_on_batch_end(1, &l, msg, sizeof(msg)));
}

int main(void)
{
    TEST_RUN(test_list_order_and_stop);
    TEST_RUN(test_auto_modes);
    TEST_RUN(test_es_patience);
    TEST_RUN(test_es_min_delta_and_max);
    TEST_RUN(test_es_baseline);
    TEST_RUN(test_es_restore_best_weights);
    TEST_RUN(test_es_start_from_epoch_and_missing);
    TEST_RUN(test_es_state_json);
    TEST_RUN(test_rlrop_reduces_after_patience);
    TEST_RUN(test_rlrop_min_delta_mode);
    TEST_RUN(test_rlrop_cooldown_and_min_lr);
    TEST_RUN(test_rlrop_state_json);
    TEST_RUN(test_step_decay);
    TEST_RUN(test_terminate_on_nan);
    return TEST_EXIT();
}
