/* checkpoint.h - Keras ModelCheckpoint decisions, without I/O.
 *
 * tf.keras 2.x semantics: monitor (default "val_loss"), mode auto|min|max,
 * save_best_only, save_weights_only, save_freq ("epoch" or every N batches),
 * initial_value_threshold; beyond Keras: save_top_k, save_last, several
 * policies per job.  The caller (the daemon's job runner or a test) asks for a
 * decision at each epoch end / batch end, performs the write it is told to
 * (h5.c), then commits the result so the policy state (best value, top-k
 * table, last file) moves on only after the file is safely on disk; the batch
 * counter moves at every ckpt_on_batch_end as Keras's does (a failed write
 * loses that save, it is not retried at the next batch).  The state
 * serialises to JSON for resume.  No function here does I/O.
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

#include "cb_monitor.h"
#include "diag.h"
#include "logs.h"
#include "template.h"

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
 * .hdf5, .keras, .weights.h5; .weights.h5 only with save_weights_only,
 * .keras only without), monitor present in log_keys when it can be known (a
 * val_ key with save_freq > 0 is rejected: batch logs have no val_ keys).
 * The monitor checks apply when the monitor decides something
 * (save_best_only or save_top_k); otherwise it is only reported, as in Keras.
 * With save_freq > 0 the template may not use val_ keys either.  n_log_keys 0
 * means unknown: the template is checked against fit()'s loss, accuracy,
 * val_loss, val_accuracy.  Also: save_top_k <= CKPT_TOP_K_MAX, a finite
 * initial_value_threshold, and with save_last a filepath other than the
 * "last" name.  d->field is relative to the policy object ("/filepath",
 * "/monitor", "/mode", ...); template errors keep their "position N: ". */
int ckpt_policy_validate(const struct ckpt_policy_config *cfg, const char *const *log_keys,
                         int n_log_keys, struct diag *d);

/* Resolved mode (MIN or MAX) for cfg; CKPT_MODE_AUTO if it cannot be resolved. */
enum ckpt_mode ckpt_resolve_mode(const struct ckpt_policy_config *cfg);

/* Largest save_top_k accepted by ckpt_policy_validate. */
#define CKPT_TOP_K_MAX 16

/* One file of this policy that top-k retention tracks. */
struct ckpt_kept_file {
    char file[TEMPLATE_MAX_PATH]; /* relative to the checkpoint folder */
    double value;                 /* monitored value; NaN when absent */
    int epoch;                    /* 1-based */
    int batch;                    /* 1-based, 0 for an epoch-end save */
    long seq;                     /* save number (1 = first save): older = smaller */
};

/* Policy state.  Plain data: copy it, or serialise it with ckpt_state_to_json.
 * About 18 KB; allocate it with the job, not on a small stack. */
struct ckpt_state {
    double best;                  /* +inf (min) / -inf (max) or initial_value_threshold */
    char best_file[TEMPLATE_MAX_PATH]; /* file holding best, "" before the first */
    int best_epoch;               /* 0 before the first */
    int batches_since_last_save;  /* Keras _batches_seen_since_last_saving */
    int last_batch_seen;          /* Keras _last_batch_seen (0-based batch index) */
    long saves;                   /* committed writes */
    char last_saved[TEMPLATE_MAX_PATH]; /* newest committed file, "" before the first */
    int n_kept;                   /* top-k table (save_top_k > 0 only), oldest first */
    struct ckpt_kept_file kept[CKPT_TOP_K_MAX + 1];
};

void ckpt_state_init(struct ckpt_state *state, const struct ckpt_policy_config *cfg);

enum ckpt_decision_kind {
    CKPT_DECISION_NONE,         /* nothing to report (other save_freq, counter not reached) */
    CKPT_DECISION_IMPROVED,     /* save_best_only: strictly better than best: write */
    CKPT_DECISION_NOT_IMPROVED, /* save_best_only: not better: no write */
    CKPT_DECISION_SAVED,        /* save_best_only false: write every time */
    CKPT_DECISION_SKIPPED,      /* save_best_only: monitor missing, NaN or infinite: no write */
};

/* "none", "improved", "not_improved", "saved", "skipped" (the event names). */
const char *ckpt_decision_kind_name(enum ckpt_decision_kind kind);

struct ckpt_decision {
    enum ckpt_decision_kind kind;
    bool should_write;            /* write the model/weights to file, then ckpt_commit */
    int epoch;                    /* 1-based */
    int batch;                    /* 1-based, 0 at epoch end */
    char file[TEMPLATE_MAX_PATH]; /* rendered relative path when should_write, else "" */
    char message[TEMPLATE_MAX_PATH + 192]; /* Keras verbose line ("" for NONE); filled
                                            * whatever cfg->verbose says */
    char monitor[64];
    bool has_value;               /* monitor present in logs */
    double value;                 /* its value (may be NaN/inf) when has_value */
    double previous_best;         /* state->best when deciding */
};

/* Decision at the end of epoch (1-based) with the epoch logs.  NONE when
 * save_freq is a batch count.  Returns 0, or the template_render error (the
 * filepath needs a key the logs lack) with d filled and out->kind NONE.
 * Does not change state. */
int ckpt_on_epoch_end(const struct ckpt_policy_config *cfg, const struct ckpt_state *state,
                      int epoch, const struct logs *logs, struct ckpt_decision *out,
                      struct diag *d);

/* Decision at the end of batch (1-based within epoch) with the batch logs.
 * Counts batches as Keras (across epochs) when save_freq > 0 and decides
 * when the count reaches save_freq (the counter then restarts); NONE
 * otherwise.  Changes only the batch counter. */
int ckpt_on_batch_end(const struct ckpt_policy_config *cfg, struct ckpt_state *state, int epoch,
                      int batch, const struct logs *logs, struct ckpt_decision *out,
                      struct diag *d);

struct ckpt_commit_result {
    bool became_best;             /* state->best / best_file now name this file */
    int n_delete;                 /* files top-k retention drops: the caller deletes them */
    char delete_files[CKPT_TOP_K_MAX + 1][TEMPLATE_MAX_PATH];
    char last_file[32];           /* save_last: "last" + template extension (e.g.
                                   * "last.hdf5", at the top of the checkpoint
                                   * folder), to (re)write as a copy of
                                   * decision->file; "" when save_last is off */
};

/* Record that decision->file was written successfully.  Moves best (a
 * finite value strictly better than best), the last file, the save count and
 * the top-k table: the k best files (ties: the older stays) plus the file
 * just written are kept, every other file of the table is listed for
 * deletion; a name written again replaces its old entry and is never listed.
 * Call only after a successful write: without the commit nothing moves.
 * Returns 0 or -EINVAL when decision has nothing to commit. */
int ckpt_commit(const struct ckpt_policy_config *cfg, struct ckpt_state *state,
                const struct ckpt_decision *decision, struct ckpt_commit_result *out);

/* Serialise state to a JSON object (a malloc'd string the caller frees).
 * Doubles are written so that they read back bit-identical ("inf", "-inf"
 * and "nan" as strings).  Returns 0 or -ENOMEM. */
int ckpt_state_to_json(const struct ckpt_state *state, char **ret_json);

/* Restore a state written by ckpt_state_to_json for the same policy cfg.
 * Returns 0 or -EINVAL with d (field: JSON pointer inside the state object);
 * ret is written only on success. */
int ckpt_state_from_json(const struct ckpt_policy_config *cfg, const char *json,
                         struct ckpt_state *ret, struct diag *d);

#endif
