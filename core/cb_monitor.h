/* cb_monitor.h - which way a monitored log value improves: the `mode`
 * argument of ModelCheckpoint, EarlyStopping and ReduceLROnPlateau and the
 * one place where `auto` is resolved.
 *
 * The documented Keras version is tf.keras 2.15 (the last tf.keras 2, with
 * EarlyStopping's start_from_epoch).  Its `auto` rules differ per callback:
 *   EarlyStopping      max when the name ends in "acc", "accuracy" or "auc",
 *                      else min;
 *   ReduceLROnPlateau  max when the name contains "acc", else min;
 *   ModelCheckpoint    Keras: max when the name contains "acc" or starts with
 *                      "fmeasure", else min.  traind is stricter here: names
 *                      ending in loss, mse, mae -> min; accuracy, acc, auc,
 *                      precision, recall -> max; anything else is rejected at
 *                      submit (it would silently be "min" in Keras).
 * For every log key traind produces (loss, accuracy, the *_accuracy metrics,
 * mse, mae and their val_ forms) the three rules agree. */
#ifndef TRAIND_CB_MONITOR_H
#define TRAIND_CB_MONITOR_H

enum ckpt_mode {
    CKPT_MODE_AUTO,
    CKPT_MODE_MIN,
    CKPT_MODE_MAX,
};

enum cb_kind {
    CB_KIND_MODEL_CHECKPOINT,
    CB_KIND_EARLY_STOPPING,
    CB_KIND_REDUCE_LR_ON_PLATEAU,
};

/* mode itself when MIN or MAX; else the `auto` rule of kind for monitor.
 * Returns CKPT_MODE_AUTO only for CB_KIND_MODEL_CHECKPOINT with a name its
 * rule does not know. */
enum ckpt_mode cb_resolve_mode(enum cb_kind kind, const char *monitor, enum ckpt_mode mode);

/* "auto", "min", "max". */
const char *cb_mode_name(enum ckpt_mode mode);

#endif
