/* test_job_runner.c - daemon/job_runner in process on small real Fashion-MNIST jobs:
 * a failed checkpoint write (fault injected at rename) becomes a
 * checkpoint_error event and the policy's best does not move; early stopping
 * with restore_best_weights; the stop flag (-ECANCELED) and a second run on
 * the same folder ending bit-identical to an uninterrupted run; batch saving
 * with top-k retention and save_last; an inline Keras model; jobs that fail
 * before training name the field. */
#include "job_runner.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "h5.h"
#include "model.h"

#define MAX_EVENTS 512

struct captured {
    int n;
    char type[MAX_EVENTS][32];
    cJSON *data[MAX_EVENTS];
    atomic_int *stop;
    int stop_after_epoch;  /* set *stop at this epoch_end (0 = never) */
    int stop_at_ckpt[2];   /* set *stop at the checkpoint event of (epoch, batch) */
};

static void on_event(void *ctx, const char *type, const char *json, bool persist)
{
    struct captured *c = ctx;
    if (!persist || c->n >= MAX_EVENTS)
        return;
    snprintf(c->type[c->n], sizeof(c->type[0]), "%s", type);
    c->data[c->n] = cJSON_Parse(json);
    CHECK_MSG(c->data[c->n] != NULL, "event %s is not JSON: %s", type, json);
    if (c->stop && strcmp(type, "epoch_end") == 0) {
        const cJSON *e = cJSON_GetObjectItem(c->data[c->n], "epoch");
        if (e && e->valueint == c->stop_after_epoch)
            atomic_store(c->stop, 1);
    }
    if (c->stop && strcmp(type, "checkpoint") == 0) {
        const cJSON *e = cJSON_GetObjectItem(c->data[c->n], "epoch");
        const cJSON *b = cJSON_GetObjectItem(c->data[c->n], "batch");
        if (e && b && e->valueint == c->stop_at_ckpt[0] && b->valueint == c->stop_at_ckpt[1])
            atomic_store(c->stop, 1);
    }
    c->n++;
}

static void captured_free(struct captured *c)
{
    for (int i = 0; i < c->n; i++)
        cJSON_Delete(c->data[i]);
    c->n = 0;
}

static int count_type(const struct captured *c, const char *type)
{
    int n = 0;
    for (int i = 0; i < c->n; i++)
        n += strcmp(c->type[i], type) == 0;
    return n;
}

static const cJSON *nth_of_type(const struct captured *c, const char *type, int k)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->type[i], type) == 0 && k-- == 0)
            return c->data[i];
    return NULL;
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int int_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static void make_dir(char *out, size_t outsz, const char *name)
{
    const char *base = getenv("TRAIND_TEST_TMP");
    snprintf(out, outsz, "%s/runner-%s-%d", base ? base : "/tmp", name, (int)getpid());
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", out);
    CHECK(system(cmd) == 0);
    CHECK(mkdir(out, 0700) == 0);
}

static void remove_dir(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static int run(const char *spec_json, const char *dir, struct captured *c, atomic_int *stop,
               struct diag *d)
{
    struct job_spec spec;
    int r = job_spec_parse(&spec, spec_json, strlen(spec_json), d);
    CHECK_MSG(r == 0, "spec: %s: %s", d->field, d->message);
    if (r < 0)
        return r;
    static const struct runner_dataset ds = {"fashion-mnist", "idx", FASHION_DIR};
    struct runner_env env = {.datasets = &ds, .n_datasets = 1, .threads = 1};
    struct runner_sink sink = {c, on_event};
    r = runner_run(&spec, dir, &env, &sink, stop, d);
    job_spec_free(&spec);
    return r;
}

#define SMALL_JOB(rest)                                                                       \
    "{\"dataset\": {\"name\": \"fashion-mnist\", \"limit\": 256, \"validation_limit\": 128}, " \
    "\"model\": \"mlp\", \"batch_size\": 32, \"seed\": 5, \"threads\": 1, "                   \
    "\"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 0.05, \"momentum\": 0.9}" rest "}"

/* The first write (epoch 1's checkpoint) fails at rename: checkpoint_error,
 * no file, training goes on, and epoch 2 still improves "from inf". */
static void test_failed_write_keeps_best(void)
{
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "fault");
    struct captured c = {0};
    struct diag d = {0};
    fsutil_inject_fault(FSUTIL_STEP_RENAME, EIO);
    int r = run(SMALL_JOB(", \"epochs\": 2, \"checkpoints\": [{\"filepath\": "
                          "\"w-{epoch}.h5\", \"save_best_only\": true, \"verbose\": 1}]"),
                dir, &c, NULL, &d);
    fsutil_inject_fault(FSUTIL_STEP_RENAME, 0);
    CHECK_MSG(r == 0, "%d %s: %s", r, d.field, d.message);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 2);
    CHECK_INT_EQ(count_type(&c, "checkpoint_error"), 1);
    const cJSON *err = nth_of_type(&c, "checkpoint_error", 0);
    if (err) {
        CHECK_INT_EQ(int_of(err, "epoch"), 1);
        CHECK_INT_EQ(int_of(err, "policy"), 0);
        CHECK_STR_EQ(str_of(err, "file"), "w-1.h5");
        CHECK_STR_EQ(str_of(err, "step"), "rename");
    }
    CHECK_INT_EQ(count_type(&c, "checkpoint"), 1);
    const cJSON *ck = nth_of_type(&c, "checkpoint", 0);
    if (ck) {
        CHECK_INT_EQ(int_of(ck, "epoch"), 2);
        CHECK_STR_EQ(str_of(ck, "decision"), "improved");
        CHECK_STR_EQ(str_of(ck, "previous"), "inf");
        CHECK(strncmp(str_of(ck, "message"), "Epoch 2: val_loss improved from inf to ", 39) == 0);
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/checkpoints/w-1.h5", dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/checkpoints/w-2.h5", dir);
    CHECK(access(path, F_OK) == 0);
    captured_free(&c);
    remove_dir(dir);
}

/* min_delta larger than any change: epoch 1 sets best, epoch 2 does not
 * improve, patience 0 stops there; the weights go back to epoch 1's. */
static void test_early_stopping_restores_best(void)
{
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "es");
    struct captured c = {0};
    struct diag d = {0};
    int r = run(SMALL_JOB(", \"epochs\": 5, \"checkpoints\": [{\"filepath\": \"e{epoch}.h5\", "
                          "\"save_weights_only\": true}], \"callbacks\": {\"early_stopping\": "
                          "{\"monitor\": \"loss\", \"min_delta\": 100, \"patience\": 0, "
                          "\"restore_best_weights\": true}}"),
                dir, &c, NULL, &d);
    CHECK_MSG(r == 0, "%d %s: %s", r, d.field, d.message);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 2);
    CHECK_INT_EQ(count_type(&c, "early_stopping"), 1);
    const cJSON *es = nth_of_type(&c, "early_stopping", 0);
    if (es) {
        CHECK_INT_EQ(int_of(es, "epoch"), 2);
        CHECK_INT_EQ(int_of(es, "best_epoch"), 1);
        CHECK_STR_EQ(str_of(es, "message"), "Epoch 2: early stopping");
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(es, "restored_best_weights")));
    }
    /* resume.h5 (written after the restore) holds epoch 1's weights. */
    struct model_spec ms = {0};
    int shape[3] = {28, 28, 1};
    struct model *a = NULL, *b = NULL;
    CHECK(model_spec_builtin(&ms, "mlp", shape, 10, &d) == 0);
    CHECK(model_create(&a, &ms, 32, 1, &d) == 0);
    CHECK(model_create(&b, &ms, 32, 1, &d) == 0);
    model_spec_free(&ms);
    if (a && b) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/checkpoints/e1.h5", dir);
        CHECK_MSG(h5_load_weights(a, path, &d) == 0, "%s", d.message);
        snprintf(path, sizeof(path), "%s/resume.h5", dir);
        CHECK_MSG(h5_load_weights(b, path, &d) == 0, "%s", d.message);
        CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
        snprintf(path, sizeof(path), "%s/checkpoints/e2.h5", dir);
        CHECK_MSG(h5_load_weights(a, path, &d) == 0, "%s", d.message);
        CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) != 0);
    }
    model_free(a);
    model_free(b);

    /* Running the finished job again does no more training. */
    captured_free(&c);
    r = run(SMALL_JOB(", \"epochs\": 5, \"checkpoints\": [{\"filepath\": \"e{epoch}.h5\", "
                      "\"save_weights_only\": true}], \"callbacks\": {\"early_stopping\": "
                      "{\"monitor\": \"loss\", \"min_delta\": 100, \"patience\": 0, "
                      "\"restore_best_weights\": true}}"),
            dir, &c, NULL, &d);
    CHECK_INT_EQ(r, 0);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 0);
    captured_free(&c);
    remove_dir(dir);
}

/* resume.h5 of dir read with job's model and optimizer: parameters, every
 * optimizer slot and the iteration count in one array. */
static void read_resume(const char *dir, const char *job, float **ret_params, size_t *ret_n,
                        int *ret_epoch)
{
    struct model_spec ms = {0};
    int shape[3] = {28, 28, 1};
    struct model *m = NULL;
    struct optimizer *opt = NULL;
    struct diag d = {0};
    struct job_spec spec;
    *ret_params = NULL;
    if (job_spec_parse(&spec, job, strlen(job), &d) < 0) {
        CHECK_MSG(0, "%s: %s", d.field, d.message);
        return;
    }
    CHECK(model_spec_builtin(&ms, "mlp", shape, 10, &d) == 0);
    CHECK(model_create(&m, &ms, 32, 1, &d) == 0);
    model_spec_free(&ms);
    if (m)
        CHECK(optimizer_create(&opt, &spec.optimizer, m, &d) == 0);
    job_spec_free(&spec);
    if (!opt) {
        model_free(m);
        return;
    }
    char path[PATH_MAX + 32], *state = NULL;
    snprintf(path, sizeof(path), "%s/resume.h5", dir);
    int r = h5_load_resume(m, opt, path, ret_epoch, &state, &d);
    CHECK_MSG(r == 0, "%s", d.message);
    if (r == 0) {
        *ret_n = m->n_params + (size_t)opt->n_slots * opt->n + 1;
        *ret_params = malloc(*ret_n * sizeof(float));
        memcpy(*ret_params, m->params, m->n_params * sizeof(float));
        for (int s = 0; s < opt->n_slots; s++)
            memcpy(*ret_params + m->n_params + (size_t)s * opt->n, opt->slots[s],
                   opt->n * sizeof(float));
        (*ret_params)[*ret_n - 1] = (float)opt->iterations;
    }
    free(state);
    optimizer_free(opt);
    model_free(m);
}

/* Stop flag after epoch 2 of 4: -ECANCELED, resume.h5 at epoch 2; a second
 * run continues with epochs 3 and 4 and ends bit-identical (weights,
 * momentum, iterations) to a run never stopped. */
static void stop_and_continue(const char *job, int epochs_done)
{
    char full[PATH_MAX], cut[PATH_MAX];
    make_dir(full, sizeof(full), "full");
    make_dir(cut, sizeof(cut), "cut");
    struct captured c = {0};
    struct diag d = {0};
    CHECK_INT_EQ(run(job, full, &c, NULL, &d), 0);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), epochs_done);
    captured_free(&c);

    atomic_int stop = 0;
    c.stop = &stop;
    c.stop_after_epoch = 2;
    CHECK_INT_EQ(run(job, cut, &c, &stop, &d), -ECANCELED);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 2);
    captured_free(&c);
    /* What a kill -9 during a write leaves: temp files, removed at the next
     * start; other files stay. */
    static const char *const planted[] = {"/.tmp-resume.h5-1-0", "/checkpoints/.tmp-best.h5-1-1",
                                          "/checkpoints/keep.txt"};
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s%s", cut, planted[i]);
        FILE *f = fopen(path, "w");
        CHECK(f && fputs("partial", f) >= 0 && fclose(f) == 0);
    }
    atomic_store(&stop, 0);
    c.stop = NULL;
    CHECK_INT_EQ(run(job, cut, &c, &stop, &d), 0);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), epochs_done - 2);
    for (int i = 0; i < 3; i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s%s", cut, planted[i]);
        CHECK_MSG((access(path, F_OK) == 0) == (i == 2), "%s", planted[i]);
    }
    const cJSON *first = nth_of_type(&c, "epoch_end", 0);
    CHECK(first && int_of(first, "epoch") == 3);
    const cJSON *st = nth_of_type(&c, "state", 0);
    CHECK(st && int_of(st, "resumed_from_epoch") == 2);
    captured_free(&c);

    float *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int ea = 0, eb = 0;
    read_resume(full, job, &a, &na, &ea);
    read_resume(cut, job, &b, &nb, &eb);
    CHECK_INT_EQ(ea, epochs_done);
    CHECK_INT_EQ(eb, epochs_done);
    CHECK(a && b && na == nb && memcmp(a, b, na * sizeof(float)) == 0);
    free(a);
    free(b);
    remove_dir(full);
    remove_dir(cut);
}

static void test_stop_and_continue_is_bit_identical(void)
{
    stop_and_continue(SMALL_JOB(", \"epochs\": 4, \"steps_per_epoch\": 4, \"checkpoints\": "
                                "[{\"filepath\": \"best.h5\", \"save_best_only\": true}]"),
                      4);
}

/* Stopped inside epoch 3 (after its batch 2 of 4, as SIGTERM does), the run
 * saves its position; the continued run trains only batches 3-4 of epoch 3
 * (its first checkpoint event is epoch 3 batch 4, not a redone batch 2) and
 * ends bit-identical to a run never stopped. */
static void test_stop_inside_epoch_continues_there(void)
{
    const char *job = SMALL_JOB(", \"epochs\": 4, \"steps_per_epoch\": 4, \"checkpoints\": "
                                "[{\"filepath\": \"b{epoch}-{batch}.h5\", \"save_freq\": 2, "
                                "\"save_weights_only\": true}]");
    char full[PATH_MAX], cut[PATH_MAX];
    make_dir(full, sizeof(full), "full-in");
    make_dir(cut, sizeof(cut), "cut-in");
    struct captured c = {0};
    struct diag d = {0};
    CHECK_INT_EQ(run(job, full, &c, NULL, &d), 0);
    CHECK_INT_EQ(count_type(&c, "checkpoint"), 8);
    captured_free(&c);

    atomic_int stop = 0;
    c.stop = &stop;
    c.stop_at_ckpt[0] = 3;
    c.stop_at_ckpt[1] = 2;
    CHECK_INT_EQ(run(job, cut, &c, &stop, &d), -ECANCELED);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 2);
    CHECK_INT_EQ(count_type(&c, "checkpoint"), 5);
    captured_free(&c);
    atomic_store(&stop, 0);
    c.stop = NULL;
    CHECK_INT_EQ(run(job, cut, &c, &stop, &d), 0);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 2);
    CHECK_INT_EQ(count_type(&c, "checkpoint"), 3);
    const cJSON *first = nth_of_type(&c, "checkpoint", 0);
    CHECK(first && int_of(first, "epoch") == 3 && int_of(first, "batch") == 4);
    captured_free(&c);

    float *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int ea = 0, eb = 0;
    read_resume(full, job, &a, &na, &ea);
    read_resume(cut, job, &b, &nb, &eb);
    CHECK_INT_EQ(ea, 4);
    CHECK_INT_EQ(eb, 4);
    CHECK(a && b && na == nb && memcmp(a, b, na * sizeof(float)) == 0);
    free(a);
    free(b);
    remove_dir(full);
    remove_dir(cut);
}

/* Early stopping across the stop: epoch 1 is best, epochs 2 and 3 are not
 * (min_delta), patience 2 stops at epoch 3 and restores epoch 1's weights,
 * which the continued run reads back from early_stopping_best.h5. */
static void test_stop_and_continue_with_early_stopping(void)
{
    stop_and_continue(SMALL_JOB(", \"epochs\": 6, \"steps_per_epoch\": 4, \"callbacks\": "
                                "{\"early_stopping\": {\"monitor\": \"loss\", \"min_delta\": 100, "
                                "\"patience\": 2, \"restore_best_weights\": true}}"),
                      3);
}

/* A damaged early_stopping_best.h5 is refused when continuing (its bytes no
 * longer have the SHA-256 the resume state records), not read. */
static void test_damaged_best_weights_refused(void)
{
    const char *job = SMALL_JOB(", \"epochs\": 6, \"steps_per_epoch\": 4, \"callbacks\": "
                                "{\"early_stopping\": {\"monitor\": \"loss\", \"min_delta\": 100, "
                                "\"patience\": 2, \"restore_best_weights\": true}}");
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "esbad");
    struct captured c = {0};
    struct diag d = {0};
    atomic_int stop = 0;
    c.stop = &stop;
    c.stop_after_epoch = 2;
    CHECK_INT_EQ(run(job, dir, &c, &stop, &d), -ECANCELED);
    captured_free(&c);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/early_stopping_best.h5", dir);
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        CHECK(fseek(f, 2000, SEEK_SET) == 0);
        int ch = fgetc(f);
        CHECK(ch != EOF);
        CHECK(fseek(f, 2000, SEEK_SET) == 0);
        CHECK(fputc(ch ^ 0x5a, f) != EOF);
        CHECK(fclose(f) == 0);
    }
    atomic_store(&stop, 0);
    c.stop = NULL;
    int r = run(job, dir, &c, &stop, &d);
    CHECK_INT_EQ(r, -EINVAL);
    CHECK_MSG(strstr(d.field, "early_stopping_best.h5") || strstr(d.message, "early_stopping_best.h5"),
              "%s: %s", d.field, d.message);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 0);
    captured_free(&c);
    remove_dir(dir);
}

static double num_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

#define RLROP_JOB                                                                             \
    SMALL_JOB(", \"epochs\": 6, \"steps_per_epoch\": 4, \"callbacks\": "                      \
              "{\"reduce_lr_on_plateau\": {\"monitor\": \"loss\", \"min_delta\": 100, "      \
              "\"patience\": 2, \"cooldown\": 1, \"factor\": 0.5}}")

/* ReduceLROnPlateau with min_delta 100 (nothing improves after epoch 1),
 * patience 2, cooldown 1: Keras reduces at epochs 3 and 5 (epoch 4 is
 * cooldown, then wait counts again); the next epochs train with the float32
 * rate; across a stop after epoch 2 (wait 1 saved) the result is
 * bit-identical. */
static void test_reduce_lr_on_plateau(void)
{
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "rlrop");
    struct captured c = {0};
    struct diag d = {0};
    CHECK_INT_EQ(run(RLROP_JOB, dir, &c, NULL, &d), 0);
    CHECK_INT_EQ(count_type(&c, "lr_changed"), 2);
    const cJSON *a = nth_of_type(&c, "lr_changed", 0), *b = nth_of_type(&c, "lr_changed", 1);
    CHECK(a && int_of(a, "epoch") == 3 && b && int_of(b, "epoch") == 5);
    CHECK_STR_EQ(str_of(a, "source"), "ReduceLROnPlateau");
    CHECK_STR_EQ(str_of(a, "message"),
                 "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.02500000037252903.");
    CHECK_STR_EQ(str_of(b, "message"),
                 "Epoch 5: ReduceLROnPlateau reducing learning rate to 0.012500000186264515.");
    CHECK(num_of(a, "lr") == (double)0.025f && num_of(b, "lr") == (double)0.0125f);
    CHECK(num_of(nth_of_type(&c, "epoch_end", 2), "lr") == 0.05);
    CHECK(num_of(nth_of_type(&c, "epoch_end", 3), "lr") == (double)0.025f);
    CHECK(num_of(nth_of_type(&c, "epoch_end", 5), "lr") == (double)0.0125f);
    captured_free(&c);
    remove_dir(dir);
    stop_and_continue(RLROP_JOB, 6);
}

/* PyImageSearch's step decay, 0.05 halved every 2 epochs: the rate changes
 * at the begin of epochs 2 and 4 (Keras' epochs 1 and 3), and the epochs
 * train with it. */
static void test_step_decay_scheduler(void)
{
    const char *job = SMALL_JOB(", \"epochs\": 4, \"steps_per_epoch\": 2, \"callbacks\": "
                                "{\"lr_scheduler\": {\"schedule\": \"step_decay\", "
                                "\"initial_learning_rate\": 0.05, \"factor\": 0.5, "
                                "\"drop_every\": 2}}");
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "sched");
    struct captured c = {0};
    struct diag d = {0};
    CHECK_INT_EQ(run(job, dir, &c, NULL, &d), 0);
    CHECK_INT_EQ(count_type(&c, "lr_changed"), 2);
    const cJSON *a = nth_of_type(&c, "lr_changed", 0), *b = nth_of_type(&c, "lr_changed", 1);
    CHECK(a && int_of(a, "epoch") == 2 && b && int_of(b, "epoch") == 4);
    CHECK_STR_EQ(str_of(a, "source"), "LearningRateScheduler");
    CHECK_STR_EQ(str_of(a, "message"), "Epoch 2: LearningRateScheduler setting learning rate to 0.025.");
    CHECK_STR_EQ(str_of(b, "message"), "Epoch 4: LearningRateScheduler setting learning rate to 0.0125.");
    CHECK(num_of(nth_of_type(&c, "epoch_end", 1), "lr") == (double)0.025f);
    CHECK(num_of(nth_of_type(&c, "epoch_end", 3), "lr") == (double)0.0125f);
    captured_free(&c);
    remove_dir(dir);
}

/* TerminateOnNaN: SGD with a rate of 1e30 overflows within a few batches;
 * the first non-finite running loss stops training after that batch (the
 * epoch still validates and ends, as in Keras), the run succeeds, and a
 * second run on the folder trains nothing more. */
static void test_terminate_on_nan(void)
{
    const char *job =
        "{\"dataset\": {\"name\": \"fashion-mnist\", \"limit\": 256, \"validation_limit\": 64}, "
        "\"model\": \"mlp\", \"batch_size\": 32, \"seed\": 5, \"threads\": 1, \"epochs\": 3, "
        "\"optimizer\": {\"name\": \"sgd\", \"learning_rate\": 1e30}, "
        "\"callbacks\": {\"terminate_on_nan\": true}}";
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "ton");
    struct captured c = {0};
    struct diag d = {0};
    CHECK_INT_EQ(run(job, dir, &c, NULL, &d), 0);
    CHECK_INT_EQ(count_type(&c, "terminate_on_nan"), 1);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 1);
    const cJSON *t = nth_of_type(&c, "terminate_on_nan", 0);
    int batch = int_of(t, "batch");
    CHECK(batch >= 1 && batch <= 8);
    char want[96];
    snprintf(want, sizeof(want), "Batch %d: Invalid loss, terminating training", batch - 1);
    CHECK_STR_EQ(str_of(t, "message"), want);
    captured_free(&c);
    CHECK_INT_EQ(run(job, dir, &c, NULL, &d), 0);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 0);
    captured_free(&c);
    remove_dir(dir);
}

#define OPT_JOB(opt, rest)                                                                    \
    "{\"dataset\": {\"name\": \"fashion-mnist\", \"limit\": 256, \"validation_limit\": 64}, "  \
    "\"model\": \"mlp\", \"batch_size\": 32, \"seed\": 5, \"threads\": 1, \"optimizer\": " opt \
    rest "}"

/* The Keras 3 optimizers through the runner: resume.h5 carries their slots
 * (three for a centered RMSprop with momentum; Nadam rebuilds its running
 * product from iterations) and a stopped run continues bit-identically; a
 * schedule as learning_rate moves the epoch_end "lr". */
static void test_keras3_optimizers_resume(void)
{
    stop_and_continue(OPT_JOB("{\"name\": \"rmsprop\", \"momentum\": 0.5, \"centered\": true, "
                              "\"clipnorm\": 1.0}",
                              ", \"epochs\": 4, \"steps_per_epoch\": 3"),
                      4);
    stop_and_continue(OPT_JOB("{\"name\": \"nadam\", \"global_clipnorm\": 0.5}",
                              ", \"epochs\": 4, \"steps_per_epoch\": 3"),
                      4);
    stop_and_continue(OPT_JOB("{\"name\": \"adamw\", \"amsgrad\": true, \"learning_rate\": "
                              "{\"class_name\": \"ExponentialDecay\", \"config\": "
                              "{\"initial_learning_rate\": 0.01, \"decay_steps\": 3, "
                              "\"decay_rate\": 0.5, \"staircase\": true}}}",
                              ", \"epochs\": 4, \"steps_per_epoch\": 3"),
                      4);
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "sched-opt");
    struct captured c = {0};
    struct diag d = {0};
    CHECK_INT_EQ(run(OPT_JOB("{\"name\": \"sgd\", \"learning_rate\": {\"class_name\": "
                             "\"PiecewiseConstantDecay\", \"config\": {\"boundaries\": [3, 6], "
                             "\"values\": [0.1, 0.05, 0.01]}}}",
                             ", \"epochs\": 3, \"steps_per_epoch\": 3"),
                     dir, &c, NULL, &d),
                 0);
    /* the last step of epoch e is step 3e - 1: 2 -> 0.1, 5 -> 0.05, 8 -> 0.01 */
    CHECK(num_of(nth_of_type(&c, "epoch_end", 0), "lr") == 0.1);
    CHECK(num_of(nth_of_type(&c, "epoch_end", 1), "lr") == 0.05);
    CHECK(num_of(nth_of_type(&c, "epoch_end", 2), "lr") == 0.01);
    captured_free(&c);
    remove_dir(dir);
}

static int count_files(const char *dir, const char *prefix)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)))
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(dp);
    return n;
}

/* Every 3 batches, keep the 2 lowest-loss files plus last.h5; the files on
 * disk are exactly those the events say were written and not deleted. */
static void test_batch_saving_top_k_and_last(void)
{
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "topk");
    struct captured c = {0};
    struct diag d = {0};
    int r = run(SMALL_JOB(", \"epochs\": 2, \"checkpoints\": [{\"filepath\": "
                          "\"b-{epoch}-{batch:02d}.h5\", \"monitor\": \"loss\", \"save_freq\": 3, "
                          "\"save_top_k\": 2, \"save_last\": true, \"save_weights_only\": true}]"),
                dir, &c, NULL, &d);
    CHECK_MSG(r == 0, "%d %s: %s", r, d.field, d.message);
    /* 256 / 32 = 8 batches per epoch, 16 in all: a save every 3 -> 5 saves */
    CHECK_INT_EQ(count_type(&c, "checkpoint"), 5);
    int written = 0, deleted = 0;
    for (int k = 0; k < count_type(&c, "checkpoint"); k++) {
        const cJSON *ck = nth_of_type(&c, "checkpoint", k);
        CHECK_STR_EQ(str_of(ck, "decision"), "saved");
        CHECK(int_of(ck, "batch") >= 1);
        CHECK_STR_EQ(str_of(ck, "last"), "last.h5");
        written++;
        deleted += cJSON_GetArraySize(cJSON_GetObjectItem(ck, "deleted"));
    }
    char cdir[PATH_MAX + 16];
    snprintf(cdir, sizeof(cdir), "%s/checkpoints", dir);
    CHECK_INT_EQ(count_files(cdir, "b-"), 2);
    CHECK_INT_EQ(written - deleted, 2);
    CHECK_INT_EQ(count_files(cdir, "last.h5"), 1);
    CHECK_INT_EQ(count_files(cdir, FSUTIL_TEMP_PREFIX), 0);
    captured_free(&c);
    remove_dir(dir);
}

/* A tf.keras model.to_json() of a small MLP with `units` outputs. */
#define INLINE_MLP(units)                                                                     \
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": [" \
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 28, 28, 1], " \
    "\"dtype\": \"float32\", \"name\": \"flatten_input\"}}, "                               \
    "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"flatten\"}}, "                 \
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 32, "        \
    "\"activation\": \"relu\"}}, "                                                          \
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense_1\", \"units\": " #units \
    ", \"activation\": \"softmax\"}}]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}"

/* An inline Keras model trains, and its full-model checkpoint reads back;
 * a model whose classes do not match the data set, or an unknown data set,
 * fail before training with the field named. */
static void test_inline_model_and_bad_jobs(void)
{
    char dir[PATH_MAX];
    make_dir(dir, sizeof(dir), "inline");
    struct captured c = {0};
    struct diag d = {0};
    int r = run("{\"dataset\": {\"name\": \"fashion-mnist\", \"limit\": 128, "
                "\"validation_limit\": 64}, \"model\": " INLINE_MLP(10) ", \"threads\": 1, "
                "\"checkpoints\": [{\"filepath\": \"m.keras\"}]}",
                dir, &c, NULL, &d);
    CHECK_MSG(r == 0, "%d %s: %s", r, d.field, d.message);
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 1);
    const cJSON *ck = nth_of_type(&c, "checkpoint", 0);
    CHECK(ck && strcmp(str_of(ck, "decision"), "saved") == 0);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/checkpoints/m.keras", dir);
    enum h5_layout layout = H5_LAYOUT_KERAS3_WEIGHTS;
    CHECK_MSG(h5_detect_layout(path, &layout, &d) == 0, "%s", d.message);
    CHECK(layout == H5_LAYOUT_KERAS_ARCHIVE); /* a Keras 3 archive */
    captured_free(&c);

    r = run("{\"dataset\": \"fashion-mnist\", \"model\": " INLINE_MLP(5) "}", dir, &c, NULL,
            &d);
    CHECK_INT_EQ(r, -EINVAL);
    CHECK_STR_EQ(d.field, "/model");
    CHECK_INT_EQ(count_type(&c, "epoch_end"), 0);
    captured_free(&c);

    r = run("{\"dataset\": \"mnist-digits\", \"model\": \"mlp\"}", dir, &c, NULL, &d);
    CHECK_INT_EQ(r, -ENOENT);
    CHECK_STR_EQ(d.field, "/dataset");
    captured_free(&c);
    remove_dir(dir);
}

int main(void)
{
    if (access(FASHION_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        fprintf(stderr, "Fashion-MNIST not found in " FASHION_DIR "\n");
        return 77; /* skipped */
    }
    TEST_RUN(test_failed_write_keeps_best);
    TEST_RUN(test_early_stopping_restores_best);
    TEST_RUN(test_stop_and_continue_is_bit_identical);
    TEST_RUN(test_stop_inside_epoch_continues_there);
    TEST_RUN(test_stop_and_continue_with_early_stopping);
    TEST_RUN(test_reduce_lr_on_plateau);
    TEST_RUN(test_step_decay_scheduler);
    TEST_RUN(test_terminate_on_nan);
    TEST_RUN(test_keras3_optimizers_resume);
    TEST_RUN(test_damaged_best_weights_refused);
    TEST_RUN(test_batch_saving_top_k_and_last);
    TEST_RUN(test_inline_model_and_bad_jobs);
    return TEST_EXIT();
}
