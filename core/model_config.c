/* model_config.c - Keras Sequential model descriptions.
 *
 * Parses the JSON that tf.keras model.to_json() prints (tf.keras 2.x, older
 * Keras with "batch_input_shape" on the first layer, Keras 3 "batch_shape"),
 * prints the tf.keras 2.15 form back (the model_config attribute of
 * full-model HDF5 files), builds the named built-in models, and infers shapes
 * and parameter counts from a spec alone.
 *
 * Only what the engine computes is accepted: channels_last, dilation 1,
 * groups 1, BatchNormalization on the last axis with center and scale,
 * glorot_uniform kernels, zero biases, BN ones/zeros, no regularizers or
 * constraints, float32.  Anything else is rejected with the JSON pointer of
 * the offending key, never silently ignored. */
#include "model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DIM_MAX 65536           /* input H, W, C; kernel, pool and stride sizes */
#define WIDTH_MAX (1 << 20)     /* Conv2D filters, Dense units */
#define FEATURES_MAX (1 << 28)  /* elements of one example after any layer */
#define LAYERS_MAX 1024
#define N_LAYER_KINDS 8

/* --- names ----------------------------------------------------------------- */

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

static const struct {
    const char *cls;
    enum layer_kind kind;
} class_table[] = {
    {"Conv2D", LAYER_KIND_CONV2D},
    {"Convolution2D", LAYER_KIND_CONV2D},
    {"Dense", LAYER_KIND_DENSE},
    {"BatchNormalization", LAYER_KIND_BATCH_NORMALIZATION},
    {"Activation", LAYER_KIND_ACTIVATION},
    {"MaxPooling2D", LAYER_KIND_MAX_POOLING2D},
    {"MaxPool2D", LAYER_KIND_MAX_POOLING2D},
    {"AveragePooling2D", LAYER_KIND_AVERAGE_POOLING2D},
    {"AvgPool2D", LAYER_KIND_AVERAGE_POOLING2D},
    {"Dropout", LAYER_KIND_DROPOUT},
    {"Flatten", LAYER_KIND_FLATTEN},
};

static const char *const activation_names[] = {
    [ACTIVATION_KIND_LINEAR] = "linear",
    [ACTIVATION_KIND_RELU] = "relu",
    [ACTIVATION_KIND_SIGMOID] = "sigmoid",
    [ACTIVATION_KIND_TANH] = "tanh",
    [ACTIVATION_KIND_SOFTMAX] = "softmax",
};

static const char *activation_name(enum activation_kind a)
{
    if ((unsigned)a < sizeof(activation_names) / sizeof(activation_names[0]))
        return activation_names[a];
    return "linear";
}

/* A layer of `kind` with Keras' defaults; fields that do not apply are zero. */
static void layer_config_init(struct layer_config *l, enum layer_kind kind)
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

static bool name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((struct layer_config *)0)->name))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == '/' || *p == 0x7f)
            return false;
    return true;
}

/* Keras' automatic name for the count-th layer of a kind: conv2d, conv2d_1, ... */
static void auto_name(char *buf, size_t size, enum layer_kind kind, int count)
{
    if (count == 0)
        snprintf(buf, size, "%s", layer_kind_prefix(kind));
    else
        snprintf(buf, size, "%s_%d", layer_kind_prefix(kind), count);
}

/* --- shapes and parameters --------------------------------------------------- */

/* TF output length of a window op: same -> ceil(in / s), valid -> floor((in - k) / s) + 1. */
static int window_out(int in, int k, int s, enum padding_kind padding)
{
    if (padding == PADDING_KIND_SAME)
        return (in + s - 1) / s;
    if (in < k)
        return 0;
    return (in - k) / s + 1;
}

/* Shape inference with errors naming /config/layers/<json_index[i]> (or i + 1). */
static int infer_shapes(const struct model_spec *spec, const int *json_index,
                        int (*out)[3], struct diag *d)
{
    char field[64];
    int h = spec->input_shape[0], w = spec->input_shape[1], c = spec->input_shape[2];
    if (h < 1 || w < 1 || c < 1 || h > DIM_MAX || w > DIM_MAX || c > DIM_MAX)
        return diag_set(d, -EINVAL, "/config/layers/0",
                        "input shape (%d, %d, %d) must have sizes in [1, %d]", h, w, c, DIM_MAX);
    if (spec->n_layers < 1 || !spec->layers)
        return diag_set(d, -EINVAL, "/config/layers", "the model has no layers");
    bool flat = false; /* Keras tensor is 2-D (N, features) after Flatten */
    for (int i = 0; i < spec->n_layers; i++) {
        const struct layer_config *l = &spec->layers[i];
        int ji = json_index ? json_index[i] : i + 1;
        snprintf(field, sizeof(field), "/config/layers/%d", ji);
        const char *cls = layer_kind_class_name(l->kind);
        switch (l->kind) {
        case LAYER_KIND_CONV2D:
        case LAYER_KIND_MAX_POOLING2D:
        case LAYER_KIND_AVERAGE_POOLING2D: {
            bool conv = l->kind == LAYER_KIND_CONV2D;
            const int *k = conv ? l->kernel_size : l->pool_size;
            if (flat)
                return diag_set(d, -EINVAL, field,
                                "layer %d (%s \"%s\"): needs a 4-D input (N, H, W, C), "
                                "got a flat one after Flatten", ji, cls, l->name);
            if (k[0] < 1 || k[1] < 1 || l->strides[0] < 1 || l->strides[1] < 1 ||
                k[0] > DIM_MAX || k[1] > DIM_MAX || l->strides[0] > DIM_MAX ||
                l->strides[1] > DIM_MAX || (conv && (l->filters < 1 || l->filters > WIDTH_MAX)))
                return diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): invalid %s, strides%s",
                                ji, cls, l->name, conv ? "kernel_size" : "pool_size",
                                conv ? " or filters" : "");
            int oh = window_out(h, k[0], l->strides[0], l->padding);
            int ow = window_out(w, k[1], l->strides[1], l->padding);
            if (oh < 1 || ow < 1)
                return diag_set(d, -EINVAL, field,
                                "layer %d (%s \"%s\"): output size (%d, %d) is not positive: "
                                "input (%d, %d), %s (%d, %d), strides (%d, %d), padding valid",
                                ji, cls, l->name, oh, ow, h, w, conv ? "kernel" : "pool",
                                k[0], k[1], l->strides[0], l->strides[1]);
            h = oh;
            w = ow;
            if (conv)
                c = l->filters;
            break;
        }
        case LAYER_KIND_DENSE:
            if (!flat)
                return diag_set(d, -EINVAL, field,
                                "layer %d (Dense \"%s\"): input is 4-D (N, %d, %d, %d); Keras "
                                "would apply Dense to the last axis only, put a Flatten before it",
                                ji, l->name, h, w, c);
            if (l->units < 1 || l->units > WIDTH_MAX)
                return diag_set(d, -EINVAL, field, "layer %d (Dense \"%s\"): units %d not in [1, %d]",
                                ji, l->name, l->units, WIDTH_MAX);
            c = l->units;
            break;
        case LAYER_KIND_FLATTEN:
            if ((long long)h * w * c > FEATURES_MAX)
                return diag_set(d, -EINVAL, field,
                                "layer %d (Flatten \"%s\"): %lld features is more than %d",
                                ji, l->name, (long long)h * w * c, FEATURES_MAX);
            c = h * w * c;
            h = w = 1;
            flat = true;
            break;
        case LAYER_KIND_DROPOUT:
            if (!(l->rate >= 0.0f && l->rate < 1.0f))
                return diag_set(d, -EINVAL, field, "layer %d (Dropout \"%s\"): rate %g not in [0, 1)",
                                ji, l->name, (double)l->rate);
            break;
        case LAYER_KIND_BATCH_NORMALIZATION:
        case LAYER_KIND_ACTIVATION:
            break;
        default:
            return diag_set(d, -EINVAL, field, "layer %d: unknown layer kind %d", ji, (int)l->kind);
        }
        if ((long long)h * w * c > FEATURES_MAX)
            return diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): output (%d, %d, %d) is too large",
                            ji, cls, l->name, h, w, c);
        out[i][0] = h;
        out[i][1] = w;
        out[i][2] = c;
    }
    return 0;
}

int model_spec_infer_shapes(const struct model_spec *spec, int (*ret_out_shapes)[3],
                            struct diag *d)
{
    if (spec->n_layers < 1 || spec->n_layers > LAYERS_MAX)
        return diag_set(d, -EINVAL, "/config/layers", "the model has %d layers (1 to %d allowed)",
                        spec->n_layers, LAYERS_MAX);
    int(*tmp)[3] = calloc((size_t)spec->n_layers, sizeof(*tmp));
    if (!tmp)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int err = infer_shapes(spec, NULL, tmp, d);
    if (!err)
        memcpy(ret_out_shapes, tmp, (size_t)spec->n_layers * sizeof(*tmp));
    free(tmp);
    return err;
}

int model_spec_count_params(const struct model_spec *spec, size_t *ret_total,
                            size_t *ret_trainable, struct diag *d)
{
    if (spec->n_layers < 1 || spec->n_layers > LAYERS_MAX)
        return diag_set(d, -EINVAL, "/config/layers", "the model has %d layers (1 to %d allowed)",
                        spec->n_layers, LAYERS_MAX);
    int(*shape)[3] = calloc((size_t)spec->n_layers, sizeof(*shape));
    if (!shape)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int err = infer_shapes(spec, NULL, shape, d);
    size_t total = 0, trainable = 0;
    for (int i = 0; !err && i < spec->n_layers; i++) {
        const struct layer_config *l = &spec->layers[i];
        size_t cin = (size_t)(i == 0 ? spec->input_shape[2] : shape[i - 1][2]);
        size_t cout = (size_t)shape[i][2], n = 0, nt = 0;
        bool over = false;
        switch (l->kind) {
        case LAYER_KIND_CONV2D: /* kernel (kh, kw, cin, filters) + bias (filters) */
            over = __builtin_mul_overflow((size_t)l->kernel_size[0], (size_t)l->kernel_size[1], &nt) ||
                   __builtin_mul_overflow(nt, cin, &nt) || __builtin_mul_overflow(nt, cout, &nt);
            nt += l->use_bias ? cout : 0;
            n = nt;
            break;
        case LAYER_KIND_DENSE: /* kernel (in, units) + bias (units) */
            over = __builtin_mul_overflow(cin, cout, &nt);
            nt += l->use_bias ? cout : 0;
            n = nt;
            break;
        case LAYER_KIND_BATCH_NORMALIZATION: /* gamma, beta trainable; moving mean, var not */
            nt = 2 * cout;
            n = 4 * cout;
            break;
        default:
            break;
        }
        if (over || n > SIZE_MAX / 2 - total) {
            err = diag_set(d, -EOVERFLOW, "/config/layers", "parameter count overflows");
            break;
        }
        total += n;
        trainable += nt;
    }
    free(shape);
    if (err)
        return err;
    if (ret_total)
        *ret_total = total;
    if (ret_trainable)
        *ret_trainable = trainable;
    return 0;
}

int model_spec_output_classes(const struct model_spec *spec, struct diag *d)
{
    if (spec->n_layers < 1 || spec->n_layers > LAYERS_MAX)
        return diag_set(d, -EINVAL, "/config/layers", "the model has %d layers (1 to %d allowed)",
                        spec->n_layers, LAYERS_MAX);
    int(*shape)[3] = calloc((size_t)spec->n_layers, sizeof(*shape));
    if (!shape)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int err = infer_shapes(spec, NULL, shape, d);
    int last = spec->n_layers - 1;
    int classes = err ? 0 : shape[last][2];
    bool flat = !err && shape[last][0] == 1 && shape[last][1] == 1;
    free(shape);
    if (err)
        return err;
    const struct layer_config *l = &spec->layers[last];
    bool softmax = (l->kind == LAYER_KIND_ACTIVATION || l->kind == LAYER_KIND_DENSE) &&
                   l->activation == ACTIVATION_KIND_SOFTMAX;
    if (!softmax || !flat) {
        char field[64];
        snprintf(field, sizeof(field), "/config/layers/%d", last + 1);
        return diag_set(d, -EINVAL, field,
                        "layer %d (%s \"%s\"): the model must end in softmax over a flat "
                        "(N, classes) output", last + 1, layer_kind_class_name(l->kind), l->name);
    }
    return classes;
}

/* --- parsing ----------------------------------------------------------------- */

/* Where a layer error points: /config/layers/<ji>[/config/<key>]. */
struct layer_ctx {
    struct diag *d;
    int ji;
    const char *cls;
};

static int layer_err(const struct layer_ctx *c, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int layer_err(const struct layer_ctx *c, const char *key, const char *fmt, ...)
{
    char field[256], msg[400];
    if (key)
        snprintf(field, sizeof(field), "/config/layers/%d/config/%s", c->ji, key);
    else
        snprintf(field, sizeof(field), "/config/layers/%d", c->ji);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (key)
        return diag_set(c->d, -EINVAL, field, "layer %d (%s) key \"%s\": %s", c->ji, c->cls, key, msg);
    return diag_set(c->d, -EINVAL, field, "layer %d (%s): %s", c->ji, c->cls, msg);
}

/* The first key that appears twice in a JSON object, or NULL. */
static const char *duplicate_key(const cJSON *obj)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0)
                return a->string;
    return NULL;
}

static bool json_int(const cJSON *it, int lo, int hi, int *ret)
{
    if (!cJSON_IsNumber(it))
        return false;
    double v = it->valuedouble;
    if (!(v >= lo && v <= hi) || v != floor(v))
        return false;
    *ret = (int)v;
    return true;
}

static bool json_float(const cJSON *it, float *ret)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return false;
    float f = (float)it->valuedouble;
    if (!isfinite(f))
        return false;
    *ret = f;
    return true;
}

/* int or [a, b] */
static int parse_pair(const struct layer_ctx *c, const char *key, const cJSON *it, int lo, int hi,
                      int ret[2])
{
    int a, b;
    if (json_int(it, lo, hi, &a)) {
        ret[0] = ret[1] = a;
        return 0;
    }
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && json_int(it->child, lo, hi, &a) &&
        json_int(it->child->next, lo, hi, &b)) {
        ret[0] = a;
        ret[1] = b;
        return 0;
    }
    return layer_err(c, key, "must be an integer in [%d, %d] or a list of two", lo, hi);
}

static int parse_bool(const struct layer_ctx *c, const char *key, const cJSON *it, bool *ret)
{
    if (!cJSON_IsBool(it))
        return layer_err(c, key, "must be true or false");
    *ret = cJSON_IsTrue(it);
    return 0;
}

/* A bool key whose only supported value is `want`. */
static int expect_bool(const struct layer_ctx *c, const char *key, const cJSON *it, bool want,
                       const char *why)
{
    bool v = want;
    int err = parse_bool(c, key, it, &v);
    if (err)
        return err;
    if (v != want)
        return layer_err(c, key, "only %s is supported (%s)", want ? "true" : "false", why);
    return 0;
}

static int expect_null(const struct layer_ctx *c, const char *key, const cJSON *it)
{
    if (cJSON_IsNull(it))
        return 0;
    if (strstr(key, "regularizer"))
        return layer_err(c, key, "regularizers are not supported (must be null)");
    if (strstr(key, "constraint"))
        return layer_err(c, key, "constraints are not supported (must be null)");
    return layer_err(c, key, "only null is supported");
}

static int parse_padding(const struct layer_ctx *c, const char *key, const cJSON *it,
                         enum padding_kind *ret)
{
    const char *s = cJSON_GetStringValue(it);
    if (s && strcasecmp(s, "same") == 0)
        *ret = PADDING_KIND_SAME;
    else if (s && strcasecmp(s, "valid") == 0)
        *ret = PADDING_KIND_VALID;
    else
        return layer_err(c, key, "must be \"same\" or \"valid\"");
    return 0;
}

static int check_data_format(const struct layer_ctx *c, const char *key, const cJSON *it)
{
    const char *s = cJSON_GetStringValue(it);
    if (cJSON_IsNull(it) || (s && strcmp(s, "channels_last") == 0))
        return 0;
    return layer_err(c, key, "only \"channels_last\" is supported, got %s",
                     s ? s : "a non-string");
}

static int parse_activation(const struct layer_ctx *c, const char *key, const cJSON *it,
                            enum activation_kind *ret)
{
    const char *s = cJSON_GetStringValue(it);
    if (cJSON_IsNull(it)) {
        *ret = ACTIVATION_KIND_LINEAR;
        return 0;
    }
    for (size_t i = 0; s && i < sizeof(activation_names) / sizeof(activation_names[0]); i++) {
        if (strcmp(s, activation_names[i]) == 0) {
            *ret = (enum activation_kind)i;
            return 0;
        }
    }
    return layer_err(c, key, "unsupported activation %s%s%s (linear, relu, sigmoid, tanh, softmax)",
                     s ? "\"" : "", s ? s : "(not a string)", s ? "\"" : "");
}

/* float32 as a string or a (Keras 3) DTypePolicy object. */
static int check_dtype(const struct layer_ctx *c, const char *key, const cJSON *it)
{
    const char *s = cJSON_GetStringValue(it);
    if (cJSON_IsObject(it)) {
        const char *cls = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "class_name"));
        const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(it, "config");
        if (cls && (strcmp(cls, "DTypePolicy") == 0 || strcmp(cls, "Policy") == 0))
            s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "name"));
    }
    if (cJSON_IsNull(it) || (s && strcmp(s, "float32") == 0))
        return 0;
    return layer_err(c, key, "only float32 is supported, got %s", s ? s : "another policy");
}

enum init_kind { INIT_GLOROT_UNIFORM, INIT_ZEROS, INIT_ONES };

/* Accepts "glorot_uniform", "GlorotUniform" or {"class_name": "GlorotUniform",
 * "config": {"seed": null}} (plus Keras 3's "module" / "registered_name"). */
static int check_initializer(const struct layer_ctx *c, const char *key, const cJSON *it,
                             enum init_kind want)
{
    static const char *const cls_names[] = {"GlorotUniform", "Zeros", "Ones"};
    static const char *const fn_names[] = {"glorot_uniform", "zeros", "ones"};
    const char *s = cJSON_GetStringValue(it);
    const cJSON *cfg = NULL;
    if (cJSON_IsObject(it)) {
        for (const cJSON *k = it->child; k; k = k->next) {
            if (strcmp(k->string, "class_name") == 0)
                s = cJSON_GetStringValue(k);
            else if (strcmp(k->string, "config") == 0)
                cfg = k;
            else if (strcmp(k->string, "module") != 0 && strcmp(k->string, "registered_name") != 0)
                return layer_err(c, key, "unknown initializer key \"%s\"", k->string);
        }
    }
    if (!s || (strcmp(s, cls_names[want]) != 0 && strcmp(s, fn_names[want]) != 0))
        return layer_err(c, key, "only %s is supported here, got %s%s%s", cls_names[want],
                         s ? "\"" : "", s ? s : "(no class_name)", s ? "\"" : "");
    if (cfg && !cJSON_IsNull(cfg)) {
        if (!cJSON_IsObject(cfg))
            return layer_err(c, key, "initializer config must be an object");
        for (const cJSON *k = cfg->child; k; k = k->next) {
            int seed;
            bool ok = want == INIT_GLOROT_UNIFORM && strcmp(k->string, "seed") == 0 &&
                      (cJSON_IsNull(k) || json_int(k, INT_MIN, INT_MAX, &seed));
            if (!ok)
                return layer_err(c, key, "unsupported initializer option \"%s\"", k->string);
        }
    }
    return 0;
}

/* [null, H, W, C] (a batch size instead of null is accepted and ignored). */
static int parse_batch_shape(const cJSON *it, int ret[3], const char *field, const char *what,
                             struct diag *d)
{
    int v[4], batch;
    bool ok = cJSON_IsArray(it) && cJSON_GetArraySize(it) == 4;
    const cJSON *e = ok ? it->child : NULL;
    ok = ok && (cJSON_IsNull(e) || json_int(e, 1, INT_MAX, &batch));
    for (int i = 1; ok && i < 4; i++) {
        e = e->next;
        ok = json_int(e, 1, DIM_MAX, &v[i]);
    }
    if (!ok)
        return diag_set(d, -EINVAL, field,
                        "%s must be [null, H, W, C] with sizes in [1, %d] (images are NHWC)", what,
                        DIM_MAX);
    ret[0] = v[1];
    ret[1] = v[2];
    ret[2] = v[3];
    return 0;
}

/* What parsing the layers collects besides the layers themselves. */
struct parse_state {
    struct model_spec *s;
    int *json_index;          /* (n_layers): index in /config/layers */
    bool flat;                /* a Flatten came before (Keras tensor is 2-D) */
    bool have_input_layer_shape, have_first_shape;
    int input_layer_shape[3]; /* InputLayer batch_input_shape / batch_shape */
    int first_shape[3];       /* first layer's batch_input_shape (older Keras) */
    bool have_build_shape;
    int build_shape[3];       /* config/build_input_shape */
    bool named[LAYERS_MAX];   /* layer had a "name" */
};

static const char *const weighted_null_keys[] = {
    "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
    "bias_constraint", "lora_rank", "lora_alpha", "quantization_config", NULL,
};
static const char *const bn_null_keys[] = {
    "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint",
    "virtual_batch_size", NULL,
};

static bool in_list(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(key, *list) == 0)
            return true;
    return false;
}

/* 1 (key handled) unless err < 0. */
static int handled(int err)
{
    return err < 0 ? err : 1;
}

/* One key of a layer config: 1 when handled, 0 when unknown, or a negative
 * errno.  Required keys set bits in *found. */
static int parse_layer_key(const struct layer_ctx *c, struct parse_state *st, struct layer_config *l,
                           bool first, const cJSON *it, unsigned *found, bool *strides_set)
{
    const char *key = it->string;
    int err = 0;
    enum layer_kind k = l->kind;
    bool weighted = k == LAYER_KIND_CONV2D || k == LAYER_KIND_DENSE;
    bool pool = k == LAYER_KIND_MAX_POOLING2D || k == LAYER_KIND_AVERAGE_POOLING2D;

    /* keys every layer has */
    if (strcmp(key, "name") == 0) {
        const char *s = cJSON_GetStringValue(it);
        if (!s || !name_is_valid(s))
            return layer_err(c, key, "must be a string of 1 to %zu characters without '/'",
                             sizeof(l->name) - 1);
        snprintf(l->name, sizeof(l->name), "%s", s);
        return 1;
    }
    if (strcmp(key, "trainable") == 0)
        return handled(expect_bool(c, key, it, true, "frozen layers are not supported"));
    if (strcmp(key, "dtype") == 0)
        return handled(check_dtype(c, key, it));
    if (strcmp(key, "batch_input_shape") == 0 || strcmp(key, "batch_shape") == 0) {
        char field[256];
        snprintf(field, sizeof(field), "/config/layers/%d/config/%s", c->ji, key);
        int shape[3];
        err = parse_batch_shape(it, shape, field, key, c->d);
        if (err)
            return err;
        if (first) {
            memcpy(st->first_shape, shape, sizeof(shape));
            st->have_first_shape = true;
        }
        return 1;
    }

    /* Conv2D and Dense */
    if (weighted) {
        if (strcmp(key, "activation") == 0)
            return handled(parse_activation(c, key, it, &l->activation));
        if (strcmp(key, "use_bias") == 0)
            return handled(parse_bool(c, key, it, &l->use_bias));
        if (strcmp(key, "kernel_initializer") == 0)
            return handled(check_initializer(c, key, it, INIT_GLOROT_UNIFORM));
        if (strcmp(key, "bias_initializer") == 0)
            return handled(check_initializer(c, key, it, INIT_ZEROS));
        if (in_list(key, weighted_null_keys))
            return handled(expect_null(c, key, it));
    }
    if (k == LAYER_KIND_CONV2D || pool) {
        if (strcmp(key, "padding") == 0)
            return handled(parse_padding(c, key, it, &l->padding));
        if (strcmp(key, "data_format") == 0)
            return handled(check_data_format(c, key, it));
        if (strcmp(key, "strides") == 0) {
            if (pool && cJSON_IsNull(it))
                return 1; /* Keras: strides default to pool_size */
            *strides_set = true;
            return handled(parse_pair(c, key, it, 1, DIM_MAX, l->strides));
        }
    }

    switch (k) {
    case LAYER_KIND_CONV2D:
        if (strcmp(key, "filters") == 0) {
            if (!json_int(it, 1, WIDTH_MAX, &l->filters))
                return layer_err(c, key, "must be an integer in [1, %d]", WIDTH_MAX);
            *found |= 1;
            return 1;
        }
        if (strcmp(key, "kernel_size") == 0) {
            *found |= 2;
            return handled(parse_pair(c, key, it, 1, DIM_MAX, l->kernel_size));
        }
        if (strcmp(key, "dilation_rate") == 0) {
            int dil[2];
            err = parse_pair(c, key, it, 1, DIM_MAX, dil);
            if (!err && (dil[0] != 1 || dil[1] != 1))
                err = layer_err(c, key, "only 1 (no dilation) is supported");
            return handled(err);
        }
        if (strcmp(key, "groups") == 0) {
            int g;
            if (!json_int(it, 1, 1, &g))
                return layer_err(c, key, "only 1 is supported (no grouped convolution)");
            return 1;
        }
        break;
    case LAYER_KIND_DENSE:
        if (strcmp(key, "units") == 0) {
            if (!json_int(it, 1, WIDTH_MAX, &l->units))
                return layer_err(c, key, "must be an integer in [1, %d]", WIDTH_MAX);
            *found |= 1;
            return 1;
        }
        break;
    case LAYER_KIND_BATCH_NORMALIZATION:
        if (strcmp(key, "axis") == 0) {
            int a, last = st->flat ? 1 : 3;
            const cJSON *v = it;
            if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 1)
                v = it->child;
            if (!json_int(v, -8, 8, &a) || (a != -1 && a != last))
                return layer_err(c, key, "only the channels axis is supported (-1 or %d for a %s input)",
                                 last, st->flat ? "2-D" : "4-D");
            return 1;
        }
        if (strcmp(key, "momentum") == 0) {
            if (!json_float(it, &l->momentum) || l->momentum < 0.0f || l->momentum > 1.0f)
                return layer_err(c, key, "must be a number in [0, 1]");
            return 1;
        }
        if (strcmp(key, "epsilon") == 0) {
            if (!json_float(it, &l->epsilon) || !(l->epsilon > 0.0f))
                return layer_err(c, key, "must be a number > 0");
            return 1;
        }
        if (strcmp(key, "center") == 0 || strcmp(key, "scale") == 0)
            return handled(expect_bool(c, key, it, true, "beta and gamma are always present"));
        if (strcmp(key, "synchronized") == 0 || strcmp(key, "renorm") == 0)
            return handled(expect_bool(c, key, it, false, "not implemented"));
        if (strcmp(key, "beta_initializer") == 0 || strcmp(key, "moving_mean_initializer") == 0)
            return handled(check_initializer(c, key, it, INIT_ZEROS));
        if (strcmp(key, "gamma_initializer") == 0 || strcmp(key, "moving_variance_initializer") == 0)
            return handled(check_initializer(c, key, it, INIT_ONES));
        if (in_list(key, bn_null_keys))
            return handled(expect_null(c, key, it));
        break;
    case LAYER_KIND_ACTIVATION:
        if (strcmp(key, "activation") == 0) {
            *found |= 1;
            return handled(parse_activation(c, key, it, &l->activation));
        }
        break;
    case LAYER_KIND_MAX_POOLING2D:
    case LAYER_KIND_AVERAGE_POOLING2D:
        if (strcmp(key, "pool_size") == 0)
            return handled(parse_pair(c, key, it, 1, DIM_MAX, l->pool_size));
        break;
    case LAYER_KIND_DROPOUT:
        if (strcmp(key, "rate") == 0) {
            if (!json_float(it, &l->rate) || !(l->rate >= 0.0f && l->rate < 1.0f))
                return layer_err(c, key, "must be a number in [0, 1)");
            *found |= 1;
            return 1;
        }
        if (strcmp(key, "noise_shape") == 0)
            return handled(expect_null(c, key, it));
        if (strcmp(key, "seed") == 0) {
            int seed;
            if (!cJSON_IsNull(it) && !json_int(it, INT_MIN, INT_MAX, &seed))
                return layer_err(c, key, "must be null or an integer");
            return 1;
        }
        break;
    case LAYER_KIND_FLATTEN:
        if (strcmp(key, "data_format") == 0)
            return handled(check_data_format(c, key, it));
        break;
    }
    return 0;
}

static int parse_input_layer(const cJSON *cfg, struct parse_state *st, int ji, struct diag *d)
{
    struct layer_ctx c = {d, ji, "InputLayer"};
    if (ji != 0)
        return layer_err(&c, NULL, "an InputLayer is only allowed as the first layer");
    if (!cJSON_IsObject(cfg))
        return layer_err(&c, NULL, "\"config\" must be an object");
    const char *dup = duplicate_key(cfg);
    if (dup)
        return layer_err(&c, dup, "duplicate key");
    for (const cJSON *it = cfg->child; it; it = it->next) {
        const char *key = it->string;
        int err = 0;
        if (strcmp(key, "batch_input_shape") == 0 || strcmp(key, "batch_shape") == 0) {
            char field[256];
            snprintf(field, sizeof(field), "/config/layers/%d/config/%s", ji, key);
            err = parse_batch_shape(it, st->input_layer_shape, field, key, d);
            st->have_input_layer_shape = !err;
        } else if (strcmp(key, "dtype") == 0) {
            err = check_dtype(&c, key, it);
        } else if (strcmp(key, "sparse") == 0 || strcmp(key, "ragged") == 0 ||
                   strcmp(key, "optional") == 0) {
            err = expect_bool(&c, key, it, false, "dense float inputs only");
        } else if (strcmp(key, "name") == 0) {
            if (!cJSON_IsString(it))
                err = layer_err(&c, key, "must be a string");
        } else {
            err = layer_err(&c, key, "unknown key");
        }
        if (err)
            return err;
    }
    return 0;
}

static int parse_layer(const cJSON *obj, struct parse_state *st, int ji, struct diag *d)
{
    struct layer_ctx c = {d, ji, "?"};
    if (!cJSON_IsObject(obj))
        return layer_err(&c, NULL, "must be an object {\"class_name\": ..., \"config\": ...}");
    const char *cls = NULL;
    const cJSON *cfg = NULL;
    for (const cJSON *it = obj->child; it; it = it->next) {
        if (strcmp(it->string, "class_name") == 0)
            cls = cJSON_GetStringValue(it);
        else if (strcmp(it->string, "config") == 0)
            cfg = it;
        else if (strcmp(it->string, "module") != 0 && strcmp(it->string, "registered_name") != 0 &&
                 strcmp(it->string, "build_config") != 0)
            return layer_err(&c, NULL, "unknown key \"%s\" (only Sequential layer lists are "
                             "supported)", it->string);
    }
    if (!cls)
        return layer_err(&c, NULL, "\"class_name\" is missing or not a string");
    c.cls = cls;
    if (strcmp(cls, "InputLayer") == 0)
        return parse_input_layer(cfg, st, ji, d);

    bool known = false;
    enum layer_kind kind = LAYER_KIND_DENSE;
    for (size_t i = 0; i < sizeof(class_table) / sizeof(class_table[0]); i++) {
        if (strcmp(cls, class_table[i].cls) == 0) {
            kind = class_table[i].kind;
            known = true;
        }
    }
    if (!known)
        return layer_err(&c, NULL, "unsupported layer type (supported: Conv2D, Dense, "
                         "BatchNormalization, Activation, MaxPooling2D, AveragePooling2D, "
                         "Dropout, Flatten)");
    if (!cJSON_IsObject(cfg))
        return layer_err(&c, NULL, "\"config\" is missing or not an object");
    const char *dup = duplicate_key(cfg);
    if (dup)
        return layer_err(&c, dup, "duplicate key");

    struct model_spec *s = st->s;
    int idx = s->n_layers;
    struct layer_config *l = &s->layers[idx];
    layer_config_init(l, kind);
    unsigned found = 0;
    bool strides_set = false;
    for (const cJSON *it = cfg->child; it; it = it->next) {
        int r = parse_layer_key(&c, st, l, idx == 0, it, &found, &strides_set);
        if (r < 0)
            return r;
        if (r == 0)
            return layer_err(&c, it->string, "unknown key for %s", cls);
    }
    if (cJSON_GetObjectItemCaseSensitive(cfg, "name"))
        st->named[idx] = true;

    static const char *const required[][2] = {
        [LAYER_KIND_CONV2D] = {"filters", "kernel_size"},
        [LAYER_KIND_DENSE] = {"units", NULL},
        [LAYER_KIND_ACTIVATION] = {"activation", NULL},
        [LAYER_KIND_DROPOUT] = {"rate", NULL},
        [LAYER_KIND_BATCH_NORMALIZATION] = {NULL, NULL},
        [LAYER_KIND_MAX_POOLING2D] = {NULL, NULL},
        [LAYER_KIND_AVERAGE_POOLING2D] = {NULL, NULL},
        [LAYER_KIND_FLATTEN] = {NULL, NULL},
    };
    for (int r = 0; r < 2; r++)
        if (required[kind][r] && !(found & (1u << r)))
            return layer_err(&c, NULL, "required key \"%s\" is missing", required[kind][r]);

    if ((kind == LAYER_KIND_MAX_POOLING2D || kind == LAYER_KIND_AVERAGE_POOLING2D) && !strides_set)
        memcpy(l->strides, l->pool_size, sizeof(l->strides));
    if (kind == LAYER_KIND_FLATTEN)
        st->flat = true;
    st->json_index[idx] = ji;
    s->n_layers++;
    return 0;
}

/* Unnamed layers get Keras' automatic names; names must be unique (they are
 * HDF5 group names in weight files). */
static int name_layers(struct parse_state *st, struct diag *d)
{
    struct model_spec *s = st->s;
    int counts[N_LAYER_KINDS] = {0};
    for (int i = 0; i < s->n_layers; i++) {
        struct layer_config *l = &s->layers[i];
        if (st->named[i])
            continue;
        for (;;) {
            auto_name(l->name, sizeof(l->name), l->kind, counts[l->kind]++);
            bool taken = false;
            for (int j = 0; j < s->n_layers && !taken; j++)
                taken = j != i && strcmp(s->layers[j].name, l->name) == 0;
            if (!taken)
                break;
        }
    }
    for (int i = 0; i < s->n_layers; i++) {
        for (int j = 0; j < i; j++) {
            if (strcmp(s->layers[i].name, s->layers[j].name) == 0) {
                char field[64];
                snprintf(field, sizeof(field), "/config/layers/%d/config/name", st->json_index[i]);
                return diag_set(d, -EINVAL, field,
                                "layer %d (%s) key \"name\": \"%s\" is already the name of layer %d",
                                st->json_index[i], layer_kind_class_name(s->layers[i].kind),
                                s->layers[i].name, st->json_index[j]);
            }
        }
    }
    return 0;
}

static int parse_model_config(const cJSON *cfg, struct parse_state *st, struct diag *d)
{
    const cJSON *layers = NULL;
    struct model_spec *s = st->s;
    snprintf(s->name, sizeof(s->name), "sequential");
    if (cJSON_IsArray(cfg)) { /* Keras <= 2.2: "config" is the layer list itself */
        layers = cfg;
    } else if (cJSON_IsObject(cfg)) {
        const char *dup = duplicate_key(cfg);
        if (dup)
            return diag_set(d, -EINVAL, "/config", "duplicate key \"%s\"", dup);
        for (const cJSON *it = cfg->child; it; it = it->next) {
            const char *key = it->string;
            if (strcmp(key, "name") == 0) {
                const char *n = cJSON_GetStringValue(it);
                if (!n || !name_is_valid(n))
                    return diag_set(d, -EINVAL, "/config/name",
                                    "model name must be a string of 1 to %zu characters without '/'",
                                    sizeof(s->name) - 1);
                snprintf(s->name, sizeof(s->name), "%s", n);
            } else if (strcmp(key, "layers") == 0) {
                layers = it;
            } else if (strcmp(key, "build_input_shape") == 0) {
                if (!cJSON_IsNull(it)) {
                    int err = parse_batch_shape(it, st->build_shape, "/config/build_input_shape",
                                                "build_input_shape", d);
                    if (err)
                        return err;
                    st->have_build_shape = true;
                }
            } else if (strcmp(key, "trainable") == 0) {
                if (!cJSON_IsTrue(it))
                    return diag_set(d, -EINVAL, "/config/trainable",
                                    "only trainable models are supported");
            } else if (strcmp(key, "dtype") == 0) {
                struct layer_ctx c = {d, 0, "Sequential"};
                if (check_dtype(&c, key, it))
                    return diag_set(d, -EINVAL, "/config/dtype", "only float32 is supported");
            } else {
                return diag_set(d, -EINVAL, "/config", "unknown key \"%s\" in the Sequential config",
                                key);
            }
        }
    } else {
        return diag_set(d, -EINVAL, "/config", "must be an object");
    }
    if (!cJSON_IsArray(layers))
        return diag_set(d, -EINVAL, "/config/layers", "missing or not a list");
    int n = cJSON_GetArraySize(layers);
    if (n > LAYERS_MAX)
        return diag_set(d, -EINVAL, "/config/layers", "%d layers is more than %d", n, LAYERS_MAX);
    s->layers = calloc((size_t)(n > 0 ? n : 1), sizeof(*s->layers));
    st->json_index = calloc((size_t)(n > 0 ? n : 1), sizeof(*st->json_index));
    if (!s->layers || !st->json_index)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int ji = 0;
    for (const cJSON *it = layers->child; it; it = it->next, ji++) {
        int err = parse_layer(it, st, ji, d);
        if (err)
            return err;
    }
    if (s->n_layers == 0)
        return diag_set(d, -EINVAL, "/config/layers", "the model has no layers");
    return name_layers(st, d);
}

static int parse_root(const cJSON *root, struct parse_state *st, const int input_shape[3],
                      struct diag *d)
{
    if (!cJSON_IsObject(root))
        return diag_set(d, -EINVAL, "", "the model must be a JSON object");
    const char *dup = duplicate_key(root);
    if (dup)
        return diag_set(d, -EINVAL, "", "duplicate key \"%s\"", dup);
    const char *cls = NULL;
    const cJSON *cfg = NULL;
    for (const cJSON *it = root->child; it; it = it->next) {
        const char *key = it->string;
        if (strcmp(key, "class_name") == 0) {
            cls = cJSON_GetStringValue(it);
        } else if (strcmp(key, "config") == 0) {
            cfg = it;
        } else if (strcmp(key, "keras_version") == 0 || strcmp(key, "backend") == 0 ||
                   strcmp(key, "module") == 0) {
            if (!cJSON_IsString(it)) {
                char field[64];
                snprintf(field, sizeof(field), "/%s", key);
                return diag_set(d, -EINVAL, field, "must be a string");
            }
        } else if (strcmp(key, "registered_name") != 0 && strcmp(key, "build_config") != 0 &&
                   strcmp(key, "compile_config") != 0) {
            char field[128];
            snprintf(field, sizeof(field), "/%s", key);
            return diag_set(d, -EINVAL, field, "unknown key \"%s\"", key);
        }
    }
    if (!cls)
        return diag_set(d, -EINVAL, "/class_name", "missing or not a string");
    if (strcmp(cls, "Sequential") != 0)
        return diag_set(d, -EINVAL, "/class_name",
                        "only Sequential models are supported, got \"%s\"", cls);
    if (!cfg)
        return diag_set(d, -EINVAL, "/config", "missing");
    int err = parse_model_config(cfg, st, d);
    if (err)
        return err;

    struct model_spec *s = st->s;
    if (input_shape)
        memcpy(s->input_shape, input_shape, sizeof(s->input_shape));
    else if (st->have_input_layer_shape)
        memcpy(s->input_shape, st->input_layer_shape, sizeof(s->input_shape));
    else if (st->have_first_shape)
        memcpy(s->input_shape, st->first_shape, sizeof(s->input_shape));
    else if (st->have_build_shape)
        memcpy(s->input_shape, st->build_shape, sizeof(s->input_shape));
    else
        return diag_set(d, -EINVAL, "/config/layers/0",
                        "no input shape: the model has no InputLayer, batch_input_shape or "
                        "build_input_shape, and none was given");

    int(*shape)[3] = calloc((size_t)s->n_layers, sizeof(*shape));
    if (!shape)
        return diag_set(d, -ENOMEM, "", "out of memory");
    err = infer_shapes(s, st->json_index, shape, d);
    free(shape);
    return err;
}

int model_spec_parse_json(struct model_spec *ret, const char *json, size_t len,
                          const int input_shape[3], struct diag *d)
{
    if (!json || len == 0)
        return diag_set(d, -EINVAL, "", "empty model JSON");
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root) {
        size_t pos = end && end >= json ? (size_t)(end - json) : 0;
        return diag_set(d, -EINVAL, "", "invalid JSON at byte %zu", pos);
    }
    size_t pos = (size_t)(end - json);
    while (pos < len && json[pos] != '\0' && strchr(" \t\r\n", json[pos]))
        pos++;
    if (pos < len && json[pos] != '\0') { /* a terminating NUL inside len is fine */
        cJSON_Delete(root);
        return diag_set(d, -EINVAL, "", "invalid JSON: trailing data at byte %zu", pos);
    }
    struct model_spec s;
    memset(&s, 0, sizeof(s));
    struct parse_state *st = calloc(1, sizeof(*st));
    if (!st) {
        cJSON_Delete(root);
        return diag_set(d, -ENOMEM, "", "out of memory");
    }
    st->s = &s;
    int err = parse_root(root, st, input_shape, d);
    cJSON_Delete(root);
    free(st->json_index);
    free(st);
    if (err) {
        model_spec_free(&s);
        return err;
    }
    *ret = s;
    return 0;
}

/* --- printing ---------------------------------------------------------------- */

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

/* The shortest decimal that reads back as the same float, written as Python
 * repr() writes floats (always with a '.' or an exponent). */
static void sb_float(struct strbuf *b, float v)
{
    char tmp[48];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, (double)v);
        if (strtof(tmp, NULL) == v)
            break;
    }
    if (!strpbrk(tmp, ".eEn"))
        strcat(tmp, ".0");
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

static const char *const init_json[] = {
    [INIT_GLOROT_UNIFORM] = "{\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}}",
    [INIT_ZEROS] = "{\"class_name\": \"Zeros\", \"config\": {}}",
    [INIT_ONES] = "{\"class_name\": \"Ones\", \"config\": {}}",
};

static void sb_init(struct strbuf *b, const char *key, enum init_kind k)
{
    sb_key(b, key);
    sb_puts(b, init_json[k]);
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
    sb_puts(b, ", \"trainable\": true, \"dtype\": \"float32\"");
    switch (l->kind) {
    case LAYER_KIND_CONV2D:
        sb_printf(b, ", \"filters\": %d", l->filters);
        sb_pair(b, "kernel_size", l->kernel_size);
        sb_pair(b, "strides", l->strides);
        sb_printf(b, ", \"padding\": %s, \"data_format\": \"channels_last\", "
                  "\"dilation_rate\": [1, 1], \"groups\": 1", padding);
        sb_printf(b, ", \"activation\": \"%s\", \"use_bias\": %s", activation_name(l->activation),
                  l->use_bias ? "true" : "false");
        sb_init(b, "kernel_initializer", INIT_GLOROT_UNIFORM);
        sb_init(b, "bias_initializer", INIT_ZEROS);
        sb_nulls(b, weighted_nulls);
        break;
    case LAYER_KIND_DENSE:
        sb_printf(b, ", \"units\": %d, \"activation\": \"%s\", \"use_bias\": %s", l->units,
                  activation_name(l->activation), l->use_bias ? "true" : "false");
        sb_init(b, "kernel_initializer", INIT_GLOROT_UNIFORM);
        sb_init(b, "bias_initializer", INIT_ZEROS);
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
        sb_init(b, "beta_initializer", INIT_ZEROS);
        sb_init(b, "gamma_initializer", INIT_ONES);
        sb_init(b, "moving_mean_initializer", INIT_ZEROS);
        sb_init(b, "moving_variance_initializer", INIT_ONES);
        sb_nulls(b, bn_nulls);
        break;
    case LAYER_KIND_ACTIVATION:
        sb_printf(b, ", \"activation\": \"%s\"", activation_name(l->activation));
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
    }
    sb_puts(b, "}}");
}

char *model_spec_to_json(const struct model_spec *spec)
{
    struct strbuf b = {0};
    sb_puts(&b, "{\"class_name\": \"Sequential\", \"config\": {\"name\": ");
    sb_json_string(&b, spec->name[0] ? spec->name : "sequential");
    sb_puts(&b, ", \"layers\": [");
    if (spec->n_layers > 0) {
        char input_name[sizeof(spec->layers[0].name) + 8];
        snprintf(input_name, sizeof(input_name), "%s_input", spec->layers[0].name);
        sb_printf(&b, "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": "
                  "[null, %d, %d, %d], \"dtype\": \"float32\", \"sparse\": false, "
                  "\"ragged\": false, \"name\": ",
                  spec->input_shape[0], spec->input_shape[1], spec->input_shape[2]);
        sb_json_string(&b, input_name);
        sb_puts(&b, "}}");
    }
    bool flat = false;
    for (int i = 0; i < spec->n_layers; i++) {
        sb_puts(&b, ", ");
        print_layer(&b, spec, i, flat);
        if (spec->layers[i].kind == LAYER_KIND_FLATTEN)
            flat = true;
    }
    sb_puts(&b, "]}, \"keras_version\": \"2.15.0\", \"backend\": \"tensorflow\"}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* --- built-in models ------------------------------------------------------------ */

static const char *const builtin_names[] = {"minivggnet", "shallownet", "lenet", "mlp", NULL};

const char *const *model_builtin_names(void)
{
    return builtin_names;
}

#define BUILTIN_MAX_LAYERS 32

struct builder {
    struct model_spec *s;
    int counts[N_LAYER_KINDS];
};

static struct layer_config *add(struct builder *b, enum layer_kind kind)
{
    struct layer_config *l = &b->s->layers[b->s->n_layers++];
    layer_config_init(l, kind);
    auto_name(l->name, sizeof(l->name), kind, b->counts[kind]++);
    return l;
}

static void add_conv(struct builder *b, int filters, int k)
{
    struct layer_config *l = add(b, LAYER_KIND_CONV2D);
    l->filters = filters;
    l->kernel_size[0] = l->kernel_size[1] = k;
    l->padding = PADDING_KIND_SAME;
}

static void add_activation(struct builder *b, enum activation_kind a)
{
    add(b, LAYER_KIND_ACTIVATION)->activation = a;
}

static void add_max_pool(struct builder *b)
{
    struct layer_config *l = add(b, LAYER_KIND_MAX_POOLING2D);
    l->pool_size[0] = l->pool_size[1] = 2;
    l->strides[0] = l->strides[1] = 2;
}

static void add_dropout(struct builder *b, float rate)
{
    add(b, LAYER_KIND_DROPOUT)->rate = rate;
}

static void add_dense(struct builder *b, int units, enum activation_kind a)
{
    struct layer_config *l = add(b, LAYER_KIND_DENSE);
    l->units = units;
    l->activation = a;
}

/* PyImageSearch MiniVGGNet: (CONV => RELU => BN) * 2 => POOL => DROPOUT, twice,
 * then FC(512) => RELU => BN => DROPOUT => FC(classes) => SOFTMAX. */
static void build_minivggnet(struct builder *b, int classes)
{
    for (int block = 0; block < 2; block++) {
        int filters = block == 0 ? 32 : 64;
        for (int j = 0; j < 2; j++) {
            add_conv(b, filters, 3);
            add_activation(b, ACTIVATION_KIND_RELU);
            add(b, LAYER_KIND_BATCH_NORMALIZATION);
        }
        add_max_pool(b);
        add_dropout(b, 0.25f);
    }
    add(b, LAYER_KIND_FLATTEN);
    add_dense(b, 512, ACTIVATION_KIND_LINEAR);
    add_activation(b, ACTIVATION_KIND_RELU);
    add(b, LAYER_KIND_BATCH_NORMALIZATION);
    add_dropout(b, 0.5f);
    add_dense(b, classes, ACTIVATION_KIND_LINEAR);
    add_activation(b, ACTIVATION_KIND_SOFTMAX);
}

static void build_shallownet(struct builder *b, int classes)
{
    add_conv(b, 32, 3);
    add_activation(b, ACTIVATION_KIND_RELU);
    add(b, LAYER_KIND_FLATTEN);
    add_dense(b, classes, ACTIVATION_KIND_LINEAR);
    add_activation(b, ACTIVATION_KIND_SOFTMAX);
}

static void build_lenet(struct builder *b, int classes)
{
    add_conv(b, 20, 5);
    add_activation(b, ACTIVATION_KIND_RELU);
    add_max_pool(b);
    add_conv(b, 50, 5);
    add_activation(b, ACTIVATION_KIND_RELU);
    add_max_pool(b);
    add(b, LAYER_KIND_FLATTEN);
    add_dense(b, 500, ACTIVATION_KIND_LINEAR);
    add_activation(b, ACTIVATION_KIND_RELU);
    add_dense(b, classes, ACTIVATION_KIND_LINEAR);
    add_activation(b, ACTIVATION_KIND_SOFTMAX);
}

static void build_mlp(struct builder *b, int classes)
{
    add(b, LAYER_KIND_FLATTEN);
    add_dense(b, 512, ACTIVATION_KIND_RELU);
    add_dropout(b, 0.2f);
    add_dense(b, 512, ACTIVATION_KIND_RELU);
    add_dropout(b, 0.2f);
    add_dense(b, classes, ACTIVATION_KIND_SOFTMAX);
}

int model_spec_builtin(struct model_spec *ret, const char *name, const int input_shape[3],
                       int classes, struct diag *d)
{
    static void (*const builders[])(struct builder *, int) = {
        build_minivggnet, build_shallownet, build_lenet, build_mlp,
    };
    int which = -1;
    for (int i = 0; name && builtin_names[i]; i++)
        if (strcmp(name, builtin_names[i]) == 0)
            which = i;
    if (which < 0)
        return diag_set(d, -EINVAL, "/model",
                        "unknown built-in model \"%s\" (minivggnet, shallownet, lenet, mlp)",
                        name ? name : "");
    if (!input_shape)
        return diag_set(d, -EINVAL, "/model", "built-in model \"%s\" needs an input shape", name);
    if (classes < 2 || classes > WIDTH_MAX)
        return diag_set(d, -EINVAL, "/model", "classes %d not in [2, %d]", classes, WIDTH_MAX);

    struct model_spec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "sequential");
    memcpy(s.input_shape, input_shape, sizeof(s.input_shape));
    s.layers = calloc(BUILTIN_MAX_LAYERS, sizeof(*s.layers));
    if (!s.layers)
        return diag_set(d, -ENOMEM, "", "out of memory");
    struct builder b = {.s = &s};
    builders[which](&b, classes);

    int(*shape)[3] = calloc((size_t)s.n_layers, sizeof(*shape));
    int err = shape ? infer_shapes(&s, NULL, shape, d) : diag_set(d, -ENOMEM, "", "out of memory");
    free(shape);
    if (err) {
        char msg[sizeof(d->message)];
        if (d) {
            snprintf(msg, sizeof(msg), "%s", d->message);
            diag_set(d, err, "/model", "built-in model \"%s\" on input (%d, %d, %d): %s", name,
                     input_shape[0], input_shape[1], input_shape[2], msg);
        }
        model_spec_free(&s);
        return err;
    }
    *ret = s;
    return 0;
}
