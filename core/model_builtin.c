/* model_builtin.c - the built-in models (minivggnet, shallownet, lenet,
 * mlp) as specs, named as Keras names them. */
#include "model_spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH_MAX MODEL_SPEC_WIDTH_MAX

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
    layer_auto_name(l->name, sizeof(l->name), kind, b->counts[kind]++);
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

