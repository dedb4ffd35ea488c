/* model_spec.c - a spec's building blocks: Keras class, activation and
 * automatic layer names, layer defaults, copying and freeing (model_spec.h). */
#include "model_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *layer_kind_class_name(enum layer_kind kind)
{
    switch (kind) {
    case LAYER_KIND_CONV2D: return "Conv2D";
    case LAYER_KIND_DENSE: return "Dense";
    case LAYER_KIND_BATCH_NORMALIZATION: return "BatchNormalization";
    case LAYER_KIND_ACTIVATION: return "Activation";
    case LAYER_KIND_MAX_POOLING2D: return "MaxPooling2D";
    case LAYER_KIND_AVERAGE_POOLING2D: return "AveragePooling2D";
    case LAYER_KIND_DROPOUT: return "Dropout";
    case LAYER_KIND_FLATTEN: return "Flatten";
    }
    return "Unknown";
}

/* Prefix of Keras' automatic layer names (snake case of the class name). */
static const char *layer_kind_prefix(enum layer_kind kind)
{
    switch (kind) {
    case LAYER_KIND_CONV2D: return "conv2d";
    case LAYER_KIND_DENSE: return "dense";
    case LAYER_KIND_BATCH_NORMALIZATION: return "batch_normalization";
    case LAYER_KIND_ACTIVATION: return "activation";
    case LAYER_KIND_MAX_POOLING2D: return "max_pooling2d";
    case LAYER_KIND_AVERAGE_POOLING2D: return "average_pooling2d";
    case LAYER_KIND_DROPOUT: return "dropout";
    case LAYER_KIND_FLATTEN: return "flatten";
    }
    return "layer";
}

/* Keras' automatic name for the count-th layer of a kind: conv2d, conv2d_1, ... */
void layer_auto_name(char *buf, size_t size, enum layer_kind kind, int count)
{
    if (count == 0)
        snprintf(buf, size, "%s", layer_kind_prefix(kind));
    else
        snprintf(buf, size, "%s_%d", layer_kind_prefix(kind), count);
}

static const char *const activation_names[] = {
    [ACTIVATION_KIND_LINEAR] = "linear",
    [ACTIVATION_KIND_RELU] = "relu",
    [ACTIVATION_KIND_SIGMOID] = "sigmoid",
    [ACTIVATION_KIND_TANH] = "tanh",
    [ACTIVATION_KIND_SOFTMAX] = "softmax",
};

const char *activation_kind_name(enum activation_kind a)
{
    if ((unsigned)a < sizeof(activation_names) / sizeof(activation_names[0]))
        return activation_names[a];
    return "linear";
}

int activation_kind_from_name(const char *name, enum activation_kind *ret)
{
    for (size_t i = 0; name && i < sizeof(activation_names) / sizeof(activation_names[0]); i++) {
        if (strcmp(name, activation_names[i]) == 0) {
            *ret = (enum activation_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *layer_init_slot_name(enum layer_kind kind, int slot)
{
    static const char *const weighted[] = {"kernel", "bias"};
    static const char *const bn[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    if ((kind == LAYER_KIND_CONV2D || kind == LAYER_KIND_DENSE) && slot >= 0 && slot < 2)
        return weighted[slot];
    if (kind == LAYER_KIND_BATCH_NORMALIZATION && slot >= 0 && slot < 4)
        return bn[slot];
    return NULL;
}

/* A layer of `kind` with Keras' defaults; fields that do not apply are zero. */
void layer_config_init(struct layer_config *l, enum layer_kind kind)
{
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    l->activation = ACTIVATION_KIND_LINEAR;
    l->padding = PADDING_KIND_VALID;
    switch (kind) {
    case LAYER_KIND_CONV2D:
        l->strides[0] = l->strides[1] = 1;
        l->use_bias = true;
        break;
    case LAYER_KIND_DENSE:
        l->use_bias = true;
        break;
    case LAYER_KIND_BATCH_NORMALIZATION:
        l->momentum = 0.99f;
        l->epsilon = 1e-3f;
        break;
    case LAYER_KIND_MAX_POOLING2D:
    case LAYER_KIND_AVERAGE_POOLING2D:
        l->pool_size[0] = l->pool_size[1] = 2;
        break;
    case LAYER_KIND_ACTIVATION:
    case LAYER_KIND_DROPOUT:
    case LAYER_KIND_FLATTEN:
        break;
    }
}

int model_spec_copy(struct model_spec *ret, const struct model_spec *src)
{
    struct model_spec s = *src;
    s.layers = NULL;
    if (src->n_layers > 0) {
        s.layers = calloc((size_t)src->n_layers, sizeof(*s.layers));
        if (!s.layers)
            return -ENOMEM;
        memcpy(s.layers, src->layers, (size_t)src->n_layers * sizeof(*s.layers));
    }
    *ret = s;
    return 0;
}

void model_spec_free(struct model_spec *spec)
{
    if (!spec)
        return;
    free(spec->layers);
    spec->layers = NULL;
    spec->n_layers = 0;
}
