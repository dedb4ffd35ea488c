/* job_runner.c - one training job end to end (see job_runner.h): data, model,
 * optimizer, fit() with the job's checkpoint policies and early stopping,
 * weight files, the resume file and the job's events.
 *
 * Per epoch end, in this order (Keras runs ModelCheckpoint, then
 * EarlyStopping, then prints the epoch line):
 *   1. "epoch_end" event;
 *   2. each checkpoint policy: decision (core/checkpoint.c), the write it asks
 *      for (core/h5.c, atomic) into <job_dir>/checkpoints/, then - only once
 *      the file is safely written - commit of the policy state, the
 *      save_last copy and the top-k deletions; a "checkpoint" (or
 *      "checkpoint_error") event and, with verbose >= 1, the Keras line;
 *   3. EarlyStopping, ReduceLROnPlateau: core/ decides (cb_early_stopping.c,
 *      cb_reduce_lr.c), runner_callbacks.c acts;
 *   4. <job_dir>/resume.h5 (weights, optimizer, epoch, and the state JSON
 *      below), so that a resumed run sees every decision of the epoch.
 * These are entries of one core/ callback list (callbacks.h) that fit()
 * calls; at epoch begin the scheduler sets the learning rate, after each
 * batch come the "progress" event (with the running logs), batch-saving
 * policies and TerminateOnNaN.
 *
 * State JSON in resume.h5 (format version 1):
 *   {"version": 1, "policies": [<ckpt_state_to_json>, ...],
 *    "early_stopping": {"wait", "best", "best_epoch", "stopped_epoch",
 *                       "has_best_weights", "best_weights_sha256", "stopped"},
 *    "reduce_lr_on_plateau": {...}, "learning_rate": ..., "terminated_on_nan": ...
 *    (runner_callbacks.h),
 *    "epoch_position": {"batch", "loss_sum", "metric_sums", "seen"}}
 * epoch_position is present only in a file written when a run was stopped
 * inside an epoch (it continues after that batch, bit-identically).
 * Non-finite numbers are written as the strings "inf", "-inf", "nan". */
#include "job_runner_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "compile_config.h"
#include "data.h"
#include "fit.h"
#include "fsutil.h"
#include "h5.h"
#include "model.h"
#include "monotonic.h"
#include "optimizer.h"
#include "runner_callbacks.h"

const struct runner_dataset *runner_find_dataset(const struct runner_env *env, const char *name)
{
    if (!env || !name)
        return NULL;
    for (int i = 0; i < env->n_datasets; i++)
        if (strcmp(env->datasets[i].name, name) == 0)
            return &env->datasets[i];
    return NULL;
}

/* --- events and printed lines ----------------------------------------------- */

void runner_emit(struct runner *r, const char *type, cJSON *obj, bool persist)
{
    if (!obj)
        return;
    if (r->sink && r->sink->event) {
        char *text = cJSON_PrintUnformatted(obj);
        if (text)
            r->sink->event(r->sink->ctx, type, text, persist);
        cJSON_free(text);
    }
    cJSON_Delete(obj);
}

/* runner_callbacks' sink. */
static void cb_emit(void *ctx, const char *type, cJSON *obj)
{
    runner_emit(ctx, type, obj, true);
}

static cJSON *logs_json(const struct logs *logs)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < logs->n; i++)
        ok &= cjson_add(o, logs->items[i].key, cjson_double(logs->items[i].value));
    return cjson_checked(o, ok);
}

static void emit_state_running(struct runner *r, int initial_epoch)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddStringToObject(o, "state", "running") != NULL;
    if (initial_epoch > 0)
        ok &= cJSON_AddNumberToObject(o, "resumed_from_epoch", initial_epoch) != NULL;
    runner_emit(r, "state", cjson_checked(o, ok), true);
}

/* --- data and model ------------------------------------------------------------ */

int runner_resolve_dataset(const struct runner_env *env, const char *name,
                           struct runner_dataset *ret)
{
    const struct runner_dataset *ds = runner_find_dataset(env, name);
    if (ds) {
        *ret = *ds;
        return 0;
    }
    if (env && name && env->resolve_dataset)
        return env->resolve_dataset(env->resolve_ctx, name, ret);
    return -ENOENT;
}

int runner_load_split(struct dataset *ret, const struct runner_dataset *ds, const char *split,
                      struct diag *d)
{
    if (strcmp(ds->format, "tensor") == 0)
        return dataset_map_tensorfile(ret, ds->path, split, d);
    if (strcmp(ds->format, "idx") == 0)
        return dataset_load_idx_dir(ret, ds->path, split, d);
    if (strcmp(ds->format, "cifar10") == 0)
        return dataset_load_cifar10(ret, ds->path, split, d);
    return diag_set(d, -EINVAL, "/dataset", "data set '%s' has unknown format '%s'", ds->name,
                    ds->format);
}

/* Training data: the train split, limited; validation: validation_split of it
 * (Keras: the last fraction, before shuffling) or the test split, limited. */
int runner_load_data(const struct job_spec *spec, const struct runner_env *env,
                     struct dataset *train, struct dataset *val, struct diag *d)
{
    struct runner_dataset found;
    if (runner_resolve_dataset(env, spec->dataset, &found) < 0)
        return diag_set(d, -ENOENT, "/dataset", "unknown data set '%s'", spec->dataset);
    const struct runner_dataset *ds = &found;
    int r = runner_load_split(train, ds, "train", d);
    if (r < 0)
        return r;
    dataset_truncate(train, spec->dataset_limit);
    if (spec->validation_split > 0)
        r = dataset_split_tail(train, val, spec->validation_split, d);
    else
        r = runner_load_split(val, ds, "test", d);
    if (r < 0) {
        dataset_free(train);
        return r;
    }
    dataset_truncate(val, spec->validation_limit);
    if (train->n <= 0 || val->n <= 0) {
        dataset_free(train);
        dataset_free(val);
        return diag_set(d, -EINVAL, "/dataset",
                        "no %s examples left after the limits and validation_split",
                        train->n <= 0 ? "training" : "validation");
    }
    return 0;
}

int runner_create_model(struct model **ret, const struct job_spec *spec, const int shape[3],
                        int classes, int max_batch, int threads, struct diag *d)
{
    struct model_spec ms = {0};
    int r;
    if (spec->model_json) {
        r = model_spec_parse_json(&ms, spec->model_json, strlen(spec->model_json), shape, d);
        if (r < 0)
            diag_prefix(d, "/model");
    } else {
        r = model_spec_builtin(&ms, spec->model, shape, classes, d);
        if (r < 0 && d && !d->field[0])
            snprintf(d->field, sizeof(d->field), "/model");
    }
    if (r < 0)
        return r;
    r = model_create(ret, &ms, max_batch, threads, d);
    model_spec_free(&ms);
    if (r < 0 && d && !d->field[0])
        snprintf(d->field, sizeof(d->field), "/model");
    return r;
}

static int classes_mismatch(const struct job_spec *spec, int model_classes, int data_classes,
                            struct diag *d)
{
    return diag_set(d, -EINVAL, "/model", "the model ends in %d classes but data set '%s' has %d",
                    model_classes, spec->dataset, data_classes);
}

/* class_weight names classes below the model's class count. */
static int check_class_weight(const struct job_spec *spec, int classes, struct diag *d)
{
    for (int i = 0; i < spec->n_class_weight; i++)
        if (spec->class_weight[i].cls >= classes) {
            char field[32];
            snprintf(field, sizeof(field), "/class_weight/%d", spec->class_weight[i].cls);
            return diag_set(d, -EINVAL, field, "class %d: the model has %d classes (0 to %d)",
                            spec->class_weight[i].cls, classes, classes - 1);
        }
    return 0;
}

int runner_check_model(const struct job_spec *spec, const struct runner_dataset *ds,
                       struct diag *d)
{
    if (!spec->model_json) {
        /* The built-ins' output does not depend on the input shape: any
         * shape they take tells whether the loss trains it. */
        struct model_spec bs = {0};
        static const int any_shape[3] = {32, 32, 3};
        int r = model_spec_builtin(&bs, spec->model, any_shape, DATASET_CLASSES, d);
        if (r == 0)
            r = model_spec_check_loss(&bs, &spec->loss_config, d);
        model_spec_free(&bs);
        /* built-ins end in the data set's class count: known here for
         * the configured formats, at run time for imported sets */
        if (r < 0 || strcmp(ds->format, "tensor") == 0)
            return r;
        return check_class_weight(spec, DATASET_CLASSES, d);
    }
    /* every built-in format has DATASET_CLASSES classes */
    struct model_spec ms = {0};
    struct diag ignored = {{0}, {0}};
    int classes = -EINVAL;
    if (model_spec_parse_json(&ms, spec->model_json, strlen(spec->model_json), NULL,
                              &ignored) == 0) {
        classes = model_spec_output_classes(&ms, &ignored);
        /* a loss the model's output cannot train is the spec's error */
        int r = classes > 0 ? model_spec_check_loss(&ms, &spec->loss_config, d) : 0;
        model_spec_free(&ms);
        if (r < 0)
            return r;
    }
    /* Other model errors are reported where the run builds the model. */
    if (classes > 0 && classes != DATASET_CLASSES && strcmp(ds->format, "tensor") != 0)
        return classes_mismatch(spec, classes, DATASET_CLASSES, d);
    return classes > 0 ? check_class_weight(spec, classes, d) : 0;
}

static bool regression_loss(enum loss_kind k)
{
    return k == LOSS_KIND_MEAN_SQUARED_ERROR || k == LOSS_KIND_MEAN_ABSOLUTE_ERROR;
}

static bool regression_metric(enum metric_kind k)
{
    return k == METRIC_KIND_MEAN_SQUARED_ERROR || k == METRIC_KIND_MEAN_ABSOLUTE_ERROR;
}

int runner_check_targets(const struct job_spec *spec, int width, struct diag *d)
{
    if (width <= 0)
        return 0;
    if (!regression_loss(spec->loss_config.kind))
        return diag_set(d, -EINVAL, "/loss", "loss '%s' needs class labels, but data set '%s' "
                        "holds float regression targets (%d per example): use "
                        "mean_squared_error (mse) or mean_absolute_error (mae)",
                        loss_kind_name(spec->loss_config.kind), spec->dataset, width);
    if (spec->metrics_default)
        return diag_set(d, -EINVAL, "/metrics", "data set '%s' holds float regression targets "
                        "and the default metric 'accuracy' needs class labels: give \"metrics\" "
                        "of regression metrics, e.g. [\"mae\"]", spec->dataset);
    for (int i = 0; i < spec->n_metrics; i++)
        if (!regression_metric(spec->metrics[i].config.kind)) {
            char field[32];
            snprintf(field, sizeof(field), "/metrics/%d", i);
            return diag_set(d, -EINVAL, field, "metric '%s' needs class labels, but data set "
                            "'%s' holds float regression targets: use mse, mae, "
                            "mean_squared_error or mean_absolute_error", spec->metrics[i].name,
                            spec->dataset);
        }
    if (spec->n_class_weight > 0)
        return diag_set(d, -EINVAL, "/class_weight", "class_weight weighs classes, but data set "
                        "'%s' holds float regression targets", spec->dataset);
    if (!spec->model_json)
        return diag_set(d, -EINVAL, "/model", "built-in model '%s' ends in a softmax over "
                        "classes; data set '%s' holds %d float regression targets per example: "
                        "give a model config whose output has %d values", spec->model,
                        spec->dataset, width, width);
    struct model_spec ms = {0};
    struct diag ignored = {{0}, {0}};
    int out = -EINVAL;
    if (model_spec_parse_json(&ms, spec->model_json, strlen(spec->model_json), NULL,
                              &ignored) == 0)
        out = model_spec_output_classes(&ms, &ignored);
    model_spec_free(&ms);
    /* other model errors are reported where the run builds the model */
    if (out > 0 && out != width)
        return diag_set(d, -EINVAL, "/model", "the model's output has %d values but data set "
                        "'%s' has %d float targets per example", out, spec->dataset, width);
    return 0;
}

void runner_metric_keys(const struct job_spec *spec, struct fit_options *o)
{
    for (int i = 0; i < spec->n_metrics; i++)
        o->metric_keys[i] = spec->metrics[i].key;
}

int runner_set_head(struct model *m, const struct job_spec *spec, struct diag *d)
{
    struct model_head h = {.loss = spec->loss_config, .n_metrics = spec->n_metrics};
    for (int i = 0; i < spec->n_metrics; i++)
        h.metrics[i] = spec->metrics[i].config;
    if (spec->n_class_weight == 0)
        return model_set_head(m, &h, d);
    float *cw = malloc(sizeof(float) * (size_t)m->classes);
    if (!cw)
        return diag_set(d, -ENOMEM, "/class_weight", "out of memory");
    for (int c = 0; c < m->classes; c++)
        cw[c] = 1.0f; /* Keras: classes not named weigh 1 */
    int r = check_class_weight(spec, m->classes, d);
    for (int i = 0; i < spec->n_class_weight && r == 0; i++)
        cw[spec->class_weight[i].cls] = (float)spec->class_weight[i].weight;
    h.class_weight = cw;
    if (r == 0)
        r = model_set_head(m, &h, d);
    free(cw);
    return r;
}

int runner_build_model(struct runner *r, const struct dataset *train,
                       const struct runner_env *env, struct diag *d)
{
    const struct job_spec *spec = r->spec;
    int shape[3] = {train->h, train->w, train->c};
    int threads = spec->threads > 0 ? spec->threads : (env && env->threads > 0 ? env->threads : 1);
    int ret = runner_check_targets(spec, train->target_width, d);
    if (ret < 0)
        return ret;
    int classes = train->target_width > 0 ? train->target_width : train->classes;
    ret = runner_create_model(&r->m, spec, shape, classes, spec->batch_size, threads, d);
    if (ret < 0)
        return ret;
    if (r->m->classes != classes)
        return classes_mismatch(spec, r->m->classes, classes, d);
    if ((ret = runner_set_head(r->m, spec, d)) < 0)
        return ret;
    model_init_weights(r->m, spec->seed);
    ret = optimizer_create(&r->opt, &spec->optimizer, r->m, d);
    if (ret < 0 && d && !d->field[0])
        snprintf(d->field, sizeof(d->field), "/optimizer");
    return ret;
}

/* --- checkpoint policies ----------------------------------------------------------- */

/* decision_message: the Keras line of a decision whose file could not be
 * written (printed before the error when the policy is verbose), or NULL. */
static void emit_checkpoint_error(struct runner *r, int i, const struct ckpt_decision *dec,
                                  const char *file, const char *step, const struct diag *err,
                                  const char *decision_message)
{
    bool ok = true;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(o, "policy", i) != NULL;
    ok &= cJSON_AddNumberToObject(o, "epoch", dec->epoch) != NULL;
    if (dec->batch > 0)
        ok &= cJSON_AddNumberToObject(o, "batch", dec->batch) != NULL;
    ok &= cJSON_AddStringToObject(o, "file", file) != NULL;
    ok &= cJSON_AddStringToObject(o, "step", step) != NULL;
    ok &= cJSON_AddStringToObject(o, "message", err->message) != NULL;
    if (decision_message && decision_message[0])
        ok &= cJSON_AddStringToObject(o, "decision_message", decision_message) != NULL;
    runner_emit(r, "checkpoint_error", cjson_checked(o, ok), true);
}

/* The job's compile(loss, metrics) as the weight files record it. */
static void compile_spec_of(const struct job_spec *s, struct compile_spec *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->loss = s->loss;
    ret->loss_object = s->loss_object;
    ret->loss_config = s->loss_config;
    ret->n_metrics = s->n_metrics;
    for (int i = 0; i < s->n_metrics && i < METRICS_MAX; i++) {
        const struct job_metric *jm = &s->metrics[i];
        /* a metric object's name is its config.name: its log key */
        ret->metrics[i].name = jm->object ? jm->key : jm->name;
        ret->metrics[i].object = jm->object;
        ret->metrics[i].config = jm->config;
    }
}

/* Write the file a decision asks for, commit, save_last copy, top-k
 * deletions; then the "checkpoint" event.  Failures become
 * "checkpoint_error" events and training goes on (the policy's best does not
 * move without a successful write). */
static void policy_apply(struct runner *r, int i, const struct ckpt_decision *dec)
{
    bool ok = true;
    const struct ckpt_policy_config *cfg = &r->spec->checkpoints[i];
    struct ckpt_state *state = &r->policies[i];
    struct diag err = {0};
    uint8_t sha[FSUTIL_SHA256_BYTES];
    uint64_t bytes = 0;
    char sha_hex[FSUTIL_SHA256_HEX_SIZE] = "";
    struct ckpt_commit_result res;
    memset(&res, 0, sizeof(res));
    cJSON *deleted = cJSON_CreateArray();
    bool wrote_last = false;
    enum fsutil_step step = FSUTIL_STEP_WRITE; /* the write step that failed */

    if (dec->should_write) {
        enum h5_layout layout;
        int ret = h5_layout_for_path(dec->file, cfg->save_weights_only, &layout, &err);
        struct compile_spec compile;
        compile_spec_of(r->spec, &compile);
        if (ret == 0)
            ret = h5_save(r->ckpt_dir, dec->file, layout, r->m, r->opt, &compile, sha, &bytes,
                          &step, &err);
        if (ret < 0) {
            emit_checkpoint_error(r, i, dec, dec->file, fsutil_step_name(step), &err,
                                  dec->message);
            cJSON_Delete(deleted);
            return;
        }
        fsutil_sha256_hex(sha, sha_hex);
        if (ckpt_commit(cfg, state, dec, &res) < 0) {
            diag_set(&err, -EINVAL, "", "the policy refused to commit %s", dec->file);
            emit_checkpoint_error(r, i, dec, dec->file, "commit", &err, NULL);
            cJSON_Delete(deleted);
            return;
        }
        if (res.last_file[0]) {
            if (fsutil_copy_file_atomic(r->ckpt_dir, dec->file, res.last_file, NULL, NULL, &step,
                                        &err) < 0) {
                emit_checkpoint_error(r, i, dec, res.last_file, fsutil_step_name(step), &err,
                                      NULL);
            } else {
                wrote_last = true;
            }
        }
        for (int k = 0; k < res.n_delete; k++) {
            if (unlinkat(r->ckpt_dirfd, res.delete_files[k], 0) < 0 && errno != ENOENT) {
                diag_set(&err, -errno, res.delete_files[k], "unlink: %s", strerror(errno));
                emit_checkpoint_error(r, i, dec, res.delete_files[k], "unlink", &err, NULL);
                continue;
            }
            ok &= cjson_append(deleted, cJSON_CreateString(res.delete_files[k]));
        }
    }

    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(o, "policy", i) != NULL;
    ok &= cJSON_AddNumberToObject(o, "epoch", dec->epoch) != NULL;
    if (dec->batch > 0)
        ok &= cJSON_AddNumberToObject(o, "batch", dec->batch) != NULL;
    ok &= cJSON_AddStringToObject(o, "decision", ckpt_decision_kind_name(dec->kind)) != NULL;
    ok &= cJSON_AddStringToObject(o, "monitor", dec->monitor) != NULL;
    ok &= cjson_add(o, "previous", cjson_double(dec->previous_best));
    ok &= cjson_add(o, "value",
                                dec->has_value ? cjson_double(dec->value) : cJSON_CreateNull());
    if (dec->should_write) {
        ok &= cJSON_AddStringToObject(o, "file", dec->file) != NULL;
        ok &= cJSON_AddNumberToObject(o, "bytes", (double)bytes) != NULL;
        ok &= cJSON_AddStringToObject(o, "sha256", sha_hex) != NULL;
        ok &= cJSON_AddBoolToObject(o, "best", res.became_best) != NULL;
        if (wrote_last)
            ok &= cJSON_AddStringToObject(o, "last", res.last_file) != NULL;
    } else {
        ok &= cJSON_AddNullToObject(o, "file") != NULL;
    }
    ok &= cjson_add(o, "deleted", deleted);
    ok &= cJSON_AddStringToObject(o, "message", dec->message) != NULL;
    runner_emit(r, "checkpoint", cjson_checked(o, ok), true);
}

static void policy_decided(struct runner *r, int i, int ret, struct ckpt_decision *dec,
                           int epoch, int batch, const struct diag *err)
{
    if (ret < 0) {
        dec->epoch = epoch;
        dec->batch = batch;
        emit_checkpoint_error(r, i, dec, r->spec->checkpoints[i].filepath, "render", err, NULL);
        return;
    }
    if (dec->kind != CKPT_DECISION_NONE)
        policy_apply(r, i, dec);
}

static void policy_on_epoch_end(struct runner *r, int i, const struct fit_progress *p,
                                const struct logs *logs)
{
    struct ckpt_decision dec;
    struct diag err = {0};
    memset(&dec, 0, sizeof(dec));
    int ret = ckpt_on_epoch_end(&r->spec->checkpoints[i], &r->policies[i], p->epoch, logs, &dec,
                                &err);
    policy_decided(r, i, ret, &dec, p->epoch, 0, &err);
}

static void policy_on_batch_end(struct runner *r, int i, const struct fit_progress *p,
                                const struct logs *logs)
{
    struct ckpt_decision dec;
    struct diag err = {0};
    memset(&dec, 0, sizeof(dec));
    int ret = ckpt_on_batch_end(&r->spec->checkpoints[i], &r->policies[i], p->epoch, p->batch,
                                logs, &dec, &err);
    policy_decided(r, i, ret, &dec, p->epoch, p->batch, &err);
}

/* --- fit callbacks ---------------------------------------------------------------- */

/* With several ranks: "ranks" and "collective_seconds_per_step" (time in
 * the collectives of core/collective.h over the steps of this run). */
static bool add_mpi_fields(struct runner *r, cJSON *o, const struct fit_progress *p)
{
    const struct collective *c = r->m ? r->m->coll : NULL;
    if (!collective_active(c))
        return true;
    int64_t steps = p->iterations - r->coll_it0;
    double per = steps > 0 ? (c->seconds - r->coll_s0) / (double)steps : 0;
    bool ok = cJSON_AddNumberToObject(o, "ranks", c->size) != NULL;
    ok &= cJSON_AddNumberToObject(o, "collective_seconds_per_step", round(per * 1e6) / 1e6) != NULL;
    return ok;
}

/* The "progress" event: position, speed, ETA and the epoch's running logs
 * (loss and metrics so far), at most every RUNNER_PROGRESS_INTERVAL. */
static void emit_progress(struct runner *r, const struct fit_progress *p, const struct logs *logs)
{
    bool ok = true;
    double per_batch = p->batch > 0 ? p->epoch_seconds / p->batch : 0;
    double eta = per_batch * ((double)(p->batches - p->batch) +
                              (double)(p->epochs - p->epoch) * (double)p->batches);
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(o, "epoch", p->epoch) != NULL;
    ok &= cJSON_AddNumberToObject(o, "epochs", p->epochs) != NULL;
    ok &= cJSON_AddNumberToObject(o, "batch", p->batch) != NULL;
    ok &= cJSON_AddNumberToObject(o, "batches", p->batches) != NULL;
    ok &= cJSON_AddNumberToObject(o, "images_per_s", round(p->images_per_s * 10) / 10) != NULL;
    ok &= cJSON_AddNumberToObject(o, "eta_s", round(eta * 10) / 10) != NULL;
    ok &= cJSON_AddNumberToObject(o, "seconds", round(p->epoch_seconds * 1000) / 1000) != NULL;
    ok &= cjson_add(o, "logs", logs_json(logs)); /* running means, for a live bar */
    ok &= add_mpi_fields(r, o, p);
    runner_emit(r, "progress", cjson_checked(o, ok), false);
}

/* Entry "progress": the job's progress and epoch_end events (the
 * renderer in progress.c prints them as Keras' ProgbarLogger). */
static int progress_batch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    struct runner *r = ctx;
    double now = monotonic_seconds();
    if (now - r->last_progress >= RUNNER_PROGRESS_INTERVAL) {
        r->last_progress = now;
        emit_progress(r, p, logs);
    }
    return 0;
}

static int progress_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    bool ok = true;
    struct runner *r = ctx;
    cJSON *o = cJSON_CreateObject();
    ok &= cJSON_AddNumberToObject(o, "epoch", p->epoch) != NULL;
    ok &= cJSON_AddNumberToObject(o, "epochs", p->epochs) != NULL;
    ok &= cJSON_AddNumberToObject(o, "batch", p->batch) != NULL;
    ok &= cJSON_AddNumberToObject(o, "batches", p->batches) != NULL;
    ok &= cjson_add(o, "logs", logs_json(logs));
    ok &= cJSON_AddNumberToObject(o, "lr", p->lr) != NULL;
    ok &= cJSON_AddNumberToObject(o, "seconds", p->epoch_seconds) != NULL;
    ok &= add_mpi_fields(r, o, p);
    runner_emit(r, "epoch_end", cjson_checked(o, ok), true);
    return 0;
}

/* Entries "ModelCheckpoint", one per policy. */
static int policy_batch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    struct runner_policy *pc = ctx;
    if (pc->r->spec->checkpoints[pc->i].save_freq > 0)
        policy_on_batch_end(pc->r, pc->i, p, logs);
    return 0;
}

static int policy_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    struct runner_policy *pc = ctx;
    if (pc->r->spec->checkpoints[pc->i].save_freq == 0)
        policy_on_epoch_end(pc->r, pc->i, p, logs);
    return 0;
}

/* Entry "resume", the last: resume.h5 with every callback's decision of
 * the epoch. */
static int resume_epoch_end(void *ctx, const struct fit_progress *p, const struct logs *logs)
{
    struct runner *r = ctx;
    (void)logs;
    char *state = resume_state_json(r);
    if (!state)
        return diag_set(&r->err, -ENOMEM, "", "out of memory for the resume state");
    struct compile_spec compile;
    compile_spec_of(r->spec, &compile);
    int ret = h5_save_resume(r->job_dir, RUNNER_RESUME_FILE, r->m, r->opt, p->epoch, state,
                             &compile, &r->err);
    free(state);
    if (ret < 0) {
        diag_prefix(&r->err, RUNNER_RESUME_FILE ": ");
        return ret;
    }
    return 0;
}

/* Stopped inside an epoch (SIGTERM, cancel, Ctrl-C): save the position so a
 * continued run picks up after the last finished batch.  If this write
 * fails, the epoch-end resume.h5 stays and the epoch is redone: slower, the
 * same result. */
static void resume_train_end(void *ctx, const struct fit_progress *p, int status)
{
    struct runner *r = ctx;
    if (status != -ECANCELED || p->batch <= 0)
        return;
    r->in_batch = p->batch;
    r->in_loss_sum = p->loss_sum;
    memcpy(r->in_metric_sums, p->metric_sums, sizeof(r->in_metric_sums));
    r->in_seen = p->seen;
    char *state = resume_state_json(r);
    r->in_batch = 0;
    if (!state)
        return;
    struct diag ignored = {{0}, {0}};
    struct compile_spec compile;
    compile_spec_of(r->spec, &compile);
    (void)h5_save_resume(r->job_dir, RUNNER_RESUME_FILE, r->m, r->opt, p->epoch - 1, state,
                         &compile, &ignored);
    free(state);
}

/* The list, in Keras' order: progress first (ProgbarLogger), the
 * checkpoints, the other callbacks, and the resume writer last. */
static int build_callback_list(struct runner *r)
{
    int ret = cb_list_add(&r->list, &(struct callback){
        "progress", {.ctx = r, .batch_end = progress_batch_end, .epoch_end = progress_epoch_end}});
    for (int i = 0; ret == 0 && i < r->n_policies; i++) {
        r->policy_ctx[i] = (struct runner_policy){r, i};
        ret = cb_list_add(&r->list, &(struct callback){
            "ModelCheckpoint", {.ctx = &r->policy_ctx[i], .batch_end = policy_batch_end,
                                .epoch_end = policy_epoch_end}});
    }
    if (ret == 0)
        ret = runner_cb_add(&r->cbs, &r->list);
    if (ret == 0)
        ret = cb_list_add(&r->list, &(struct callback){
            "resume", {.ctx = r, .epoch_end = resume_epoch_end, .train_end = resume_train_end}});
    return ret;
}

/* --- the job ---------------------------------------------------------------------- */

int runner_run(const struct job_spec *spec, const char *job_dir, const struct runner_env *env,
               const struct runner_sink *sink, atomic_int *stop, struct diag *d)
{
    struct runner *r = calloc(1, sizeof(*r));
    if (!r)
        return diag_set(d, -ENOMEM, "", "out of memory");
    r->spec = spec;
    r->job_dir = job_dir;
    r->sink = sink;
    r->n_policies = spec->n_checkpoints;
    r->stop = stop;
    r->ckpt_dirfd = -1;
    struct dataset train = {0}, val = {0};
    int ret;
    if ((size_t)snprintf(r->ckpt_dir, sizeof(r->ckpt_dir), "%s/%s", job_dir,
                         RUNNER_CHECKPOINT_DIR) >= sizeof(r->ckpt_dir)) {
        ret = diag_set(d, -ENAMETOOLONG, "", "job directory path too long");
        goto out;
    }
    if (mkdir(r->ckpt_dir, 0700) < 0 && errno != EEXIST) {
        ret = diag_set(d, -errno, "", "mkdir %s: %s", r->ckpt_dir, strerror(errno));
        goto out;
    }
    r->ckpt_dirfd = open(r->ckpt_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (r->ckpt_dirfd < 0) {
        ret = diag_set(d, -errno, "", "open %s: %s", r->ckpt_dir, strerror(errno));
        goto out;
    }
    int job_fd = open(job_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (job_fd >= 0) {
        fsutil_remove_temp_files(job_fd, 0, NULL, NULL);
        close(job_fd);
    }
    fsutil_remove_temp_files(r->ckpt_dirfd, TEMPLATE_MAX_COMPONENTS, NULL, NULL);
    if ((ret = runner_load_data(spec, env, &train, &val, d)) < 0 ||
        (ret = runner_build_model(r, &train, env, d)) < 0)
        goto out;
    for (int i = 0; i < r->n_policies; i++)
        ckpt_state_init(&r->policies[i], &spec->checkpoints[i]);
    struct runner_cb_io io = {.ctx = r, .emit = cb_emit};
    if ((ret = runner_cb_init(&r->cbs, spec, job_dir, r->m, r->opt, &io, d)) < 0)
        goto out;
    if (build_callback_list(r) < 0) {
        ret = diag_set(d, -ENOSPC, "/callbacks", "more than %d callbacks", CB_LIST_MAX);
        goto out;
    }
    int initial_epoch = 0;
    char resume_path[PATH_MAX];
    snprintf(resume_path, sizeof(resume_path), "%s/%s", job_dir, RUNNER_RESUME_FILE);
    /* the warm start happens once: a resumed run continues from resume.h5 */
    if (access(resume_path, F_OK) != 0 && (ret = runner_warm_start(r, d)) < 0)
        goto out;
    if ((ret = resume_state_load(r, &initial_epoch, d)) < 0)
        goto out;
    emit_state_running(r, initial_epoch);
    if (initial_epoch >= spec->epochs || runner_cb_finished(&r->cbs))
        goto out; /* the interrupted run had finished its last epoch */

    struct fit_options o;
    fit_options_default(&o);
    o.epochs = spec->epochs;
    o.initial_epoch = initial_epoch;
    o.batch_size = spec->batch_size;
    o.steps_per_epoch = spec->steps_per_epoch;
    o.validation_steps = spec->validation_steps;
    o.seed = spec->seed;
    o.initial_batch = r->in_batch;
    o.initial_loss_sum = r->in_loss_sum;
    memcpy(o.initial_metric_sums, r->in_metric_sums, sizeof(o.initial_metric_sums));
    o.initial_seen = r->in_seen;
    runner_metric_keys(spec, &o);
    r->in_batch = 0; /* the next epoch-end state is at a boundary again */
    struct fit_callbacks cb;
    cb_list_bind(&r->list, &cb);
    if (collective_active(env ? env->coll : NULL) &&
        (ret = runner_distribute(r, env, &train, &val, &o, d)) < 0)
        goto out;
    if (r->m->coll) {
        r->coll_s0 = r->m->coll->seconds;
        r->coll_it0 = r->opt->iterations;
    }
    r->last_progress = monotonic_seconds();
    memset(&r->err, 0, sizeof(r->err));
    ret = fit(r->m, r->opt, &train, &val, &o, &cb, stop, d);
    /* a callback's own reason beats fit's "callback aborted" */
    if (ret < 0 && ret != -ECANCELED && r->err.message[0] && d)
        *d = r->err;
    else if (ret < 0 && ret != -ECANCELED && r->cbs.err.message[0] && d)
        *d = r->cbs.err;
out:
    if (r->ckpt_dirfd >= 0)
        close(r->ckpt_dirfd);
    runner_cb_free(&r->cbs);
    optimizer_free(r->opt);
    model_free(r->m);
    dataset_free(&train);
    dataset_free(&val);
    free(r);
    return ret;
}
