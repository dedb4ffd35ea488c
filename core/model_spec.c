/* model_spec.c - copying and freeing model specs; Keras class names. */
#include "model.h"

#include <errno.h>
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
