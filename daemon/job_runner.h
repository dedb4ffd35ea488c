/* job_runner.h - runs one training job end to end: loads its data set, builds
 * the model and optimizer, runs fit() with the job's checkpoint policies and
 * callbacks, writes weight files (core/h5.c, atomic) into
 * <job_dir>/checkpoints/, writes <job_dir>/resume.h5 at every epoch end, and
 * reports everything that happens as events.  The daemon's worker threads
 * and `traind run` share this code path.
 *
 * Resume: when <job_dir>/resume.h5 exists, the run continues from it (weights,
 * BN statistics, optimizer slots and iterations, epoch, policy and callback
 * state) and ends bit-identical to a run never interrupted (same seed and
 * threads).  A run stopped through *stop (SIGTERM, cancel) saves its position
 * inside the epoch and continues after its last finished batch; after a
 * kill -9 the interrupted epoch is redone from its start. */
#ifndef TRAIND_JOB_RUNNER_H
#define TRAIND_JOB_RUNNER_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "collective.h"
#include "diag.h"
#include "job_spec.h"

/* A named data set from the configuration ([dataset.NAME] format= path=). */
/* A warm-started job's copy of its initial_weights file (any layout), in its
 * folder, made at submit. */
#define RUNNER_INITIAL_WEIGHTS_FILE "initial_weights"

struct runner_dataset {
    char name[64];
    char format[16];      /* "idx", "cifar10", or "tensor" (an imported data set) */
    char path[PATH_MAX];  /* folder holding the files; the file itself for "tensor" */
};

struct runner_env {
    const struct runner_dataset *datasets;
    int n_datasets;
    /* Optional: data sets beyond the configured ones (uploaded); 0 and *ret
     * filled, or -ENOENT. */
    int (*resolve_dataset)(void *ctx, const char *name, struct runner_dataset *ret);
    void *resolve_ctx;
    int threads;          /* compute threads when the spec says 0 */
    /* NULL, or the MPI world when this is rank 0 of several (mpi_comm.h):
     * every job then trains over all ranks (job_distribute.c). */
    struct collective *coll;
    /* A rank other than 0: the folder where data sets that rank 0 sends
     * (uploaded ones, or `traind run`'s dataset.file) are kept, named by
     * their SHA-256 (job_distribute.c); created when first needed. */
    const char *rank_cache_dir;
};

/* A rank other than 0: take part in the job rank 0 posted (msg, from
 * mpi_comm_wait) until its fit() ends on every rank.  0, or a negative errno
 * with d filled (the other ranks fail the same step). */
int runner_worker_job(const char *msg, size_t len, const struct runner_env *env,
                      struct diag *d);

/* Event sink, called on the job's thread.  type is one of DESIGN.md's event
 * types; data_json is the event's JSON object (without seq/time, which the
 * sink adds); persist is false only for "progress". */
struct runner_sink {
    void *ctx;
    void (*event)(void *ctx, const char *type, const char *data_json, bool persist);
};

/* Find a configured data set by name in env, or NULL. */
const struct runner_dataset *runner_find_dataset(const struct runner_env *env, const char *name);
/* A configured or (through env->resolve_dataset) uploaded data set: 0 and
 * *ret filled, or -ENOENT. */
int runner_resolve_dataset(const struct runner_env *env, const char *name,
                           struct runner_dataset *ret);

struct model;
struct dataset;
/* Split "train" or "test" of a data set (loaded, or mapped for "tensor"). */
int runner_load_split(struct dataset *ret, const struct runner_dataset *ds, const char *split,
                      struct diag *d);
/* The job's model (built-in name or inline config) for inputs of shape
 * (h, w, c) and classes classes, weights zero (model_create). */
int runner_create_model(struct model **ret, const struct job_spec *spec, const int shape[3],
                        int classes, int max_batch, int threads, struct diag *d);
/* Submit-time check of a warm start: the model of spec for inputs of shape
 * (classes for a built-in) takes the weights file at path by name (as the
 * run will, with spec's skip_mismatch).  -EINVAL with d->field
 * "/initial_weights" and the layer, weight and both shapes in the message. */
int runner_check_initial_weights(const struct job_spec *spec, const char *path, const int shape[3],
                                 int classes, struct diag *d);
/* The job's compile() loss and metric and fit() class_weight onto m:
 * -EINVAL with d naming the field (/loss, /class_weight) when they do not
 * fit the model. */
int runner_set_head(struct model *m, const struct job_spec *spec, struct diag *d);

/* o->metric_keys from the job's metrics (their log keys, in order). */
struct fit_options;
void runner_metric_keys(const struct job_spec *spec, struct fit_options *o);
/* At submit: an inline model whose output size differs from the data set's
 * class count is -EINVAL at "/model", a loss the model's output cannot
 * train at "/loss" (the run would fail when it builds the model).  Other
 * model errors are left to the run. */
int runner_check_model(const struct job_spec *spec, const struct runner_dataset *ds,
                       struct diag *d);
/* A data set of float regression targets (width K > 0; 0 = class labels,
 * always 0): -EINVAL naming the field when the job cannot train on them: a
 * loss other than mean squared / absolute error ("/loss"), a metric other
 * than mse / mae ("/metrics/N", or "/metrics" when the default accuracy
 * applies), class_weight ("/class_weight"), a built-in model or an inline
 * model whose output is not K wide ("/model"). */
int runner_check_targets(const struct job_spec *spec, int width, struct diag *d);

/* Run the job.  job_dir exists and is owned by the job.  Returns 0 when
 * training finished (all epochs or early stopping), -ECANCELED when *stop was
 * set (resume.h5 then holds the position after the last finished batch), other negative errno on
 * failure with d filled.  Emits "state" running at start; the caller emits
 * the terminal state. */
int runner_run(const struct job_spec *spec, const char *job_dir, const struct runner_env *env,
               const struct runner_sink *sink, atomic_int *stop, struct diag *d);

#endif
