/* model_json_write.c - model_spec_to_json_flavour: a spec as tf.keras 2.15
 * prints it (the model_config attribute of full-model HDF5 files) or as
 * Keras 3 serializes it (config.json of a `.keras` archive), one walk over
 * the layers with the differences switched on the flavour; model_spec_parse_json
 * reads either back to the same spec.
 *
 * Keras 3's form, from its source (KERAS3_FORM_VERSION): every object is
 * {"module", "class_name", "config", "registered_name"}; a layer's "dtype"
 * is the DTypePolicy object; a layer built by a call carries
 * "build_config": {"input_shape": its input shape} (layers built in their
 * constructor, Layer._build_at_init: activations, pooling, dropout, have
 * none, nor has InputLayer); a functional layer's "inbound_nodes" are
 * [{"args": [tensor], "kwargs": {}}] with each tensor a "__keras_tensor__"
 * (shape, dtype, keras_history [layer, 0, 0]) and Add/Concatenate taking one
 * list argument; a Sequential lists its InputLayer ("batch_shape") first. */
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

/* What one serialization needs besides the buffer: the flavour and every
 * layer's output shape (flat[i]: a (N, features) tensor). */
struct writer {
    struct strbuf b;
    enum keras_flavour flavour;
    const struct model_spec *spec;
    int (*shape)[3];
    bool *flat;
};

static const char dtype_policy[] =
    "{\"module\": \"keras\", \"class_name\": \"DTypePolicy\", "
    "\"config\": {\"name\": \"float32\"}, \"registered_name\": null}";

static void sb_key(struct strbuf *b, const char *key)
{
    sb_printf(b, ", \"%s\": ", key);
}

static void sb_pair(struct strbuf *b, const char *key, const int v[2])
{
    sb_key(b, key);
    sb_printf(b, "[%d, %d]", v[0], v[1]);
}

/* The initializer of weight slot `slot` of l: {"class_name", "config"}, in
 * Keras 3 with its module and registered_name around them. */
static void sb_init(struct writer *w, const char *key, const struct layer_config *l, int slot)
{
    struct strbuf *b = &w->b;
    char tmp[512];
    sb_key(b, key);
    const char *weight = layer_init_slot_name(l->kind, slot);
    int n = initializer_to_json(tmp, sizeof(tmp), &l->init[slot], weight);
    if (n < 1) {
        b->oom = true;
    } else if (w->flavour == KERAS_FLAVOUR_KERAS3) {
        sb_puts(b, "{\"module\": \"keras.initializers\", ");
        sb_append(b, tmp + 1, (size_t)n - 2); /* without the outer braces */
        sb_puts(b, ", \"registered_name\": null}");
    } else {
        sb_puts(b, tmp);
    }
}

/* The shape of layer i's output (-1: the model's input) as Keras prints a
 * tensor shape: [null, H, W, C], or [null, features] when flat. */
static void sb_shape(struct writer *w, int i)
{
    const struct model_spec *spec = w->spec;
    if (i < 0)
        sb_printf(&w->b, "[null, %d, %d, %d]", spec->input_shape[0], spec->input_shape[1],
                  spec->input_shape[2]);
    else if (w->flat[i])
        sb_printf(&w->b, "[null, %d]", w->shape[i][2]);
    else
        sb_printf(&w->b, "[null, %d, %d, %d]", w->shape[i][0], w->shape[i][1], w->shape[i][2]);
}

/* Keras 3: a KerasTensor, the output of layer i, as serialize_node writes it. */
static void sb_keras_tensor(struct writer *w, int i)
{
    sb_puts(&w->b, "{\"class_name\": \"__keras_tensor__\", \"config\": {\"shape\": ");
    sb_shape(w, i);
    sb_puts(&w->b, ", \"dtype\": \"float32\", \"keras_history\": [");
    sb_json_string(&w->b, w->spec->layers[i].name);
    sb_puts(&w->b, ", 0, 0]}}");
}

/* Does Keras 3 record a build_config for the layer?  Not for the layers its
 * constructor builds (Layer._build_at_init when build() is not overridden). */
static bool keras3_has_build_config(enum layer_kind k)
{
    switch (k) {
    case LAYER_KIND_INPUT:
    case LAYER_KIND_ACTIVATION:
    case LAYER_KIND_RELU:
    case LAYER_KIND_LEAKY_RELU:
    case LAYER_KIND_ELU:
    case LAYER_KIND_SOFTMAX:
    case LAYER_KIND_MAX_POOLING2D:
    case LAYER_KIND_AVERAGE_POOLING2D:
    case LAYER_KIND_GLOBAL_AVERAGE_POOLING2D:
    case LAYER_KIND_GLOBAL_MAX_POOLING2D:
    case LAYER_KIND_DROPOUT:
    case LAYER_KIND_SPATIAL_DROPOUT2D:
        return false;
    default:
        return true;
    }
}

static void sb_nulls(struct strbuf *b, const char *const *keys)
{
    for (; *keys; keys++) {
        sb_key(b, *keys);
        sb_puts(b, "null");
    }
}

static void sb_float_pair(struct strbuf *b, const char *key, const float v[2])
{
    sb_key(b, key);
    if (strstr(key, "_factor") && v[0] == -v[1]) { /* (-f, f): the number f, as Keras keeps it */
        sb_float(b, v[1]);
        return;
    }
    sb_puts(b, "[");
    sb_float(b, v[0]);
    sb_puts(b, ", ");
    sb_float(b, v[1]);
    sb_puts(b, "]");
}

/* An augmentation layer's keys as Keras 3's get_config() writes them. */
static void print_augment(struct strbuf *b, const struct layer_config *l)
{
    static const char *const modes[] = {"horizontal_and_vertical", "horizontal", "vertical"};
    static const char *const fills[] = {"reflect", "wrap", "constant", "nearest"};
    static const char *const interps[] = {"bilinear", "nearest"};
    const struct augment_config *a = &l->aug;
    switch (l->kind) {
    case LAYER_KIND_RANDOM_FLIP:
        sb_printf(b, ", \"mode\": \"%s\"", modes[a->mode]);
        break;
    case LAYER_KIND_RANDOM_TRANSLATION:
    case LAYER_KIND_RANDOM_ZOOM:
        sb_float_pair(b, "height_factor", a->height_factor);
        if (l->kind == LAYER_KIND_RANDOM_ZOOM && !a->width_factor_set)
            sb_puts(b, ", \"width_factor\": null");
        else
            sb_float_pair(b, "width_factor", a->width_factor);
        break;
    case LAYER_KIND_RANDOM_ROTATION:
    case LAYER_KIND_RANDOM_CONTRAST:
        sb_float_pair(b, "factor", a->factor);
        break;
    case LAYER_KIND_RANDOM_CROP:
        sb_printf(b, ", \"height\": %d, \"width\": %d", a->crop[0], a->crop[1]);
        break;
    default:
        break;
    }
    if (l->kind == LAYER_KIND_RANDOM_TRANSLATION || l->kind == LAYER_KIND_RANDOM_ZOOM ||
        l->kind == LAYER_KIND_RANDOM_ROTATION) {
        sb_printf(b, ", \"fill_mode\": \"%s\", \"interpolation\": \"%s\"", fills[a->fill_mode],
                  interps[a->interpolation]);
        sb_key(b, "fill_value");
        sb_float(b, a->fill_value);
    }
    if (l->kind == LAYER_KIND_RANDOM_CONTRAST)
        sb_float_pair(b, "value_range", a->value_range);
    if (a->seed_set)
        sb_printf(b, ", \"seed\": %d", a->seed);
    else
        sb_puts(b, ", \"seed\": null");
    sb_puts(b, ", \"data_format\": \"channels_last\"");
}

/* Layer i: its serialized object, in a functional model with its name and
 * inbound_nodes. */
static void print_layer(struct writer *w, int i)
{
    struct strbuf *b = &w->b;
    const struct model_spec *spec = w->spec;
    const bool k3 = w->flavour == KERAS_FLAVOUR_KERAS3;
    const int src = model_spec_input(spec, i, 0);
    const bool flat = src >= 0 && w->flat[src];
    static const char *const weighted_nulls[] = {
        "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
        "bias_constraint", NULL,
    };
    static const char *const dense3_nulls[] = {
        "kernel_regularizer", "bias_regularizer", "kernel_constraint", "bias_constraint", NULL,
    };
    static const char *const bn_nulls[] = {
        "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint", NULL,
    };
    const struct layer_config *l = &spec->layers[i];
    const char *padding = l->padding == PADDING_KIND_SAME ? "\"same\"" : "\"valid\"";
    const int dil[2] = {layer_dilation(l, 0), layer_dilation(l, 1)};
    sb_puts(b, k3 ? "{\"module\": \"keras.layers\", \"class_name\": " : "{\"class_name\": ");
    sb_json_string(b, layer_kind_class_name(l->kind));
    sb_puts(b, ", \"config\": {\"name\": ");
    sb_json_string(b, l->name);
    /* the input shape is on the InputLayer only: Keras 3 rejects a
     * batch_input_shape argument on Conv2D or Dense.  Keras 3's spatial
     * dropout returns its own config: no trainable, dtype the string. */
    if (k3 && l->kind == LAYER_KIND_SPATIAL_DROPOUT2D)
        sb_puts(b, ", \"dtype\": \"float32\"");
    else if (k3)
        sb_printf(b, ", \"trainable\": %s, \"dtype\": %s", l->frozen ? "false" : "true",
                  dtype_policy);
    else
        sb_printf(b, ", \"trainable\": %s, \"dtype\": \"float32\"", l->frozen ? "false" : "true");
    switch (l->kind) {
    case LAYER_KIND_CONV2D:
        sb_printf(b, ", \"filters\": %d", l->filters);
        sb_pair(b, "kernel_size", l->kernel_size);
        sb_pair(b, "strides", l->strides);
        sb_printf(b, ", \"padding\": %s, \"data_format\": \"channels_last\"", padding);
        sb_pair(b, "dilation_rate", dil);
        sb_printf(b, ", \"groups\": %d", layer_groups(l));
        sb_printf(b, ", \"activation\": \"%s\", \"use_bias\": %s", activation_kind_name(l->activation),
                  l->use_bias ? "true" : "false");
        sb_init(w, "kernel_initializer", l, 0);
        sb_init(w, "bias_initializer", l, 1);
        sb_nulls(b, weighted_nulls);
        break;
    case LAYER_KIND_DEPTHWISE_CONV2D:
        sb_pair(b, "kernel_size", l->kernel_size);
        sb_pair(b, "strides", l->strides);
        sb_printf(b, ", \"padding\": %s, \"depth_multiplier\": %d, \"data_format\": "
                  "\"channels_last\"", padding, l->depth_multiplier);
        sb_pair(b, "dilation_rate", dil);
        sb_printf(b, ", \"activation\": \"%s\", \"use_bias\": %s", activation_kind_name(l->activation),
                  l->use_bias ? "true" : "false");
        sb_init(w, "depthwise_initializer", l, 0);
        sb_init(w, "bias_initializer", l, 1);
        sb_nulls(b, (const char *const[]){"depthwise_regularizer", "bias_regularizer",
                                          "activity_regularizer", "depthwise_constraint",
                                          "bias_constraint", NULL});
        break;
    case LAYER_KIND_SEPARABLE_CONV2D:
        sb_printf(b, ", \"filters\": %d", l->filters);
        sb_pair(b, "kernel_size", l->kernel_size);
        sb_pair(b, "strides", l->strides);
        sb_printf(b, ", \"padding\": %s, \"data_format\": \"channels_last\"", padding);
        sb_pair(b, "dilation_rate", dil);
        sb_printf(b, ", \"depth_multiplier\": %d", l->depth_multiplier);
        sb_printf(b, ", \"activation\": \"%s\", \"use_bias\": %s", activation_kind_name(l->activation),
                  l->use_bias ? "true" : "false");
        sb_init(w, "depthwise_initializer", l, 0);
        sb_init(w, "pointwise_initializer", l, 1);
        sb_init(w, "bias_initializer", l, 2);
        sb_nulls(b, (const char *const[]){"depthwise_regularizer", "pointwise_regularizer",
                                          "bias_regularizer", "activity_regularizer",
                                          "depthwise_constraint", "pointwise_constraint",
                                          "bias_constraint", NULL});
        break;
    case LAYER_KIND_DENSE:
        sb_printf(b, ", \"units\": %d, \"activation\": \"%s\", \"use_bias\": %s", l->units,
                  activation_kind_name(l->activation), l->use_bias ? "true" : "false");
        sb_init(w, "kernel_initializer", l, 0);
        sb_init(w, "bias_initializer", l, 1);
        /* Keras 3's Dense writes activity_regularizer only when one is set */
        sb_nulls(b, k3 ? dense3_nulls : weighted_nulls);
        break;
    case LAYER_KIND_BATCH_NORMALIZATION:
        /* a built tf.keras layer prints its axis as the positive list it
         * normalised it to; Keras 3 keeps the int it was given */
        if (k3)
            sb_puts(b, ", \"axis\": -1");
        else
            sb_printf(b, ", \"axis\": [%d]", flat ? 1 : 3);
        sb_key(b, "momentum");
        sb_float(b, l->momentum);
        sb_key(b, "epsilon");
        sb_float(b, l->epsilon);
        sb_puts(b, ", \"center\": true, \"scale\": true");
        sb_init(w, "beta_initializer", l, 1);
        sb_init(w, "gamma_initializer", l, 0);
        sb_init(w, "moving_mean_initializer", l, 2);
        sb_init(w, "moving_variance_initializer", l, 3);
        sb_nulls(b, bn_nulls);
        if (k3)
            sb_puts(b, ", \"synchronized\": false");
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
        /* Keras 3 renamed LeakyReLU's alpha */
        sb_key(b, k3 && l->kind == LAYER_KIND_LEAKY_RELU ? "negative_slope" : "alpha");
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
        sb_puts(b, k3 ? ", \"seed\": null" : ", \"noise_shape\": null, \"seed\": null");
        break;
    case LAYER_KIND_RANDOM_FLIP:
    case LAYER_KIND_RANDOM_TRANSLATION:
    case LAYER_KIND_RANDOM_ROTATION:
    case LAYER_KIND_RANDOM_ZOOM:
    case LAYER_KIND_RANDOM_CONTRAST:
    case LAYER_KIND_RANDOM_CROP:
        print_augment(b, l);
        break;
    case LAYER_KIND_INPUT:
    case LAYER_KIND_ADD:
        break;
    }
    sb_puts(b, "}");
    const int n_in = model_spec_n_inputs(spec, i);
    if (k3) {
        sb_puts(b, ", \"registered_name\": null");
        if (keras3_has_build_config(l->kind)) {
            /* build(input_shape): a merge layer's is the list of its inputs' */
            sb_puts(b, ", \"build_config\": {\"input_shape\": ");
            bool merge = l->kind == LAYER_KIND_ADD || l->kind == LAYER_KIND_CONCATENATE;
            for (int k = 0; k < n_in; k++) {
                sb_puts(b, k ? ", " : merge ? "[" : "");
                sb_shape(w, model_spec_input(spec, i, k));
            }
            sb_puts(b, merge ? "]}" : "}");
        }
    }
    if (spec->functional) {
        sb_puts(b, ", \"name\": ");
        sb_json_string(b, l->name);
        if (k3) {
            /* Add()([x, y]) has one list argument, the others one tensor */
            bool merge = l->kind == LAYER_KIND_ADD || l->kind == LAYER_KIND_CONCATENATE;
            sb_puts(b, ", \"inbound_nodes\": [{\"args\": [");
            if (merge)
                sb_puts(b, "[");
            for (int k = 0; k < n_in; k++) {
                if (k)
                    sb_puts(b, ", ");
                sb_keras_tensor(w, model_spec_input(spec, i, k));
            }
            sb_puts(b, merge ? "]], \"kwargs\": {}}]" : "], \"kwargs\": {}}]");
        } else {
            sb_puts(b, ", \"inbound_nodes\": [[");
            for (int k = 0; k < n_in; k++) {
                sb_puts(b, k ? ", [" : "[");
                sb_json_string(b, spec->layers[model_spec_input(spec, i, k)].name);
                sb_puts(b, ", 0, 0, {}]");
            }
            sb_puts(b, "]]");
        }
    }
    sb_puts(b, "}");
}

/* The InputLayer named `name`, without the closing brace (a functional
 * layer adds its name and inbound_nodes): tf.keras' batch_input_shape, or
 * Keras 3's batch_shape with its module and registered_name. */
static void print_input_layer(struct writer *w, const char *name)
{
    struct strbuf *b = &w->b;
    const int *s = w->spec->input_shape;
    if (w->flavour == KERAS_FLAVOUR_KERAS3) {
        sb_printf(b, "{\"module\": \"keras.layers\", \"class_name\": \"InputLayer\", "
                  "\"config\": {\"batch_shape\": [null, %d, %d, %d], \"dtype\": \"float32\", "
                  "\"sparse\": false, \"ragged\": false, \"name\": ", s[0], s[1], s[2]);
        sb_json_string(b, name);
        sb_puts(b, "}, \"registered_name\": null");
        return;
    }
    sb_printf(b, "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": "
              "[null, %d, %d, %d], \"dtype\": \"float32\", \"sparse\": false, "
              "\"ragged\": false, \"name\": ", s[0], s[1], s[2]);
    sb_json_string(b, name);
    sb_puts(b, "}");
}

/* A functional model: an InputLayer first, every layer with its
 * inbound_nodes.  Keras 3 (Model(inputs=x, outputs=y), one tensor each)
 * prints input_layers and output_layers as one [layer, 0, 0]. */
static void print_functional(struct writer *w)
{
    struct strbuf *b = &w->b;
    const struct model_spec *spec = w->spec;
    const bool k3 = w->flavour == KERAS_FLAVOUR_KERAS3;
    sb_puts(b, k3 ? "{\"module\": \"keras.src.models.functional\", \"class_name\": "
                    "\"Functional\", \"config\": {\"name\": "
                  : "{\"class_name\": \"Functional\", \"config\": {\"name\": ");
    sb_json_string(b, spec->name[0] ? spec->name : k3 ? "functional" : "model");
    sb_puts(b, ", \"trainable\": true, \"layers\": [");
    for (int i = 0; i < spec->n_layers; i++) {
        const struct layer_config *l = &spec->layers[i];
        if (i)
            sb_puts(b, ", ");
        if (l->kind == LAYER_KIND_INPUT) {
            print_input_layer(w, l->name);
            sb_puts(b, ", \"name\": ");
            sb_json_string(b, l->name);
            sb_puts(b, ", \"inbound_nodes\": []}");
            continue;
        }
        print_layer(w, i);
    }
    sb_puts(b, k3 ? "], \"input_layers\": [" : "], \"input_layers\": [[");
    sb_json_string(b, spec->layers[0].name);
    sb_puts(b, k3 ? ", 0, 0], \"output_layers\": [" : ", 0, 0]], \"output_layers\": [[");
    sb_json_string(b, spec->layers[spec->n_layers - 1].name);
    if (k3)
        /* Functional.__init__ calls build(None) */
        sb_puts(b, ", 0, 0]}, \"registered_name\": \"Functional\", "
                   "\"build_config\": {\"input_shape\": null}}");
    else
        sb_puts(b, ", 0, 0]]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}");
}

/* A Sequential: its InputLayer (tf.keras names it "<first layer>_input",
 * Keras 3's keras.Input "input_layer") then the layers. */
static void print_sequential(struct writer *w)
{
    struct strbuf *b = &w->b;
    const struct model_spec *spec = w->spec;
    const bool k3 = w->flavour == KERAS_FLAVOUR_KERAS3;
    sb_puts(b, k3 ? "{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": "
                    "{\"name\": "
                  : "{\"class_name\": \"Sequential\", \"config\": {\"name\": ");
    sb_json_string(b, spec->name[0] ? spec->name : "sequential");
    if (k3)
        sb_printf(b, ", \"trainable\": true, \"dtype\": %s", dtype_policy);
    sb_puts(b, ", \"layers\": [");
    if (spec->n_layers > 0) {
        char input_name[sizeof(spec->layers[0].name) + 8];
        bool taken = false;
        for (int i = 0; k3 && i < spec->n_layers; i++)
            taken |= strcmp(spec->layers[i].name, "input_layer") == 0;
        if (k3 && !taken)
            snprintf(input_name, sizeof(input_name), "input_layer");
        else
            snprintf(input_name, sizeof(input_name), "%s_input", spec->layers[0].name);
        print_input_layer(w, input_name);
        sb_puts(b, "}");
    }
    for (int i = 0; i < spec->n_layers; i++) {
        sb_puts(b, ", ");
        print_layer(w, i);
    }
    if (k3) {
        sb_puts(b, "], \"build_input_shape\": ");
        sb_shape(w, -1);
        sb_puts(b, "}, \"registered_name\": null, \"build_config\": {\"input_shape\": ");
        sb_shape(w, -1);
        sb_puts(b, "}}");
    } else {
        sb_puts(b, "]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}");
    }
}

char *model_spec_to_json_flavour(const struct model_spec *spec, enum keras_flavour flavour)
{
    struct writer w = {.flavour = flavour, .spec = spec};
    size_t n = spec->n_layers > 0 ? (size_t)spec->n_layers : 1;
    w.flat = calloc(n, sizeof(bool));
    w.shape = calloc(n, sizeof(*w.shape));
    char *out = NULL;
    if (!w.flat || !w.shape)
        goto out;
    struct diag d = {0};
    if (spec->n_layers > 0 && model_spec_infer_shapes_flat(spec, NULL, w.shape, w.flat, &d) != 0) {
        memset(w.flat, 0, n * sizeof(bool));
        memset(w.shape, 0, n * sizeof(*w.shape));
    }
    if (spec->functional && spec->n_layers > 0)
        print_functional(&w);
    else
        print_sequential(&w);
    if (!w.b.oom)
        out = w.b.p;
    else
        free(w.b.p);
out:
    free(w.flat);
    free(w.shape);
    return out;
}

char *model_spec_to_json(const struct model_spec *spec)
{
    return model_spec_to_json_flavour(spec, KERAS_FLAVOUR_TF2);
}
