/* runner_callbacks.h - the job runner's Keras callbacks beyond
 * ModelCheckpoint: EarlyStopping, ReduceLROnPlateau, the step-decay
 * LearningRateScheduler and TerminateOnNaN.  The decisions are core/'s
 * (callbacks.h); this file does what they ask: sets the optimizer's
 * learning rate, keeps and restores the best weights (in memory and in
 * <job_dir>/early_stopping_best.h5, tf.keras weights-only layout, read back
 * only with the SHA-256 the resume state records), and reports events:
 *   "lr_changed"       {epoch, source, previous, lr, message, printed}
 *   "lr_kept"          {epoch, source, lr, message, printed}: a verbose
 *                      LearningRateScheduler epoch that keeps the rate
 *   "early_stopping"   {epoch, monitor, best, best_epoch, wait, patience,
 *                       restored_best_weights, message, restore_message
 *                       (only when restored)}
 *   "terminate_on_nan" {epoch, batch, loss, message}
 * Each "message" is Keras' printed line; the renderer (progress.c) prints
 * it (EarlyStopping's and TerminateOnNaN's always, the learning-rate ones
 * when "printed", i.e. the callback's verbose >= 1).
 *
 * State in the resume file (keys of the runner's state object):
 *   "early_stopping": es_state_to_json + "best_weights_sha256" (hex) when
 *                     best weights are kept;
 *   "reduce_lr_on_plateau": rlrop_state_to_json (only when enabled);
 *   "learning_rate": the optimizer's current base rate (exact);
 *   "terminated_on_nan": true once TerminateOnNaN stopped the run.
 * Files written before these existed lack the last three: read as the
 * spec's rate and false. */
#ifndef TRAIND_RUNNER_CALLBACKS_H
#define TRAIND_RUNNER_CALLBACKS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "callbacks.h"
#include "diag.h"
#include "job_spec.h"
#include "model.h"
#include "optimizer.h"

#define RUNNER_ES_BEST_FILE "early_stopping_best.h5"

/* Where events go (the runner's sink). */
struct runner_cb_io {
    void *ctx;
    void (*emit)(void *ctx, const char *type, cJSON *obj); /* takes obj */
};

struct runner_cb {
    const struct job_spec *spec;
    const char *job_dir;
    struct model *m;
    struct optimizer *opt;
    struct runner_cb_io io;
    struct es_state es;
    float *best_weights;        /* (n_params) with restore_best_weights */
    uint8_t best_sha256[32];    /* of early_stopping_best.h5 as written */
    struct rlrop_state rlrop;
    bool terminated_on_nan;
    struct diag err;            /* why a hook aborted fit() */
};

/* Fresh state (Keras on_train_begin) for a built model and optimizer.
 * 0 or -ENOMEM. */
int runner_cb_init(struct runner_cb *c, const struct job_spec *spec, const char *job_dir,
                   struct model *m, struct optimizer *opt, const struct runner_cb_io *io,
                   struct diag *d);
void runner_cb_free(struct runner_cb *c);

/* Append the enabled callbacks' entries to l, in this order: the scheduler
 * (epoch_begin), TerminateOnNaN (batch_end), EarlyStopping,
 * ReduceLROnPlateau (epoch_end).  0 or -ENOSPC. */
int runner_cb_add(struct runner_cb *c, struct cb_list *l);

/* true when the run had already ended (early stopping, TerminateOnNaN). */
bool runner_cb_finished(const struct runner_cb *c);

/* Add the state keys to the runner's state object o.  false when out of memory. */
bool runner_cb_state_add(const struct runner_cb *c, cJSON *o);
/* Restore from the runner's state object o (and the best weights' file).
 * Returns 0 or a negative errno with d. */
int runner_cb_state_restore(struct runner_cb *c, const cJSON *o, struct diag *d);

#endif
