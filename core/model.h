/* model.h - a Keras Sequential model's weights and the runtime that trains
 * and evaluates it; its description (spec) is in model_spec.h.
 *
 * Ownership: model_create() copies the spec; the model owns its
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

#include "collective.h"
#include "diag.h"
#include "losses.h"
#include "model_spec.h"
#include "pixels.h"

/* Keras variable of a layer, in Keras order (kernel, bias / gamma, beta,
 * moving_mean, moving_variance). */
struct weight {
    const char *name;   /* "kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance" */
    int ndim;
    int shape[4];       /* Keras shape: Conv2D kernel (kh, kw, in, out) = HWIO; Dense kernel (in, out) */
    size_t size;        /* elements */
    size_t offset;      /* into model->params and model->grads: < n_trainable when trainable */
    bool trainable;     /* false for moving_mean / moving_variance and frozen layers */
};

#define LAYER_MAX_WEIGHTS 4

struct layer {
    struct layer_config cfg;
    int in_shape[3];    /* (H, W, C) per example */
    int out_shape[3];
    int n_weights;
    struct weight weights[LAYER_MAX_WEIGHTS];
};

/* A row of a model's weight table. */
struct model_weight {
    int layer;               /* index into model->layers */
    const struct weight *w;  /* name, shape, size, offset, trainable */
};

struct model_runtime; /* private to model.c */

struct model {
    struct model_spec spec;   /* owned copy */
    int n_layers;
    struct layer *layers;     /* (n_layers) */
    int input_shape[3];       /* (H, W, C) */
    int classes;              /* size of the output (N, classes) */
    size_t n_params;          /* all variables, trainable and not */
    size_t n_trainable;       /* Keras "Trainable params" */
    float *params;            /* (n_params), one 64-byte aligned arena of two blocks: the
                                 trainable weights in layer order (n_trainable), then the
                                 non-trainable ones in layer order (BatchNormalization moving
                                 statistics, every weight of a frozen layer) */
    float *grads;             /* (n_params), same layout; mean over the batch after a step;
                                 0 in the statistics block */
    int n_weights;
    struct model_weight *weights; /* (n_weights) the weight table: every weight, in layer order
                                     and Keras order inside a layer (the order of weight
                                     files and of the resume checksum) */
    int threads;              /* compute threads (>= 1) */
    int max_batch;
    /* NULL: one process.  Set (by the caller, between steps) to train
     * data-parallel with the other ranks of a collective (collective.h): each
     * rank gets the whole batch but computes only its slice of it (rank r:
     * examples [n r / size, n (r + 1) / size), then split over its threads);
     * BN statistics, gradients, loss and correct count are summed over the
     * ranks in rank order, so every rank ends a step with the same values.
     * With one thread per rank the arithmetic is that of one process with
     * `size` threads, bit for bit.  Not owned. */
    struct collective *coll;
    struct model_runtime *rt;
};

/* --- model (model.c) ---------------------------------------------------- */

/* What a model is trained for: Keras compile()'s loss and metrics and fit()'s
 * class_weight.  A model ending in softmax runs the softmax fused with the
 * (sparse) categorical cross-entropy (loss.c); a model ending in sigmoid
 * has the sigmoid applied by the head, its binary cross-entropy computed
 * from the logits (TensorFlow's Keras); other outputs go through losses.c.
 * Targets are the integer labels: sparse losses read them as
 * they are, the others as one-hot rows (label-smoothed where asked). */
struct model_head {
    struct loss_config loss;
    struct metric_config metrics[METRICS_MAX]; /* compile(metrics=[...]), in order */
    int n_metrics;                             /* 0 .. METRICS_MAX */
    const float *class_weight; /* (classes) Keras class_weight, or NULL (all 1); copied */
};

/* Build a model for spec: shapes, weights, arenas and compute threads.  The
 * last layer is a Dense or Activation layer over a flat output; the head is
 * Keras' usual pair for its activation (softmax: categorical cross-entropy,
 * sigmoid: binary cross-entropy, else mean squared error; metric accuracy
 * as Keras resolves it) until model_set_head().  Weights are zero until
 * model_init_weights().  threads >= 1; max_batch >= 1. */
int model_create(struct model **ret, const struct model_spec *spec, int max_batch,
                 int threads, struct diag *d);
void model_free(struct model *m);

/* Sets the loss, metric and class weights of later steps and evaluations:
 * -EINVAL with d naming "/loss" when the loss does not train the model's
 * last activation (model_spec_check_loss), "/class_weight" for a negative
 * or non-finite weight; -ENOMEM.  The model is unchanged on failure. */
int model_set_head(struct model *m, const struct model_head *h, struct diag *d);

/* Keras initialisation from seed: each weight with its layer's initializer
 * (initializers.h; the defaults are glorot_uniform kernels, zero biases, BN
 * gamma 1, beta 0, moving_mean 0, moving_variance 1), layer i drawing from
 * the stream (seed, i). */
void model_init_weights(struct model *m, uint64_t seed);

/* One training step on n <= max_batch examples: images (n, H, W, C) of
 * pixels (pixels.h: uint8 scaled by 1/255, float32 as they are), labels
 * class indices (n).  Forward in training mode
 * (dropout masks from (seed, step)), loss, backward into m->grads (mean over
 * the batch), BN moving statistics updated.  ret_loss = the head's loss
 * as Keras reduces it (sum of loss * class weight over n), ret_metrics (the
 * head's n_metrics values, may be NULL) = the sum over the examples of each
 * of the head's metrics (accuracy: the correctly classified count).
 * Bit-identical for the same weights, inputs, seed,
 * step and thread count. */
int model_train_step(struct model *m, const void *images, enum pixels_type pixels,
                     const uint8_t *labels, int n, uint64_t seed, int64_t step, double *ret_loss,
                     double *ret_metrics);

/* model_train_step with float targets (n, classes) instead of labels (a
 * regression data set): the head's loss and metrics read them as they are;
 * no class weights. */
int model_train_step_targets(struct model *m, const void *images, enum pixels_type pixels,
                             const float *targets, int n, uint64_t seed, int64_t step,
                             double *ret_loss, double *ret_metrics);

/* Inference-mode forward (moving statistics, no dropout) of images as
 * above: ret_loss_sum = sum of per-example losses (no class weights, as
 * Keras' validation), ret_metrics as above. */
int model_evaluate(struct model *m, const void *images, enum pixels_type pixels,
                   const uint8_t *labels, int n, double *ret_loss_sum, double *ret_metrics);

/* model_evaluate with float targets (n, classes) instead of labels. */
int model_evaluate_targets(struct model *m, const void *images, enum pixels_type pixels,
                           const float *targets, int n, double *ret_loss_sum,
                           double *ret_metrics);

/* How many metrics the head computes (model_head.n_metrics). */
int model_n_metrics(const struct model *m);

/* Float-input variants used by tests and the reference comparison:
 * x (n, H, W, C), y_onehot (n, classes).  model_forward_backward_f32 runs in
 * training mode (dropout with rate > 0 uses (seed, step); tests use rate-0
 * dropout or seeds they control), writes m->grads and, when probs is non-NULL,
 * the model's output (n, classes).  It does not update BN moving statistics
 * when update_moving_stats is false. */
int model_forward_backward_f32(struct model *m, const float *x, const float *y_onehot, int n,
                               uint64_t seed, int64_t step, bool update_moving_stats,
                               double *ret_loss, float *probs);
/* Inference-mode forward: the model's output (n, classes) (softmax
 * probabilities for a softmax head). */
int model_predict_f32(struct model *m, const float *x, int n, float *probs);

/* The convolution algorithms layer i runs on the active kernel path
 * (layers.h: conv2d_forward_algorithm and friends; *ret_dinput is "none" for
 * a first layer, whose input gradient is not computed).  0, or -EINVAL when
 * layer i is not a Conv2D.  The strings are static. */
int model_conv_algorithms(const struct model *m, int i, const char **ret_forward,
                          const char **ret_dinput, const char **ret_dweight);

/* Lookup: the weight named layer_name/weight_name, or NULL. */
const struct weight *model_find_weight(const struct model *m, const char *layer_name,
                                       const char *weight_name);

#endif
