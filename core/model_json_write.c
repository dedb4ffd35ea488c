/* model_json_write.c - model_spec_to_json: the tf.keras 2.15 form of a
 * spec (the model_config attribute of full-model HDF5 files), which
 * model_spec_parse_json reads back to the same spec. */
#include "model_spec.h"

#include "pyfmt.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_append(struct strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct strbuf *b, const char *s)
{
    sb_append(b, s, strlen(s));
}

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->oom = true; /* only short fragments are printed this way */
        return;
    }
    sb_append(b, tmp, (size_t)n);
}

static void sb_json_string(struct strbuf *b, const char *s)
{
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            sb_printf(b, "\\%c", *p);
        else if (*p < 0x20)
            sb_printf(b, "\\u%04x", *p);
        else
            sb_append(b, (const char *)p, 1);
    }
    sb_puts(b, "\"");
}

/* A float32 as Keras writes the Python float it came from: the shortest
 * digits that read back as the same float32, laid out as repr() ("100.0",
 * "0.001", "1e-05"). */
static void sb_float(struct strbuf *b, float v)
{
    char tmp[PYFMT_SIZE];
    pyfmt_float32(tmp, v, PYFMT_NONFINITE_JSON);
    sb_puts(b, tmp);
}

static void sb_key(struct strbuf *b, const char *key)
{
    sb_printf(b, ", \"%s\": ", key);
}

static void sb_pair(struct strbuf *b, const char *key, const int v[2])
{
    sb_key(b, key);
    sb_printf(b, "[%d, %d]", v[0], v[1]);
}

/* The initializer of weight slot `slot` of l. */
static void sb_init(struct strbuf *b, const char *key, const struct layer_config *l, int slot)
{
    char tmp[512];
    sb_key(b, key);
    const char *weight = layer_init_slot_name(l->kind, slot);
    if (initializer_to_json(tmp, sizeof(tmp), &l->init[slot], weight) < 0)
        b->oom = true;
    else
        sb_puts(b, tmp);
}

static void sb_nulls(struct strbuf *b, const char *const *keys)
{
    for (; *keys; keys++) {
        sb_key(b, *keys);
        sb_puts(b, "null");
    }
}

static void print_layer(struct strbuf *b, const struct model_spec *spec, int i, bool flat)
{
    static const char *const weighted_nulls[] = {
        "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
        "bias_constraint", NULL,
    };
    static const char *const bn_nulls[] = {
        "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint", NULL,
    };
    const struct layer_config *l = &spec->layers[i];
    const char *padding = l->padding == PADDING_KIND_SAME ? "\"same\"" : "\"valid\"";
    sb_puts(b, "{\"class_name\": ");
    sb_json_string(b, layer_kind_class_name(l->kind));
    sb_puts(b, ", \"config\": {\"name\": ");
    sb_json_string(b, l->name);
    /* the input shape is on the InputLayer only: Keras 3 rejects a
     * batch_input_shape argument on Conv2D or Dense */
    sb_printf(b, ", \"trainable\": %s, \"dtype\": \"float32\"", l->frozen ? "false" : "true");
    switch (l->kind) {
    case LAYER_KIND_CONV2D:
        sb_printf(b, ", \"filters\": %d", l->filters);
        sb_pair(b, "kernel_size", l->kernel_size);
        sb_pair(b, "strides", l->strides);
        sb_printf(b, ", \"padding\": %s, \"data_format\": \"channels_last\", "
                  "\"dilation_rate\": [1, 1], \"groups\": 1", padding);
        sb_printf(b, ", \"activation\": \"%s\", \"use_bias\": %s", activation_kind_name(l->activation),
                  l->use_bias ? "true" : "false");
        sb_init(b, "kernel_initializer", l, 0);
        sb_init(b, "bias_initializer", l, 1);
        sb_nulls(b, weighted_nulls);
        break;
    case LAYER_KIND_DEPTHWISE_CONV2D:
        sb_pair(b, "kernel_size", l->kernel_size);
        sb_pair(b, "strides", l->strides);
        sb_printf(b, ", \"padding\": %s, \"depth_multiplier\": %d, \"data_format\": "
                  "\"channels_last\", \"dilation_rate\": [1, 1]", padding, l->depth_multiplier);
        sb_printf(b, ", \"activation\": \"%s\", \"use_bias\": %s", activation_kind_name(l->activation),
                  l->use_bias ? "true" : "false");
        sb_init(b, "depthwise_initializer", l, 0);
        sb_init(b, "bias_initializer", l, 1);
        sb_nulls(b, (const char *const[]){"depthwise_regularizer", "bias_regularizer",
                                          "activity_regularizer", "depthwise_constraint",
                                          "bias_constraint", NULL});
        break;
    case LAYER_KIND_DENSE:
        sb_printf(b, ", \"units\": %d, \"activation\": \"%s\", \"use_bias\": %s", l->units,
                  activation_kind_name(l->activation), l->use_bias ? "true" : "false");
        sb_init(b, "kernel_initializer", l, 0);
        sb_init(b, "bias_initializer", l, 1);
        sb_nulls(b, weighted_nulls);
        break;
    case LAYER_KIND_BATCH_NORMALIZATION:
        /* a built layer prints its axis as the positive list Keras normalised it to */
        sb_printf(b, ", \"axis\": [%d]", flat ? 1 : 3);
        sb_key(b, "momentum");
        sb_float(b, l->momentum);
        sb_key(b, "epsilon");
        sb_float(b, l->epsilon);
        sb_puts(b, ", \"center\": true, \"scale\": true");
        sb_init(b, "beta_initializer", l, 1);
        sb_init(b, "gamma_initializer", l, 0);
        sb_init(b, "moving_mean_initializer", l, 2);
        sb_init(b, "moving_variance_initializer", l, 3);
        sb_nulls(b, bn_nulls);
        break;
    case LAYER_KIND_ACTIVATION:
        sb_printf(b, ", \"activation\": \"%s\"", activation_kind_name(l->activation));
        break;
    case LAYER_KIND_MAX_POOLING2D:
    case LAYER_KIND_AVERAGE_POOLING2D:
        sb_pair(b, "pool_size", l->pool_size);
        sb_printf(b, ", \"padding\": %s", padding);
        sb_pair(b, "strides", l->strides);
        sb_puts(b, ", \"data_format\": \"channels_last\"");
        break;
    case LAYER_KIND_DROPOUT:
        sb_key(b, "rate");
        sb_float(b, l->rate);
        sb_puts(b, ", \"noise_shape\": null, \"seed\": null");
        break;
    case LAYER_KIND_FLATTEN:
        sb_puts(b, ", \"data_format\": \"channels_last\"");
        break;
    case LAYER_KIND_GLOBAL_AVERAGE_POOLING2D:
    case LAYER_KIND_GLOBAL_MAX_POOLING2D:
        sb_printf(b, ", \"data_format\": \"channels_last\", \"keepdims\": %s",
                  l->keepdims ? "true" : "false");
        break;
    case LAYER_KIND_ZERO_PADDING2D:
        sb_printf(b, ", \"padding\": [[%d, %d], [%d, %d]], \"data_format\": \"channels_last\"",
                  l->pad[0], l->pad[1], l->pad[2], l->pad[3]);
        break;
    case LAYER_KIND_RELU:
        sb_key(b, "max_value");
        if (isinf(l->max_value))
            sb_puts(b, "null");
        else
            sb_float(b, l->max_value);
        sb_key(b, "negative_slope");
        sb_float(b, l->alpha);
        sb_key(b, "threshold");
        sb_float(b, l->threshold);
        break;
    case LAYER_KIND_LEAKY_RELU:
    case LAYER_KIND_ELU:
        sb_key(b, "alpha");
        sb_float(b, l->alpha);
        break;
    case LAYER_KIND_SOFTMAX:
    case LAYER_KIND_CONCATENATE:
        sb_puts(b, ", \"axis\": -1");
        break;
    case LAYER_KIND_RESCALING:
        sb_key(b, "scale");
        sb_float(b, l->scale);
        sb_key(b, "offset");
        sb_float(b, l->offset);
        break;
    case LAYER_KIND_RESHAPE:
        if (l->target_flat)
            sb_printf(b, ", \"target_shape\": [%d]", l->target_shape[2]);
        else
            sb_printf(b, ", \"target_shape\": [%d, %d, %d]", l->target_shape[0],
                      l->target_shape[1], l->target_shape[2]);
        break;
    case LAYER_KIND_SPATIAL_DROPOUT2D:
        sb_key(b, "rate");
        sb_float(b, l->rate);
        sb_puts(b, ", \"noise_shape\": null, \"seed\": null");
        break;
    case LAYER_KIND_INPUT:
    case LAYER_KIND_ADD:
        break;
    }
    sb_puts(b, "}");
    if (spec->functional) {
        sb_puts(b, ", \"name\": ");
        sb_json_string(b, l->name);
        sb_puts(b, ", \"inbound_nodes\": [[");
        for (int k = 0; k < model_spec_n_inputs(spec, i); k++) {
            sb_puts(b, k ? ", [" : "[");
            sb_json_string(b, spec->layers[model_spec_input(spec, i, k)].name);
            sb_puts(b, ", 0, 0, {}]");
        }
        sb_puts(b, "]]");
    }
    sb_puts(b, "}");
}

/* {"class_name": "InputLayer", "config": {...}, without the closing brace
 * (a functional layer adds its name and inbound_nodes). */
static void print_input_layer(struct strbuf *b, const struct model_spec *spec, const char *name)
{
    sb_printf(b, "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": "
              "[null, %d, %d, %d], \"dtype\": \"float32\", \"sparse\": false, "
              "\"ragged\": false, \"name\": ",
              spec->input_shape[0], spec->input_shape[1], spec->input_shape[2]);
    sb_json_string(b, name);
    sb_puts(b, "}");
}

/* The tf.keras 2.15 form of a functional model: an InputLayer first, every
 * layer with its inbound_nodes. */
static void print_functional(struct strbuf *b, const struct model_spec *spec, const bool *flat)
{
    sb_puts(b, "{\"class_name\": \"Functional\", \"config\": {\"name\": ");
    sb_json_string(b, spec->name[0] ? spec->name : "model");
    sb_puts(b, ", \"trainable\": true, \"layers\": [");
    for (int i = 0; i < spec->n_layers; i++) {
        const struct layer_config *l = &spec->layers[i];
        if (i)
            sb_puts(b, ", ");
        if (l->kind == LAYER_KIND_INPUT) {
            print_input_layer(b, spec, l->name);
            sb_puts(b, ", \"name\": ");
            sb_json_string(b, l->name);
            sb_puts(b, ", \"inbound_nodes\": []}");
            continue;
        }
        int src = model_spec_input(spec, i, 0);
        print_layer(b, spec, i, src >= 0 && flat && flat[src]);
    }
    sb_puts(b, "], \"input_layers\": [[");
    sb_json_string(b, spec->layers[0].name);
    sb_puts(b, ", 0, 0]], \"output_layers\": [[");
    sb_json_string(b, spec->layers[spec->n_layers - 1].name);
    sb_puts(b, ", 0, 0]]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}");
}

char *model_spec_to_json(const struct model_spec *spec)
{
    struct strbuf b = {0};
    if (spec->functional && spec->n_layers > 0) {
        bool *flat = calloc((size_t)spec->n_layers, sizeof(bool));
        int(*shape)[3] = calloc((size_t)spec->n_layers, sizeof(*shape));
        struct diag d = {0};
        if (flat && shape && model_spec_infer_shapes_flat(spec, NULL, shape, flat, &d) != 0)
            memset(flat, 0, (size_t)spec->n_layers);
        print_functional(&b, spec, flat);
        free(flat);
        free(shape);
        if (b.oom) {
            free(b.p);
            return NULL;
        }
        return b.p;
    }
    sb_puts(&b, "{\"class_name\": \"Sequential\", \"config\": {\"name\": ");
    sb_json_string(&b, spec->name[0] ? spec->name : "sequential");
    sb_puts(&b, ", \"layers\": [");
    if (spec->n_layers > 0) {
        char input_name[sizeof(spec->layers[0].name) + 8];
        snprintf(input_name, sizeof(input_name), "%s_input", spec->layers[0].name);
        print_input_layer(&b, spec, input_name);
        sb_puts(&b, "}");
    }
    bool flat = false;
    for (int i = 0; i < spec->n_layers; i++) {
        sb_puts(&b, ", ");
        print_layer(&b, spec, i, flat);
        enum layer_kind k = spec->layers[i].kind;
        if (k == LAYER_KIND_FLATTEN || (k == LAYER_KIND_RESHAPE && spec->layers[i].target_flat) ||
            ((k == LAYER_KIND_GLOBAL_AVERAGE_POOLING2D || k == LAYER_KIND_GLOBAL_MAX_POOLING2D) &&
             !spec->layers[i].keepdims))
            flat = true;
        else if (k == LAYER_KIND_RESHAPE)
            flat = false;
    }
    sb_puts(&b, "]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
