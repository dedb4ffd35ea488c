/* test_checkpoint.c - ModelCheckpoint decisions, top-k retention, save_last,
 * submit-time validation and resume through the JSON state.
 *
 * Expected verbose lines are tf.keras 2.8+'s ModelCheckpoint._save_model
 * text with Python's "{:.5f}" formatting of best and current. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "test.h"

static const char *const job_keys[] = {"loss", "accuracy", "val_loss", "val_accuracy"};

static struct ckpt_policy_config policy(const char *filepath, const char *monitor,
                                        enum ckpt_mode mode, bool best_only)
{
    struct ckpt_policy_config c;
    ckpt_policy_config_default(&c);
    snprintf(c.filepath, sizeof(c.filepath), "%s", filepath);
    snprintf(c.monitor, sizeof(c.monitor), "%s", monitor);
    c.mode = mode;
    c.save_best_only = best_only;
    c.verbose = 1;
    return c;
}

static struct logs one_log(const char *key, double v)
{
    struct logs l = {0};
    logs_set(&l, "loss", 0.25);
    logs_set(&l, key, v);
    return l;
}

/* Decide at an epoch end and, when told to write, commit as a successful write. */
static void epoch_step(const struct ckpt_policy_config *c, struct ckpt_state *s, int epoch,
                       const struct logs *l, struct ckpt_decision *dec, struct ckpt_commit_result *res)
{
    struct diag d = {0};
    memset(res, 0, sizeof(*res));
    CHECK_INT_EQ(ckpt_on_epoch_end(c, s, epoch, l, dec, &d), 0);
    if (dec->should_write)
        CHECK_INT_EQ(ckpt_commit(c, s, dec, res), 0);
}

static void test_modes(void)
{
    static const struct {
        const char *monitor;
        enum ckpt_mode mode, want;
    } cases[] = {
        {"loss", CKPT_MODE_AUTO, CKPT_MODE_MIN},
        {"val_loss", CKPT_MODE_AUTO, CKPT_MODE_MIN},
        {"mse", CKPT_MODE_AUTO, CKPT_MODE_MIN},
        {"val_mse", CKPT_MODE_AUTO, CKPT_MODE_MIN},
        {"mae", CKPT_MODE_AUTO, CKPT_MODE_MIN},
        {"val_mae", CKPT_MODE_AUTO, CKPT_MODE_MIN},
        {"accuracy", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"val_accuracy", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"acc", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"val_acc", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"auc", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"val_auc", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"precision", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"val_precision", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"recall", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"val_categorical_accuracy", CKPT_MODE_AUTO, CKPT_MODE_MAX},
        {"f1_score", CKPT_MODE_AUTO, CKPT_MODE_AUTO},
        {"gloss", CKPT_MODE_AUTO, CKPT_MODE_AUTO},
        {"val_loss", CKPT_MODE_MAX, CKPT_MODE_MAX},
        {"accuracy", CKPT_MODE_MIN, CKPT_MODE_MIN},
        {"f1_score", CKPT_MODE_MAX, CKPT_MODE_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ckpt_policy_config c = policy("w.h5", cases[i].monitor, cases[i].mode, true);
        CHECK_MSG(ckpt_resolve_mode(&c) == cases[i].want, "%s", cases[i].monitor);
        struct ckpt_state s;
        ckpt_state_init(&s, &c);
        if (cases[i].want == CKPT_MODE_MIN)
            CHECK(isinf(s.best) && s.best > 0);
        if (cases[i].want == CKPT_MODE_MAX)
            CHECK(isinf(s.best) && s.best < 0);
    }

    /* Auto that cannot be resolved is a submit error naming /mode. */
    const char *const f1_keys[] = {"loss", "f1_score"};
    struct diag d = {0};
    struct ckpt_policy_config c = policy("w.h5", "f1_score", CKPT_MODE_AUTO, true);
    CHECK_INT_EQ(ckpt_policy_validate(&c, f1_keys, 2, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/mode");
    c.mode = CKPT_MODE_MAX;
    CHECK_INT_EQ(ckpt_policy_validate(&c, f1_keys, 2, &d), 0);

    /* val_auc resolves to max, but fit() logs have no AUC: rejected at submit. */
    c = policy("w.h5", "val_auc", CKPT_MODE_AUTO, true);
    CHECK_INT_EQ(ckpt_policy_validate(&c, job_keys, 4, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/monitor");
    CHECK(strstr(d.message, "val_auc") != NULL);

    /* Explicit mode wins in the decisions too: val_loss maximised. */
    c = policy("w.h5", "val_loss", CKPT_MODE_MAX, true);
    struct ckpt_state s;
    ckpt_state_init(&s, &c);
    struct ckpt_decision dec;
    struct ckpt_commit_result res;
    struct logs l = one_log("val_loss", 0.5);
    epoch_step(&c, &s, 1, &l, &dec, &res);
    l = one_log("val_loss", 0.4);
    epoch_step(&c, &s, 2, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_NOT_IMPROVED);
    CHECK_STR_EQ(dec.message, "Epoch 2: val_loss did not improve from 0.50000");
    /* The acc alias reads accuracy. */
    c = policy("a.h5", "val_acc", CKPT_MODE_AUTO, true);
    ckpt_state_init(&s, &c);
    l = one_log("val_accuracy", 0.8);
    epoch_step(&c, &s, 1, &l, &dec, &res);
    CHECK_STR_EQ(dec.message, "Epoch 1: val_acc improved from -inf to 0.80000, saving model to a.h5");
}

/* The reference scenario: Keras's own example filepath over a val_loss sequence. */
static void test_reference_scenario(void)
{
    struct ckpt_policy_config c =
        policy("weights-{epoch:03d}-{val_loss:.4f}.hdf5", "val_loss", CKPT_MODE_MIN, true);
    struct diag d = {0};
    CHECK_INT_EQ(ckpt_policy_validate(&c, job_keys, 4, &d), 0);
    struct ckpt_state *s = malloc(sizeof(*s));
    ckpt_state_init(s, &c);

    static const struct {
        double v; /* NAN with missing = the key is absent */
        bool missing;
        enum ckpt_decision_kind kind;
        const char *file, *message;
    } steps[] = {
        {1.26973, false, CKPT_DECISION_IMPROVED, "weights-001-1.2697.hdf5",
         "Epoch 1: val_loss improved from inf to 1.26973, saving model to weights-001-1.2697.hdf5"},
        {1.5, false, CKPT_DECISION_NOT_IMPROVED, "", "Epoch 2: val_loss did not improve from 1.26973"},
        {0.98481, false, CKPT_DECISION_IMPROVED, "weights-003-0.9848.hdf5",
         "Epoch 3: val_loss improved from 1.26973 to 0.98481, saving model to weights-003-0.9848.hdf5"},
        {0.98481, false, CKPT_DECISION_NOT_IMPROVED, "", "Epoch 4: val_loss did not improve from 0.98481"},
        {NAN, false, CKPT_DECISION_SKIPPED, "",
         "Epoch 5: val_loss is nan, skipping: a non-finite value is never the best"},
        {NAN, true, CKPT_DECISION_SKIPPED, "", "Can save best model only with val_loss available, skipping."},
        {0.123456, false, CKPT_DECISION_IMPROVED, "weights-007-0.1235.hdf5",
         "Epoch 7: val_loss improved from 0.98481 to 0.12346, saving model to weights-007-0.1235.hdf5"},
        {-INFINITY, false, CKPT_DECISION_SKIPPED, "",
         "Epoch 8: val_loss is -inf, skipping: a non-finite value is never the best"},
    };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct logs l = {0};
        logs_set(&l, "loss", 0.3);
        if (!steps[i].missing)
            logs_set(&l, "val_loss", steps[i].v);
        struct ckpt_decision dec;
        struct ckpt_commit_result res;
        epoch_step(&c, s, (int)i + 1, &l, &dec, &res);
        CHECK_INT_EQ(dec.kind, steps[i].kind);
        CHECK_INT_EQ(dec.should_write, steps[i].kind == CKPT_DECISION_IMPROVED);
        CHECK_STR_EQ(dec.file, steps[i].file);
        CHECK_STR_EQ(dec.message, steps[i].message);
        CHECK_STR_EQ(dec.monitor, "val_loss");
        CHECK_INT_EQ(dec.has_value, !steps[i].missing);
        CHECK_INT_EQ(res.n_delete, 0);
    }
    CHECK(s->best == 0.123456);
    CHECK_STR_EQ(s->best_file, "weights-007-0.1235.hdf5");
    CHECK_INT_EQ(s->best_epoch, 7);
    CHECK_INT_EQ(s->saves, 3);
    free(s);
}

static void test_save_all_and_thresholds(void)
{
    struct ckpt_policy_config c = policy("weights-{epoch:03d}.hdf5", "val_loss", CKPT_MODE_AUTO, false);
    struct ckpt_state s;
    ckpt_state_init(&s, &c);
    struct ckpt_decision dec;
    struct ckpt_commit_result res;
    struct logs l = one_log("val_loss", 0.7);
    epoch_step(&c, &s, 1, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_SAVED);
    CHECK_STR_EQ(dec.message, "Epoch 1: saving model to weights-001.hdf5");
    /* save_best_only false writes every time: worse, NaN and missing alike. */
    l = one_log("val_loss", 0.9);
    epoch_step(&c, &s, 2, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_SAVED);
    CHECK(!res.became_best);
    l = one_log("val_loss", NAN);
    epoch_step(&c, &s, 3, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_SAVED);
    CHECK(!res.became_best);
    l = one_log("accuracy", 0.5);
    epoch_step(&c, &s, 4, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_SAVED);
    CHECK_STR_EQ(dec.message, "Epoch 4: saving model to weights-004.hdf5");
    CHECK(s.best == 0.7);
    CHECK_STR_EQ(s.best_file, "weights-001.hdf5");
    CHECK_INT_EQ(s.saves, 4);
    CHECK_STR_EQ(s.last_saved, "weights-004.hdf5");

    /* initial_value_threshold: the starting best, in both modes. */
    c = policy("w.h5", "val_loss", CKPT_MODE_MIN, true);
    c.has_initial_value_threshold = true;
    c.initial_value_threshold = 0.5;
    ckpt_state_init(&s, &c);
    l = one_log("val_loss", 0.6);
    epoch_step(&c, &s, 1, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_NOT_IMPROVED);
    CHECK_STR_EQ(dec.message, "Epoch 1: val_loss did not improve from 0.50000");
    l = one_log("val_loss", 0.5);
    epoch_step(&c, &s, 2, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_NOT_IMPROVED); /* strict < */
    l = one_log("val_loss", 0.4);
    epoch_step(&c, &s, 3, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_IMPROVED);
    CHECK_STR_EQ(dec.message, "Epoch 3: val_loss improved from 0.50000 to 0.40000, saving model to w.h5");
    CHECK(dec.previous_best == 0.5);

    c = policy("w.h5", "val_accuracy", CKPT_MODE_AUTO, true);
    c.has_initial_value_threshold = true;
    c.initial_value_threshold = 0.8;
    ckpt_state_init(&s, &c);
    l = one_log("val_accuracy", 0.8);
    epoch_step(&c, &s, 1, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_NOT_IMPROVED);
    l = one_log("val_accuracy", INFINITY); /* never the best, even in max mode */
    epoch_step(&c, &s, 2, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_SKIPPED);
    CHECK_STR_EQ(dec.message, "Epoch 2: val_accuracy is inf, skipping: a non-finite value is never the best");
    l = one_log("val_accuracy", 0.81);
    epoch_step(&c, &s, 3, &l, &dec, &res);
    CHECK_STR_EQ(dec.message,
                 "Epoch 3: val_accuracy improved from 0.80000 to 0.81000, saving model to w.h5");
    CHECK(s.best == 0.81);
}

/* A write that failed is not committed: best stays, the next value is judged
 * against the old best. */
static void test_failed_write(void)
{
    struct ckpt_policy_config c = policy("w-{epoch}.h5", "val_loss", CKPT_MODE_MIN, true);
    struct ckpt_state s;
    ckpt_state_init(&s, &c);
    struct ckpt_decision dec;
    struct ckpt_commit_result res;
    struct diag d = {0};
    struct logs l = one_log("val_loss", 1.0);
    epoch_step(&c, &s, 1, &l, &dec, &res);
    l = one_log("val_loss", 0.5);
    CHECK_INT_EQ(ckpt_on_epoch_end(&c, &s, 2, &l, &dec, &d), 0);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_IMPROVED); /* ... and the write fails: no commit */
    CHECK(s.best == 1.0);
    CHECK_INT_EQ(s.saves, 1);
    l = one_log("val_loss", 0.7);
    epoch_step(&c, &s, 3, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_IMPROVED);
    CHECK_STR_EQ(dec.message, "Epoch 3: val_loss improved from 1.00000 to 0.70000, saving model to w-3.h5");
    CHECK(s.best == 0.7);
    CHECK_STR_EQ(s.best_file, "w-3.h5");
    /* Nothing to commit for a decision without a write. */
    l = one_log("val_loss", 0.9);
    CHECK_INT_EQ(ckpt_on_epoch_end(&c, &s, 4, &l, &dec, &d), 0);
    CHECK_INT_EQ(ckpt_commit(&c, &s, &dec, &res), -EINVAL);
    /* A filepath key missing from the logs is an error, not a decision. */
    c = policy("w-{val_accuracy:.2f}.h5", "val_loss", CKPT_MODE_MIN, true);
    l = one_log("val_loss", 0.1);
    CHECK_INT_EQ(ckpt_on_epoch_end(&c, &s, 5, &l, &dec, &d), -EINVAL);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_NONE);
    CHECK(!dec.should_write);
    CHECK_STR_EQ(d.field, "/filepath");
}

static void test_validate(void)
{
    static const struct {
        const char *filepath, *monitor;
        bool best_only, weights_only;
        int save_freq, top_k;
        const char *field; /* NULL = accepted */
        const char *needle;
    } cases[] = {
        {"w.h5", "val_loss", true, false, 0, 0, NULL, NULL},
        {"w.hdf5", "val_loss", true, false, 0, 0, NULL, NULL},
        {"w.keras", "val_loss", true, false, 0, 0, NULL, NULL},
        {"w.weights.h5", "val_loss", true, true, 0, 0, NULL, NULL},
        {"w.h5", "val_loss", true, true, 0, 0, NULL, NULL},
        {"w.weights.h5", "val_loss", true, false, 0, 0, "/filepath", "save_weights_only"},
        {"w.keras", "val_loss", true, true, 0, 0, "/filepath", ".keras"},
        {"w.txt", "val_loss", true, false, 0, 0, "/filepath", "must end in"},
        {"w-{epoch}", "val_loss", true, false, 0, 0, "/filepath", "must end in"},
        {"w/.h5", "val_loss", true, false, 0, 0, "/filepath", "position 2"},
        {"w-{val_los}.h5", "val_loss", true, false, 0, 0, "/filepath", "position 3: unknown key"},
        {"../w.h5", "val_loss", true, false, 0, 0, "/filepath", "position 0"},
        /* Batch saving: batch logs have no val_ keys. */
        {"w-{epoch}-{batch}.h5", "val_loss", true, false, 100, 0, "/monitor", "batch logs"},
        {"w-{epoch}-{batch}.h5", "val_accuracy", false, false, 100, 3, "/monitor", "batch logs"},
        {"w-{epoch}-{batch}.h5", "loss", true, false, 100, 0, NULL, NULL},
        {"w-{epoch}-{batch}.h5", "val_loss", false, false, 100, 0, NULL, NULL}, /* monitor unused */
        {"w-{batch}-{val_loss:.2f}.h5", "loss", true, false, 100, 0, "/filepath", "unknown key 'val_loss'"},
        {"w-{batch}.h5", "val_loss", true, false, 0, 0, "/filepath", "batch-based saving"},
        {"w.h5", "val_loss", true, false, -1, 0, "/save_freq", NULL},
        {"w.h5", "val_loss", true, false, 0, CKPT_TOP_K_MAX + 1, "/save_top_k", NULL},
        {"w.h5", "val_loss", true, false, 0, -2, "/save_top_k", NULL},
        {"w.h5", "", true, false, 0, 0, "/monitor", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ckpt_policy_config c = policy(cases[i].filepath, cases[i].monitor, CKPT_MODE_AUTO,
                                             cases[i].best_only);
        if (!cases[i].monitor[0])
            c.mode = CKPT_MODE_MIN;
        c.save_weights_only = cases[i].weights_only;
        c.save_freq = cases[i].save_freq;
        c.save_top_k = cases[i].top_k;
        struct diag d = {0};
        int r = ckpt_policy_validate(&c, job_keys, 4, &d);
        if (!cases[i].field) {
            CHECK_MSG(r == 0, "case %zu '%s': %s %s", i, cases[i].filepath, d.field, d.message);
            continue;
        }
        CHECK_MSG(r == -EINVAL, "case %zu '%s' accepted", i, cases[i].filepath);
        CHECK_MSG(strcmp(d.field, cases[i].field) == 0, "case %zu: field '%s'", i, d.field);
        CHECK_MSG(!cases[i].needle || strstr(d.message, cases[i].needle), "case %zu: '%s'", i, d.message);
    }
    struct diag d = {0};
    struct ckpt_policy_config c = policy("w.h5", "val_loss", CKPT_MODE_AUTO, true);
    c.has_initial_value_threshold = true;
    c.initial_value_threshold = NAN;
    CHECK_INT_EQ(ckpt_policy_validate(&c, job_keys, 4, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/initial_value_threshold");
    c = policy("last.h5", "val_loss", CKPT_MODE_AUTO, true);
    c.save_last = true;
    CHECK_INT_EQ(ckpt_policy_validate(&c, job_keys, 4, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/filepath");
    c.save_last = false;
    CHECK_INT_EQ(ckpt_policy_validate(&c, job_keys, 4, &d), 0);
    /* Unknown log keys (n = 0): fit()'s keys are assumed for the template. */
    c = policy("w-{val_loss:.3f}.h5", "val_loss", CKPT_MODE_AUTO, true);
    CHECK_INT_EQ(ckpt_policy_validate(&c, NULL, 0, &d), 0);
}

static void test_save_freq_batches(void)
{
    struct ckpt_policy_config c = policy("w-{epoch}-{batch}.h5", "loss", CKPT_MODE_AUTO, false);
    c.save_freq = 3;
    struct ckpt_state s;
    ckpt_state_init(&s, &c);
    struct diag d = {0};
    struct ckpt_decision dec;
    struct ckpt_commit_result res;
    char saved[8][TEMPLATE_MAX_PATH];
    int n = 0;
    for (int e = 1; e <= 2; e++) {
        for (int b = 1; b <= 5; b++) {
            struct logs l = one_log("accuracy", 0.5);
            CHECK_INT_EQ(ckpt_on_batch_end(&c, &s, e, b, &l, &dec, &d), 0);
            if (dec.kind == CKPT_DECISION_NONE) {
                CHECK(!dec.should_write);
                continue;
            }
            CHECK_INT_EQ(dec.kind, CKPT_DECISION_SAVED);
            CHECK_INT_EQ(dec.batch, b);
            CHECK_INT_EQ(ckpt_commit(&c, &s, &dec, &res), 0);
            if (n < 8)
                snprintf(saved[n++], sizeof(saved[0]), "%s", dec.file);
        }
        struct logs l = one_log("val_loss", 0.5);
        CHECK_INT_EQ(ckpt_on_epoch_end(&c, &s, e, &l, &dec, &d), 0);
        CHECK_INT_EQ(dec.kind, CKPT_DECISION_NONE);
    }
    /* The counter runs across epochs: global batches 3, 6, 9. */
    CHECK_INT_EQ(n, 3);
    CHECK_STR_EQ(saved[0], "w-1-3.h5");
    CHECK_STR_EQ(saved[1], "w-2-1.h5");
    CHECK_STR_EQ(saved[2], "w-2-4.h5");
    CHECK_INT_EQ(s.batches_since_last_save, 1);

    /* save_best_only on batches: the counter restarts even without a write. */
    c = policy("b-{epoch}-{batch}.h5", "loss", CKPT_MODE_AUTO, true);
    c.save_freq = 2;
    ckpt_state_init(&s, &c);
    const double losses[] = {0.9, 0.8, 0.85, 0.95, 0.7, 0.6};
    const enum ckpt_decision_kind want[] = {CKPT_DECISION_NONE, CKPT_DECISION_IMPROVED,
                                            CKPT_DECISION_NONE, CKPT_DECISION_NOT_IMPROVED,
                                            CKPT_DECISION_NONE, CKPT_DECISION_IMPROVED};
    for (int b = 1; b <= 6; b++) {
        struct logs l = one_log("loss", losses[b - 1]);
        CHECK_INT_EQ(ckpt_on_batch_end(&c, &s, 1, b, &l, &dec, &d), 0);
        CHECK_INT_EQ(dec.kind, want[b - 1]);
        if (dec.should_write)
            CHECK_INT_EQ(ckpt_commit(&c, &s, &dec, &res), 0);
    }
    CHECK_STR_EQ(dec.message, "Epoch 1: loss improved from 0.80000 to 0.60000, saving model to b-1-6.h5");

    /* An epoch policy neither counts nor decides at batch ends. */
    c = policy("e.h5", "val_loss", CKPT_MODE_AUTO, false);
    ckpt_state_init(&s, &c);
    struct logs l = one_log("loss", 0.5);
    CHECK_INT_EQ(ckpt_on_batch_end(&c, &s, 1, 1, &l, &dec, &d), 0);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_NONE);
    CHECK_INT_EQ(s.batches_since_last_save, 0);
}

static bool deletes(const struct ckpt_commit_result *r, const char *file)
{
    for (int i = 0; i < r->n_delete; i++)
        if (strcmp(r->delete_files[i], file) == 0)
            return true;
    return false;
}

static void test_top_k(void)
{
    struct ckpt_policy_config c = policy("w-{epoch}.h5", "val_loss", CKPT_MODE_MIN, false);
    c.save_top_k = 2;
    c.save_last = true;
    struct ckpt_state *s = malloc(sizeof(*s));
    ckpt_state_init(s, &c);
    struct ckpt_decision dec;
    struct ckpt_commit_result res;
    const double v[] = {0.5, 0.4, 0.6, 0.3, 0.45, NAN};
    const int n_del[] = {0, 0, 0, 2, 0, 1};
    for (int e = 1; e <= 6; e++) {
        struct logs l = one_log("val_loss", v[e - 1]);
        epoch_step(&c, s, e, &l, &dec, &res);
        CHECK_INT_EQ(res.n_delete, n_del[e - 1]);
        CHECK(!deletes(&res, dec.file));
        CHECK_STR_EQ(res.last_file, "last.h5");
        if (e == 4) {
            /* 0.3 and 0.4 are the two best; 0.5 and the newest-but-worst 0.6 go. */
            CHECK(deletes(&res, "w-1.h5"));
            CHECK(deletes(&res, "w-3.h5"));
        }
        if (e == 6)
            CHECK(deletes(&res, "w-5.h5")); /* 0.45 was kept only as the newest */
    }
    CHECK_INT_EQ(s->n_kept, 3); /* w-2 (0.4), w-4 (0.3), w-6 (nan, newest) */
    CHECK_STR_EQ(s->best_file, "w-4.h5");

    /* save_best_only: the newest best stays, the oldest best goes. */
    c = policy("b-{epoch}.weights.h5", "val_loss", CKPT_MODE_MIN, true);
    c.save_weights_only = true;
    c.save_top_k = 2;
    c.save_last = true;
    ckpt_state_init(s, &c);
    const double w[] = {0.5, 0.4, 0.45, 0.3};
    for (int e = 1; e <= 4; e++) {
        struct logs l = one_log("val_loss", w[e - 1]);
        epoch_step(&c, s, e, &l, &dec, &res);
        if (e == 4) {
            CHECK_INT_EQ(res.n_delete, 1);
            CHECK_STR_EQ(res.delete_files[0], "b-1.weights.h5");
            CHECK_STR_EQ(res.last_file, "last.weights.h5");
        }
    }

    /* A fixed filepath: every best overwrites the same file, nothing to delete. */
    c = policy("best.hdf5", "val_loss", CKPT_MODE_MIN, true);
    c.save_top_k = 1;
    c.save_last = true;
    ckpt_state_init(s, &c);
    for (int e = 1; e <= 4; e++) {
        struct logs l = one_log("val_loss", 1.0 / e);
        epoch_step(&c, s, e, &l, &dec, &res);
        CHECK_STR_EQ(dec.file, "best.hdf5");
        CHECK_INT_EQ(res.n_delete, 0);
        CHECK_STR_EQ(res.last_file, "last.hdf5");
    }
    CHECK_INT_EQ(s->n_kept, 1);

    /* Two saves rendering the same name: the entry is replaced, never deleted. */
    c = policy("w-{val_loss:.1f}.h5", "val_loss", CKPT_MODE_MIN, false);
    c.save_top_k = 1;
    ckpt_state_init(s, &c);
    const double u[] = {0.2, 0.42, 0.41};
    for (int e = 1; e <= 3; e++) {
        struct logs l = one_log("val_loss", u[e - 1]);
        epoch_step(&c, s, e, &l, &dec, &res);
        CHECK(!deletes(&res, dec.file));
        CHECK_STR_EQ(res.last_file, "");
    }
    /* w-0.4.h5 was written twice (0.42, then 0.41): its old entry must not be
     * listed for deletion, the file now holds the newest save. */
    CHECK_INT_EQ(s->n_kept, 2);
    free(s);
}

struct step_record {
    enum ckpt_decision_kind kind;
    char file[TEMPLATE_MAX_PATH];
    char message[TEMPLATE_MAX_PATH + 192];
    char deleted[TEMPLATE_MAX_PATH];
};

/* Runs a fixed sequence with one policy; when split_at > 0 the state goes
 * through JSON (and a fresh struct) before step split_at. */
static void run_sequence(const struct ckpt_policy_config *c, int split_at, struct step_record *rec,
                         int n_steps)
{
    struct ckpt_state *s = malloc(sizeof(*s));
    ckpt_state_init(s, c);
    struct diag d = {0};
    const double vals[] = {0.9, 0.7, 0.8, 0.6, 0.65, 0.3, NAN, 0.5, 0.2, 0.25, 0.1, 0.4};
    int step = 0;
    for (int e = 1; step < n_steps; e++) {
        for (int b = 1; b <= 3 && step < n_steps; b++) {
            if (step == split_at && split_at > 0) {
                char *json = NULL;
                CHECK_INT_EQ(ckpt_state_to_json(s, &json), 0);
                memset(s, 0xa5, sizeof(*s));
                CHECK_INT_EQ(ckpt_state_from_json(c, json, s, &d), 0);
                free(json);
            }
            struct logs l = {0};
            logs_set(&l, "loss", vals[step % 12]);
            logs_set(&l, "val_loss", vals[(step + 5) % 12]);
            struct ckpt_decision dec;
            struct ckpt_commit_result res = {0};
            if (c->save_freq > 0)
                CHECK_INT_EQ(ckpt_on_batch_end(c, s, e, b, &l, &dec, &d), 0);
            else
                CHECK_INT_EQ(ckpt_on_epoch_end(c, s, step + 1, &l, &dec, &d), 0);
            if (dec.should_write)
                CHECK_INT_EQ(ckpt_commit(c, s, &dec, &res), 0);
            rec[step].kind = dec.kind;
            snprintf(rec[step].file, sizeof(rec[step].file), "%s", dec.file);
            snprintf(rec[step].message, sizeof(rec[step].message), "%s", dec.message);
            snprintf(rec[step].deleted, sizeof(rec[step].deleted), "%s",
                     res.n_delete ? res.delete_files[0] : "");
            step++;
            if (c->save_freq == 0)
                break;
        }
    }
    free(s);
}

static void test_resume(void)
{
    struct ckpt_policy_config cfgs[2];
    cfgs[0] = policy("w-{epoch:02d}-{val_loss:.2f}.h5", "val_loss", CKPT_MODE_MIN, true);
    cfgs[0].save_top_k = 2;
    cfgs[1] = policy("b-{epoch}-{batch}.h5", "loss", CKPT_MODE_MIN, false);
    cfgs[1].save_freq = 2;
    cfgs[1].save_top_k = 3;
    for (int k = 0; k < 2; k++) {
        struct step_record a[12], b[12];
        memset(a, 0, sizeof(a));
        memset(b, 0, sizeof(b));
        run_sequence(&cfgs[k], 0, a, 12);
        for (int split = 1; split < 12; split += 4) {
            run_sequence(&cfgs[k], split, b, 12);
            for (int i = 0; i < 12; i++) {
                CHECK_MSG(a[i].kind == b[i].kind, "policy %d split %d step %d", k, split, i);
                CHECK_STR_EQ(a[i].file, b[i].file);
                CHECK_STR_EQ(a[i].message, b[i].message);
                CHECK_STR_EQ(a[i].deleted, b[i].deleted);
            }
        }
        int writes = 0, dels = 0;
        for (int i = 0; i < 12; i++) {
            writes += a[i].file[0] != '\0';
            dels += a[i].deleted[0] != '\0';
        }
        CHECK(writes >= 3 && dels >= 1); /* the sequence exercises saves and deletions */
    }

    /* Exact doubles and infinities survive the JSON round trip. */
    struct ckpt_policy_config c = policy("w-{epoch}.h5", "val_loss", CKPT_MODE_MIN, false);
    c.save_top_k = 4;
    struct ckpt_state *s = calloc(1, sizeof(*s)), *t = calloc(1, sizeof(*t));
    ckpt_state_init(s, &c);
    const double v[] = {0.30000000000000004, NAN, 1e-310, -INFINITY};
    struct ckpt_decision dec;
    struct ckpt_commit_result res;
    for (int e = 1; e <= 4; e++) {
        struct logs l = one_log("val_loss", v[e - 1]);
        epoch_step(&c, s, e, &l, &dec, &res);
    }
    char *json = NULL;
    struct diag d = {0};
    CHECK_INT_EQ(ckpt_state_to_json(s, &json), 0);
    CHECK_INT_EQ(ckpt_state_from_json(&c, json, t, &d), 0);
    CHECK(memcmp(&s->best, &t->best, sizeof(double)) == 0);
    CHECK_INT_EQ(t->n_kept, 4);
    for (int i = 0; i < 4 && i < t->n_kept; i++) {
        CHECK((isnan(s->kept[i].value) && isnan(t->kept[i].value)) ||
              memcmp(&s->kept[i].value, &t->kept[i].value, sizeof(double)) == 0);
        CHECK_STR_EQ(s->kept[i].file, t->kept[i].file);
        CHECK_INT_EQ(s->kept[i].seq, t->kept[i].seq);
    }
    CHECK(t->best == 1e-310);
    free(json);
    /* A fresh state (best inf) round-trips too. */
    ckpt_state_init(s, &c);
    CHECK_INT_EQ(ckpt_state_to_json(s, &json), 0);
    CHECK_INT_EQ(ckpt_state_from_json(&c, json, t, &d), 0);
    CHECK(isinf(t->best) && t->best > 0);
    CHECK_INT_EQ(t->n_kept, 0);
    free(json);

    /* A resumed fixed-path policy never overwrites a better file with a worse one. */
    c = policy("best.h5", "val_loss", CKPT_MODE_MIN, true);
    ckpt_state_init(s, &c);
    struct logs l = one_log("val_loss", 0.2);
    epoch_step(&c, s, 1, &l, &dec, &res);
    CHECK_INT_EQ(ckpt_state_to_json(s, &json), 0);
    ckpt_state_init(t, &c);
    CHECK_INT_EQ(ckpt_state_from_json(&c, json, t, &d), 0);
    free(json);
    l = one_log("val_loss", 0.3);
    epoch_step(&c, t, 2, &l, &dec, &res);
    CHECK_INT_EQ(dec.kind, CKPT_DECISION_NOT_IMPROVED);
    CHECK(!dec.should_write);
    free(s);
    free(t);
}

static void test_restore_errors(void)
{
    struct ckpt_policy_config c = policy("w.h5", "val_loss", CKPT_MODE_MIN, true);
    struct ckpt_state s;
    ckpt_state_init(&s, &c);
    s.best = 0.25;
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"not json", ""},
        {"[]", ""},
        {"{\"version\":2}", "/version"},
        {"{\"version\":1,\"best\":\"nan\"}", "/best"},
        {"{\"version\":1,\"best\":true}", "/best"},
        {"{\"version\":1,\"best\":1,\"best_file\":\"../x.h5\"}", "/best_file"},
        {"{\"version\":1,\"best\":1,\"best_file\":\"\",\"best_epoch\":-1}", "/best_epoch"},
        {"{\"version\":1,\"best\":1,\"best_file\":\"\",\"best_epoch\":1,\"batches_since_last_save\":3,"
         "\"last_batch_seen\":0,\"saves\":1,\"last_saved\":\"w.h5\",\"kept\":[]}",
         "/batches_since_last_save"},
        {"{\"version\":1,\"best\":1,\"best_file\":\"\",\"best_epoch\":1,\"batches_since_last_save\":0,"
         "\"last_batch_seen\":0,\"saves\":1,\"last_saved\":\"w.h5\",\"kept\":[{\"file\":\"a/.b\"}]}",
         "/kept/0/file"},
        {"{\"version\":1,\"best\":1,\"best_file\":\"\",\"best_epoch\":1,\"batches_since_last_save\":0,"
         "\"last_batch_seen\":0,\"saves\":1,\"last_saved\":\"w.h5\",\"kept\":[{\"file\":\"w.h5\","
         "\"value\":1,\"epoch\":1,\"batch\":0,\"seq\":2}]}",
         "/kept/0/seq"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct diag d = {0};
        CHECK_INT_EQ(ckpt_state_from_json(&c, cases[i].json, &s, &d), -EINVAL);
        CHECK_MSG(strcmp(d.field, cases[i].field) == 0, "case %zu: field '%s' (%s)", i, d.field,
                  d.message);
    }
    CHECK(s.best == 0.25); /* untouched on failure */
}

static void test_kind_names(void)
{
    CHECK_STR_EQ(ckpt_decision_kind_name(CKPT_DECISION_IMPROVED), "improved");
    CHECK_STR_EQ(ckpt_decision_kind_name(CKPT_DECISION_NOT_IMPROVED), "not_improved");
    CHECK_STR_EQ(ckpt_decision_kind_name(CKPT_DECISION_SAVED), "saved");
    CHECK_STR_EQ(ckpt_decision_kind_name(CKPT_DECISION_SKIPPED), "skipped");
    CHECK_STR_EQ(ckpt_decision_kind_name(CKPT_DECISION_NONE), "none");
}

int main(void)
{
    TEST_RUN(test_modes);
    TEST_RUN(test_reference_scenario);
    TEST_RUN(test_save_all_and_thresholds);
    TEST_RUN(test_failed_write);
    TEST_RUN(test_validate);
    TEST_RUN(test_save_freq_batches);
    TEST_RUN(test_top_k);
    TEST_RUN(test_resume);
    TEST_RUN(test_restore_errors);
    TEST_RUN(test_kind_names);
    return TEST_EXIT();
}
