/* model_spec.c - a spec's building blocks: Keras class, activation and
 * automatic layer names, layer defaults, copying and freeing (model_spec.h). */
#include "model_spec.h"

#include <errno.h>
#include <math.h>
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
    case LAYER_KIND_GLOBAL_AVERAGE_POOLING2D: return "GlobalAveragePooling2D";
    case LAYER_KIND_GLOBAL_MAX_POOLING2D: return "GlobalMaxPooling2D";
    case LAYER_KIND_ZERO_PADDING2D: return "ZeroPadding2D";
    case LAYER_KIND_RELU: return "ReLU";
    case LAYER_KIND_LEAKY_RELU: return "LeakyReLU";
    case LAYER_KIND_ELU: return "ELU";
    case LAYER_KIND_SOFTMAX: return "Softmax";
    case LAYER_KIND_RESCALING: return "Rescaling";
    case LAYER_KIND_RESHAPE: return "Reshape";
    case LAYER_KIND_SPATIAL_DROPOUT2D: return "SpatialDropout2D";
    case LAYER_KIND_INPUT: return "InputLayer";
    case LAYER_KIND_ADD: return "Add";
    case LAYER_KIND_CONCATENATE: return "Concatenate";
    case LAYER_KIND_DEPTHWISE_CONV2D: return "DepthwiseConv2D";
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
    case LAYER_KIND_GLOBAL_AVERAGE_POOLING2D: return "global_average_pooling2d";
    case LAYER_KIND_GLOBAL_MAX_POOLING2D: return "global_max_pooling2d";
    case LAYER_KIND_ZERO_PADDING2D: return "zero_padding2d";
    case LAYER_KIND_RELU: return "re_lu";
    case LAYER_KIND_LEAKY_RELU: return "leaky_re_lu";
    case LAYER_KIND_ELU: return "elu";
    case LAYER_KIND_SOFTMAX: return "softmax";
    case LAYER_KIND_RESCALING: return "rescaling";
    case LAYER_KIND_RESHAPE: return "reshape";
    case LAYER_KIND_SPATIAL_DROPOUT2D: return "spatial_dropout2d";
    case LAYER_KIND_INPUT: return "input";
    case LAYER_KIND_ADD: return "add";
    case LAYER_KIND_CONCATENATE: return "concatenate";
    case LAYER_KIND_DEPTHWISE_CONV2D: return "depthwise_conv2d";
    }
    return "layer";
}

/* Keras' automatic name for the count-th layer of a kind: conv2d, conv2d_1, ... */
void layer_auto_name(char *buf, size_t size, enum layer_kind kind, int count)
{
    if (kind == LAYER_KIND_INPUT) /* tf.keras counts InputLayers from 1: input_1, input_2 */
        snprintf(buf, size, "input_%d", count + 1);
    else if (count == 0)
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
    [ACTIVATION_KIND_ELU] = "elu",
    [ACTIVATION_KIND_SELU] = "selu",
    [ACTIVATION_KIND_GELU] = "gelu",
    [ACTIVATION_KIND_SWISH] = "swish",
    [ACTIVATION_KIND_SOFTPLUS] = "softplus",
    [ACTIVATION_KIND_HARD_SIGMOID] = "hard_sigmoid",
    [ACTIVATION_KIND_LEAKY_RELU] = "leaky_relu",
};

const char *activation_kind_name(enum activation_kind a)
{
    if ((unsigned)a < sizeof(activation_names) / sizeof(activation_names[0]))
        return activation_names[a];
    return "linear";
}

int activation_kind_from_name(const char *name, enum activation_kind *ret)
{
    if (name && strcmp(name, "silu") == 0) { /* Keras 3's name of swish */
        *ret = ACTIVATION_KIND_SWISH;
        return 0;
    }
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
    static const char *const dw[] = {"depthwise_kernel", "bias"};
    if ((kind == LAYER_KIND_CONV2D || kind == LAYER_KIND_DENSE) && slot >= 0 && slot < 2)
        return weighted[slot];
    if (kind == LAYER_KIND_DEPTHWISE_CONV2D && slot >= 0 && slot < 2)
        return dw[slot];
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
    case LAYER_KIND_DEPTHWISE_CONV2D:
        l->strides[0] = l->strides[1] = 1;
        l->use_bias = true;
        l->depth_multiplier = 1;
        break;
    case LAYER_KIND_RELU:
        l->max_value = INFINITY;
        break;
    case LAYER_KIND_LEAKY_RELU:
        l->alpha = 0.3f;
        break;
    case LAYER_KIND_ELU:
        l->alpha = 1.0f;
        break;
    case LAYER_KIND_RESCALING:
        l->scale = 1.0f;
        break;
    default:
        break;
    }
}

int model_spec_n_inputs(const struct model_spec *spec, int i)
{
    const struct layer_config *l = &spec->layers[i];
    if (l->kind == LAYER_KIND_INPUT)
        return 0;
    return l->n_inputs > 0 ? l->n_inputs : 1;
}

int model_spec_input(const struct model_spec *spec, int i, int k)
{
    const struct layer_config *l = &spec->layers[i];
    if (l->n_inputs > 0)
        return l->inputs[k];
    return i - 1;
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
