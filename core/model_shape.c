/* model_shape.c - the one validator of a spec: every layer's output shape
 * as TF computes it, within the MODEL_SPEC_* limits; parameter counts; the
 * softmax output the loss needs.  The JSON reader, the built-ins and
 * model_create() all check a spec here. */
#include "model_spec.h"
#include "losses.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM_MAX MODEL_SPEC_DIM_MAX
#define WIDTH_MAX MODEL_SPEC_WIDTH_MAX
#define FEATURES_MAX MODEL_SPEC_FEATURES_MAX
#define LAYERS_MAX MODEL_SPEC_LAYERS_MAX

/* TF output length of a window op: same -> ceil(in / s), valid -> floor((in - k) / s) + 1. */
static int window_out(int in, int k, int s, enum padding_kind padding)
{
    if (padding == PADDING_KIND_SAME)
        return (in + s - 1) / s;
    if (in < k)
        return 0;
    return (in - k) / s + 1;
}

/* Keras' output shape of a Reshape: target (H, W, C) with at most one -1. */
static int reshape_out(const struct layer_config *l, long long in, int ret[3])
{
    long long known = 1;
    int unknown = -1;
    for (int k = 0; k < 3; k++) {
        if (l->target_shape[k] == -1) {
            if (unknown >= 0)
                return -1;
            unknown = k;
        } else if (l->target_shape[k] < 1) {
            return -1;
        } else {
            known *= l->target_shape[k];
        }
    }
    for (int k = 0; k < 3; k++)
        ret[k] = l->target_shape[k];
    if (unknown >= 0) {
        if (in % known != 0)
            return -1;
        ret[unknown] = (int)(in / known);
    } else if (known != in) {
        return -1;
    }
    return 0;
}

int model_spec_infer_shapes_flat(const struct model_spec *spec, const int *json_index,
                                 int (*out)[3], bool *ret_flat, struct diag *d)
{
    char field[64];
    if (spec->input_shape[0] < 1 || spec->input_shape[1] < 1 || spec->input_shape[2] < 1 ||
        spec->input_shape[0] > DIM_MAX || spec->input_shape[1] > DIM_MAX ||
        spec->input_shape[2] > DIM_MAX)
        return diag_set(d, -EINVAL, "/config/layers/0",
                        "input shape (%d, %d, %d) must have sizes in [1, %d]",
                        spec->input_shape[0], spec->input_shape[1], spec->input_shape[2], DIM_MAX);
    if (spec->n_layers < 1 || !spec->layers)
        return diag_set(d, -EINVAL, "/config/layers", "the model has no layers");
    bool *flats = calloc((size_t)spec->n_layers, sizeof(bool));
    if (!flats)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int err = 0;
    for (int i = 0; i < spec->n_layers && !err; i++) {
        const struct layer_config *l = &spec->layers[i];
        int ji = json_index ? json_index[i] : spec->functional ? i : i + 1;
        snprintf(field, sizeof(field), "/config/layers/%d", ji);
        const char *cls = layer_kind_class_name(l->kind);
        int n_in = model_spec_n_inputs(spec, i);
        int src = n_in > 0 ? model_spec_input(spec, i, 0) : -1;
        if (l->kind == LAYER_KIND_INPUT ? i != 0 || !spec->functional
                                        : spec->functional && i == 0) {
            err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): a functional model starts "
                           "with its one InputLayer", ji, cls, l->name);
            break;
        }
        for (int k = 0; k < n_in; k++) {
            int s = model_spec_input(spec, i, k);
            if (s < -1 || s >= i || (spec->functional && s < 0)) {
                err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): input %d is not an "
                               "earlier layer", ji, cls, l->name, k);
                break;
            }
        }
        if (err)
            break;
        bool multi = l->kind == LAYER_KIND_ADD || l->kind == LAYER_KIND_CONCATENATE;
        if (multi ? n_in < 2 || n_in > LAYER_MAX_INPUTS : n_in > 1) {
            err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): %d inputs (%s)", ji, cls,
                           l->name, n_in, multi ? "2 to 8 needed" : "takes one");
            break;
        }
        const int *in = src >= 0 ? out[src] : spec->input_shape;
        int h = in[0], w = in[1], c = in[2];
        bool flat = src >= 0 ? flats[src] : false;
        switch (l->kind) {
        case LAYER_KIND_CONV2D:
        case LAYER_KIND_DEPTHWISE_CONV2D:
        case LAYER_KIND_MAX_POOLING2D:
        case LAYER_KIND_AVERAGE_POOLING2D: {
            bool dw = l->kind == LAYER_KIND_DEPTHWISE_CONV2D;
            bool conv = l->kind == LAYER_KIND_CONV2D || dw;
            int width = dw ? (l->depth_multiplier >= 1 && l->depth_multiplier <= WIDTH_MAX &&
                                      (long long)c * l->depth_multiplier <= WIDTH_MAX
                                  ? c * l->depth_multiplier : 0)
                           : l->filters;
            const int *k = conv ? l->kernel_size : l->pool_size;
            if (flat) {
                err = diag_set(d, -EINVAL, field,
                               "layer %d (%s \"%s\"): needs a 4-D input (N, H, W, C), "
                               "got a flat one", ji, cls, l->name);
                break;
            }
            if (k[0] < 1 || k[1] < 1 || l->strides[0] < 1 || l->strides[1] < 1 ||
                k[0] > DIM_MAX || k[1] > DIM_MAX || l->strides[0] > DIM_MAX ||
                l->strides[1] > DIM_MAX || (conv && (width < 1 || width > WIDTH_MAX))) {
                err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): invalid %s, strides%s",
                               ji, cls, l->name, conv ? "kernel_size" : "pool_size",
                               !conv ? "" : dw ? " or depth_multiplier" : " or filters");
                break;
            }
            int oh = window_out(h, k[0], l->strides[0], l->padding);
            int ow = window_out(w, k[1], l->strides[1], l->padding);
            if (oh < 1 || ow < 1) {
                err = diag_set(d, -EINVAL, field,
                               "layer %d (%s \"%s\"): output size (%d, %d) is not positive: "
                               "input (%d, %d), %s (%d, %d), strides (%d, %d), padding valid",
                               ji, cls, l->name, oh, ow, h, w, conv ? "kernel" : "pool",
                               k[0], k[1], l->strides[0], l->strides[1]);
                break;
            }
            h = oh;
            w = ow;
            if (conv)
                c = width;
            break;
        }
        case LAYER_KIND_DENSE: /* on the last axis, as Keras: (H, W, C) -> (H, W, units) */
            if (l->units < 1 || l->units > WIDTH_MAX) {
                err = diag_set(d, -EINVAL, field, "layer %d (Dense \"%s\"): units %d not in [1, %d]",
                               ji, l->name, l->units, WIDTH_MAX);
                break;
            }
            c = l->units;
            break;
        case LAYER_KIND_FLATTEN:
            if ((long long)h * w * c > FEATURES_MAX) {
                err = diag_set(d, -EINVAL, field,
                               "layer %d (Flatten \"%s\"): %lld features is more than %d",
                               ji, l->name, (long long)h * w * c, FEATURES_MAX);
                break;
            }
            c = h * w * c;
            h = w = 1;
            flat = true;
            break;
        case LAYER_KIND_DROPOUT:
        case LAYER_KIND_SPATIAL_DROPOUT2D:
            if (!(l->rate >= 0.0f && l->rate < 1.0f)) {
                err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): rate %g not in [0, 1)",
                               ji, cls, l->name, (double)l->rate);
                break;
            }
            if (l->kind == LAYER_KIND_SPATIAL_DROPOUT2D && flat)
                err = diag_set(d, -EINVAL, field, "layer %d (SpatialDropout2D \"%s\"): needs a "
                               "4-D input (N, H, W, C)", ji, l->name);
            break;
        case LAYER_KIND_BATCH_NORMALIZATION:
            if (!(l->momentum >= 0.0f && l->momentum <= 1.0f) || !(l->epsilon > 0.0f))
                err = diag_set(d, -EINVAL, field,
                               "layer %d (BatchNormalization \"%s\"): momentum %g not in [0, 1] "
                               "or epsilon %g not > 0", ji, l->name, (double)l->momentum,
                               (double)l->epsilon);
            break;
        case LAYER_KIND_GLOBAL_AVERAGE_POOLING2D:
        case LAYER_KIND_GLOBAL_MAX_POOLING2D:
            if (flat) {
                err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): needs a 4-D input "
                               "(N, H, W, C)", ji, cls, l->name);
                break;
            }
            h = w = 1;
            flat = !l->keepdims;
            break;
        case LAYER_KIND_ZERO_PADDING2D:
            if (flat || l->pad[0] < 0 || l->pad[1] < 0 || l->pad[2] < 0 || l->pad[3] < 0 ||
                l->pad[0] > DIM_MAX || l->pad[1] > DIM_MAX || l->pad[2] > DIM_MAX ||
                l->pad[3] > DIM_MAX) {
                err = diag_set(d, -EINVAL, field, "layer %d (ZeroPadding2D \"%s\"): needs a 4-D "
                               "input and paddings in [0, %d]", ji, l->name, DIM_MAX);
                break;
            }
            h += l->pad[0] + l->pad[1];
            w += l->pad[2] + l->pad[3];
            if (h > DIM_MAX || w > DIM_MAX)
                err = diag_set(d, -EINVAL, field, "layer %d (ZeroPadding2D \"%s\"): output "
                               "(%d, %d) larger than %d", ji, l->name, h, w, DIM_MAX);
            break;
        case LAYER_KIND_RESHAPE: {
            int r[3];
            if (reshape_out(l, (long long)h * w * c, r)) {
                err = diag_set(d, -EINVAL, field, "layer %d (Reshape \"%s\"): target_shape does "
                               "not hold the %lld values of the input (%d, %d, %d)", ji, l->name,
                               (long long)h * w * c, h, w, c);
                break;
            }
            h = r[0], w = r[1], c = r[2];
            flat = l->target_flat;
            break;
        }
        case LAYER_KIND_ADD:
        case LAYER_KIND_CONCATENATE: {
            int csum = 0;
            for (int k = 0; k < n_in && !err; k++) {
                const int *o = out[model_spec_input(spec, i, k)];
                bool same = l->kind == LAYER_KIND_ADD ? o[2] == c : true;
                if (o[0] != h || o[1] != w || !same ||
                    flats[model_spec_input(spec, i, k)] != flat)
                    err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): input %d has shape "
                                   "(%d, %d, %d), input 0 (%d, %d, %d)%s", ji, cls, l->name, k,
                                   o[0], o[1], o[2], h, w, c,
                                   l->kind == LAYER_KIND_ADD ? "; Add needs equal shapes"
                                   : "; Concatenate joins on the last axis only");
                csum += o[2];
            }
            if (l->kind == LAYER_KIND_CONCATENATE)
                c = csum;
            break;
        }
        case LAYER_KIND_RELU:
            if (!(l->max_value >= 0.0f) || !(l->alpha >= 0.0f) || !isfinite(l->threshold))
                err = diag_set(d, -EINVAL, field, "layer %d (ReLU \"%s\"): max_value and "
                               "negative_slope must be >= 0", ji, l->name);
            break;
        case LAYER_KIND_INPUT:
            h = spec->input_shape[0], w = spec->input_shape[1], c = spec->input_shape[2];
            break;
        case LAYER_KIND_ACTIVATION:
        case LAYER_KIND_LEAKY_RELU:
        case LAYER_KIND_ELU:
        case LAYER_KIND_SOFTMAX:
        case LAYER_KIND_RESCALING:
            break;
        default:
            err = diag_set(d, -EINVAL, field, "layer %d: unknown layer kind %d", ji, (int)l->kind);
            break;
        }
        if (err)
            break;
        if ((long long)h * w * c > FEATURES_MAX) {
            err = diag_set(d, -EINVAL, field, "layer %d (%s \"%s\"): output (%d, %d, %d) is too large",
                           ji, cls, l->name, h, w, c);
            break;
        }
        out[i][0] = h;
        out[i][1] = w;
        out[i][2] = c;
        flats[i] = flat;
    }
    if (!err && ret_flat)
        memcpy(ret_flat, flats, sizeof(bool) * (size_t)spec->n_layers);
    free(flats);
    return err;
}

int model_spec_infer_shapes_at(const struct model_spec *spec, const int *json_index,
                               int (*out)[3], struct diag *d)
{
    return model_spec_infer_shapes_flat(spec, json_index, out, NULL, d);
}

/* Every layer's output shape in a new (n_layers, 3) array (*ret, caller
 * frees), written only on success. */
static int infer_alloc(const struct model_spec *spec, int (**ret)[3], struct diag *d)
{
    if (spec->n_layers < 1 || spec->n_layers > LAYERS_MAX)
        return diag_set(d, -EINVAL, "/config/layers", "the model has %d layers (1 to %d allowed)",
                        spec->n_layers, LAYERS_MAX);
    int(*shape)[3] = calloc((size_t)spec->n_layers, sizeof(*shape));
    if (!shape)
        return diag_set(d, -ENOMEM, "", "out of memory");
    int err = model_spec_infer_shapes_at(spec, NULL, shape, d);
    if (err) {
        free(shape);
        return err;
    }
    *ret = shape;
    return 0;
}

int model_spec_infer_shapes(const struct model_spec *spec, int (*ret_out_shapes)[3],
                            struct diag *d)
{
    int(*shape)[3] = NULL;
    int err = infer_alloc(spec, &shape, d);
    if (err)
        return err;
    memcpy(ret_out_shapes, shape, (size_t)spec->n_layers * sizeof(*shape));
    free(shape);
    return 0;
}

int model_spec_count_params(const struct model_spec *spec, size_t *ret_total,
                            size_t *ret_trainable, struct diag *d)
{
    int(*shape)[3] = NULL;
    int err = infer_alloc(spec, &shape, d);
    if (err)
        return err;
    size_t total = 0, trainable = 0;
    for (int i = 0; i < spec->n_layers; i++) {
        const struct layer_config *l = &spec->layers[i];
        int src = model_spec_n_inputs(spec, i) > 0 ? model_spec_input(spec, i, 0) : -1;
        size_t cin = (size_t)(src < 0 ? spec->input_shape[2] : shape[src][2]);
        size_t cout = (size_t)shape[i][2], n = 0, nt = 0;
        bool over = false;
        switch (l->kind) {
        case LAYER_KIND_CONV2D: /* kernel (kh, kw, cin, filters) + bias (filters) */
            over = __builtin_mul_overflow((size_t)l->kernel_size[0], (size_t)l->kernel_size[1], &nt) ||
                   __builtin_mul_overflow(nt, cin, &nt) || __builtin_mul_overflow(nt, cout, &nt);
            nt += l->use_bias ? cout : 0;
            n = nt;
            break;
        case LAYER_KIND_DEPTHWISE_CONV2D: /* depthwise_kernel (kh, kw, cin, M) + bias (cin * M) */
            over = __builtin_mul_overflow((size_t)l->kernel_size[0], (size_t)l->kernel_size[1], &nt) ||
                   __builtin_mul_overflow(nt, cout, &nt);
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
        trainable += l->frozen ? 0 : nt;
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
    int(*shape)[3] = NULL;
    int err = infer_alloc(spec, &shape, d);
    if (err)
        return err;
    int last = spec->n_layers - 1;
    int classes = shape[last][2];
    bool flat = shape[last][0] == 1 && shape[last][1] == 1;
    free(shape);
    const struct layer_config *l = &spec->layers[last];
    bool head = l->kind == LAYER_KIND_ACTIVATION || l->kind == LAYER_KIND_DENSE ||
                l->kind == LAYER_KIND_SOFTMAX;
    if (!head || !flat) {
        char field[64];
        int ji = spec->functional ? last : last + 1;
        snprintf(field, sizeof(field), "/config/layers/%d", ji);
        return diag_set(d, -EINVAL, field,
                        "layer %d (%s \"%s\"): the model must end in a Dense, Activation "
                        "or Softmax layer over a flat (N, classes) output", ji,
                        layer_kind_class_name(l->kind), l->name);
    }
    return classes;
}


/* Which output each loss trains (Keras computes any loss on any output;
 * these are the pairs that train what the loss means):
 *   cross-entropies on probabilities: softmax (categorical, sparse) or
 *     sigmoid (binary) as the last activation;
 *   from_logits: a linear last activation;
 *   mean squared / absolute error: any last activation but softmax. */
int model_spec_check_loss(const struct model_spec *spec, const struct loss_config *loss,
                          struct diag *d)
{
    int r = model_spec_output_classes(spec, d);
    if (r < 0)
        return r;
    int last = spec->n_layers - 1;
    const struct layer_config *l = &spec->layers[last];
    enum activation_kind act = l->kind == LAYER_KIND_SOFTMAX ? ACTIVATION_KIND_SOFTMAX
                                                             : l->activation;
    int ji = spec->functional ? last : last + 1;
    enum activation_kind want;
    const char *need;
    switch (loss->kind) {
    case LOSS_KIND_CATEGORICAL_CROSSENTROPY:
    case LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY:
        want = loss->from_logits ? ACTIVATION_KIND_LINEAR : ACTIVATION_KIND_SOFTMAX;
        need = loss->from_logits ? "with from_logits a linear last activation (logits)"
                                 : "a model ending in softmax (or from_logits with a linear end)";
        break;
    case LOSS_KIND_BINARY_CROSSENTROPY:
        want = loss->from_logits ? ACTIVATION_KIND_LINEAR : ACTIVATION_KIND_SIGMOID;
        need = loss->from_logits ? "with from_logits a linear last activation (logits)"
                                 : "a model ending in sigmoid (or from_logits with a linear end)";
        break;
    default:
        if (act != ACTIVATION_KIND_SOFTMAX)
            return 0;
        return diag_set(d, -EINVAL, "/loss",
                        "%s needs a last activation other than softmax; layer %d (%s \"%s\") "
                        "ends in softmax", loss_kind_name(loss->kind), ji,
                        layer_kind_class_name(l->kind), l->name);
    }
    if (act == want)
        return 0;
    return diag_set(d, -EINVAL, "/loss", "%s needs %s; layer %d (%s \"%s\") ends in %s",
                    loss_kind_name(loss->kind), need, ji, layer_kind_class_name(l->kind),
                    l->name, activation_kind_name(act));
}
