/* model_json_read.c - model_spec_parse_json: the JSON that tf.keras
 * model.to_json() prints (tf.keras 2.x, older Keras with "batch_input_shape"
 * on the first layer, Keras 3 "batch_shape").
 *
 * Only what the engine computes is accepted: channels_last, dilation 1,
 * groups 1, BatchNormalization on the last axis with center and scale, the
 * initializers of initializers.h, no regularizers or constraints, float32.  Anything else is rejected with the JSON pointer of
 * the offending key, never silently ignored.  The keys a layer may have are
 * one table (layer_keys). */
#include "model_spec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DIM_MAX MODEL_SPEC_DIM_MAX
#define WIDTH_MAX MODEL_SPEC_WIDTH_MAX
#define LAYERS_MAX MODEL_SPEC_LAYERS_MAX

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
    {"GlobalAveragePooling2D", LAYER_KIND_GLOBAL_AVERAGE_POOLING2D},
    {"GlobalAvgPool2D", LAYER_KIND_GLOBAL_AVERAGE_POOLING2D},
    {"GlobalMaxPooling2D", LAYER_KIND_GLOBAL_MAX_POOLING2D},
    {"GlobalMaxPool2D", LAYER_KIND_GLOBAL_MAX_POOLING2D},
    {"ZeroPadding2D", LAYER_KIND_ZERO_PADDING2D},
    {"ReLU", LAYER_KIND_RELU},
    {"LeakyReLU", LAYER_KIND_LEAKY_RELU},
    {"ELU", LAYER_KIND_ELU},
    {"Softmax", LAYER_KIND_SOFTMAX},
    {"Rescaling", LAYER_KIND_RESCALING},
    {"Reshape", LAYER_KIND_RESHAPE},
    {"SpatialDropout2D", LAYER_KIND_SPATIAL_DROPOUT2D},
    {"Add", LAYER_KIND_ADD},
    {"Concatenate", LAYER_KIND_CONCATENATE},
    {"DepthwiseConv2D", LAYER_KIND_DEPTHWISE_CONV2D},
};

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
    if (s && activation_kind_from_name(s, ret) == 0)
        return 0;
    return layer_err(c, key, "unsupported activation %s%s%s (linear, relu, sigmoid, tanh, "
                     "softmax, elu, selu, gelu, swish, silu, softplus, hard_sigmoid, leaky_relu)",
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

/* An initializer (initializers.h) into *ret; errors name the key below it,
 * e.g. "kernel_initializer/config/mode".  vector: a 1-D weight. */
static int parse_initializer(const struct layer_ctx *c, const char *key, const cJSON *it,
                             bool vector, struct initializer *ret)
{
    struct init_error e;
    if (initializer_parse(ret, it, vector, &e) == 0)
        return 0;
    char path[200];
    if (e.key[0])
        snprintf(path, sizeof(path), "%.60s/%s", key, e.key);
    else
        snprintf(path, sizeof(path), "%s", key);
    return layer_err(c, path, "%s", e.msg);
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
    bool functional;          /* class_name Functional / Model */
    const cJSON *inbound[LAYERS_MAX]; /* functional: each layer's inbound_nodes */
    const cJSON *input_layers, *output_layers;
    int bn_axis[LAYERS_MAX];  /* functional: a BatchNormalization's positive axis, or -1 / 0 */
};

/* What a key's parser reads and writes. */
struct key_args {
    const struct layer_ctx *c;
    struct parse_state *st;
    struct layer_config *l;
    bool first;        /* the first layer (its batch_input_shape is the model's) */
    bool strides_set;  /* pooling: strides given (else they default to pool_size) */
    const char *key;
    const cJSON *it;
};

struct layer_key;
typedef int (*key_parse_fn)(struct key_args *a, const struct layer_key *k);

/* One key: the layer kinds that accept it, its parser and the parser's
 * argument (an initializer slot, or the only bool value supported and why). */
struct layer_key {
    const char *name;
    unsigned kinds;    /* bits (1 << enum layer_kind) */
    key_parse_fn parse;
    int arg;
    const char *why;
    bool required;
};

static int key_name(struct key_args *a, const struct layer_key *k)
{
    const char *s = cJSON_GetStringValue(a->it);
    if (!s || !name_is_valid(s))
        return layer_err(a->c, a->key, "must be a string of 1 to %zu characters without '/'",
                         sizeof(a->l->name) - 1);
    snprintf(a->l->name, sizeof(a->l->name), "%s", s);
    return 0;
}

/* A bool key whose only supported value is k->arg. */
static int key_only_bool(struct key_args *a, const struct layer_key *k)
{
    return expect_bool(a->c, a->key, a->it, k->arg != 0, k->why);
}

static int key_trainable(struct key_args *a, const struct layer_key *k)
{
    bool v = true;
    int err = parse_bool(a->c, a->key, a->it, &v);
    a->l->frozen = !v;
    return err;
}

static int key_dtype(struct key_args *a, const struct layer_key *k)
{
    return check_dtype(a->c, a->key, a->it);
}

static int key_batch_shape(struct key_args *a, const struct layer_key *k)
{
    char field[256];
    snprintf(field, sizeof(field), "/config/layers/%d/config/%s", a->c->ji, a->key);
    int shape[3];
    int err = parse_batch_shape(a->it, shape, field, a->key, a->c->d);
    if (err)
        return err;
    if (a->first) {
        memcpy(a->st->first_shape, shape, sizeof(shape));
        a->st->have_first_shape = true;
    }
    return 0;
}

static int key_activation(struct key_args *a, const struct layer_key *k)
{
    return parse_activation(a->c, a->key, a->it, &a->l->activation);
}

static int key_use_bias(struct key_args *a, const struct layer_key *k)
{
    return parse_bool(a->c, a->key, a->it, &a->l->use_bias);
}

/* k->arg: the weight's initializer slot (layer_config.init). */
static int key_initializer(struct key_args *a, const struct layer_key *k)
{
    bool vector = strstr(a->key, "kernel") == NULL && strstr(a->key, "depthwise") == NULL;
    return parse_initializer(a->c, a->key, a->it, vector, &a->l->init[k->arg]);
}

static int key_null(struct key_args *a, const struct layer_key *k)
{
    return expect_null(a->c, a->key, a->it);
}

static int key_padding(struct key_args *a, const struct layer_key *k)
{
    return parse_padding(a->c, a->key, a->it, &a->l->padding);
}

static int key_data_format(struct key_args *a, const struct layer_key *k)
{
    return check_data_format(a->c, a->key, a->it);
}

static int key_strides(struct key_args *a, const struct layer_key *k)
{
    bool pool = a->l->kind == LAYER_KIND_MAX_POOLING2D ||
                a->l->kind == LAYER_KIND_AVERAGE_POOLING2D;
    if (pool && cJSON_IsNull(a->it))
        return 0; /* Keras: strides default to pool_size */
    a->strides_set = true;
    return parse_pair(a->c, a->key, a->it, 1, DIM_MAX, a->l->strides);
}

static int key_filters(struct key_args *a, const struct layer_key *k)
{
    if (!json_int(a->it, 1, WIDTH_MAX, &a->l->filters))
        return layer_err(a->c, a->key, "must be an integer in [1, %d]", WIDTH_MAX);
    return 0;
}

static int key_kernel_size(struct key_args *a, const struct layer_key *k)
{
    return parse_pair(a->c, a->key, a->it, 1, DIM_MAX, a->l->kernel_size);
}

static int key_dilation_rate(struct key_args *a, const struct layer_key *k)
{
    int dil[2] = {1, 1};
    int err = parse_pair(a->c, a->key, a->it, 1, DIM_MAX, dil);
    if (!err && (dil[0] != 1 || dil[1] != 1))
        err = layer_err(a->c, a->key, "only 1 (no dilation) is supported");
    return err;
}

static int key_groups(struct key_args *a, const struct layer_key *k)
{
    int g;
    if (!json_int(a->it, 1, 1, &g))
        return layer_err(a->c, a->key, "only 1 is supported (no grouped convolution)");
    return 0;
}

static int key_depth_multiplier(struct key_args *a, const struct layer_key *k)
{
    if (!json_int(a->it, 1, WIDTH_MAX, &a->l->depth_multiplier))
        return layer_err(a->c, a->key, "must be an integer in [1, %d]", WIDTH_MAX);
    return 0;
}

static int key_units(struct key_args *a, const struct layer_key *k)
{
    if (!json_int(a->it, 1, WIDTH_MAX, &a->l->units))
        return layer_err(a->c, a->key, "must be an integer in [1, %d]", WIDTH_MAX);
    return 0;
}

static int key_bn_axis(struct key_args *a, const struct layer_key *k)
{
    int axis, last = a->st->flat ? 1 : 3;
    const cJSON *v = a->it;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
        v = v->child;
    if (a->st->functional) { /* the input's rank is known after the graph: checked then */
        if (!json_int(v, -8, 8, &axis) || (axis != -1 && axis != 1 && axis != 3))
            return layer_err(a->c, a->key, "only the channels axis is supported (-1, or 1 for "
                             "a 2-D input, 3 for a 4-D one)");
        a->st->bn_axis[a->st->s->n_layers] = axis;
        return 0;
    }
    if (!json_int(v, -8, 8, &axis) || (axis != -1 && axis != last))
        return layer_err(a->c, a->key, "only the channels axis is supported (-1 or %d for a %s input)",
                         last, a->st->flat ? "2-D" : "4-D");
    return 0;
}

static int key_momentum(struct key_args *a, const struct layer_key *k)
{
    float *v = &a->l->momentum;
    if (!json_float(a->it, v) || *v < 0.0f || *v > 1.0f)
        return layer_err(a->c, a->key, "must be a number in [0, 1]");
    return 0;
}

static int key_epsilon(struct key_args *a, const struct layer_key *k)
{
    if (!json_float(a->it, &a->l->epsilon) || !(a->l->epsilon > 0.0f))
        return layer_err(a->c, a->key, "must be a number > 0");
    return 0;
}

static int key_pool_size(struct key_args *a, const struct layer_key *k)
{
    return parse_pair(a->c, a->key, a->it, 1, DIM_MAX, a->l->pool_size);
}

static int key_rate(struct key_args *a, const struct layer_key *k)
{
    if (!json_float(a->it, &a->l->rate) || !(a->l->rate >= 0.0f && a->l->rate < 1.0f))
        return layer_err(a->c, a->key, "must be a number in [0, 1)");
    return 0;
}

static int key_seed(struct key_args *a, const struct layer_key *k)
{
    int seed;
    if (!cJSON_IsNull(a->it) && !json_int(a->it, INT_MIN, INT_MAX, &seed))
        return layer_err(a->c, a->key, "must be null or an integer");
    return 0;
}

static int key_keepdims(struct key_args *a, const struct layer_key *k)
{
    return parse_bool(a->c, a->key, a->it, &a->l->keepdims);
}

/* ZeroPadding2D: p, [ph, pw] or [[top, bottom], [left, right]]. */
static int key_zero_padding(struct key_args *a, const struct layer_key *k)
{
    int *p = a->l->pad, v[2];
    const cJSON *it = a->it;
    if (json_int(it, 0, DIM_MAX, &v[0])) {
        p[0] = p[1] = p[2] = p[3] = v[0];
        return 0;
    }
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2) {
        const cJSON *r = it->child, *c = it->child->next;
        if (json_int(r, 0, DIM_MAX, &v[0]) && json_int(c, 0, DIM_MAX, &v[1])) {
            p[0] = p[1] = v[0];
            p[2] = p[3] = v[1];
            return 0;
        }
        int q[4];
        if (cJSON_IsArray(r) && cJSON_GetArraySize(r) == 2 && cJSON_IsArray(c) &&
            cJSON_GetArraySize(c) == 2 && json_int(r->child, 0, DIM_MAX, &q[0]) &&
            json_int(r->child->next, 0, DIM_MAX, &q[1]) && json_int(c->child, 0, DIM_MAX, &q[2]) &&
            json_int(c->child->next, 0, DIM_MAX, &q[3])) {
            memcpy(p, q, sizeof(q));
            return 0;
        }
    }
    return layer_err(a->c, a->key, "must be an integer in [0, %d], [rows, cols] or "
                     "[[top, bottom], [left, right]]", DIM_MAX);
}

static int key_max_value(struct key_args *a, const struct layer_key *k)
{
    if (cJSON_IsNull(a->it)) {
        a->l->max_value = INFINITY;
        return 0;
    }
    if (!json_float(a->it, &a->l->max_value) || a->l->max_value < 0.0f)
        return layer_err(a->c, a->key, "must be null or a number >= 0");
    return 0;
}

/* A number >= 0 into the float at k->arg (an offsetof into layer_config). */
static int key_nonneg_float(struct key_args *a, const struct layer_key *k)
{
    float *v = (float *)((char *)a->l + k->arg);
    if (!json_float(a->it, v) || *v < 0.0f)
        return layer_err(a->c, a->key, "must be a number >= 0");
    return 0;
}

/* Any finite number into the float at k->arg. */
static int key_float(struct key_args *a, const struct layer_key *k)
{
    float *v = (float *)((char *)a->l + k->arg);
    if (!json_float(a->it, v))
        return layer_err(a->c, a->key, "must be a finite number");
    return 0;
}

/* The channels axis: -1, or 3 on an image tensor. */
static int key_last_axis(struct key_args *a, const struct layer_key *k)
{
    int axis;
    const cJSON *v = a->it;
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 1)
        v = v->child;
    if (!json_int(v, -8, 8, &axis) || (axis != -1 && axis != (a->st->flat ? 1 : 3)))
        return layer_err(a->c, a->key, "only the last axis (-1) is supported");
    return 0;
}

static int key_target_shape(struct key_args *a, const struct layer_key *k)
{
    const cJSON *it = a->it;
    int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0, v[3];
    int i = 0;
    for (const cJSON *e = n == 1 || n == 3 ? it->child : NULL; e; e = e->next, i++)
        if (!json_int(e, -1, MODEL_SPEC_FEATURES_MAX, &v[i]) || v[i] == 0)
            break;
    if ((n != 1 && n != 3) || i != n)
        return layer_err(a->c, a->key, "must be [features] or [H, W, C] (sizes >= 1, one may be "
                         "-1); 2-D targets are not supported");
    struct layer_config *l = a->l;
    l->target_flat = n == 1;
    l->target_shape[0] = n == 1 ? 1 : v[0];
    l->target_shape[1] = n == 1 ? 1 : v[1];
    l->target_shape[2] = n == 1 ? v[0] : v[2];
    return 0;
}

#define KIND(k) (1u << (k))
#define K_ALL (KIND(N_LAYER_KINDS) - 1)
#define K_CONV KIND(LAYER_KIND_CONV2D)
#define K_DENSE KIND(LAYER_KIND_DENSE)
#define K_BN KIND(LAYER_KIND_BATCH_NORMALIZATION)
#define K_ACT KIND(LAYER_KIND_ACTIVATION)
#define K_POOL (KIND(LAYER_KIND_MAX_POOLING2D) | KIND(LAYER_KIND_AVERAGE_POOLING2D))
#define K_DROPOUT KIND(LAYER_KIND_DROPOUT)
#define K_FLATTEN KIND(LAYER_KIND_FLATTEN)
#define K_WEIGHTED (K_CONV | K_DENSE)
#define K_GPOOL (KIND(LAYER_KIND_GLOBAL_AVERAGE_POOLING2D) | KIND(LAYER_KIND_GLOBAL_MAX_POOLING2D))
#define K_ZPAD KIND(LAYER_KIND_ZERO_PADDING2D)
#define K_RELU KIND(LAYER_KIND_RELU)
#define K_LEAKY KIND(LAYER_KIND_LEAKY_RELU)
#define K_ELU KIND(LAYER_KIND_ELU)
#define K_SOFTMAX KIND(LAYER_KIND_SOFTMAX)
#define K_RESCALE KIND(LAYER_KIND_RESCALING)
#define K_RESHAPE KIND(LAYER_KIND_RESHAPE)
#define K_SDROP KIND(LAYER_KIND_SPATIAL_DROPOUT2D)
#define K_CONCAT KIND(LAYER_KIND_CONCATENATE)
#define K_DW KIND(LAYER_KIND_DEPTHWISE_CONV2D)
#define OFF(f) ((int)offsetof(struct layer_config, f))

/* Every key a layer config may have; a key not here (for the layer's kind)
 * is an error.  Required keys are reported missing in this order. */
static const struct layer_key layer_keys[] = {
    /* every layer */
    {"name", K_ALL, key_name, 0, NULL, false},
    {"trainable", K_ALL, key_trainable, 0, NULL, false},
    {"dtype", K_ALL, key_dtype, 0, NULL, false},
    {"batch_input_shape", K_ALL, key_batch_shape, 0, NULL, false},
    {"batch_shape", K_ALL, key_batch_shape, 0, NULL, false},
    /* Conv2D and Dense */
    {"activation", K_WEIGHTED | K_DW, key_activation, 0, NULL, false},
    {"use_bias", K_WEIGHTED | K_DW, key_use_bias, 0, NULL, false},
    {"kernel_initializer", K_WEIGHTED, key_initializer, 0, NULL, false},
    {"bias_initializer", K_WEIGHTED | K_DW, key_initializer, 1, NULL, false},
    {"kernel_regularizer", K_WEIGHTED, key_null, 0, NULL, false},
    {"bias_regularizer", K_WEIGHTED | K_DW, key_null, 0, NULL, false},
    {"activity_regularizer", K_WEIGHTED | K_DW, key_null, 0, NULL, false},
    {"kernel_constraint", K_WEIGHTED, key_null, 0, NULL, false},
    {"bias_constraint", K_WEIGHTED | K_DW, key_null, 0, NULL, false},
    /* DepthwiseConv2D */
    {"depth_multiplier", K_DW, key_depth_multiplier, 0, NULL, false},
    {"depthwise_initializer", K_DW, key_initializer, 0, NULL, false},
    {"depthwise_regularizer", K_DW, key_null, 0, NULL, false},
    {"depthwise_constraint", K_DW, key_null, 0, NULL, false},
    {"lora_rank", K_WEIGHTED, key_null, 0, NULL, false},
    {"lora_alpha", K_WEIGHTED, key_null, 0, NULL, false},
    {"quantization_config", K_WEIGHTED, key_null, 0, NULL, false},
    /* Conv2D and pooling */
    {"padding", K_CONV | K_POOL | K_DW, key_padding, 0, NULL, false},
    {"data_format", K_CONV | K_POOL | K_FLATTEN | K_GPOOL | K_ZPAD | K_SDROP | K_DW, key_data_format, 0,
     NULL, false},
    {"strides", K_CONV | K_POOL | K_DW, key_strides, 0, NULL, false},
    /* Conv2D */
    {"filters", K_CONV, key_filters, 0, NULL, true},
    {"kernel_size", K_CONV | K_DW, key_kernel_size, 0, NULL, true},
    {"dilation_rate", K_CONV | K_DW, key_dilation_rate, 0, NULL, false},
    {"groups", K_CONV, key_groups, 0, NULL, false},
    /* Dense */
    {"units", K_DENSE, key_units, 0, NULL, true},
    /* BatchNormalization */
    {"axis", K_BN, key_bn_axis, 0, NULL, false},
    {"momentum", K_BN, key_momentum, 0, NULL, false},
    {"epsilon", K_BN, key_epsilon, 0, NULL, false},
    {"center", K_BN, key_only_bool, true, "beta and gamma are always present", false},
    {"scale", K_BN, key_only_bool, true, "beta and gamma are always present", false},
    {"synchronized", K_BN, key_only_bool, false, "not implemented", false},
    {"renorm", K_BN, key_only_bool, false, "not implemented", false},
    {"gamma_initializer", K_BN, key_initializer, 0, NULL, false},
    {"beta_initializer", K_BN, key_initializer, 1, NULL, false},
    {"moving_mean_initializer", K_BN, key_initializer, 2, NULL, false},
    {"moving_variance_initializer", K_BN, key_initializer, 3, NULL, false},
    {"beta_regularizer", K_BN, key_null, 0, NULL, false},
    {"gamma_regularizer", K_BN, key_null, 0, NULL, false},
    {"beta_constraint", K_BN, key_null, 0, NULL, false},
    {"gamma_constraint", K_BN, key_null, 0, NULL, false},
    {"virtual_batch_size", K_BN, key_null, 0, NULL, false},
    /* Activation */
    {"activation", K_ACT, key_activation, 0, NULL, true},
    /* pooling */
    {"pool_size", K_POOL, key_pool_size, 0, NULL, false},
    /* Dropout */
    {"rate", K_DROPOUT | K_SDROP, key_rate, 0, NULL, true},
    {"noise_shape", K_DROPOUT | K_SDROP, key_null, 0, NULL, false},
    {"seed", K_DROPOUT | K_SDROP, key_seed, 0, NULL, false},
    /* GlobalAveragePooling2D, GlobalMaxPooling2D */
    {"keepdims", K_GPOOL, key_keepdims, 0, NULL, false},
    /* ZeroPadding2D */
    {"padding", K_ZPAD, key_zero_padding, 0, NULL, false},
    /* ReLU, LeakyReLU, ELU, Softmax */
    {"max_value", K_RELU, key_max_value, 0, NULL, false},
    {"negative_slope", K_RELU | K_LEAKY, key_nonneg_float, OFF(alpha), NULL, false},
    {"threshold", K_RELU, key_float, OFF(threshold), NULL, false},
    {"alpha", K_LEAKY | K_ELU, key_float, OFF(alpha), NULL, false},
    {"axis", K_SOFTMAX | K_CONCAT, key_last_axis, 0, NULL, false},
    /* Rescaling */
    {"scale", K_RESCALE, key_float, OFF(scale), NULL, true},
    {"offset", K_RESCALE, key_float, OFF(offset), NULL, false},
    /* Reshape */
    {"target_shape", K_RESHAPE, key_target_shape, 0, NULL, true},
};

#define N_LAYER_KEYS (sizeof(layer_keys) / sizeof(layer_keys[0]))

/* The entry for key on a layer of kind, or NULL when the kind has no such key. */
static const struct layer_key *find_layer_key(const char *key, enum layer_kind kind,
                                              size_t *ret_index)
{
    for (size_t i = 0; i < N_LAYER_KEYS; i++) {
        if ((layer_keys[i].kinds & KIND(kind)) && strcmp(layer_keys[i].name, key) == 0) {
            *ret_index = i;
            return &layer_keys[i];
        }
    }
    return NULL;
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
        else if (st->functional && strcmp(it->string, "inbound_nodes") == 0)
            st->inbound[st->s->n_layers] = it;
        else if (st->functional && strcmp(it->string, "name") == 0) {
            if (!cJSON_IsString(it))
                return layer_err(&c, NULL, "\"name\" must be a string");
        } else if (strcmp(it->string, "module") != 0 && strcmp(it->string, "registered_name") != 0 &&
                 strcmp(it->string, "build_config") != 0)
            return layer_err(&c, NULL, "unknown key \"%s\"", it->string);
    }
    if (!cls)
        return layer_err(&c, NULL, "\"class_name\" is missing or not a string");
    c.cls = cls;
    if (strcmp(cls, "InputLayer") == 0) {
        int err = parse_input_layer(cfg, st, ji, d);
        if (err || !st->functional)
            return err;
        /* a functional model's InputLayer is a layer of its own (in weight files too) */
        struct layer_config *l = &st->s->layers[st->s->n_layers];
        layer_config_init(l, LAYER_KIND_INPUT);
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cfg, "name"));
        if (name) {
            if (!name_is_valid(name))
                return layer_err(&c, "name", "must be a string of 1 to %zu characters without '/'",
                                 sizeof(l->name) - 1);
            snprintf(l->name, sizeof(l->name), "%s", name);
            st->named[st->s->n_layers] = true;
        }
        st->json_index[st->s->n_layers++] = ji;
        return 0;
    }

    bool known = false;
    enum layer_kind kind = LAYER_KIND_DENSE;
    for (size_t i = 0; i < sizeof(class_table) / sizeof(class_table[0]); i++) {
        if (strcmp(cls, class_table[i].cls) == 0) {
            kind = class_table[i].kind;
            known = true;
        }
    }
    if (!known)
        return layer_err(&c, NULL, "unsupported layer type (supported: InputLayer, Conv2D, "
                         "Dense, BatchNormalization, Activation, MaxPooling2D, "
                         "AveragePooling2D, Dropout, Flatten, GlobalAveragePooling2D, "
                         "GlobalMaxPooling2D, ZeroPadding2D, ReLU, LeakyReLU, ELU, Softmax, "
                         "Rescaling, Reshape, SpatialDropout2D, Add, Concatenate)");
    if (!st->functional && (kind == LAYER_KIND_ADD || kind == LAYER_KIND_CONCATENATE))
        return layer_err(&c, NULL, "%s joins tensors: it needs a functional model", cls);
    if (!cJSON_IsObject(cfg))
        return layer_err(&c, NULL, "\"config\" is missing or not an object");
    const char *dup = duplicate_key(cfg);
    if (dup)
        return layer_err(&c, dup, "duplicate key");

    struct model_spec *s = st->s;
    int idx = s->n_layers;
    struct layer_config *l = &s->layers[idx];
    layer_config_init(l, kind);
    bool found[N_LAYER_KEYS] = {false};
    struct key_args a = {.c = &c, .st = st, .l = l, .first = idx == 0};
    for (const cJSON *it = cfg->child; it; it = it->next) {
        size_t ki;
        const struct layer_key *k = find_layer_key(it->string, kind, &ki);
        if (!k)
            return layer_err(&c, it->string, "unknown key for %s", cls);
        a.key = it->string;
        a.it = it;
        int err = k->parse(&a, k);
        if (err)
            return err;
        found[ki] = true;
    }
    if (cJSON_GetObjectItemCaseSensitive(cfg, "name"))
        st->named[idx] = true;

    for (size_t i = 0; i < N_LAYER_KEYS; i++)
        if (layer_keys[i].required && (layer_keys[i].kinds & KIND(kind)) && !found[i])
            return layer_err(&c, NULL, "required key \"%s\" is missing", layer_keys[i].name);

    if ((kind == LAYER_KIND_MAX_POOLING2D || kind == LAYER_KIND_AVERAGE_POOLING2D) && !a.strides_set)
        memcpy(l->strides, l->pool_size, sizeof(l->strides));
    if (kind == LAYER_KIND_FLATTEN || (kind == LAYER_KIND_GLOBAL_AVERAGE_POOLING2D && !l->keepdims) ||
        (kind == LAYER_KIND_GLOBAL_MAX_POOLING2D && !l->keepdims) ||
        (kind == LAYER_KIND_RESHAPE && l->target_flat))
        st->flat = true;
    else if (kind == LAYER_KIND_RESHAPE)
        st->flat = false;
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
            layer_auto_name(l->name, sizeof(l->name), l->kind, counts[l->kind]++);
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

/* ------------------------------------------------ functional graphs */

/* The layer called name, or -1. */
static int layer_by_name(const struct model_spec *s, const char *name)
{
    for (int i = 0; name && i < s->n_layers; i++)
        if (strcmp(s->layers[i].name, name) == 0)
            return i;
    return -1;
}

/* [name, node_index, tensor_index(, kwargs)]: the layer it names (called
 * once: node and tensor index 0), or a negative errno. */
static int tensor_ref(const struct model_spec *s, const cJSON *it, const char *field,
                      struct diag *d)
{
    int n = cJSON_IsArray(it) ? cJSON_GetArraySize(it) : 0, node, tensor;
    if (n < 3 || n > 4 || !cJSON_IsString(it->child) ||
        !json_int(it->child->next, 0, INT_MAX, &node) ||
        !json_int(it->child->next->next, 0, INT_MAX, &tensor))
        return diag_set(d, -EINVAL, field, "a tensor reference must be [layer_name, node_index, "
                        "tensor_index]");
    const char *name = it->child->valuestring;
    int src = layer_by_name(s, name);
    if (src < 0)
        return diag_set(d, -EINVAL, field, "no layer is called \"%s\"", name);
    if (node != 0 || tensor != 0)
        return diag_set(d, -EINVAL, field, "layer \"%s\" node %d tensor %d: only layers called "
                        "once with one output are supported (node and tensor index 0)", name,
                        node, tensor);
    if (n == 4) {
        const cJSON *kw = it->child->next->next->next;
        if (!cJSON_IsObject(kw) || kw->child)
            return diag_set(d, -EINVAL, field, "call arguments (kwargs) are not supported");
    }
    return src;
}

/* A Keras 3 {"class_name": "__keras_tensor__", "config": {"keras_history":
 * [name, node, tensor], ...}}. */
static int keras_tensor_ref(const struct model_spec *s, const cJSON *it, const char *field,
                            struct diag *d)
{
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "class_name"));
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(it, "config");
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(cfg, "keras_history");
    if (!cls || strcmp(cls, "__keras_tensor__") != 0 || !hist)
        return diag_set(d, -EINVAL, field, "an argument must be a __keras_tensor__ with a "
                        "keras_history");
    return tensor_ref(s, hist, field, d);
}

/* One layer's inbound_nodes in the tf.keras 2 form [[["name", 0, 0, {}], ...]]
 * or the Keras 3 form [{"args": [tensor or [tensors]], "kwargs": {}}]. */
static int parse_inbound(struct parse_state *st, int idx, struct diag *d)
{
    struct model_spec *s = st->s;
    struct layer_config *l = &s->layers[idx];
    const cJSON *nodes = st->inbound[idx];
    char field[96];
    snprintf(field, sizeof(field), "/config/layers/%d/inbound_nodes", st->json_index[idx]);
    int n_nodes = cJSON_IsArray(nodes) ? cJSON_GetArraySize(nodes) : -1;
    if (l->kind == LAYER_KIND_INPUT) {
        if (nodes && n_nodes != 0)
            return diag_set(d, -EINVAL, field, "layer \"%s\" (InputLayer): must be empty",
                            l->name);
        return 0;
    }
    if (n_nodes != 1)
        return diag_set(d, -EINVAL, field, "layer \"%s\": %s", l->name,
                        n_nodes < 0 ? "missing or not a list"
                        : n_nodes == 0 ? "the layer is not connected (no inbound node)"
                                       : "a layer called more than once (shared layer) is not "
                                         "supported");
    const cJSON *node = nodes->child, *refs = NULL;
    bool k3 = cJSON_IsObject(node);
    if (k3) {
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(node, "args");
        const cJSON *kwargs = cJSON_GetObjectItemCaseSensitive(node, "kwargs");
        for (const cJSON *k = kwargs ? kwargs->child : NULL; k; k = k->next)
            if (!(strcmp(k->string, "mask") == 0 && cJSON_IsNull(k)))
                return diag_set(d, -EINVAL, field, "layer \"%s\": call argument \"%s\" is not "
                                "supported", l->name, k->string);
        if (!cJSON_IsArray(args) || cJSON_GetArraySize(args) != 1 ||
            (kwargs && !cJSON_IsObject(kwargs)))
            return diag_set(d, -EINVAL, field, "layer \"%s\": a Keras 3 node must be {\"args\": "
                            "[tensor or list of tensors], \"kwargs\": {}}", l->name);
        refs = args->child;
        if (cJSON_IsObject(refs)) { /* a single tensor */
            int src = keras_tensor_ref(s, refs, field, d);
            if (src < 0)
                return src;
            l->n_inputs = 1;
            l->inputs[0] = src;
            return 0;
        }
    } else {
        refs = node;
    }
    int n = cJSON_IsArray(refs) ? cJSON_GetArraySize(refs) : 0;
    if (n < 1 || n > LAYER_MAX_INPUTS)
        return diag_set(d, -EINVAL, field, "layer \"%s\": 1 to %d input tensors needed", l->name,
                        LAYER_MAX_INPUTS);
    l->n_inputs = 0;
    for (const cJSON *r = refs->child; r; r = r->next) {
        int src = k3 ? keras_tensor_ref(s, r, field, d) : tensor_ref(s, r, field, d);
        if (src < 0)
            return src;
        if (src >= idx)
            return diag_set(d, -EINVAL, field, "layer \"%s\": its input \"%s\" comes after it "
                            "in the layer list (the list must be in topological order, as "
                            "Keras writes it)", l->name, s->layers[src].name);
        l->inputs[l->n_inputs++] = src;
    }
    return 0;
}

/* input_layers / output_layers: [[name, 0, 0]] or [name, 0, 0]; one tensor. */
static int parse_io_layers(struct parse_state *st, const cJSON *it, const char *key,
                           struct diag *d)
{
    char field[64];
    snprintf(field, sizeof(field), "/config/%s", key);
    if (!it)
        return diag_set(d, -EINVAL, field, "missing");
    const cJSON *ref = it;
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 1 && cJSON_IsArray(it->child))
        ref = it->child;
    else if (cJSON_IsArray(it) && cJSON_IsArray(it->child))
        return diag_set(d, -EINVAL, field, "only models with one input and one output are "
                        "supported");
    return tensor_ref(st->s, ref, field, d);
}

/* Inputs of every layer from inbound_nodes; the model input must be the
 * InputLayer (layer 0) and the output the last layer. */
static int parse_links(struct parse_state *st, struct diag *d)
{
    struct model_spec *s = st->s;
    if (s->layers[0].kind != LAYER_KIND_INPUT)
        return diag_set(d, -EINVAL, "/config/layers/0", "a functional model starts with its "
                        "InputLayer");
    for (int i = 0; i < s->n_layers; i++) {
        int err = parse_inbound(st, i, d);
        if (err)
            return err;
    }
    int in = parse_io_layers(st, st->input_layers, "input_layers", d);
    if (in < 0)
        return in;
    if (in != 0)
        return diag_set(d, -EINVAL, "/config/input_layers", "must name the InputLayer \"%s\"",
                        s->layers[0].name);
    int out = parse_io_layers(st, st->output_layers, "output_layers", d);
    if (out < 0)
        return out;
    if (out != s->n_layers - 1)
        return diag_set(d, -EINVAL, "/config/output_layers", "the output layer \"%s\" must be "
                        "the last layer of the list", s->layers[out].name);
    return 0;
}

static int parse_model_config(const cJSON *cfg, struct parse_state *st, struct diag *d)
{
    const cJSON *layers = NULL;
    struct model_spec *s = st->s;
    snprintf(s->name, sizeof(s->name), st->functional ? "functional" : "sequential");
    if (cJSON_IsArray(cfg) && !st->functional) { /* Keras <= 2.2: "config" is the layer list itself */
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
            } else if (st->functional && (strcmp(key, "input_layers") == 0 ||
                                          strcmp(key, "output_layers") == 0)) {
                if (key[0] == 'i')
                    st->input_layers = it;
                else
                    st->output_layers = it;
            } else {
                return diag_set(d, -EINVAL, "/config", "unknown key \"%s\" in the %s config",
                                key, st->functional ? "Functional" : "Sequential");
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
    int err = name_layers(st, d);
    if (!err && st->functional)
        err = parse_links(st, d);
    return err;
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
    st->functional = strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0;
    if (strcmp(cls, "Sequential") != 0 && !st->functional)
        return diag_set(d, -EINVAL, "/class_name",
                        "only Sequential and Functional (Model) models are supported, got \"%s\"",
                        cls);
    if (!cfg)
        return diag_set(d, -EINVAL, "/config", "missing");
    int err = parse_model_config(cfg, st, d);
    if (err)
        return err;

    struct model_spec *s = st->s;
    s->functional = st->functional;
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
    bool *flat = calloc((size_t)s->n_layers, sizeof(bool));
    err = flat ? model_spec_infer_shapes_flat(s, st->json_index, shape, flat, d)
               : diag_set(d, -ENOMEM, "", "out of memory");
    /* functional BatchNormalization: a positive axis must be the last one */
    for (int i = 0; !err && st->functional && i < s->n_layers; i++) {
        int src = model_spec_input(s, i, 0), axis = st->bn_axis[i];
        if (s->layers[i].kind != LAYER_KIND_BATCH_NORMALIZATION || axis <= 0)
            continue;
        bool in_flat = src >= 0 && flat[src];
        if (axis != (in_flat ? 1 : 3)) {
            struct layer_ctx c = {d, st->json_index[i], "BatchNormalization"};
            err = layer_err(&c, "axis", "axis %d is not the channels axis of its %s input (%d)",
                            axis, in_flat ? "2-D" : "4-D", in_flat ? 1 : 3);
        }
    }
    free(flat);
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
