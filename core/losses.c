/* losses.c - Keras losses with their gradients and the per-example metrics
 * (see losses.h for the formulas).  Sums run in double; outputs are float. */
#include "losses.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#define LOSS_EPS 1e-7
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* tab[kind], or "" for a kind outside the table. */
static const char *table_name(const char *const *tab, size_t n, int kind)
{
    return kind >= 0 && (size_t)kind < n && tab[kind] ? tab[kind] : "";
}

static const char *const names[] = {
    [LOSS_KIND_CATEGORICAL_CROSSENTROPY] = "categorical_crossentropy",
    [LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY] = "sparse_categorical_crossentropy",
    [LOSS_KIND_BINARY_CROSSENTROPY] = "binary_crossentropy",
    [LOSS_KIND_MEAN_SQUARED_ERROR] = "mean_squared_error",
    [LOSS_KIND_MEAN_ABSOLUTE_ERROR] = "mean_absolute_error",
};

const char *loss_kind_name(enum loss_kind kind)
{
    return table_name(names, N_OF(names), (int)kind);
}

static const char *const class_names[] = {
    [LOSS_KIND_CATEGORICAL_CROSSENTROPY] = "CategoricalCrossentropy",
    [LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY] = "SparseCategoricalCrossentropy",
    [LOSS_KIND_BINARY_CROSSENTROPY] = "BinaryCrossentropy",
    [LOSS_KIND_MEAN_SQUARED_ERROR] = "MeanSquaredError",
    [LOSS_KIND_MEAN_ABSOLUTE_ERROR] = "MeanAbsoluteError",
};

static const char *const metric_class_names[] = {
    [METRIC_KIND_CATEGORICAL_ACCURACY] = "CategoricalAccuracy",
    [METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY] = "SparseCategoricalAccuracy",
    [METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY] = "TopKCategoricalAccuracy",
    [METRIC_KIND_BINARY_ACCURACY] = "BinaryAccuracy",
    [METRIC_KIND_MEAN_SQUARED_ERROR] = "MeanSquaredError",
    [METRIC_KIND_MEAN_ABSOLUTE_ERROR] = "MeanAbsoluteError",
};

const char *loss_kind_class_name(enum loss_kind kind)
{
    return table_name(class_names, N_OF(class_names), (int)kind);
}

const char *metric_kind_class_name(enum metric_kind kind)
{
    return table_name(metric_class_names, N_OF(metric_class_names), (int)kind);
}

int loss_kind_from_name(const char *name)
{
    for (size_t k = 0; k < N_OF(names); k++)
        if (strcasecmp(name, names[k]) == 0)
            return (int)k;
    if (strcasecmp(name, "mse") == 0)
        return LOSS_KIND_MEAN_SQUARED_ERROR;
    if (strcasecmp(name, "mae") == 0)
        return LOSS_KIND_MEAN_ABSOLUTE_ERROR;
    return -1;
}

/* Target j of example e after label smoothing (categorical: s / K, binary: s / 2). */
static double target(const struct loss_config *c, const float *y, const uint8_t *labels, int e,
                     int j, int K)
{
    double t = labels ? (labels[e] == j ? 1.0 : 0.0) : (double)y[(size_t)e * K + j];
    double s = c->label_smoothing;
    if (s > 0 && c->kind != LOSS_KIND_MEAN_SQUARED_ERROR &&
        c->kind != LOSS_KIND_MEAN_ABSOLUTE_ERROR)
        t = t * (1 - s) + s / (c->kind == LOSS_KIND_BINARY_CROSSENTROPY ? 2.0 : (double)K);
    return t;
}

static double clip(double p)
{
    return p < LOSS_EPS ? LOSS_EPS : p > 1 - LOSS_EPS ? 1 - LOSS_EPS : p;
}

/* log-sum-exp of one row of logits. */
static double row_lse(const float *z, int K)
{
    double mx = z[0];
    for (int j = 1; j < K; j++)
        mx = z[j] > mx ? z[j] : mx;
    double s = 0;
    for (int j = 0; j < K; j++)
        s += exp((double)z[j] - mx);
    return mx + log(s);
}

static double row_sum(const float *o, int K)
{
    double s = 0;
    for (int j = 0; j < K; j++)
        s += o[j];
    return s;
}

void loss_forward(const struct loss_config *c, float *losses, const float *out, const float *y,
                  const uint8_t *labels, int n, int K)
{
    for (int e = 0; e < n; e++) {
        const float *o = out + (size_t)e * K;
        double l = 0;
        switch (c->kind) {
        case LOSS_KIND_CATEGORICAL_CROSSENTROPY:
        case LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY:
            if (c->from_logits) {
                double lse = row_lse(o, K);
                for (int j = 0; j < K; j++)
                    l -= target(c, y, labels, e, j, K) * ((double)o[j] - lse);
            } else {
                double sum = row_sum(o, K);
                for (int j = 0; j < K; j++)
                    l -= target(c, y, labels, e, j, K) * log(clip(o[j] / sum));
            }
            break;
        case LOSS_KIND_BINARY_CROSSENTROPY:
            for (int j = 0; j < K; j++) {
                double t = target(c, y, labels, e, j, K), z = o[j];
                if (c->from_logits)
                    l += fmax(z, 0) - z * t + log1p(exp(-fabs(z)));
                else
                    l -= t * log(clip(z) + LOSS_EPS) + (1 - t) * log(1 - clip(z) + LOSS_EPS);
            }
            l /= K;
            break;
        case LOSS_KIND_MEAN_SQUARED_ERROR:
        case LOSS_KIND_MEAN_ABSOLUTE_ERROR:
            for (int j = 0; j < K; j++) {
                double dlt = target(c, y, labels, e, j, K) - o[j];
                l += c->kind == LOSS_KIND_MEAN_SQUARED_ERROR ? dlt * dlt : fabs(dlt);
            }
            l /= K;
            break;
        }
        losses[e] = (float)l;
    }
}

void loss_backward(const struct loss_config *c, float *dout, const float *out, const float *y,
                   const uint8_t *labels, const float *weights, float scale, int n, int K)
{
    for (int e = 0; e < n; e++) {
        const float *o = out + (size_t)e * K;
        float *g = dout + (size_t)e * K;
        double w = (weights ? weights[e] : 1.0) * scale;
        switch (c->kind) {
        case LOSS_KIND_CATEGORICAL_CROSSENTROPY:
        case LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY: {
            double tsum = 0;
            for (int j = 0; j < K; j++)
                tsum += target(c, y, labels, e, j, K);
            if (c->from_logits) {
                /* d/dz -sum t log softmax(z) = softmax(z) sum(t) - t */
                double lse = row_lse(o, K);
                for (int j = 0; j < K; j++)
                    g[j] = (float)(w * (exp((double)o[j] - lse) * tsum -
                                        target(c, y, labels, e, j, K)));
            } else {
                /* p_j = o_j / S: d/do_k -sum_j t_j log p_j = -t_k / o_k + sum_j t_j / S,
                 * the first term 0 where p_k was clipped */
                double sum = row_sum(o, K);
                for (int j = 0; j < K; j++) {
                    double p = o[j] / sum;
                    double direct = (p > LOSS_EPS && p < 1 - LOSS_EPS)
                                        ? -target(c, y, labels, e, j, K) / o[j]
                                        : 0.0;
                    double through_sum = 0;
                    for (int i = 0; i < K; i++) {
                        double pi = o[i] / sum;
                        if (pi > LOSS_EPS && pi < 1 - LOSS_EPS)
                            through_sum += target(c, y, labels, e, i, K);
                    }
                    g[j] = (float)(w * (direct + through_sum / sum));
                }
            }
            break;
        }
        case LOSS_KIND_BINARY_CROSSENTROPY:
            for (int j = 0; j < K; j++) {
                double t = target(c, y, labels, e, j, K), z = o[j], d;
                if (c->from_logits) {
                    d = 1.0 / (1.0 + exp(-z)) - t;
                } else if (z > LOSS_EPS && z < 1 - LOSS_EPS) {
                    d = -t / (z + LOSS_EPS) + (1 - t) / (1 - z + LOSS_EPS);
                } else {
                    d = 0;
                }
                g[j] = (float)(w * d / K);
            }
            break;
        case LOSS_KIND_MEAN_SQUARED_ERROR:
        case LOSS_KIND_MEAN_ABSOLUTE_ERROR:
            for (int j = 0; j < K; j++) {
                double dlt = o[j] - target(c, y, labels, e, j, K);
                double d = c->kind == LOSS_KIND_MEAN_SQUARED_ERROR ? 2 * dlt
                                                                   : (dlt > 0) - (dlt < 0);
                g[j] = (float)(w * d / K);
            }
            break;
        }
    }
}

/* Index of the first maximum of a row. */
static int row_argmax(const float *v, int K)
{
    int am = 0;
    for (int j = 1; j < K; j++)
        if (v[j] > v[am])
            am = j;
    return am;
}

double metric_categorical_accuracy(const float *out, const float *y, int n, int K)
{
    double s = 0;
    for (int e = 0; e < n; e++)
        s += row_argmax(out + (size_t)e * K, K) == row_argmax(y + (size_t)e * K, K);
    return s;
}

double metric_sparse_categorical_accuracy(const float *out, const uint8_t *labels, int n, int K)
{
    double s = 0;
    for (int e = 0; e < n; e++)
        s += row_argmax(out + (size_t)e * K, K) == labels[e];
    return s;
}

double metric_top_k_categorical_accuracy(const float *out, const uint8_t *labels, int n, int K,
                                         int k)
{
    double s = 0;
    for (int e = 0; e < n; e++) {
        const float *o = out + (size_t)e * K;
        float v = o[labels[e]];
        int above = 0;
        for (int j = 0; j < K; j++)
            above += o[j] > v;
        s += above < k;
    }
    return s;
}

double metric_binary_accuracy(const float *out, const float *y, int n, int K, double threshold)
{
    double s = 0;
    for (int e = 0; e < n; e++) {
        int ok = 0;
        for (int j = 0; j < K; j++)
            ok += (out[(size_t)e * K + j] > threshold ? 1.0f : 0.0f) == y[(size_t)e * K + j];
        s += (double)ok / K;
    }
    return s;
}

double metric_mse(const float *out, const float *y, int n, int K)
{
    double s = 0;
    for (size_t i = 0; i < (size_t)n * K; i++) {
        double d = (double)out[i] - y[i];
        s += d * d / K;
    }
    return s;
}

double metric_mae(const float *out, const float *y, int n, int K)
{
    double s = 0;
    for (size_t i = 0; i < (size_t)n * K; i++)
        s += fabs((double)out[i] - y[i]) / K;
    return s;
}

int metric_config_from_name(struct metric_config *ret, const char *name, enum loss_kind loss)
{
    static const struct {
        const char *name;
        enum metric_kind kind;
    } table[] = {
        {"categorical_accuracy", METRIC_KIND_CATEGORICAL_ACCURACY},
        {"sparse_categorical_accuracy", METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY},
        {"top_k_categorical_accuracy", METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY},
        {"binary_accuracy", METRIC_KIND_BINARY_ACCURACY},
        {"mse", METRIC_KIND_MEAN_SQUARED_ERROR},
        {"mean_squared_error", METRIC_KIND_MEAN_SQUARED_ERROR},
        {"mae", METRIC_KIND_MEAN_ABSOLUTE_ERROR},
        {"mean_absolute_error", METRIC_KIND_MEAN_ABSOLUTE_ERROR},
    };
    struct metric_config c = {.k = 5, .threshold = 0.5};
    if (strcmp(name, "accuracy") == 0 || strcmp(name, "acc") == 0) {
        c.kind = loss == LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY
                     ? METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY
                     : METRIC_KIND_CATEGORICAL_ACCURACY;
        *ret = c;
        return 0;
    }
    for (size_t i = 0; i < N_OF(table); i++)
        if (strcmp(name, table[i].name) == 0) {
            c.kind = table[i].kind;
            *ret = c;
            return 0;
        }
    return -1;
}

/* Target j of example e without smoothing: labels as one-hot rows, or y. */
static double plain_target(const float *y, const uint8_t *labels, int e, int j, int K)
{
    return labels ? (labels[e] == j ? 1.0 : 0.0) : (double)y[(size_t)e * K + j];
}

double metric_sum(const struct metric_config *mc, const float *out, const float *y,
                  const uint8_t *labels, int n, int K)
{
    double s = 0;
    for (int e = 0; e < n; e++) {
        const float *o = out + (size_t)e * K;
        int label = 0;
        if (labels)
            label = labels[e];
        else
            for (int j = 1; j < K; j++)
                if (y[(size_t)e * K + j] > y[(size_t)e * K + label])
                    label = j;
        switch (mc->kind) {
        case METRIC_KIND_CATEGORICAL_ACCURACY:
        case METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY:
            s += row_argmax(o, K) == label;
            break;
        case METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY:
            s += metric_top_k_categorical_accuracy(o, (const uint8_t[]){(uint8_t)label}, 1, K,
                                                   mc->k);
            break;
        case METRIC_KIND_BINARY_ACCURACY: {
            int ok = 0;
            for (int j = 0; j < K; j++)
                ok += (o[j] > mc->threshold ? 1.0 : 0.0) == plain_target(y, labels, e, j, K);
            s += (double)ok / K;
            break;
        }
        case METRIC_KIND_MEAN_SQUARED_ERROR:
        case METRIC_KIND_MEAN_ABSOLUTE_ERROR:
            for (int j = 0; j < K; j++) {
                double d = (double)o[j] - plain_target(y, labels, e, j, K);
                s += (mc->kind == METRIC_KIND_MEAN_SQUARED_ERROR ? d * d : fabs(d)) / K;
            }
            break;
        }
    }
    return s;
}
