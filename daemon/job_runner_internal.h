/* job_runner_internal.h - what job_runner.c shares with resume_state.c
 * (the state JSON inside resume.h5).  Only these two include it; the Keras
 * callbacks beyond ModelCheckpoint are runner_callbacks.h's. */
#ifndef TRAIND_JOB_RUNNER_INTERNAL_H
#define TRAIND_JOB_RUNNER_INTERNAL_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "checkpoint.h"
#include "collective.h"
#include "data.h"
#include "fit.h"
#include "cjson_add.h"
#include "diag.h"
#include "fsutil.h"
#include "job_runner.h"
#include "logs.h"
#include "model.h"
#include "optimizer.h"
#include "runner_callbacks.h"

#define RUNNER_RESUME_FILE "resume.h5"
#define RUNNER_CHECKPOINT_DIR "checkpoints"
#define RUNNER_STATE_VERSION 1
#define RUNNER_PROGRESS_INTERVAL 0.25 /* seconds between "progress" events */

struct runner {
    const struct job_spec *spec;
    const char *job_dir;
    char ckpt_dir[PATH_MAX];
    int ckpt_dirfd;        /* O_DIRECTORY fd of ckpt_dir (top-k deletions) */
    const struct runner_sink *sink;
    struct model *m;
    struct optimizer *opt;
    int n_policies;
    struct ckpt_state policies[JOB_SPEC_MAX_CHECKPOINTS];
    struct runner_policy { /* a ModelCheckpoint entry's context */
        struct runner *r;
        int i;
    } policy_ctx[JOB_SPEC_MAX_CHECKPOINTS];
    struct runner_cb cbs;  /* EarlyStopping, ReduceLROnPlateau, scheduler, TerminateOnNaN */
    struct cb_list list;   /* what fit() calls */
    double last_progress;  /* monotonic seconds of the last progress event */
    struct diag err;       /* why a callback aborted fit() */
    atomic_int *stop;      /* the caller's stop flag (may be NULL) */
    /* Position inside an epoch when a stopped run saved its state (batch 0:
     * at an epoch boundary), and what a continued run starts from. */
    int in_batch;
    double in_loss_sum;
    double in_metric_sums[METRICS_MAX];
    long in_seen;
    /* With several ranks: the collective's seconds and the iterations when
     * fit() began (collective time per step in the events). */
    double coll_s0;
    int64_t coll_it0;
};

/* --- job_runner.c */
/* Hand obj (consumed; NULL is ignored) to the sink as an event. */
void runner_emit(struct runner *r, const char *type, cJSON *obj, bool persist);
/* The job's data sets (train, and val: the validation split or the test
 * split) from env. */
int runner_load_data(const struct job_spec *spec, const struct runner_env *env,
                     struct dataset *train, struct dataset *val, struct diag *d);
/* r->m (seeded weights) and r->opt for r->spec and the data set train. */
int runner_build_model(struct runner *r, const struct dataset *train,
                       const struct runner_env *env, struct diag *d);

/* --- job_distribute.c */
/* Rank 0, before fit(): posts the job to the other ranks of env->coll
 * (mpi_comm.c), sends its data set file to the ranks that do not have it
 * cached when it is not a configured one, checks that every rank set the job
 * up and holds the same data, sends the starting weights, optimizer state and
 * position, and sets r->m->coll. */
int runner_distribute(struct runner *r, const struct runner_env *env,
                      const struct dataset *train, const struct dataset *val,
                      const struct fit_options *o, struct diag *d);

/* --- warm_start.c */
/* Load <job_dir>/initial_weights by name into r->m (spec initial_weights
 * set; a no-op otherwise) and emit the "initial_weights" event. */
int runner_warm_start(struct runner *r, struct diag *d);

/* --- resume_state.c */
/* The state JSON written into resume.h5 (malloc'ed; NULL: out of memory). */
char *resume_state_json(struct runner *r);
/* Continue from <job_dir>/resume.h5 when it exists: *ret_epoch = epochs
 * done (0 without a file).  -errno with d for a file that cannot be used. */
int resume_state_load(struct runner *r, int *ret_epoch, struct diag *d);

#endif
