/* model_builtin.c - the built-in models (minivggnet, shallownet, lenet,
 * mlp, resnet20) as specs, named as Keras names them. */
#include "model_spec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH_MAX MODEL_SPEC_WIDTH_MAX

static const char *const builtin_names[] = {"minivggnet", "shallownet", "lenet", "mlp",
                                            "resnet20", NULL};

const char *const *model_builtin_names(void)
{
    return builtin_names;
}

#define BUILTIN_MAX_LAYERS 96

struct builder {
    struct model_spec *s;
    int counts[N_LAYER_KINDS];
};

/* A new layer; in a functional spec it takes the previous layer's output. */
static struct layer_config *add(struct builder *b, enum layer_kind kind)
{
    struct layer_config *l = &b->s->layers[b->s->n_layers++];
    layer_config_init(l, kind);
    layer_auto_name(l->name, sizeof(l->name), kind, b->counts[kind]++);
    if (b->s->functional && kind != LAYER_KIND_INPUT) {
        l->n_inputs = 1;
        l->inputs[0] = b->s->n_layers - 2;
    }
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

/* A functional layer taking the output of layer `from`. */
static struct layer_config *add_from(struct builder *b, enum layer_kind kind, int from)
{
    struct layer_config *l = add(b, kind);
    l->inputs[0] = from;
    return l;
}

static struct layer_config *add_conv_from(struct builder *b, int from, int filters, int k,
                                          int stride)
{
    struct layer_config *l = add_from(b, LAYER_KIND_CONV2D, from);
    l->filters = filters;
    l->kernel_size[0] = l->kernel_size[1] = k;
    l->strides[0] = l->strides[1] = stride;
    l->padding = PADDING_KIND_SAME;
    return l;
}

/* He et al. 2016's CIFAR ResNet-20 as the Keras example builds it
 * (resnet_v1, depth 20): Conv2D(16) -> BN -> ReLU, then three stages of
 * three basic blocks with 16, 32, 64 filters,
 *     y = Conv2D(3x3, stride s) -> BN -> ReLU -> Conv2D(3x3) -> BN
 *     x = relu(x + y), x through a 1x1 Conv2D(stride 2) where the stage
 *         halves the size (the first block of stages 2 and 3),
 * then global average pooling and Dense(classes, softmax).  The layer list
 * is in Keras' model.layers order (by depth from the output; the 1x1
 * shortcut conv comes after the block's second conv, before its BN); the
 * auto names count each class in the order Keras creates the layers in
 * (the example creates the shortcut conv after the second BN, which changes
 * no name).  Order, names, shapes and counts equal the same model built in
 * TensorFlow.js (tests/integration/test_api_models_tfjs.py).  Keras'
 * defaults for everything (glorot_uniform kernels, no weight decay); the
 * example's AveragePooling2D(8) + Flatten is GlobalAveragePooling2D here,
 * the same on 32x32 inputs and valid for any size. */
static void build_resnet20(struct builder *b, int classes)
{
    add(b, LAYER_KIND_INPUT);
    add_conv_from(b, 0, 16, 3, 1);
    add(b, LAYER_KIND_BATCH_NORMALIZATION);
    add_activation(b, ACTIVATION_KIND_RELU);
    int x = b->s->n_layers - 1;
    for (int stage = 0; stage < 3; stage++) {
        int filters = 16 << stage;
        for (int block = 0; block < 3; block++) {
            bool project = stage > 0 && block == 0;
            add_conv_from(b, x, filters, 3, project ? 2 : 1);
            add(b, LAYER_KIND_BATCH_NORMALIZATION);
            add_activation(b, ACTIVATION_KIND_RELU);
            add_conv_from(b, b->s->n_layers - 1, filters, 3, 1);
            int conv_b = b->s->n_layers - 1, shortcut = x;
            if (project) {
                add_conv_from(b, x, filters, 1, 2);
                shortcut = b->s->n_layers - 1;
            }
            add_from(b, LAYER_KIND_BATCH_NORMALIZATION, conv_b);
            struct layer_config *sum = add(b, LAYER_KIND_ADD);
            sum->n_inputs = 2;
            sum->inputs[0] = shortcut;
            sum->inputs[1] = b->s->n_layers - 2;
            add_activation(b, ACTIVATION_KIND_RELU);
            x = b->s->n_layers - 1;
        }
    }
    add(b, LAYER_KIND_GLOBAL_AVERAGE_POOLING2D);
    add_dense(b, classes, ACTIVATION_KIND_SOFTMAX);
}

int model_spec_builtin(struct model_spec *ret, const char *name, const int input_shape[3],
                       int classes, struct diag *d)
{
    static void (*const builders[])(struct builder *, int) = {
        build_minivggnet, build_shallownet, build_lenet, build_mlp, build_resnet20,
    };
    int which = -1;
    for (int i = 0; name && builtin_names[i]; i++)
        if (strcmp(name, builtin_names[i]) == 0)
            which = i;
    if (which < 0)
        return diag_set(d, -EINVAL, "/model",
                        "unknown built-in model \"%s\" (minivggnet, shallownet, lenet, mlp, "
                        "resnet20)",
                        name ? name : "");
    if (!input_shape)
        return diag_set(d, -EINVAL, "/model", "built-in model \"%s\" needs an input shape", name);
    if (classes < 2 || classes > WIDTH_MAX)
        return diag_set(d, -EINVAL, "/model", "classes %d not in [2, %d]", classes, WIDTH_MAX);

    struct model_spec s;
    memset(&s, 0, sizeof(s));
    s.functional = which == 4;
    snprintf(s.name, sizeof(s.name), "%s", s.functional ? "model" : "sequential");
    memcpy(s.input_shape, input_shape, sizeof(s.input_shape));
    s.layers = calloc(BUILTIN_MAX_LAYERS, sizeof(*s.layers));
    if (!s.layers)
        return diag_set(d, -ENOMEM, "", "out of memory");
    struct builder b = {.s = &s};
    builders[which](&b, classes);

    int(*shape)[3] = calloc((size_t)s.n_layers, sizeof(*shape));
    int err = shape ? model_spec_infer_shapes_at(&s, NULL, shape, d) : diag_set(d, -ENOMEM, "", "out of memory");
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

