/* model_summary.h - the model catalog routes: GET /v1/models (the built-in
 * models with Keras' parameter counts on the input shapes of the usual data
 * sets) and POST /v1/models/validate (a model config's Keras
 * model.summary(), without training).
 *
 * Both return a malloc'ed JSON document the caller frees; nothing is
 * written on failure. */
#ifndef TRAIND_API_MODEL_SUMMARY_H
#define TRAIND_API_MODEL_SUMMARY_H

#include <stddef.h>

#include "diag.h"

/* The input shape and class count a built-in model is summarised on when a
 * request gives none (CIFAR-10's). */
#define MODEL_SUMMARY_DEFAULT_CLASSES 10

/* {"models": [{"name", "kind": "builtin", "classes", "variants": [{"input_shape":
 * [H, W, C], "total_params", "trainable_params", "non_trainable_params"}]},
 * ..., {"name": "custom", "kind": "keras_json"}]}: every built-in on
 * 32x32x3 (CIFAR-10) and 28x28x1 (MNIST, Fashion-MNIST) with 10 classes.
 * 0 or -ENOMEM. */
int model_catalog_json(char **ret_json);

/* The summary of the model in body, a JSON object {"model": a built-in name
 * or a Keras Sequential / Functional config (an object or the string
 * model.to_json() returns), "input_shape": [H, W, C] (optional: for a
 * config, replaces its own; for a built-in, default 32x32x3), "classes": N
 * (built-ins only, default 10)}.  The answer: {"name", "class_name",
 * "input_shape": [null, H, W, C], "layers": [{"name", "class_name",
 * "output_shape": [null, ...] (Keras' form: [null, features] for a flat
 * tensor), "params", "trainable_params", "trainable", "inbound": [layer
 * names] (functional models)}], "total_params", "trainable_params",
 * "non_trainable_params"}.  Errors: -EINVAL with d naming the field
 * ("/model/config/layers/3/config/filters", "/input_shape"), -ENOMEM. */
int model_summary_json(const char *body, size_t len, char **ret_json, struct diag *d);

#endif
