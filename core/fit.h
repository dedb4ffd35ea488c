/* fit.h - the Keras training loop (Model.fit) over a model, an optimizer and
 * in-memory data sets.
 *
 * Per epoch: run batches of the shuffled training set (reshuffled each pass
 * with an RNG seeded from (seed, pass), so a run resumed at epoch k draws
 * exactly as an uninterrupted one; the last partial batch is kept, as Keras
 * does; steps_per_epoch batches when > 0, see fit()), keep running means of
 * the loss and of each of the model head's metrics, call batch_end, then
 * evaluate on the validation set (at most validation_steps batches when > 0)
 * and call epoch_end with logs loss, the metrics, val_loss and the metrics
 * again with "val_" (the metric keys named by fit_options.metric_keys).  The
 * stop flag is checked between batches.
 *
 * Same model, data, options, seed and thread count give bit-identical
 * weights, also when a run is resumed from a saved (weights, optimizer slots,
 * iterations, epoch). */
#ifndef TRAIND_FIT_H
#define TRAIND_FIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "data.h"
#include "diag.h"
#include "logs.h"
#include "model.h"
#include "optimizer.h"

struct fit_options {
    int epochs;            /* total epochs (Keras `epochs`) */
    int initial_epoch;     /* epochs already done (0 = fresh; resume sets it) */
    int batch_size;        /* 32 in Keras; must be <= model->max_batch */
    int steps_per_epoch;   /* 0 = one pass over the training set; may be more than one */
    int validation_steps;  /* 0 = the whole validation set */
    uint64_t seed;
    bool shuffle;          /* true */
    /* Resume inside epoch initial_epoch + 1: its first initial_batch batches
     * are done and their running sums are given (a stopped run's
     * fit_progress); 0 = start the epoch from its first batch. */
    int initial_batch;
    double initial_loss_sum;
    double initial_metric_sums[METRICS_MAX];
    long initial_seen;
    /* The log key of each of the model head's metrics, in the head's order
     * (Keras names them after compile()'s metrics entries, e.g.
     * "sparse_categorical_accuracy", "mse"; validation adds "val_");
     * metric_keys[0] NULL = "accuracy", the others must be set.  At most 27
     * characters each, all different.  The metrics themselves are the
     * model's head (model_set_head). */
    const char *metric_keys[METRICS_MAX];
};

/* What callbacks see.  epoch and batch are 1-based. */
struct fit_progress {
    int epoch, epochs;
    int batch, batches;      /* batch within the epoch; 0 at epoch start */
    int64_t iterations;      /* optimizer steps done in total */
    double lr;               /* learning rate of the last step */
    double images_per_s;     /* training throughput over the current epoch */
    double epoch_seconds;    /* wall time of the epoch so far */
    /* Running sums of the epoch so far (loss * examples, each metric summed
     * over the examples, examples): with batch, what fit_options needs to
     * continue a stopped epoch. */
    double loss_sum, metric_sums[METRICS_MAX];
    int n_metrics; /* the model head's */
    long seen;
};

/* Callback results: 0 = continue, 1 = stop training after this point
 * (EarlyStopping), negative errno = abort fit() with that error.  As Keras
 * checks stop_training after each batch: 1 from batch_end ends the epoch
 * there, and its validation and epoch_end still run; 1 from epoch_end stops
 * after that epoch; 1 from train_begin runs no epoch; 1 from epoch_begin
 * runs no batch of that epoch (Keras: stop_training is first checked after a
 * batch, so that epoch still runs; traind stops before it).  epoch_begin is
 * also called for an epoch resumed inside (p->batch > 0 then), not once the
 * stop flag is seen.  train_end is
 * always called once train_begin was.  A list of callbacks: callbacks.h. */
struct fit_callbacks {
    void *ctx;
    int (*train_begin)(void *ctx, const struct fit_progress *p);
    int (*epoch_begin)(void *ctx, const struct fit_progress *p);
    int (*batch_end)(void *ctx, const struct fit_progress *p, const struct logs *logs);
    int (*epoch_end)(void *ctx, const struct fit_progress *p, const struct logs *logs);
    /* status: 0 finished, 1 stopped by a callback, -ECANCELED stop flag, other negative: error */
    void (*train_end)(void *ctx, const struct fit_progress *p, int status);
};

void fit_options_default(struct fit_options *ret);

/* Train.  val may be NULL (no validation logs).  stop may be NULL.
 * Batches are drawn from one stream of passes over train, pass k shuffled
 * with rng_seed(seed, k); epoch e takes the stream's batches e * steps ..
 * (e + 1) * steps - 1 (steps = steps_per_epoch, or one pass when 0), as
 * tf.keras does with arrays, so that epochs limited by steps_per_epoch go on
 * through the data instead of repeating its start; model_train_step gets
 * (seed, step = opt->iterations); validation uses batches of batch_size in
 * order.  Buffers are allocated once per call, none per batch.
 * Returns 0 when all epochs ran (or a callback asked to stop), -ECANCELED when
 * the stop flag was seen (the current batch is finished first, the epoch is
 * not completed and epoch_end is not called), or a negative errno. */
int fit(struct model *m, struct optimizer *opt, const struct dataset *train,
        const struct dataset *val, const struct fit_options *o, const struct fit_callbacks *cb,
        atomic_int *stop, struct diag *d);

/* Evaluate on ds (inference mode): mean loss and the mean of each of the
 * model head's metrics (ret_metrics, model_n_metrics(m) values) over at most
 * `steps` batches (0 = all). */
int fit_evaluate(struct model *m, const struct dataset *ds, int batch_size, int steps,
                 double *ret_loss, double *ret_metrics, struct diag *d);

#endif
