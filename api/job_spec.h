/* job_spec.h - a training job as a client submits it (POST /v1/jobs, traind run).
 *
 * JSON in Keras vocabulary (see DESIGN.md "Job spec"); unknown fields are
 * rejected; every error names its field as a JSON pointer in d->field
 * ("/checkpoints/0/filepath").  The model is a built-in name ("minivggnet")
 * or an inline Keras Sequential config object (model.to_json()).
 *
 * Beyond Keras (to keep demo and test jobs small): "dataset" may be an object
 *   {"name": "fashion-mnist", "validation_split": 0.1, "limit": 2000,
 *    "validation_limit": 500}
 * where limit keeps the first N examples of the training split (applied
 * before validation_split takes its tail, as Keras takes the tail of the
 * x it is given) and validation_limit the first N validation examples (of
 * the test split, or of the validation_split tail); null or 0 = all.
 * "threads" (0..64, 0 = the daemon's setting) fixes the compute threads;
 * results are bit-identical only for the same thread count.  "model" may
 * also be the string model.to_json() returns.  "optimizer" may be a bare
 * name ("sgd", "adam") and accepts Keras 2's old "lr" for learning_rate.
 *
 * Ownership: job_spec_parse fills a struct that owns model_json and
 * checkpoints; job_spec_free releases them (NULL-safe). */
#ifndef TRAIND_JOB_SPEC_H
#define TRAIND_JOB_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "callbacks.h"
#include "checkpoint.h"
#include "diag.h"
#include "losses.h"
#include "optimizer.h"

#define JOB_SPEC_MAX_CHECKPOINTS 8

struct job_spec {
    char name[128];                 /* optional, "" when absent */
    char dataset[64];               /* a dataset name the daemon knows ("fashion-mnist") */
    double validation_split;        /* 0 = use the dataset's test split */
    int dataset_limit;              /* "limit": keep the first N training examples (0 = all) */
    /* `traind run` only (job_spec_parse_local): "file" names a local data
     * set file (npz, image folder archive, HDF5, CIFAR-10 tarball) that the
     * run converts; "format", "image_size" [h, w], "color_mode" and "seed"
     * are its import options ("" / 0 = the importer's defaults). */
    char dataset_file[PATH_MAX];
    char dataset_format[16];
    int image_size[2];
    char color_mode[16];
    long long import_seed;          /* -1 = default */
    int validation_limit;           /* "validation_limit": first N validation examples (0 = all) */
    char model[64];                 /* built-in name, or "" when model_json is set */
    char *model_json;               /* inline Keras Sequential config (owned) or NULL */
    struct optimizer_config optimizer;
    int batch_size;                 /* 32 */
    int epochs;                     /* 1 */
    uint64_t seed;                  /* 1 */
    int steps_per_epoch;            /* 0 = null */
    int validation_steps;           /* 0 = null */
    int threads;                    /* 0 = the daemon's threads per job */
    /* Keras compile(loss=..., metrics=[...]) and fit(class_weight=...).
     * "loss" is a name or a serialized Keras loss {"class_name", "config":
     * {"from_logits", "label_smoothing", ...}}; "metrics" a list of 1 to
     * METRICS_MAX metrics, each a name or a
     * serialized Keras metric ({"class_name": "TopKCategoricalAccuracy",
     * "config": {"k": 3}}), whose name is its log key (metric and "val_" +
     * metric; "acc" is logged as "accuracy"); two metrics with one log key
     * are refused.  Targets are the data set's integer labels (one-hot rows
     * for the non-sparse losses). */
    char loss[40];                  /* as given when a name, else loss_kind_name() */
    bool loss_object;               /* given as a serialized loss */
    struct loss_config loss_config;
    struct job_metric {
        char name[40];              /* as given, or the metric class's default name */
        bool object;                /* given as a serialized metric */
        char key[40];               /* the log key: "accuracy" */
        struct metric_config config;
    } metrics[METRICS_MAX];
    int n_metrics;                  /* 1 .. METRICS_MAX */
    bool metrics_default;           /* "metrics" not given: ["accuracy"] */
    int n_class_weight;             /* class_weight entries, 0 = none */
    struct {
        int cls;                    /* 0..255 */
        double weight;              /* finite, >= 0 */
    } class_weight[256];
    int n_checkpoints;
    struct ckpt_policy_config checkpoints[JOB_SPEC_MAX_CHECKPOINTS];
    /* "callbacks": {"early_stopping": {...}, "reduce_lr_on_plateau": {...},
     *               "lr_scheduler": {"schedule": "step_decay", ...},
     *               "terminate_on_nan": true}; each absent or null = off. */
    struct es_config early_stopping;
    struct rlrop_config reduce_lr;
    struct lr_step_decay_config lr_scheduler;
    bool terminate_on_nan;
    /* "initial_weights": warm start, Keras load_weights(by_name=True,
     * skip_mismatch) before training.  null, {"job": "<id>", "file":
     * "best" | "<checkpoint path>", "skip_mismatch": false} (a checkpoint
     * of another job; "best" = the best file of its first policy), or
     * {"upload": "<name>", "skip_mismatch": false} (a file PUT to
     * /v1/weights/<name>).  The daemon resolves and copies the file at
     * submit. */
    struct {
        bool set;
        char job[20];               /* source job id, or "" */
        char file[TEMPLATE_MAX_PATH]; /* "best" or a path in that job's folder */
        char upload[64];            /* uploaded weights name, or "" */
        bool skip_mismatch;
    } initial_weights;
};

/* Parse and validate a job spec JSON text.  Checks types, ranges, unknown
 * fields, the model (built-in name or a parseable Sequential config), the
 * optimizer, and each checkpoint policy (ckpt_policy_validate with the log
 * keys this job will produce).  Dataset names are checked by the daemon. */
int job_spec_parse(struct job_spec *ret, const char *json, size_t len, struct diag *d);
/* As job_spec_parse, and "dataset" may also be {"file": ...} (a local
 * path: `traind run` only; the HTTP API never accepts server paths). */
int job_spec_parse_local(struct job_spec *ret, const char *json, size_t len, struct diag *d);
/* The normalised spec as JSON with every default filled in (malloc'ed). */
char *job_spec_to_json(const struct job_spec *spec);
void job_spec_free(struct job_spec *spec);

#endif
