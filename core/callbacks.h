/* callbacks.h - Keras callbacks: the list fit() calls, and the decisions of
 * EarlyStopping, ReduceLROnPlateau, TerminateOnNaN and a step-decay
 * LearningRateScheduler, each without I/O.
 *
 * The list: entries are called in order at train_begin, epoch_begin,
 * batch_end, epoch_end and train_end (cb_list_bind turns a list into the
 * struct fit_callbacks fit() takes).  As Keras, every entry runs even when an
 * earlier one asked to stop; fit() looks at the stop request afterwards.  The
 * daemon's runner fills the list: its progress reporting, one entry per
 * ModelCheckpoint policy (core/checkpoint.c decisions, h5.c writes), the
 * callbacks below, and last the resume-file writer.
 *
 * The callbacks follow tf.keras 2.15 (auto modes: cb_monitor.h); each one is
 * a config (job spec), a state (plain data that round-trips through JSON for
 * the resume file, bit-identical) and functions that decide and report what
 * the caller must do.  Epochs are 1-based in this API (Keras' own are
 * 0-based; messages print Keras' epoch + 1, which is the same number).
 * Messages are Keras' verbose lines, filled whatever verbose says. */
#ifndef TRAIND_CALLBACKS_H
#define TRAIND_CALLBACKS_H

#include <stdbool.h>
#include <stddef.h>

#include "cb_monitor.h"
#include "diag.h"
#include "fit.h"
#include "logs.h"

/* --- the list ---------------------------------------------------------------- */

/* One entry: hooks.ctx is passed to its hooks; each hook may be NULL. */
struct callback {
    const char *name;  /* for diagnostics ("EarlyStopping") */
    struct fit_callbacks hooks;
};

#define CB_LIST_MAX 24

struct cb_list {
    int n;
    struct callback items[CB_LIST_MAX];
};

/* Append a copy of cb.  Returns 0 or -ENOSPC. */
int cb_list_add(struct cb_list *l, const struct callback *cb);
/* Fill ret so that fit() calls every entry of l in order; l must outlive
 * the fit() call.  A hook's negative result stops the calls of that hook
 * at once and is returned; otherwise 1 if any entry asked to stop. */
void cb_list_bind(const struct cb_list *l, struct fit_callbacks *ret);

/* --- EarlyStopping ------------------------------------------------------------- */

struct es_config {
    bool enabled;
    char monitor[64];          /* "val_loss" */
    double min_delta;          /* 0; Keras uses |min_delta| */
    int patience;              /* 0 */
    enum ckpt_mode mode;       /* auto */
    bool has_baseline;         /* baseline null by default */
    double baseline;
    bool restore_best_weights; /* false */
    int start_from_epoch;      /* 0: epochs (0-based, as Keras) < this are not monitored */
};

void es_config_default(struct es_config *ret);

struct es_state {
    int wait;
    double best;               /* +inf (min) / -inf (max) at the start */
    int best_epoch;            /* 0-based, as Keras keeps it */
    int stopped_epoch;         /* 0-based; 0 while not stopped */
    bool stopped;
    bool has_best_weights;     /* the caller holds a copy of the best weights */
};

/* Keras on_train_begin. */
void es_state_init(struct es_state *s, const struct es_config *cfg);

struct es_decision {
    bool monitored;            /* the monitor was in logs and the epoch counted */
    bool improved;
    bool keep_weights;         /* copy the current weights as the best (restore_best_weights) */
    bool stop;                 /* stop training after this epoch */
    bool restore_weights;      /* with stop: set the model to the kept best weights */
    char message[64];          /* with stop: "Epoch 7: early stopping" (Keras prints it at train end) */
    char restore_message[96];  /* with restore_weights: "Restoring model weights from the end of the best epoch: 4." */
};

/* Keras EarlyStopping.on_epoch_end for epoch (1-based).  Updates s as if the
 * caller does what out says (keeps the weights when keep_weights). */
void es_on_epoch_end(const struct es_config *cfg, struct es_state *s, int epoch,
                     const struct logs *logs, struct es_decision *out);

/* JSON object {"wait", "best", "best_epoch", "stopped_epoch", "has_best_weights",
 * "stopped"} (malloc'd; caller frees).  Returns 0 or -ENOMEM. */
int es_state_to_json(const struct es_state *s, char **ret_json);
/* Returns 0 or -EINVAL with d->field a JSON pointer inside the object; ret
 * written only on success.  Unknown keys are rejected. */
int es_state_from_json(const struct es_config *cfg, const char *json, struct es_state *ret,
                       struct diag *d);

/* --- learning-rate changes ------------------------------------------------------- */

/* What a callback did to the optimizer's learning rate.  The learning rate
 * is a float32 variable in Keras: new_lr is already rounded to float. */
struct lr_change {
    bool changed;              /* float(new_lr) != float(old_lr): set it, report "lr_changed" */
    double old_lr, new_lr;
    bool has_message;
    char message[160];
};

/* --- ReduceLROnPlateau --------------------------------------------------------------- */

struct rlrop_config {
    bool enabled;
    char monitor[64];          /* "val_loss" */
    double factor;             /* 0.1, must be < 1 */
    int patience;              /* 10 */
    enum ckpt_mode mode;       /* auto */
    double min_delta;          /* 1e-4 */
    int cooldown;              /* 0 */
    double min_lr;             /* 0 */
    int verbose;               /* 0: messages only in events; 1: also printed */
};

void rlrop_config_default(struct rlrop_config *ret);
/* factor in [0, 1), finite min_delta >= 0 and min_lr >= 0, patience and
 * cooldown >= 0.  d->field relative to the config object ("/factor"). */
int rlrop_config_validate(const struct rlrop_config *cfg, struct diag *d);

struct rlrop_state {
    double best;
    int wait;
    int cooldown_counter;
};

/* Keras _reset (on_train_begin). */
void rlrop_state_init(struct rlrop_state *s, const struct rlrop_config *cfg);
/* Keras ReduceLROnPlateau.on_epoch_end for epoch (1-based) with the
 * optimizer's current base learning rate lr; message
 * "Epoch 5: ReduceLROnPlateau reducing learning rate to 0.0009999999776482583." */
void rlrop_on_epoch_end(const struct rlrop_config *cfg, struct rlrop_state *s, int epoch,
                        const struct logs *logs, double lr, struct lr_change *out);
int rlrop_state_to_json(const struct rlrop_state *s, char **ret_json);
int rlrop_state_from_json(const char *json, struct rlrop_state *ret, struct diag *d);

/* --- LearningRateScheduler with a step decay ------------------------------------------ */

/* The schedule of PyImageSearch's step_decay:
 *   lr(epoch) = initial_learning_rate * factor ^ floor((1 + epoch) / drop_every)
 * with Keras' 0-based epoch (so the first drop comes at the start of the
 * drop_every-th epoch), evaluated in double as Python does, then stored in the
 * float32 learning-rate variable. */
struct lr_step_decay_config {
    bool enabled;
    double initial_learning_rate; /* required */
    double factor;                /* required, > 0 */
    int drop_every;               /* required, >= 1 */
    int verbose;                  /* 0 */
};

int lr_step_decay_validate(const struct lr_step_decay_config *cfg, struct diag *d);
/* The schedule's value for epoch (1-based here, Keras' epoch + 1). */
double lr_step_decay_at(const struct lr_step_decay_config *cfg, int epoch);
/* Keras LearningRateScheduler.on_epoch_begin for epoch (1-based); message
 * "Epoch 5: LearningRateScheduler setting learning rate to 0.0025." every
 * epoch (Keras prints it with verbose even when the rate stays). */
void lr_step_decay_on_epoch_begin(const struct lr_step_decay_config *cfg, int epoch, double lr,
                                  struct lr_change *out);

/* --- TerminateOnNaN -------------------------------------------------------------------- */

/* Keras TerminateOnNaN.on_batch_end for batch (1-based in the epoch): true
 * when logs' loss is NaN or infinite; message "Batch 3: Invalid loss,
 * terminating training" (Keras' 0-based batch index, as it prints it). */
bool ton_on_batch_end(int batch, const struct logs *logs, char *message, size_t size);

#endif
