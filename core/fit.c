/* fit.c - the Keras training loop (Model.fit) and evaluation (Model.evaluate)
 * over data sets in memory or mapped, uint8 or float32 (pixels.h).
 *
 * Batches come from one stream, as tf.keras 2.x draws them from arrays (its
 * TensorLikeDataAdapter never recreates the iterator): data pass k is the
 * indices 0..n-1 shuffled with rng_seed(seed, k), cut into ceil(n / batch)
 * batches, the last one partial; passes follow each other.  Epoch e takes
 * batches e * steps .. (e + 1) * steps - 1 of the stream (steps =
 * steps_per_epoch, or one pass when 0), so without steps_per_epoch epoch e is
 * pass e, and with it epochs continue where the previous one stopped.  The
 * position depends on e alone, so a run resumed at initial_epoch = k sees the
 * same batches as one never stopped (Keras itself would restart the stream);
 * the dropout masks come from (seed, optimizer iterations), also restored on
 * resume.  Every buffer is allocated once per call; the batch loop allocates
 * nothing. */
#include "fit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "monotonic.h"
#include "rng.h"

/* With a collective (m->coll, several ranks), every decision that ends a
 * loop is rank 0's: the stop flag and the callbacks are looked at on rank 0
 * only (the other ranks have no callbacks) and the outcome is broadcast, so
 * every rank runs the same batches.  At every epoch end the ranks compare a
 * fingerprint of their weights and optimizer state. */
static bool stop_seen(struct model *m, atomic_int *stop)
{
    int v = stop && atomic_load(stop);
    return collective_agree_int(m->coll, v) != 0;
}

/* Rank 0's callback result r on every rank; a rank 0 abort becomes -ECANCELED
 * elsewhere (its reason is rank 0's to report). */
static int agree_result(struct model *m, int r)
{
    if (!collective_active(m->coll))
        return r;
    int v = collective_agree_int(m->coll, r);
    return m->coll->rank != 0 && v < 0 ? -ECANCELED : v;
}

/* Rank 0's learning rate on every rank: its callbacks (ReduceLROnPlateau,
 * LearningRateScheduler) and a resumed run's state set it there only.  A
 * broadcast of the double: bit-exact. */
static int share_lr(struct model *m, struct optimizer *opt, int epoch, struct diag *d)
{
    if (!collective_active(m->coll))
        return 0;
    int r = m->coll->bcast(m->coll->ctx, &opt->cfg.learning_rate,
                           sizeof(opt->cfg.learning_rate));
    if (r < 0)
        return diag_set(d, r, "", "sharing rank 0's learning rate at epoch %d failed", epoch);
    return 0;
}

static int compare_ranks(struct model *m, const struct optimizer *opt, int epoch, struct diag *d)
{
    if (!collective_active(m->coll))
        return 0;
    uint64_t h = collective_fnv1a(COLLECTIVE_FNV_BASIS, m->params, m->n_params * sizeof(float));
    for (int k = 0; k < opt->n_slots; k++)
        h = collective_fnv1a(h, opt->slots[k], opt->n * sizeof(float));
    h = collective_fnv1a(h, &opt->iterations, sizeof(opt->iterations));
    h = collective_fnv1a(h, &opt->cfg.learning_rate, sizeof(opt->cfg.learning_rate));
    int r = collective_first_mismatch(m->coll, h);
    if (r < 0)
        return diag_set(d, r, "", "comparing the ranks' weights after epoch %d failed", epoch);
    if (r > 0)
        return diag_set(d, -EPROTO, "",
                        "rank %d's weights differ from rank 0's after epoch %d (checksums "
                        "compared at every epoch end); the job stops",
                        r, epoch);
    return 0;
}

void fit_options_default(struct fit_options *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->epochs = 1;
    ret->initial_epoch = 0;
    ret->batch_size = 32;
    ret->steps_per_epoch = 0;
    ret->validation_steps = 0;
    ret->seed = 0;
    ret->shuffle = true;
}

/* Number of batches of batch_size in n examples (the last one partial), at
 * most limit when limit > 0. */
static int batches_of(int n, int batch_size, int limit)
{
    int b = n / batch_size + (n % batch_size != 0);
    if (limit > 0 && limit < b)
        b = limit;
    return b;
}

static int check_dataset(const struct model *m, const struct dataset *ds, const char *field,
                         struct diag *d)
{
    if (!ds->images || (!ds->labels && !ds->targets) || ds->n <= 0)
        return diag_set(d, -EINVAL, field, "the data set is empty");
    if (ds->targets && ds->target_width != m->classes)
        return diag_set(d, -EINVAL, field, "the data set has %d float targets per example, the "
                        "model's output %d values", ds->target_width, m->classes);
    if (ds->h != m->input_shape[0] || ds->w != m->input_shape[1] ||
        ds->c != m->input_shape[2])
        return diag_set(d, -EINVAL, field,
                        "examples are (%d, %d, %d) but the model's input is (%d, %d, %d)",
                        ds->h, ds->w, ds->c, m->input_shape[0], m->input_shape[1],
                        m->input_shape[2]);
    if (ds->classes > m->classes)
        return diag_set(d, -EINVAL, field, "the data set has %d classes, the model %d",
                        ds->classes, m->classes);
    return 0;
}

static int check_batch_size(const struct model *m, int batch_size, struct diag *d)
{
    if (batch_size < 1 || batch_size > m->max_batch)
        return diag_set(d, -EINVAL, "/batch_size", "must be in [1, %d], got %d", m->max_batch,
                        batch_size);
    return 0;
}

/* Inference over the first min(n, steps * batch_size) examples in order, in
 * chunks of batch_size taken straight from ds (contiguous, no copy). */
static int evaluate_chunks(struct model *m, const struct dataset *ds, int batch_size, int steps,
                           double *ret_loss, double *ret_metrics, struct diag *d)
{
    size_t example = dataset_example_bytes(ds);
    int batches = batches_of(ds->n, batch_size, steps);
    const int nm = model_n_metrics(m);
    double loss_sum = 0, metric_sums[METRICS_MAX] = {0};
    long seen = 0;
    for (int b = 0; b < batches; b++) {
        int start = b * batch_size;
        int nb = ds->n - start < batch_size ? ds->n - start : batch_size;
        double ls = 0, ok[METRICS_MAX] = {0};
        const uint8_t *x = ds->images + (size_t)start * example;
        int r = ds->targets ? model_evaluate_targets(m, x, ds->pixels,
                                                     ds->targets + (size_t)start * ds->target_width,
                                                     nb, &ls, ok)
                            : model_evaluate(m, x, ds->pixels, ds->labels + start, nb, &ls, ok);
        if (r < 0)
            return diag_set(d, r, "", "evaluation failed at batch %d of %d", b + 1, batches);
        loss_sum += ls;
        for (int i = 0; i < nm; i++)
            metric_sums[i] += ok[i];
        seen += nb;
    }
    *ret_loss = loss_sum / (double)seen;
    for (int i = 0; i < nm; i++)
        ret_metrics[i] = metric_sums[i] / (double)seen;
    return 0;
}

int fit_evaluate(struct model *m, const struct dataset *ds, int batch_size, int steps,
                 double *ret_loss, double *ret_metrics, struct diag *d)
{
    int r = check_batch_size(m, batch_size, d);
    if (r == 0)
        r = check_dataset(m, ds, "/dataset", d);
    if (r < 0)
        return r;
    double loss, metrics[METRICS_MAX];
    r = evaluate_chunks(m, ds, batch_size, steps, &loss, metrics, d);
    if (r < 0)
        return r;
    *ret_loss = loss;
    memcpy(ret_metrics, metrics, sizeof(double) * (size_t)model_n_metrics(m));
    return 0;
}

/* Per-call state of fit(): buffers and the progress callbacks see. */
struct fit_run {
    uint32_t *idx;    /* (n_train): the order of data pass `pass` */
    int64_t pass;     /* -1 before the first */
    int pass_batches; /* batches in one pass over the training set */
    void *images;     /* (batch_size, H, W, C) of the training set's pixels */
    uint8_t *labels;  /* (batch_size) */
    float *targets;   /* (batch_size, K) for float targets, else NULL */
    char key[METRICS_MAX][32], val_key[METRICS_MAX][32]; /* the metrics' log keys */
    struct fit_progress p;
};

static void fit_run_free(struct fit_run *run)
{
    free(run->idx);
    free(run->images);
    free(run->labels);
    free(run->targets);
}

static int fit_options_check(const struct model *m, const struct dataset *train,
                             const struct dataset *val, const struct fit_options *o,
                             struct diag *d)
{
    if (o->epochs < 0)
        return diag_set(d, -EINVAL, "/epochs", "must be >= 0, got %d", o->epochs);
    if (o->initial_epoch < 0)
        return diag_set(d, -EINVAL, "/initial_epoch", "must be >= 0, got %d",
                        o->initial_epoch);
    if (o->steps_per_epoch < 0)
        return diag_set(d, -EINVAL, "/steps_per_epoch", "must be >= 0, got %d",
                        o->steps_per_epoch);
    if (o->validation_steps < 0)
        return diag_set(d, -EINVAL, "/validation_steps", "must be >= 0, got %d",
                        o->validation_steps);
    int r = check_batch_size(m, o->batch_size, d);
    if (r == 0)
        r = check_dataset(m, train, "/dataset", d);
    if (r == 0 && val)
        r = check_dataset(m, val, "/validation_data", d);
    return r;
}

/* The epoch's running means so far (run->p's sums) into logs: loss, then
 * each metric under its key. */
static void running_logs(const struct fit_run *run, struct logs *logs)
{
    const struct fit_progress *p = &run->p;
    logs_set(logs, "loss", p->loss_sum / (double)p->seen);
    for (int i = 0; i < p->n_metrics; i++)
        logs_set(logs, run->key[i], p->metric_sums[i] / (double)p->seen);
}

/* The log keys of the model head's metrics from o->metric_keys. */
static int metric_keys_set(struct fit_run *run, const struct fit_options *o, int nm,
                           struct diag *d)
{
    for (int i = 0; i < nm; i++) {
        const char *k = o->metric_keys[i];
        if (!k && i == 0)
            k = "accuracy";
        if (!k || strlen(k) == 0 || strlen(k) + 4 >= sizeof(run->key[i]))
            return diag_set(d, -EINVAL, "/metric_keys",
                            "key %d must be 1 to 27 characters (logs keys)", i);
        for (int j = 0; j < i; j++)
            if (strcmp(run->key[j], k) == 0)
                return diag_set(d, -EINVAL, "/metric_keys", "keys %d and %d are both '%s'", j,
                                i, k);
        snprintf(run->key[i], sizeof(run->key[i]), "%s", k);
        snprintf(run->val_key[i], sizeof(run->val_key[i]), "val_%s", k);
    }
    return 0;
}

/* Train one epoch (0-based index e).  Returns 0 (epoch done), 1 (a callback
 * asked to stop: finish the epoch with validation and epoch_end, then stop),
 * -ECANCELED (stop flag) or a negative errno. */
static int fit_epoch(struct fit_run *run, struct model *m, struct optimizer *opt,
                     const struct dataset *train, const struct fit_options *o,
                     const struct fit_callbacks *cb, atomic_int *stop, int e,
                     struct logs *logs, struct diag *d)
{
    struct fit_progress *p = &run->p;
    int64_t first = (int64_t)e * p->batches; /* position in the batch stream */
    double t0 = monotonic_seconds(), train_seconds = 0;
    const int nm = p->n_metrics;
    double loss_sum = 0;
    long seen = 0;
    int result = 0;
    int b0 = 0;
    memset(p->metric_sums, 0, sizeof(p->metric_sums));
    if (e == o->initial_epoch && o->initial_batch > 0) { /* a stopped epoch continues */
        b0 = o->initial_batch;
        loss_sum = o->initial_loss_sum;
        seen = o->initial_seen;
        p->batch = b0;
        p->loss_sum = loss_sum;
        memcpy(p->metric_sums, o->initial_metric_sums, sizeof(double) * (size_t)nm);
        p->seen = seen;
        if (seen > 0)
            running_logs(run, logs);
    }
    for (int b = b0; b < p->batches; b++) {
        if (stop_seen(m, stop))
            return -ECANCELED;
        double tb = monotonic_seconds();
        int64_t pass = (first + b) / run->pass_batches;
        if (pass != run->pass) {
            for (uint32_t i = 0; i < (uint32_t)train->n; i++)
                run->idx[i] = i;
            if (o->shuffle) {
                struct rng rng;
                rng_seed(&rng, o->seed, (uint64_t)pass);
                rng_shuffle_u32(&rng, run->idx, (uint32_t)train->n);
            }
            run->pass = pass;
        }
        int start = (int)((first + b) % run->pass_batches) * o->batch_size;
        int nb = train->n - start < o->batch_size ? train->n - start : o->batch_size;
        dataset_gather(train, run->idx + start, nb, run->images, run->labels, run->targets);
        double lr = optimizer_current_lr(opt);
        double loss = 0, ok[METRICS_MAX] = {0};
        int r = run->targets
                    ? model_train_step_targets(m, run->images, train->pixels, run->targets, nb,
                                               o->seed, opt->iterations, &loss, ok)
                    : model_train_step(m, run->images, train->pixels, run->labels, nb, o->seed,
                                       opt->iterations, &loss, ok);
        if (r < 0)
            return diag_set(d, r, "", "training step failed at epoch %d batch %d", e + 1, b + 1);
        optimizer_step(opt, m);
        double tn = monotonic_seconds();
        train_seconds += tn - tb;
        loss_sum += loss * nb;
        for (int i = 0; i < nm; i++)
            p->metric_sums[i] += ok[i];
        seen += nb;
        p->batch = b + 1;
        p->loss_sum = loss_sum;
        p->seen = seen;
        p->iterations = opt->iterations;
        p->lr = lr;
        p->images_per_s = train_seconds > 0 ? (double)seen / train_seconds : 0;
        p->epoch_seconds = tn - t0;
        logs->n = 0;
        running_logs(run, logs);
        if ((cb && cb->batch_end) || collective_active(m->coll)) {
            r = cb && cb->batch_end ? cb->batch_end(cb->ctx, p, logs) : 0;
            r = agree_result(m, r);
            if (r < 0)
                return diag_set(d, r, "", "batch_end callback aborted at epoch %d batch %d",
                                e + 1, b + 1);
            if (r > 0) {
                result = 1; /* Keras: stop_training is checked after each batch */
                break;
            }
        }
    }
    if (stop_seen(m, stop))
        return -ECANCELED;
    return result;
}

int fit(struct model *m, struct optimizer *opt, const struct dataset *train,
        const struct dataset *val, const struct fit_options *o, const struct fit_callbacks *cb,
        atomic_int *stop, struct diag *d)
{
    int r = fit_options_check(m, train, val, o, d);
    if (r < 0)
        return r;
    if (opt->n != m->n_params)
        return diag_set(d, -EINVAL, "/optimizer",
                        "optimizer made for %zu parameters, the model has %zu", opt->n,
                        m->n_params);
    struct fit_run run = {0};
    size_t example = dataset_example_bytes(train);
    run.idx = malloc((size_t)train->n * sizeof(*run.idx));
    run.images = malloc((size_t)o->batch_size * example);
    run.labels = malloc((size_t)o->batch_size);
    if (train->targets)
        run.targets = malloc((size_t)o->batch_size * (size_t)train->target_width * sizeof(float));
    if (!run.idx || !run.images || !run.labels || (train->targets && !run.targets)) {
        fit_run_free(&run);
        return diag_set(d, -ENOMEM, "", "out of memory for the batch buffers");
    }
    struct fit_progress *p = &run.p;
    p->n_metrics = model_n_metrics(m);
    if ((r = metric_keys_set(&run, o, p->n_metrics, d)) < 0) {
        fit_run_free(&run);
        return r;
    }
    p->epochs = o->epochs;
    p->epoch = o->initial_epoch + 1;
    run.pass = -1;
    run.pass_batches = batches_of(train->n, o->batch_size, 0);
    p->batches = o->steps_per_epoch > 0 ? o->steps_per_epoch : run.pass_batches;
    p->iterations = opt->iterations;
    p->lr = optimizer_current_lr(opt);
    bool sums_ok = true;
    for (int i = 0; i < p->n_metrics; i++)
        sums_ok &= o->initial_metric_sums[i] >= 0 && isfinite(o->initial_metric_sums[i]);
    if (o->initial_batch < 0 || o->initial_batch > p->batches || o->initial_seen < 0 ||
        !sums_ok || (o->initial_batch > 0 && o->initial_seen == 0)) {
        fit_run_free(&run);
        return diag_set(d, -EINVAL, "/initial_batch",
                        "resume position batch %d (%ld seen) does not fit an epoch of %d batches",
                        o->initial_batch, o->initial_seen, p->batches);
    }

    int status = 0; /* as train_end gets it */
    if ((cb && cb->train_begin) || collective_active(m->coll)) {
        r = agree_result(m, cb && cb->train_begin ? cb->train_begin(cb->ctx, p) : 0);
        if (r < 0)
            status = diag_set(d, r, "", "train_begin callback aborted");
        else if (r > 0)
            status = 1;
    }
    if (status == 0 && (r = share_lr(m, opt, p->epoch, d)) < 0)
        status = r;
    p->lr = optimizer_current_lr(opt);
    struct logs logs;
    for (int e = o->initial_epoch; status == 0 && e < o->epochs; e++) {
        double t0 = monotonic_seconds();
        p->epoch = e + 1;
        p->batch = 0;
        p->images_per_s = 0;
        p->epoch_seconds = 0;
        p->loss_sum = 0;
        memset(p->metric_sums, 0, sizeof(p->metric_sums));
        p->seen = 0;
        memset(&logs, 0, sizeof(logs));
        bool begin = cb && cb->epoch_begin && !(stop && atomic_load(stop));
        if (begin || collective_active(m->coll)) {
            if (e == o->initial_epoch)
                p->batch = o->initial_batch;
            r = agree_result(m, begin ? cb->epoch_begin(cb->ctx, p) : 0);
            p->batch = 0;
            if (r < 0) {
                status = diag_set(d, r, "", "epoch_begin callback aborted at epoch %d", e + 1);
                break;
            }
            if (r > 0) {
                status = 1;
                break;
            }
            if ((r = share_lr(m, opt, e + 1, d)) < 0) {
                status = r;
                break;
            }
            p->lr = optimizer_current_lr(opt); /* a scheduler may have set it */
        }
        r = fit_epoch(&run, m, opt, train, o, cb, stop, e, &logs, d);
        if (r == -ECANCELED)
            diag_set(d, r, "", "stopped at epoch %d batch %d", e + 1, p->batch);
        if (r < 0) {
            status = r;
            break;
        }
        bool stop_after = r == 1;
        if (val) {
            double vl, va[METRICS_MAX];
            r = evaluate_chunks(m, val, o->batch_size, o->validation_steps, &vl, va, d);
            if (r < 0) {
                status = r;
                break;
            }
            logs_set(&logs, "val_loss", vl);
            for (int i = 0; i < p->n_metrics; i++)
                logs_set(&logs, run.val_key[i], va[i]);
        }
        p->epoch_seconds = monotonic_seconds() - t0;
        if ((r = compare_ranks(m, opt, e + 1, d)) < 0) {
            status = r;
            break;
        }
        if ((cb && cb->epoch_end) || collective_active(m->coll)) {
            r = agree_result(m, cb && cb->epoch_end ? cb->epoch_end(cb->ctx, p, &logs) : 0);
            if (r < 0) {
                status = diag_set(d, r, "", "epoch_end callback aborted at epoch %d", e + 1);
                break;
            }
            stop_after = stop_after || r > 0;
            if ((r = share_lr(m, opt, e + 1, d)) < 0) {
                status = r;
                break;
            }
        }
        if (stop_after)
            status = 1;
    }
    if (cb && cb->train_end)
        cb->train_end(cb->ctx, p, status);
    fit_run_free(&run);
    return status == 1 ? 0 : status;
}
