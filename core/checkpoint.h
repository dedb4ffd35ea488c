/* checkpoint.h - Keras ModelCheckpoint decisions, without I/O.
 *
 * tf.keras 2.x semantics: monitor (default "val_loss"), mode auto|min|max,
 * save_best_only, save_weights_only, save_freq ("epoch" or every N batches),
 * initial_value_threshold; beyond Keras: save_top_k, save_last, several
 * policies per job.  The caller (the daemon's job runner or a test) asks for a
 * decision at each epoch end / batch end, performs the write it is told to
 * (h5.c), then commits the result so the policy state (best value, top-k
 * table, batch counter) moves on only after the file is safely on disk.
 * The state serialises to JSON for resume.
 *
 * Verbose lines are exactly tf.keras >= 2.8's, e.g.
 *   "Epoch 3: val_loss improved from 1.26973 to 0.98481, saving model to weights-003-0.9848.hdf5"
 *   "Epoch 4: val_loss did not improve from 0.98481"
 *   "Epoch 1: saving model to weights.hdf5"
 *   "Can save best model only with val_loss available, skipping." */
#ifndef TRAIND_CHECKPOINT_H
#define TRAIND_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "logs.h"
#include "template.h"

enum ckpt_mode {
    CKPT_MODE_AUTO,
    CKPT_MODE_MIN,
    CKPT_MODE_MAX,
};

/* One checkpoint policy as the job spec gives it (defaults as tf.keras). */
struct ckpt_policy_config {
    char filepath[TEMPLATE_MAX_PATH]; /* template, relative to the job's checkpoint folder */
    char monitor[64];                 /* "val_loss" */
    enum ckpt_mode mode;              /* AUTO */
    bool save_best_only;              /* false */
    bool save_weights_only;           /* false */
    int save_freq;                    /* 0 = "epoch", else every N batches */
    bool has_initial_value_threshold; /* false */
    double initial_value_threshold;
    int save_top_k;                   /* 0 = unlimited (Keras) */
    bool save_last;                   /* false */
    int verbose;                      /* 0 */
};

void ckpt_policy_config_default(struct ckpt_policy_config *ret);

/* Validate at submit: mode auto must resolve (names ending in loss, mse, mae ->
 * min; accuracy, acc, auc, precision, recall -> max; else an error asking for
 * an explicit mode), the filepath template (template_validate with the job's
 * log keys; batch allowed only with save_freq > 0), the extension (.h5,
 * .hdf5, .keras, .weights.h5; .weights.h5 only with save_weights_only),
 * monitor present in log_keys when it can be known (a val_ key with
 * save_freq > 0 is rejected: batch logs have no val_ keys).  d->field is
 * relative to the policy object ("/filepath", "/monitor", "/mode", ...). */
int ckpt_policy_validate(const struct ckpt_policy_config *cfg, const char *const *log_keys,
                         int n_log_keys, struct diag *d);

/* Resolved mode (MIN or MAX) for cfg; CKPT_MODE_AUTO if it cannot be resolved. */
enum ckpt_mode ckpt_resolve_mode(const struct ckpt_policy_config *cfg);

#endif
