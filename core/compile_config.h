/* compile_config.h - what Keras records of model.compile(): tf.keras 2's
 * `training_config` attribute of a full-model HDF5 file and Keras 3's
 * `compile_config` of a `.keras` archive's config.json, for a job's loss,
 * metrics and optimizer.
 *
 * Forms (from the Keras sources):
 *   tf.keras 2.15 (saving_utils.model_metadata): {"loss", "metrics",
 *     "weighted_metrics": null, "loss_weights": null, "optimizer_config":
 *     {"class_name", "config"}}; a loss or metric given as a name stays that
 *     string, one given as an object is {"class_name", "config"} with its
 *     get_config() keys (losses: "reduction": "auto", "name", then
 *     from_logits / label_smoothing / axis / ignore_class as the class has
 *     them; metrics: "name", "dtype": "float32", then k / threshold).
 *   Keras 3 (KERAS3_FORM_VERSION, Trainer.compile's SerializableDict):
 *     {"optimizer", "loss", "loss_weights": null, "metrics",
 *     "weighted_metrics": null, "run_eagerly": false,
 *     "steps_per_execution": 1, "jit_compile": false} (jit_compile "auto"
 *     resolves to false on a CPU-only TensorFlow and on torch); objects as
 *     {"module", "class_name", "config", "registered_name": null}, losses
 *     with "reduction": "sum_over_batch_size".
 *
 * No I/O; the returned strings are malloc'ed and the caller's. */
#ifndef TRAIND_COMPILE_CONFIG_H
#define TRAIND_COMPILE_CONFIG_H

#include <stdbool.h>

#include "losses.h"
#include "model_spec.h"
#include "optimizer.h"

/* compile(loss=..., metrics=[...]) as a job gave them. */
struct compile_spec {
    const char *loss;             /* the name as given (used when !loss_object) */
    bool loss_object;             /* given as a serialized loss */
    struct loss_config loss_config;
    int n_metrics;                /* 0 .. METRICS_MAX */
    struct compile_metric {
        const char *name;         /* as given (a name), or the object's config.name */
        bool object;              /* given as a serialized metric */
        struct metric_config config;
    } metrics[METRICS_MAX];
};

/* The flavour's record of compile(optimizer=opt, loss, metrics) for c (NULL:
 * loss "categorical_crossentropy", metrics ["accuracy"]).  opt NULL writes no
 * optimizer_config (tf.keras 2) / "optimizer": null (Keras 3).  NULL when
 * out of memory. */
char *compile_config_to_json(const struct compile_spec *c, const struct optimizer *opt,
                             enum keras_flavour flavour);

#endif
