/* model.h - a Keras Sequential model: its description (spec), its weights and
 * the runtime that trains and evaluates it.
 *
 * Ownership: model_spec_* functions own spec->layers (freed by
 * model_spec_free).  model_create() copies the spec; the model owns its
 * arenas, its runtime scratch and its compute threads; model_free(NULL) is a
 * no-op.  A model is used by one thread at a time (its own compute threads
 * are internal).
 *
 * Tensors are float32 NHWC (channels last, as Keras).  Shapes per example are
 * (H, W, C); Dense and Flatten outputs are (1, 1, features). */
#ifndef TRAIND_MODEL_H
#define TRAIND_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"

enum layer_kind {
    LAYER_KIND_CONV2D,
    LAYER_KIND_DENSE,
    LAYER_KIND_BATCH_NORMALIZATION,
    LAYER_KIND_ACTIVATION,
    LAYER_KIND_MAX_POOLING2D,
    LAYER_KIND_AVERAGE_POOLING2D,
    LAYER_KIND_DROPOUT,
    LAYER_KIND_FLATTEN,
};

enum activation_kind {
    ACTIVATION_KIND_LINEAR,
    ACTIVATION_KIND_RELU,
    ACTIVATION_KIND_SIGMOID,
    ACTIVATION_KIND_TANH,
    ACTIVATION_KIND_SOFTMAX,
};

enum padding_kind {
    PADDING_KIND_VALID,
    PADDING_KIND_SAME,
};

/* One layer as Keras configures it (the "config" object of model.to_json()). */
struct layer_config {
    enum layer_kind kind;
    char name[64];                   /* Keras name: conv2d, conv2d_1, batch_normalization, ... */
    enum activation_kind activation; /* Conv2D, Dense, Activation; LINEAR otherwise */
    int filters;                     /* Conv2D */
    int units;                       /* Dense */
    int kernel_size[2];              /* Conv2D (kh, kw) */
    int pool_size[2];                /* pooling (ph, pw) */
    int strides[2];                  /* Conv2D and pooling (sh, sw); pooling default = pool_size */
    enum padding_kind padding;       /* Conv2D and pooling */
    bool use_bias;                   /* Conv2D, Dense (default true) */
    float momentum;                  /* BatchNormalization (0.99) */
    float epsilon;                   /* BatchNormalization (1e-3) */
    float rate;                      /* Dropout */
};

/* A Sequential model's description. */
struct model_spec {
    char name[64];          /* Keras model name, "sequential" by default */
    int input_shape[3];     /* (H, W, C) */
    int n_layers;
    struct layer_config *layers; /* owned */
};

/* Keras variable of a layer, in Keras order (kernel, bias / gamma, beta,
 * moving_mean, moving_variance). */
struct weight {
    const char *name;   /* "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance" */
    int ndim;
    int shape[4];       /* Keras shape: Conv2D kernel (kh, kw, in, out) = HWIO; Dense kernel (in, out) */
    size_t size;        /* elements */
    size_t offset;      /* into model->params and model->grads */
    bool trainable;     /* false for moving_mean / moving_variance */
};

#define LAYER_MAX_WEIGHTS 4

struct layer {
    struct layer_config cfg;
    int in_shape[3];    /* (H, W, C) per example */
    int out_shape[3];
    int n_weights;
    struct weight weights[LAYER_MAX_WEIGHTS];
};

struct model_runtime; /* private to model.c */

struct model {
    struct model_spec spec;   /* owned copy */
    int n_layers;
    struct layer *layers;     /* (n_layers) */
    int input_shape[3];       /* (H, W, C) */
    int classes;              /* size of the final softmax */
    size_t n_params;          /* all variables, trainable and not, in layer order */
    size_t n_trainable;       /* Keras "Trainable params" */
    float *params;            /* (n_params), one 64-byte aligned arena */
    float *grads;             /* (n_params), same layout; mean over the batch after a step; 0 where not trainable */
    int threads;              /* compute threads (>= 1) */
    int max_batch;
    struct model_runtime *rt;
};

/* --- spec (model_config.c) ---------------------------------------------- */

/* Parse the JSON that tf.keras model.to_json() prints (class_name
 * "Sequential").  input_shape overrides/provides (H, W, C) when the JSON has
 * none (may be NULL).  Errors name the layer index and key in d->field, e.g.
 * "/config/layers/4/config/pool_size". */
int model_spec_parse_json(struct model_spec *ret, const char *json, size_t len,
                          const int input_shape[3], struct diag *d);
/* Built-in models: "minivggnet", "shallownet", "lenet", "mlp". */
int model_spec_builtin(struct model_spec *ret, const char *name, const int input_shape[3],
                       int classes, struct diag *d);
/* NULL-terminated list of built-in names. */
const char *const *model_builtin_names(void);
/* The Keras Sequential JSON for spec (malloc'ed string, caller frees).  Parsing
 * it again gives the same spec.  NULL on allocation failure. */
char *model_spec_to_json(const struct model_spec *spec);
int model_spec_copy(struct model_spec *ret, const struct model_spec *src);
void model_spec_free(struct model_spec *spec);
/* Keras class name of a layer kind ("Conv2D", "BatchNormalization", ...). */
const char *layer_kind_class_name(enum layer_kind kind);

/* Output shape (H, W, C) of every layer for spec->input_shape, as TF computes
 * it: Conv2D/pooling "same" out = ceil(in / stride), "valid" out =
 * floor((in - k) / stride) + 1; Flatten and Dense give (1, 1, features).
 * ret_out_shapes is (n_layers, 3), written only on success.  Errors (a size
 * that becomes < 1, Dense on a 4-D input without a Flatten before it, Conv2D
 * or pooling after Flatten, sizes too large) name the layer as
 * "/config/layers/<i + 1>", its index in model_spec_to_json()'s output, whose
 * layer 0 is the InputLayer. */
int model_spec_infer_shapes(const struct model_spec *spec, int (*ret_out_shapes)[3],
                            struct diag *d);
/* Keras model.count_params(): all variables (ret_total) and the trainable
 * ones (ret_trainable, Keras "Trainable params"); either may be NULL. */
int model_spec_count_params(const struct model_spec *spec, size_t *ret_total,
                            size_t *ret_trainable, struct diag *d);
/* Number of classes (> 0) when the model ends in softmax (Dense activation or
 * Activation layer) on a flat output, else a negative errno with d filled. */
int model_spec_output_classes(const struct model_spec *spec, struct diag *d);

/* --- model (model.c) ---------------------------------------------------- */

/* Build a model for spec: shapes, weights, arenas and compute threads.  The
 * last layer must end in softmax (Dense activation or Activation layer); it is
 * fused with the categorical cross-entropy loss.  Weights are zero until
 * model_init_weights().  threads >= 1; max_batch >= 1. */
int model_create(struct model **ret, const struct model_spec *spec, int max_batch,
                 int threads, struct diag *d);
void model_free(struct model *m);

/* Keras initialisation from seed: glorot_uniform kernels, zero biases,
 * BN gamma 1, beta 0, moving_mean 0, moving_variance 1. */
void model_init_weights(struct model *m, uint64_t seed);

/* One training step on n <= max_batch examples: images uint8 (n, H, W, C)
 * scaled by 1/255, labels class indices (n).  Forward in training mode
 * (dropout masks from (seed, step)), loss, backward into m->grads (mean over
 * the batch), BN moving statistics updated.  ret_loss = mean loss,
 * ret_correct = correctly classified examples.  Bit-identical for the same
 * weights, inputs, seed, step and thread count. */
int model_train_step(struct model *m, const uint8_t *images, const uint8_t *labels, int n,
                     uint64_t seed, int64_t step, double *ret_loss, int *ret_correct);

/* Inference-mode forward (moving statistics, no dropout): ret_loss_sum = sum of
 * per-example losses, ret_correct as above. */
int model_evaluate(struct model *m, const uint8_t *images, const uint8_t *labels, int n,
                   double *ret_loss_sum, int *ret_correct);

/* Float-input variants used by tests and the reference comparison:
 * x (n, H, W, C), y_onehot (n, classes).  model_forward_backward_f32 runs in
 * training mode (dropout with rate > 0 uses (seed, step); tests use rate-0
 * dropout or seeds they control), writes m->grads and, when probs is non-NULL,
 * the softmax output (n, classes).  It does not update BN moving statistics
 * when update_moving_stats is false. */
int model_forward_backward_f32(struct model *m, const float *x, const float *y_onehot, int n,
                               uint64_t seed, int64_t step, bool update_moving_stats,
                               double *ret_loss, float *probs);
/* Inference-mode forward: probs (n, classes). */
int model_predict_f32(struct model *m, const float *x, int n, float *probs);

/* Lookup: the weight named layer_name/weight_name, or NULL. */
const struct weight *model_find_weight(const struct model *m, const char *layer_name,
                                       const char *weight_name);

#endif
