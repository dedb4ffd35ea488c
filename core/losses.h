/* losses.h - Keras losses and metrics as plain functions over a batch of
 * model outputs, with their gradients: the building blocks for losses other
 * than the softmax + categorical cross-entropy that model.c fuses today.
 *
 * model.c's training step and evaluation use them through a model_head
 * (model.h): a model ending in softmax keeps the fused softmax +
 * cross-entropy (loss.c, the same numbers as these formulas without the
 * upper clip), a model ending in sigmoid has the sigmoid applied by the head
 * (binary cross-entropy from the logits), every other output goes through
 * loss_forward / loss_backward and metric_sum.
 *
 * Shapes: out and y are (n, K) row-major; labels (n) class indices < K;
 * losses (n), one value per example (Keras reduces them with
 * sum(loss * sample_weight) / n).  Formulas (Keras 3 losses.py / metrics,
 * eps = 1e-7):
 *   categorical_crossentropy, probabilities: y' = y (1 - s) + s / K (label
 *     smoothing s); p = out / sum(out), clipped to [eps, 1 - eps];
 *     loss = -sum_j y'_j log p_j
 *   categorical_crossentropy, from_logits: loss = -sum_j y'_j log_softmax(out)_j
 *   sparse_categorical_crossentropy: the same with y = one_hot(label), read
 *     from the label without building the one-hot row
 *   binary_crossentropy, probabilities: y' = y (1 - s) + s / 2;
 *     p = clip(out, eps, 1 - eps); loss = mean_j -(y' log(p + eps) + (1 - y') log(1 - p + eps))
 *     (tf.keras 2's backend formula for probabilities; a model never takes this path:
 *     model.c computes a sigmoid output's loss from its logits with from_logits set, as
 *     TensorFlow's Keras does, see README "Binary cross-entropy")
 *   binary_crossentropy, from_logits: mean_j max(z, 0) - z y' + log(1 + exp(-|z|))
 *   mean_squared_error: mean_j (y_j - out_j)^2;  mean_absolute_error: mean_j |y_j - out_j|
 * Metrics per example (fit() averages them): categorical_accuracy
 * (argmax out == argmax y, first maximum wins), sparse_categorical_accuracy
 * (argmax out == label), top_k_categorical_accuracy (label among the k
 * largest outputs; ties at the boundary count as inside, as tf.math.in_top_k),
 * binary_accuracy (mean_j float(out_j > threshold) == y_j), mse, mae. */
#ifndef TRAIND_LOSSES_H
#define TRAIND_LOSSES_H

#include <stdbool.h>
#include <stdint.h>

enum loss_kind {
    LOSS_KIND_CATEGORICAL_CROSSENTROPY,
    LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY,
    LOSS_KIND_BINARY_CROSSENTROPY,
    LOSS_KIND_MEAN_SQUARED_ERROR,
    LOSS_KIND_MEAN_ABSOLUTE_ERROR,
};

struct loss_config {
    enum loss_kind kind;
    bool from_logits;        /* cross-entropies: out holds logits */
    double label_smoothing;  /* categorical and binary cross-entropy, in [0, 1] */
};

/* Keras name ("categorical_crossentropy", ...) and back (-1 when unknown;
 * also "mse", "mae"). */
const char *loss_kind_name(enum loss_kind kind);
/* Keras' class of the loss ("CategoricalCrossentropy", ...). */
const char *loss_kind_class_name(enum loss_kind kind);
int loss_kind_from_name(const char *name);

/* Per-example losses (n).  y is NULL for the sparse loss, labels NULL for
 * the others. */
void loss_forward(const struct loss_config *c, float *losses, const float *out, const float *y,
                  const uint8_t *labels, int n, int K);

/* d(sum_e weight_e * loss_e * scale)/d out into dout (n, K), overwritten;
 * weights (n) may be NULL (all 1): class_weight gives weight_e =
 * class_weight[label_e], scale is 1 / n for Keras' mean over the batch.
 * Where a probability was clipped the gradient is 0, as in Keras. */
void loss_backward(const struct loss_config *c, float *dout, const float *out, const float *y,
                   const uint8_t *labels, const float *weights, float scale, int n, int K);

/* The metrics compile() takes, by Keras name: "accuracy" (resolved by the
 * targets as Keras does: sparse_categorical_accuracy for integer targets,
 * categorical_accuracy for one-hot ones), "categorical_accuracy",
 * "sparse_categorical_accuracy", "top_k_categorical_accuracy" (k, default
 * 5), "binary_accuracy" (threshold, default 0.5), "mse" /
 * "mean_squared_error", "mae" / "mean_absolute_error". */
enum metric_kind {
    METRIC_KIND_CATEGORICAL_ACCURACY,
    METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY,
    METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY,
    METRIC_KIND_BINARY_ACCURACY,
    METRIC_KIND_MEAN_SQUARED_ERROR,
    METRIC_KIND_MEAN_ABSOLUTE_ERROR,
};

struct metric_config {
    enum metric_kind kind;
    int k;            /* top_k_categorical_accuracy */
    double threshold; /* binary_accuracy */
};

/* At most this many metrics per model (compile(metrics=[...])): with loss
 * and the "val_" copies they fill a logs dict (logs.h, LOGS_MAX). */
#define METRICS_MAX 6

/* The metric for a Keras metric name given the loss (which decides what
 * "accuracy" means); -1 when unknown.  k and threshold get Keras' defaults. */
int metric_config_from_name(struct metric_config *ret, const char *name, enum loss_kind loss);
/* Keras' class of the metric ("CategoricalAccuracy", "TopKCategoricalAccuracy", ...). */
const char *metric_kind_class_name(enum metric_kind kind);

/* The sum over n examples of the metric; the targets are labels (n) as
 * one-hot rows (no one-hot copy is made) or, when labels is NULL, y (n, K). */
double metric_sum(const struct metric_config *mc, const float *out, const float *y,
                  const uint8_t *labels, int n, int K);

/* Metrics: the sum over the n examples of the per-example value. */
double metric_categorical_accuracy(const float *out, const float *y, int n, int K);
double metric_sparse_categorical_accuracy(const float *out, const uint8_t *labels, int n, int K);
double metric_top_k_categorical_accuracy(const float *out, const uint8_t *labels, int n, int K,
                                         int k);
double metric_binary_accuracy(const float *out, const float *y, int n, int K, double threshold);
double metric_mse(const float *out, const float *y, int n, int K);
double metric_mae(const float *out, const float *y, int n, int K);

#endif
