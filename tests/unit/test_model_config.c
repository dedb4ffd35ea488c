/* test_model_config.c - Keras Sequential JSON parsing and printing, built-in
 * models, shape inference and parameter counts (core/model_json_read.c,
 * model_json_write.c, model_builtin.c, model_shape.c).
 *
 * Parameter counts are the numbers Keras model.summary() prints for the same
 * models (MiniVGGNet) or are recomputed here from the layer formulas. */
#include "model.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *read_text(const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", TEST_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = p;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

/* Field-by-field equality, reporting the first difference. */
static bool spec_equal(const struct model_spec *a, const struct model_spec *b)
{
    if (strcmp(a->name, b->name) != 0 || memcmp(a->input_shape, b->input_shape, sizeof(a->input_shape)) ||
        a->n_layers != b->n_layers) {
        fprintf(stderr, "  spec differs: name %s/%s input (%d,%d,%d)/(%d,%d,%d) layers %d/%d\n", a->name,
                b->name, a->input_shape[0], a->input_shape[1], a->input_shape[2], b->input_shape[0],
                b->input_shape[1], b->input_shape[2], a->n_layers, b->n_layers);
        return false;
    }
    for (int i = 0; i < a->n_layers; i++) {
        const struct layer_config *x = &a->layers[i], *y = &b->layers[i];
        bool same = x->kind == y->kind && strcmp(x->name, y->name) == 0 &&
                    x->activation == y->activation && x->filters == y->filters &&
                    x->units == y->units && x->kernel_size[0] == y->kernel_size[0] &&
                    x->kernel_size[1] == y->kernel_size[1] && x->pool_size[0] == y->pool_size[0] &&
                    x->pool_size[1] == y->pool_size[1] && x->strides[0] == y->strides[0] &&
                    x->strides[1] == y->strides[1] && x->padding == y->padding &&
                    x->use_bias == y->use_bias && x->momentum == y->momentum &&
                    x->epsilon == y->epsilon && x->rate == y->rate && x->alpha == y->alpha &&
                    x->max_value == y->max_value && x->threshold == y->threshold &&
                    x->scale == y->scale && x->offset == y->offset &&
                    memcmp(x->pad, y->pad, sizeof(x->pad)) == 0 &&
                    memcmp(x->target_shape, y->target_shape, sizeof(x->target_shape)) == 0 &&
                    x->target_flat == y->target_flat && x->keepdims == y->keepdims &&
                    x->depth_multiplier == y->depth_multiplier &&
                    layer_dilation(x, 0) == layer_dilation(y, 0) &&
                    layer_dilation(x, 1) == layer_dilation(y, 1) &&
                    layer_groups(x) == layer_groups(y) &&
                    x->frozen == y->frozen &&
                    model_spec_n_inputs(a, i) == model_spec_n_inputs(b, i);
        for (int k = 0; same && k < model_spec_n_inputs(a, i); k++)
            same = model_spec_input(a, i, k) == model_spec_input(b, i, k);
        for (int k = 0; k < LAYER_INIT_SLOTS && same; k++) {
            const char *w = layer_init_slot_name(x->kind, k);
            char ix[512], iy[512];
            same = !w || (initializer_to_json(ix, sizeof(ix), &x->init[k], w) > 0 &&
                          initializer_to_json(iy, sizeof(iy), &y->init[k], w) > 0 &&
                          strcmp(ix, iy) == 0);
        }
        if (!same) {
            fprintf(stderr, "  layer %d differs: %s/%s kind %d/%d\n", i, x->name, y->name, x->kind,
                    y->kind);
            return false;
        }
    }
    return true;
}

static size_t conv_params(int kh, int kw, int cin, int filters)
{
    return (size_t)kh * kw * cin * filters + (size_t)filters; /* kernel + bias */
}

static size_t dense_params(int in, int units)
{
    return (size_t)in * units + (size_t)units;
}

static void test_minivggnet_keras_counts(void)
{
    struct diag d = {0};
    struct model_spec s;
    size_t total = 0, trainable = 0;
    /* Keras model.summary() of MiniVGGNet.build(32, 32, 3, 10): 2,171,178 total,
     * 1,408 non-trainable (BN moving statistics of 32+32+64+64+512 channels) */
    CHECK_INT_EQ(model_spec_builtin(&s, "minivggnet", (const int[3]){32, 32, 3}, 10, &d), 0);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, 2171178);
    CHECK_INT_EQ(total - trainable, 2 * (32 + 32 + 64 + 64 + 512));
    model_spec_free(&s);

    CHECK_INT_EQ(model_spec_builtin(&s, "minivggnet", (const int[3]){28, 28, 1}, 10, &d), 0);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, 1679082);
    CHECK_INT_EQ(trainable, 1679082 - 1408);
    CHECK_INT_EQ(model_spec_output_classes(&s, &d), 10);

    static const char *const names[] = {
        "conv2d", "activation", "batch_normalization", "conv2d_1", "activation_1",
        "batch_normalization_1", "max_pooling2d", "dropout", "conv2d_2", "activation_2",
        "batch_normalization_2", "conv2d_3", "activation_3", "batch_normalization_3",
        "max_pooling2d_1", "dropout_1", "flatten", "dense", "activation_4",
        "batch_normalization_4", "dropout_2", "dense_1", "activation_5",
    };
    CHECK_INT_EQ(s.n_layers, 23);
    CHECK_STR_EQ(s.name, "sequential");
    for (int i = 0; i < 23 && i < s.n_layers; i++)
        CHECK_STR_EQ(s.layers[i].name, names[i]);
    if (s.n_layers == 23) {
        CHECK(s.layers[0].kind == LAYER_KIND_CONV2D && s.layers[0].filters == 32 &&
              s.layers[0].kernel_size[0] == 3 && s.layers[0].padding == PADDING_KIND_SAME &&
              s.layers[0].activation == ACTIVATION_KIND_LINEAR);
        CHECK(s.layers[1].activation == ACTIVATION_KIND_RELU);
        CHECK(s.layers[2].momentum == 0.99f && s.layers[2].epsilon == 1e-3f);
        CHECK(s.layers[6].pool_size[0] == 2 && s.layers[6].strides[1] == 2);
        CHECK(s.layers[7].rate == 0.25f && s.layers[20].rate == 0.5f);
        CHECK(s.layers[17].units == 512 && s.layers[21].units == 10);
        CHECK(s.layers[22].activation == ACTIVATION_KIND_SOFTMAX);

        int shapes[23][3];
        CHECK_INT_EQ(model_spec_infer_shapes(&s, shapes, &d), 0);
        CHECK(shapes[6][0] == 14 && shapes[6][1] == 14 && shapes[6][2] == 32);
        CHECK(shapes[14][0] == 7 && shapes[14][1] == 7 && shapes[14][2] == 64);
        CHECK(shapes[16][0] == 1 && shapes[16][1] == 1 && shapes[16][2] == 7 * 7 * 64);
        CHECK(shapes[22][2] == 10);
    }
    model_spec_free(&s);
}

/* resnet20 (He et al. 2016, CIFAR ResNet-20 as the Keras example builds it)
 * on 32x32x3, 10 classes, counted by hand:
 *   stem:    Conv2D 3*3*3*16 + 16 = 448, BN 4*16 = 64
 *   stage 1: 3 blocks of 2 x (Conv2D 3*3*16*16 + 16 = 2320, BN 64) = 3 * 4768 = 14304
 *   stage 2: block 1: Conv2D 3*3*16*32 + 32 = 4640, BN 128, Conv2D 3*3*32*32 + 32
 *            = 9248, BN 128, shortcut Conv2D 1*1*16*32 + 32 = 544: 14688;
 *            blocks 2, 3: 2 x (9248 + 128) = 18752 each: 52192 in all
 *   stage 3: block 1: 18496 + 256 + 36928 + 256 + 2112 = 58048; blocks 2, 3:
 *            2 x (36928 + 256) = 74368 each: 206784 in all
 *   Dense 64*10 + 10 = 650
 * total 448 + 64 + 14304 + 52192 + 206784 + 650 = 274442, of which the 19
 * BN layers' moving statistics, 2 * (16 * 7 + 32 * 6 + 64 * 6) = 1376, are
 * not trainable: 273066 trainable.  These are the "Total params: 274,442,
 * Trainable params: 273,066, Non-trainable params: 1,376" of the Keras
 * example's model.summary() for ResNet20 v1. */
static void test_resnet20(void)
{
    struct diag d = {0};
    struct model_spec s;
    size_t total = 0, trainable = 0;
    CHECK_INT_EQ(model_spec_builtin(&s, "resnet20", (const int[3]){32, 32, 3}, 10, &d), 0);
    CHECK(s.functional);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, conv_params(3, 3, 3, 16) + 64 + 3 * 2 * (conv_params(3, 3, 16, 16) + 64) +
                            conv_params(3, 3, 16, 32) + conv_params(3, 3, 32, 32) +
                            conv_params(1, 1, 16, 32) + 2 * 128 +
                            2 * 2 * (conv_params(3, 3, 32, 32) + 128) +
                            conv_params(3, 3, 32, 64) + conv_params(3, 3, 64, 64) +
                            conv_params(1, 1, 32, 64) + 2 * 256 +
                            2 * 2 * (conv_params(3, 3, 64, 64) + 256) + dense_params(64, 10));
    CHECK_INT_EQ(total, 274442);
    CHECK_INT_EQ(trainable, 273066);
    /* Keras' names and model.layers order: the input, the stem, and the
     * first block of stage 2 with its 1x1 shortcut after the second conv */
    static const char *const head[] = {"input_1", "conv2d", "batch_normalization", "activation",
                                       "conv2d_1"};
    for (int i = 0; i < 5 && i < s.n_layers; i++)
        CHECK_STR_EQ(s.layers[i].name, head[i]);
    static const char *const block[] = {"conv2d_7", "batch_normalization_7", "activation_7",
                                        "conv2d_8", "conv2d_9", "batch_normalization_8", "add_3",
                                        "activation_8"};
    int at = -1;
    for (int i = 0; i < s.n_layers; i++)
        if (strcmp(s.layers[i].name, "conv2d_7") == 0)
            at = i;
    CHECK(at > 0 && at + 8 <= s.n_layers);
    for (int i = 0; at > 0 && i < 8; i++)
        CHECK_STR_EQ(s.layers[at + i].name, block[i]);
    if (at > 0) {
        CHECK_INT_EQ(s.layers[at + 4].strides[0], 2);        /* the 1x1 shortcut */
        CHECK_INT_EQ(model_spec_input(&s, at + 4, 0), at - 1); /* from the stage input */
        CHECK_INT_EQ(model_spec_input(&s, at + 6, 0), at + 4); /* add [shortcut, bn] */
        CHECK_INT_EQ(model_spec_input(&s, at + 6, 1), at + 5);
    }
    CHECK_STR_EQ(s.layers[s.n_layers - 1].name, "dense");
    /* model.summary()'s Param # per layer: the rows add up to the totals; the
     * 1x1 shortcut of stage 2, a BN (2 * 32 of 4 * 32 trainable), the Add */
    size_t params[128], ptrain[128], t2 = 0, tt2 = 0;
    CHECK(s.n_layers <= 128);
    if (at > 0 && s.n_layers <= 128) {
        CHECK_INT_EQ(model_spec_layer_params(&s, params, ptrain, &t2, &tt2, &d), 0);
        CHECK_INT_EQ(t2, 274442);
        CHECK_INT_EQ(tt2, 273066);
        size_t sum = 0, sumt = 0;
        for (int i = 0; i < s.n_layers; i++)
            sum += params[i], sumt += ptrain[i];
        CHECK_INT_EQ(sum, t2);
        CHECK_INT_EQ(sumt, tt2);
        CHECK_INT_EQ(params[at + 4], conv_params(1, 1, 16, 32));
        CHECK_INT_EQ(params[at + 5], 4 * 32);
        CHECK_INT_EQ(ptrain[at + 5], 2 * 32);
        CHECK_INT_EQ(params[at + 6], 0);
        /* a frozen layer: its variables all non-trainable */
        s.layers[at + 5].frozen = true;
        CHECK_INT_EQ(model_spec_layer_params(&s, params, ptrain, &t2, &tt2, &d), 0);
        CHECK_INT_EQ(ptrain[at + 5], 0);
        CHECK_INT_EQ(tt2, 273066 - 2 * 32);
        CHECK_INT_EQ(t2, 274442);
    }
    model_spec_free(&s);
    /* on Fashion-MNIST's 28x28x1 (28 -> 14 -> 7) only the stem conv changes: 3*3*1*16 + 16 */
    CHECK_INT_EQ(model_spec_builtin(&s, "resnet20", (const int[3]){28, 28, 1}, 10, &d), 0);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, NULL, &d), 0);
    CHECK_INT_EQ(total, 274442 - 448 + 160);
    model_spec_free(&s);
}

static void test_other_builtin_counts(void)
{
    struct diag d = {0};
    struct model_spec s;
    size_t total = 0, trainable = 0;

    /* ShallowNet on 32x32x3: Conv2D(32, 3x3, same) keeps 32x32, Flatten 32*32*32 */
    CHECK_INT_EQ(model_spec_builtin(&s, "shallownet", (const int[3]){32, 32, 3}, 10, &d), 0);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, conv_params(3, 3, 3, 32) + dense_params(32 * 32 * 32, 10));
    CHECK_INT_EQ(total, 328586);
    CHECK_INT_EQ(trainable, total);
    CHECK_INT_EQ(s.n_layers, 5);
    if (s.n_layers == 5)
        CHECK_STR_EQ(s.layers[3].name, "dense");
    model_spec_free(&s);

    /* LeNet on 28x28x1: conv 5x5 same (28) -> pool 2/2 (14) -> conv 5x5 same (14)
     * -> pool (7) -> 7*7*50 -> 500 -> classes */
    CHECK_INT_EQ(model_spec_builtin(&s, "lenet", (const int[3]){28, 28, 1}, 10, &d), 0);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, conv_params(5, 5, 1, 20) + conv_params(5, 5, 20, 50) +
                            dense_params(7 * 7 * 50, 500) + dense_params(500, 10));
    CHECK_INT_EQ(total, 1256080);
    static const char *const lenet_names[] = {
        "conv2d", "activation", "max_pooling2d", "conv2d_1", "activation_1", "max_pooling2d_1",
        "flatten", "dense", "activation_2", "dense_1", "activation_3",
    };
    CHECK_INT_EQ(s.n_layers, 11);
    for (int i = 0; i < 11 && i < s.n_layers; i++)
        CHECK_STR_EQ(s.layers[i].name, lenet_names[i]);
    model_spec_free(&s);

    /* LeNet on 32x32x3: 32 -> 16 -> 8 */
    CHECK_INT_EQ(model_spec_builtin(&s, "lenet", (const int[3]){32, 32, 3}, 10, &d), 0);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, NULL, &d), 0);
    CHECK_INT_EQ(total, conv_params(5, 5, 3, 20) + conv_params(5, 5, 20, 50) +
                            dense_params(8 * 8 * 50, 500) + dense_params(500, 10));
    model_spec_free(&s);

    /* MLP: 784 -> 512 -> 512 -> classes, activations on the Dense layers */
    CHECK_INT_EQ(model_spec_builtin(&s, "mlp", (const int[3]){28, 28, 1}, 10, &d), 0);
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, dense_params(784, 512) + dense_params(512, 512) + dense_params(512, 10));
    CHECK_INT_EQ(total, 669706);
    static const char *const mlp_names[] = {"flatten", "dense", "dropout", "dense_1", "dropout_1",
                                            "dense_2"};
    CHECK_INT_EQ(s.n_layers, 6);
    for (int i = 0; i < 6 && i < s.n_layers; i++)
        CHECK_STR_EQ(s.layers[i].name, mlp_names[i]);
    if (s.n_layers == 6) {
        CHECK(s.layers[1].activation == ACTIVATION_KIND_RELU);
        CHECK(s.layers[2].rate == 0.2f);
        CHECK(s.layers[5].activation == ACTIVATION_KIND_SOFTMAX);
    }
    CHECK_INT_EQ(model_spec_output_classes(&s, &d), 10);
    model_spec_free(&s);

    /* names list and bad arguments */
    const char *const *names = model_builtin_names();
    int n = 0;
    while (names[n])
        n++;
    CHECK_INT_EQ(n, 5);
    CHECK_INT_EQ(model_spec_builtin(&s, "resnet50", (const int[3]){28, 28, 1}, 10, &d), -EINVAL);
    CHECK(strstr(d.message, "resnet50") != NULL);
    CHECK_INT_EQ(model_spec_builtin(&s, "mlp", NULL, 10, &d), -EINVAL);
    CHECK_INT_EQ(model_spec_builtin(&s, "mlp", (const int[3]){28, 28, 1}, 0, &d), -EINVAL);
    /* LeNet's pools on a 2x2 image leave (0, 0): the error names the layer */
    CHECK_INT_EQ(model_spec_builtin(&s, "lenet", (const int[3]){2, 2, 1}, 10, &d), -EINVAL);
    CHECK(strstr(d.message, "max_pooling2d_1") != NULL);
}

/* A one-layer-at-a-time spec for shape formulas. */
static void one_layer_spec(struct model_spec *s, struct layer_config *l, int h, int w, int c)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "sequential");
    s->input_shape[0] = h;
    s->input_shape[1] = w;
    s->input_shape[2] = c;
    s->n_layers = 1;
    s->layers = l;
}

static void test_shape_formulas(void)
{
    struct diag d = {0};
    struct model_spec s;
    struct layer_config l;
    int out[1][3];
    /* (in, k, stride, padding) -> expected: valid floor((in - k) / s) + 1, same ceil(in / s) */
    static const int cases[][5] = {
        {28, 5, 2, PADDING_KIND_VALID, (28 - 5) / 2 + 1}, {28, 5, 2, PADDING_KIND_SAME, 14},
        {28, 3, 3, PADDING_KIND_SAME, 10},                {7, 3, 2, PADDING_KIND_VALID, 3},
        {7, 2, 2, PADDING_KIND_SAME, 4},                  {5, 5, 1, PADDING_KIND_VALID, 1},
        {1, 3, 1, PADDING_KIND_SAME, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int kind = 0; kind < 2; kind++) {
            memset(&l, 0, sizeof(l));
            l.kind = kind ? LAYER_KIND_MAX_POOLING2D : LAYER_KIND_CONV2D;
            snprintf(l.name, sizeof(l.name), "x");
            l.filters = 4;
            l.kernel_size[0] = l.kernel_size[1] = cases[i][1];
            l.pool_size[0] = l.pool_size[1] = cases[i][1];
            l.strides[0] = l.strides[1] = cases[i][2];
            l.padding = (enum padding_kind)cases[i][3];
            one_layer_spec(&s, &l, cases[i][0], cases[i][0] + 1, 3);
            CHECK_INT_EQ(model_spec_infer_shapes(&s, out, &d), 0);
            CHECK_MSG(out[0][0] == cases[i][4], "case %zu kind %d: %d", i, kind, out[0][0]);
            CHECK_INT_EQ(out[0][2], kind ? 3 : 4);
        }
    }
    /* valid window larger than the input */
    memset(&l, 0, sizeof(l));
    l.kind = LAYER_KIND_CONV2D;
    snprintf(l.name, sizeof(l.name), "big");
    l.filters = 1;
    l.kernel_size[0] = l.kernel_size[1] = 5;
    l.strides[0] = l.strides[1] = 1;
    one_layer_spec(&s, &l, 4, 4, 1);
    CHECK_INT_EQ(model_spec_infer_shapes(&s, out, &d), -EINVAL);
    CHECK_STR_EQ(d.field, "/config/layers/1");
    CHECK(strstr(d.message, "big") != NULL);
    /* Dense on a 4-D input: the last axis, as Keras (4, 4, 2) -> (4, 4, 3),
     * kernel (2, 3) + bias; not a flat softmax output */
    memset(&l, 0, sizeof(l));
    l.kind = LAYER_KIND_DENSE;
    snprintf(l.name, sizeof(l.name), "dense");
    l.units = 3;
    l.use_bias = true;
    one_layer_spec(&s, &l, 4, 4, 2);
    CHECK_INT_EQ(model_spec_infer_shapes(&s, out, &d), 0);
    CHECK(out[0][0] == 4 && out[0][1] == 4 && out[0][2] == 3);
    size_t total = 0;
    CHECK_INT_EQ(model_spec_count_params(&s, &total, NULL, &d), 0);
    CHECK_INT_EQ(total, 2 * 3 + 3);
    CHECK(model_spec_output_classes(&s, &d) < 0);
}

static void test_round_trip(void)
{
    static const int shapes[][3] = {{28, 28, 1}, {32, 32, 3}, {17, 9, 2}};
    const char *const *names = model_builtin_names();
    struct diag d = {0};
    for (int m = 0; names[m]; m++) {
        for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
            struct model_spec s, p;
            int rc = model_spec_builtin(&s, names[m], shapes[k], 7, &d);
            CHECK_MSG(rc == 0, "%s: %s", names[m], d.message);
            if (rc)
                continue;
            char *json = model_spec_to_json(&s);
            CHECK(json != NULL);
            if (!json) {
                model_spec_free(&s);
                continue;
            }
            /* the printed JSON is well-formed and has the Keras envelope */
            cJSON *root = cJSON_Parse(json);
            CHECK(root != NULL);
            const cJSON *layers = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "config"), "layers");
            /* a Sequential config adds the InputLayer; a functional spec has it */
            CHECK_INT_EQ(cJSON_GetArraySize(layers), s.n_layers + !s.functional);
            CHECK_STR_EQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "keras_version")), "2.15.0");
            cJSON_Delete(root);

            rc = model_spec_parse_json(&p, json, strlen(json), NULL, &d);
            CHECK_MSG(rc == 0, "%s: %s %s", names[m], d.field, d.message);
            if (rc == 0) {
                CHECK_MSG(spec_equal(&s, &p), "%s", names[m]);
                char *again = model_spec_to_json(&p);
                CHECK(again && strcmp(again, json) == 0);
                free(again);
                model_spec_free(&p);
            }
            free(json);
            /* Keras 3's form (config.json of a .keras archive) reads back the same */
            json = model_spec_to_json_flavour(&s, KERAS_FLAVOUR_KERAS3);
            CHECK(json && strstr(json, "\"class_name\": \"DTypePolicy\"") &&
                  strstr(json, s.functional ? "\"build_config\": {\"input_shape\": null}"
                                            : "\"build_input_shape\": [null, "));
            rc = json ? model_spec_parse_json(&p, json, strlen(json), NULL, &d) : -1;
            CHECK_MSG(rc == 0, "%s Keras 3: %s %s", names[m], d.field, d.message);
            if (rc == 0) {
                CHECK_MSG(spec_equal(&s, &p), "%s Keras 3", names[m]);
                model_spec_free(&p);
            }
            free(json);
            model_spec_free(&s);
        }
    }

    /* non-default values survive too: valid padding, strides, average pooling,
     * BN momentum/epsilon, no bias, sigmoid/tanh */
    struct model_spec s, p;
    CHECK_INT_EQ(model_spec_builtin(&s, "minivggnet", (const int[3]){30, 30, 3}, 5, &d), 0);
    s.layers[0].padding = PADDING_KIND_VALID;
    s.layers[0].strides[0] = 2;
    s.layers[0].kernel_size[1] = 5;
    s.layers[0].use_bias = false;
    s.layers[1].activation = ACTIVATION_KIND_TANH;
    s.layers[2].momentum = 0.9f;
    s.layers[2].epsilon = 1e-5f;
    s.layers[6].kind = LAYER_KIND_AVERAGE_POOLING2D;
    s.layers[6].pool_size[0] = 3;
    s.layers[6].strides[1] = 1;
    s.layers[6].padding = PADDING_KIND_SAME;
    s.layers[7].rate = 0.1f;
    s.layers[17].activation = ACTIVATION_KIND_SIGMOID;
    snprintf(s.name, sizeof(s.name), "my \"model\"");
    char *json = model_spec_to_json(&s);
    CHECK(json && strstr(json, "\"epsilon\": 1e-05") && strstr(json, "\"momentum\": 0.9,"));
    CHECK(json && strstr(json, "\"rate\": 0.1,") && strstr(json, "\"AveragePooling2D\""));
    int rc = json ? model_spec_parse_json(&p, json, strlen(json), NULL, &d) : -1;
    CHECK_MSG(rc == 0, "%s %s", d.field, d.message);
    if (rc == 0) {
        CHECK(spec_equal(&s, &p));
        model_spec_free(&p);
    }
    free(json);
    /* a float with no fraction is written as Python writes it (100.0, never 1e+02) */
    s.layers[2].epsilon = 100.0f;
    json = model_spec_to_json(&s);
    CHECK_MSG(json && strstr(json, "\"epsilon\": 100.0,"), "%s", json ? json : "(null)");
    free(json);
    model_spec_free(&s);
}

static void check_fixture_is_minivggnet(const char *rel)
{
    struct diag d = {0};
    struct model_spec ref, p;
    char *json = read_text(rel);
    CHECK_MSG(json != NULL, "cannot read %s", rel);
    if (!json)
        return;
    CHECK_INT_EQ(model_spec_builtin(&ref, "minivggnet", (const int[3]){28, 28, 1}, 10, &d), 0);
    int rc = model_spec_parse_json(&p, json, strlen(json), NULL, &d);
    CHECK_MSG(rc == 0, "%s: %s: %s", rel, d.field, d.message);
    if (rc == 0) {
        CHECK_MSG(spec_equal(&ref, &p), "%s", rel);
        size_t total = 0;
        CHECK_INT_EQ(model_spec_count_params(&p, &total, NULL, &d), 0);
        CHECK_INT_EQ(total, 1679082);
        model_spec_free(&p);
    }
    /* input_shape given by the caller overrides the JSON's */
    rc = model_spec_parse_json(&p, json, strlen(json), (const int[3]){32, 32, 3}, &d);
    CHECK_INT_EQ(rc, 0);
    if (rc == 0) {
        size_t total = 0;
        CHECK(p.input_shape[0] == 32 && p.input_shape[2] == 3);
        CHECK_INT_EQ(model_spec_count_params(&p, &total, NULL, &d), 0);
        CHECK_INT_EQ(total, 2171178);
        model_spec_free(&p);
    }
    model_spec_free(&ref);
    free(json);
}

static void test_keras_fixtures(void)
{
    check_fixture_is_minivggnet("tests/fixtures/models/minivggnet_tf2.json");
    check_fixture_is_minivggnet("tests/fixtures/models/minivggnet_tf215.json");

    /* model_spec_to_json prints the same objects, keys and values as the
     * tf.keras fixture, except the version and the first layer's copy of
     * batch_input_shape (the InputLayer carries it) */
    char *fx = read_text("tests/fixtures/models/minivggnet_tf2.json");
    struct model_spec s;
    struct diag d = {0};
    CHECK_INT_EQ(model_spec_builtin(&s, "minivggnet", (const int[3]){28, 28, 1}, 10, &d), 0);
    char *json = model_spec_to_json(&s);
    cJSON *want = fx ? cJSON_Parse(fx) : NULL, *got = json ? cJSON_Parse(json) : NULL;
    CHECK(want && got);
    if (want && got) {
        cJSON *layers = cJSON_GetObjectItem(cJSON_GetObjectItem(want, "config"), "layers");
        cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 1), "config"),
                                   "batch_input_shape");
        cJSON_ReplaceItemInObject(want, "keras_version", cJSON_CreateString("2.15.0"));
        CHECK(cJSON_Compare(want, got, true));
        cJSON *gl = cJSON_GetObjectItem(cJSON_GetObjectItem(got, "config"), "layers");
        for (int i = 0; i < cJSON_GetArraySize(gl) && i < cJSON_GetArraySize(layers); i++) {
            char *a = cJSON_PrintUnformatted(cJSON_GetArrayItem(layers, i));
            char *b = cJSON_PrintUnformatted(cJSON_GetArrayItem(gl, i));
            CHECK_MSG(a && b && strcmp(a, b) == 0, "layer %d:\n  want %s\n  got  %s", i, a, b);
            cJSON_free(a);
            cJSON_free(b);
        }
    }
    cJSON_Delete(want);
    cJSON_Delete(got);
    free(json);
    free(fx);
    model_spec_free(&s);
}

/* Input shape from each place Keras versions put it; ints for sizes; no names. */
static void test_input_shape_sources(void)
{
    struct diag d = {0};
    struct model_spec p, ref;
    CHECK_INT_EQ(model_spec_builtin(&ref, "shallownet", (const int[3]){32, 32, 3}, 10, &d), 0);
    /* older Keras: no InputLayer, batch_input_shape on the first layer, int kernel_size */
    const char *old =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
        "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv2d\", \"batch_input_shape\": "
        "[null, 32, 32, 3], \"filters\": 32, \"kernel_size\": 3, \"padding\": \"same\"}},"
        "{\"class_name\": \"Activation\", \"config\": {\"activation\": \"relu\"}},"
        "{\"class_name\": \"Flatten\", \"config\": {}},"
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 10}},"
        "{\"class_name\": \"Activation\", \"config\": {\"name\": \"activation_1\", "
        "\"activation\": \"softmax\"}}]}, \"keras_version\": \"2.2.4\", \"backend\": \"tensorflow\"}";
    int rc = model_spec_parse_json(&p, old, strlen(old), NULL, &d);
    CHECK_MSG(rc == 0, "%s %s", d.field, d.message);
    if (rc == 0) {
        CHECK(spec_equal(&ref, &p)); /* unnamed layers get Keras' automatic names */
        model_spec_free(&p);
    }
    /* Keras 3: InputLayer batch_shape, DTypePolicy objects, module keys, build_input_shape */
    const char *k3 =
        "{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": {\"name\": "
        "\"sequential\", \"trainable\": true, \"dtype\": {\"module\": \"keras\", \"class_name\": "
        "\"DTypePolicy\", \"config\": {\"name\": \"float32\"}, \"registered_name\": null}, "
        "\"layers\": [{\"module\": \"keras.layers\", \"class_name\": \"InputLayer\", \"config\": "
        "{\"batch_shape\": [null, 32, 32, 3], \"dtype\": \"float32\", \"sparse\": false, \"name\": "
        "\"input_layer\"}, \"registered_name\": null}, {\"module\": \"keras.layers\", "
        "\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv2d\", \"trainable\": true, "
        "\"dtype\": {\"module\": \"keras\", \"class_name\": \"DTypePolicy\", \"config\": {\"name\": "
        "\"float32\"}, \"registered_name\": null}, \"filters\": 32, \"kernel_size\": [3, 3], "
        "\"strides\": [1, 1], \"padding\": \"same\", \"data_format\": \"channels_last\", "
        "\"dilation_rate\": [1, 1], \"groups\": 1, \"activation\": \"linear\", \"use_bias\": true, "
        "\"kernel_initializer\": {\"module\": \"keras.initializers\", \"class_name\": "
        "\"GlorotUniform\", \"config\": {\"seed\": null}, \"registered_name\": null}, "
        "\"bias_initializer\": {\"module\": \"keras.initializers\", \"class_name\": \"Zeros\", "
        "\"config\": {}, \"registered_name\": null}, \"kernel_regularizer\": null, "
        "\"bias_regularizer\": null, \"activity_regularizer\": null, \"kernel_constraint\": null, "
        "\"bias_constraint\": null}, \"registered_name\": null, \"build_config\": {\"input_shape\": "
        "[null, 32, 32, 3]}}, {\"class_name\": \"Activation\", \"config\": {\"name\": "
        "\"activation\", \"activation\": \"relu\"}}, {\"class_name\": \"Flatten\", \"config\": "
        "{\"name\": \"flatten\", \"data_format\": \"channels_last\"}}, {\"class_name\": \"Dense\", "
        "\"config\": {\"name\": \"dense\", \"units\": 10}}, {\"class_name\": \"Activation\", "
        "\"config\": {\"name\": \"activation_1\", \"activation\": \"softmax\"}}], "
        "\"build_input_shape\": [null, 32, 32, 3]}, \"registered_name\": null, \"build_config\": "
        "{\"input_shape\": [null, 32, 32, 3]}}";
    rc = model_spec_parse_json(&p, k3, strlen(k3), NULL, &d);
    CHECK_MSG(rc == 0, "%s %s", d.field, d.message);
    if (rc == 0) {
        CHECK(spec_equal(&ref, &p));
        model_spec_free(&p);
    }
    /* no shape anywhere: error unless the caller gives one */
    const char *none =
        "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"sequential\", \"layers\": ["
        "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"flatten\"}},"
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 3, "
        "\"activation\": \"softmax\"}}]}}";
    CHECK_INT_EQ(model_spec_parse_json(&p, none, strlen(none), NULL, &d), -EINVAL);
    CHECK(strstr(d.message, "input shape") != NULL);
    rc = model_spec_parse_json(&p, none, strlen(none), (const int[3]){4, 5, 2}, &d);
    CHECK_INT_EQ(rc, 0);
    if (rc == 0) {
        size_t total = 0;
        CHECK_INT_EQ(model_spec_count_params(&p, &total, NULL, &d), 0);
        CHECK_INT_EQ(total, dense_params(4 * 5 * 2, 3));
        CHECK_INT_EQ(model_spec_output_classes(&p, &d), 3);
        model_spec_free(&p);
    }
    model_spec_free(&ref);
}

/* Parse the fixture with layer `ji`'s config key set to `value` (a JSON text;
 * NULL removes the key) and expect -EINVAL naming `field` and `needle`. */
static void expect_error(const char *json, const char *field, const char *needle);

/* The residual model of tests/fixtures/models/residual_*.json, as tf.keras
 * 2.15 and Keras 3 print it (written by hand in their formats):
 *   input (28, 28, 1) -> conv2d (8, 3x3, stride 2, relu) -> batch_normalization
 *   -> conv2d_1 (8, 3x3) -> batch_normalization_1 -> add [bn_1, bn] -> re_lu
 *   -> concatenate [re_lu, bn] -> global_average_pooling2d -> dense (10, softmax) */
static void check_residual(const struct model_spec *s, const char *input_name)
{
    CHECK(s->functional);
    CHECK_INT_EQ(s->n_layers, 10);
    if (s->n_layers != 10)
        return;
    CHECK_INT_EQ(s->layers[0].kind, LAYER_KIND_INPUT);
    CHECK_STR_EQ(s->layers[0].name, input_name);
    CHECK_INT_EQ(s->input_shape[0], 28);
    CHECK_INT_EQ(s->input_shape[2], 1);
    CHECK_INT_EQ(s->layers[1].strides[0], 2);
    CHECK_INT_EQ(s->layers[5].kind, LAYER_KIND_ADD);
    CHECK_INT_EQ(model_spec_n_inputs(s, 5), 2);
    CHECK_INT_EQ(model_spec_input(s, 5, 0), 4);
    CHECK_INT_EQ(model_spec_input(s, 5, 1), 2);
    CHECK_INT_EQ(s->layers[6].kind, LAYER_KIND_RELU);
    CHECK(isinf(s->layers[6].max_value));
    CHECK_INT_EQ(s->layers[7].kind, LAYER_KIND_CONCATENATE);
    CHECK_INT_EQ(model_spec_input(s, 7, 0), 6);
    CHECK_INT_EQ(model_spec_input(s, 7, 1), 2);
    CHECK_INT_EQ(model_spec_input(s, 8, 0), 7);
    int shape[10][3];
    struct diag d = {0};
    CHECK_INT_EQ(model_spec_infer_shapes(s, shape, &d), 0);
    CHECK_INT_EQ(shape[7][2], 16);
    CHECK_INT_EQ(shape[8][0] * shape[8][1] * shape[8][2], 16);
    /* Keras' count: conv2d 3*3*1*8 + 8 = 80, batch_normalization 4*8 = 32
     * (16 trainable), conv2d_1 3*3*8*8 + 8 = 584, batch_normalization_1 32
     * (16), dense 16*10 + 10 = 170: 898 in all, 32 of them not trainable */
    size_t total = 0, trainable = 0;
    CHECK_INT_EQ(model_spec_count_params(s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, 898);
    CHECK_INT_EQ(trainable, 866);
    CHECK_INT_EQ(model_spec_output_classes(s, &d), 10);
}

static void test_functional_fixtures(void)
{
    struct model_spec a, b, c;
    struct diag d = {0};
    char *tf = read_text("tests/fixtures/models/residual_tf215.json");
    char *k3 = read_text("tests/fixtures/models/residual_keras3.json");
    CHECK(tf && k3);
    if (!tf || !k3) {
        free(tf), free(k3);
        return;
    }
    int rc = model_spec_parse_json(&a, tf, strlen(tf), NULL, &d);
    CHECK_MSG(rc == 0, "tf.keras 2: %s %s", d.field, d.message);
    int rc2 = model_spec_parse_json(&b, k3, strlen(k3), NULL, &d);
    CHECK_MSG(rc2 == 0, "Keras 3: %s %s", d.field, d.message);
    if (rc == 0)
        check_residual(&a, "input_1");
    if (rc2 == 0)
        check_residual(&b, "input_layer");
    if (rc == 0 && rc2 == 0) {
        /* the two forms describe the same model */
        snprintf(b.name, sizeof(b.name), "%s", a.name);
        snprintf(b.layers[0].name, sizeof(b.layers[0].name), "%s", a.layers[0].name);
        CHECK(spec_equal(&a, &b));
    }
    if (rc == 0) {
        /* written back as a tf.keras 2 Functional config that reads the same */
        char *json = model_spec_to_json(&a);
        CHECK(json && strstr(json, "\"class_name\": \"Functional\"") &&
              strstr(json, "\"inbound_nodes\": [[[\"batch_normalization_1\", 0, 0, {}], "
                           "[\"batch_normalization\", 0, 0, {}]]]") &&
              strstr(json, "\"output_layers\": [[\"dense\", 0, 0]]"));
        rc = json ? model_spec_parse_json(&c, json, strlen(json), NULL, &d) : -1;
        CHECK_MSG(rc == 0, "round trip: %s %s", d.field, d.message);
        if (rc == 0) {
            CHECK(spec_equal(&a, &c));
            char *again = model_spec_to_json(&c);
            CHECK(again && json && strcmp(again, json) == 0);
            free(again);
            model_spec_free(&c);
        }
        free(json);
        model_spec_free(&a);
    }
    if (rc2 == 0) {
        /* written back in Keras 3's form: __keras_tensor__ nodes, Add on one
         * list, and it reads the same */
        char *json = model_spec_to_json_flavour(&b, KERAS_FLAVOUR_KERAS3);
        CHECK(json && strstr(json, "\"inbound_nodes\": [{\"args\": [[{\"class_name\": "
                                   "\"__keras_tensor__\", \"config\": {\"shape\": [null, 14, 14, 8], "
                                   "\"dtype\": \"float32\", \"keras_history\": "
                                   "[\"batch_normalization_1\", 0, 0]}}, ") &&
              strstr(json, "\"output_layers\": [\"dense\", 0, 0]"));
        rc = json ? model_spec_parse_json(&c, json, strlen(json), NULL, &d) : -1;
        CHECK_MSG(rc == 0, "Keras 3 round trip: %s %s", d.field, d.message);
        if (rc == 0) {
            CHECK(spec_equal(&b, &c));
            model_spec_free(&c);
        }
        free(json);
        model_spec_free(&b);
    }
    free(tf), free(k3);
}

/* The fixture with one change made by edit(root), expected to fail at field
 * with a message containing needle. */
static void functional_error(const char *rel, void (*edit)(cJSON *layers, cJSON *cfg),
                             const char *field, const char *needle)
{
    char *fx = read_text(rel);
    cJSON *root = fx ? cJSON_Parse(fx) : NULL;
    free(fx);
    CHECK(root != NULL);
    if (!root)
        return;
    cJSON *cfg = cJSON_GetObjectItem(root, "config");
    edit(cJSON_GetObjectItem(cfg, "layers"), cfg);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    expect_error(json, field, needle);
    free(json);
}

/* tf.keras 2 form: layer 5 (add) takes [[bn_1], [bn]] */
static void edit_unknown_input(cJSON *layers, cJSON *cfg)
{
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 5),
                                                         "inbound_nodes"), 0);
    cJSON_ReplaceItemInArray(cJSON_GetArrayItem(node, 1), 0, cJSON_CreateString("nope"));
}

static void edit_shared_layer(cJSON *layers, cJSON *cfg)
{
    cJSON *nodes = cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 3), "inbound_nodes");
    cJSON_AddItemToArray(nodes, cJSON_Duplicate(cJSON_GetArrayItem(nodes, 0), true));
}

static void edit_later_input(cJSON *layers, cJSON *cfg)
{
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 3),
                                                         "inbound_nodes"), 0);
    cJSON_ReplaceItemInArray(cJSON_GetArrayItem(node, 0), 0, cJSON_CreateString("re_lu"));
}

static void edit_output_not_last(cJSON *layers, cJSON *cfg)
{
    cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(cfg, "output_layers"), 0);
    cJSON_ReplaceItemInArray(out, 0, cJSON_CreateString("re_lu"));
}

static void edit_add_shapes(cJSON *layers, cJSON *cfg)
{
    /* conv2d_1 with 4 filters: Add of (14, 14, 4) and (14, 14, 8) */
    cJSON *c = cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 3), "config");
    cJSON_ReplaceItemInObject(c, "filters", cJSON_CreateNumber(4));
}

static void edit_bad_key(cJSON *layers, cJSON *cfg)
{
    cJSON *c = cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 7), "config");
    cJSON_ReplaceItemInObject(c, "axis", cJSON_CreateNumber(1));
}

/* Keras 3 form: a call argument that is not supported */
static void edit_k3_kwargs(cJSON *layers, cJSON *cfg)
{
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 2),
                                                         "inbound_nodes"), 0);
    cJSON_AddItemToObject(cJSON_GetObjectItem(node, "kwargs"), "training", cJSON_CreateFalse());
}

static void edit_k3_history(cJSON *layers, cJSON *cfg)
{
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, 6),
                                                         "inbound_nodes"), 0);
    cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(node, "args"), 0);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(t, "config"), "keras_history");
}

static void test_functional_errors(void)
{
    const char *tf = "tests/fixtures/models/residual_tf215.json";
    const char *k3 = "tests/fixtures/models/residual_keras3.json";
    functional_error(tf, edit_unknown_input, "/config/layers/5/inbound_nodes", "\"nope\"");
    functional_error(tf, edit_shared_layer, "/config/layers/3/inbound_nodes", "shared layer");
    functional_error(tf, edit_later_input, "/config/layers/3/inbound_nodes", "topological");
    functional_error(tf, edit_output_not_last, "/config/output_layers", "last layer");
    functional_error(tf, edit_add_shapes, "/config/layers/5", "Add needs equal shapes");
    functional_error(tf, edit_bad_key, "/config/layers/7/config/axis", "last axis");
    functional_error(k3, edit_k3_kwargs, "/config/layers/2/inbound_nodes", "training");
    functional_error(k3, edit_k3_history, "/config/layers/6/inbound_nodes", "keras_history");
    /* BatchNormalization after a flat tensor: tf.keras writes axis [1] */
    static const char bn_fmt[] =
        "{\"class_name\": \"Functional\", \"config\": {\"layers\": ["
        "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2], "
        "\"name\": \"input_1\"}, \"name\": \"input_1\", \"inbound_nodes\": []}, "
        "{\"class_name\": \"GlobalAveragePooling2D\", \"config\": {\"name\": \"gap\"}, "
        "\"name\": \"gap\", \"inbound_nodes\": [[[\"input_1\", 0, 0, {}]]]}, "
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\", \"axis\": [%d]}, "
        "\"name\": \"bn\", \"inbound_nodes\": [[[\"gap\", 0, 0, {}]]]}, "
        "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 3, "
        "\"activation\": \"softmax\"}, \"name\": \"dense\", \"inbound_nodes\": [[[\"bn\", 0, 0, {}]]]}], "
        "\"input_layers\": [[\"input_1\", 0, 0]], \"output_layers\": [[\"dense\", 0, 0]]}}";
    char bn_json[sizeof(bn_fmt) + 8];
    struct model_spec p;
    struct diag d = {0};
    snprintf(bn_json, sizeof(bn_json), bn_fmt, 1);
    int rc = model_spec_parse_json(&p, bn_json, strlen(bn_json), NULL, &d);
    CHECK_MSG(rc == 0, "BN axis [1] after a flat tensor: %s %s", d.field, d.message);
    if (rc == 0)
        model_spec_free(&p);
    snprintf(bn_json, sizeof(bn_json), bn_fmt, 3);
    expect_error(bn_json, "/config/layers/2/config/axis", "2-D");
    /* Add joins tensors: a Sequential model cannot hold one */
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                 "\"Add\", \"config\": {}}]}}", "/config/layers/0", "functional");
}

/* Every new layer and activation through model_spec_to_json and back. */
static void test_new_layers_round_trip(void)
{
    struct layer_config L[24];
    int k = 0;
    layer_config_init(&L[k++], LAYER_KIND_RESCALING);
    L[0].scale = 1.0f / 255.0f, L[0].offset = -0.5f;
    layer_config_init(&L[k], LAYER_KIND_ZERO_PADDING2D);
    L[k].pad[0] = 1, L[k].pad[1] = 2, L[k].pad[2] = 3, L[k++].pad[3] = 0;
    layer_config_init(&L[k], LAYER_KIND_CONV2D);
    L[k].filters = 4, L[k].kernel_size[0] = L[k].kernel_size[1] = 3;
    L[k++].activation = ACTIVATION_KIND_GELU;
    layer_config_init(&L[k], LAYER_KIND_RELU);
    L[k].max_value = 6.0f, L[k].alpha = 0.1f, L[k++].threshold = 0.5f;
    layer_config_init(&L[k++], LAYER_KIND_LEAKY_RELU);
    layer_config_init(&L[k], LAYER_KIND_ELU);
    L[k++].alpha = 0.5f;
    layer_config_init(&L[k], LAYER_KIND_SPATIAL_DROPOUT2D);
    L[k++].rate = 0.2f;
    layer_config_init(&L[k], LAYER_KIND_DEPTHWISE_CONV2D);
    L[k].kernel_size[0] = L[k].kernel_size[1] = 1, L[k].depth_multiplier = 2;
    L[k++].activation = ACTIVATION_KIND_SWISH;
    layer_config_init(&L[k], LAYER_KIND_RESHAPE);
    L[k].target_shape[0] = 2, L[k].target_shape[1] = -1, L[k++].target_shape[2] = 4;
    layer_config_init(&L[k], LAYER_KIND_GLOBAL_MAX_POOLING2D);
    L[k++].keepdims = true;
    layer_config_init(&L[k], LAYER_KIND_RESHAPE);
    L[k].target_flat = true, L[k].target_shape[0] = L[k].target_shape[1] = 1;
    L[k++].target_shape[2] = 4;
    enum activation_kind acts[] = {ACTIVATION_KIND_SELU, ACTIVATION_KIND_SWISH,
                                   ACTIVATION_KIND_SOFTPLUS, ACTIVATION_KIND_HARD_SIGMOID,
                                   ACTIVATION_KIND_LEAKY_RELU, ACTIVATION_KIND_ELU};
    for (int a = 0; a < 6; a++) {
        layer_config_init(&L[k], LAYER_KIND_DENSE);
        L[k].units = 5, L[k++].activation = acts[a];
    }
    layer_config_init(&L[k++], LAYER_KIND_SOFTMAX);
    for (int i = 0; i < k; i++)
        layer_auto_name(L[i].name, sizeof(L[i].name), L[i].kind, i);
    struct model_spec s = {.name = "sequential", .input_shape = {10, 9, 3}, .n_layers = k,
                           .layers = L}, p;
    struct diag d = {0};
    int shape[24][3];
    CHECK_INT_EQ(model_spec_infer_shapes(&s, shape, &d), 0);
    CHECK_INT_EQ(shape[1][0], 13); /* 10 + 1 + 2 */
    CHECK_INT_EQ(shape[1][1], 12); /* 9 + 3 + 0 */
    CHECK_INT_EQ(shape[7][2], 8);  /* DepthwiseConv2D: 4 channels x depth_multiplier 2 */
    CHECK_INT_EQ(shape[8][1], 110); /* Reshape (2, -1, 4) of the (11, 10, 8) output */
    size_t total = 0;
    CHECK_INT_EQ(model_spec_count_params(&s, &total, NULL, &d), 0);
    /* rescaling 0, conv 3*3*3*4 + 4 = 112, depthwise 1*1*4*2 + 8 = 16, dense
     * 4*5 + 5 = 25 then 5 x (5*5 + 5 = 30) */
    CHECK_INT_EQ(total, 112 + 16 + 25 + 5 * 30);
    for (int f = 0; f < 2; f++) {
        /* tf.keras 2, then Keras 3 (LeakyReLU's negative_slope, SpatialDropout2D's own config) */
        char *json = model_spec_to_json_flavour(&s, f ? KERAS_FLAVOUR_KERAS3 : KERAS_FLAVOUR_TF2);
        CHECK(json && strstr(json, "\"class_name\": \"ReLU\"") && strstr(json, "\"max_value\": 6.0"));
        CHECK(json && (f == 0) == (strstr(json, "\"negative_slope\": 0.3") == NULL));
        int rc = json ? model_spec_parse_json(&p, json, strlen(json), NULL, &d) : -1;
        CHECK_MSG(rc == 0, "flavour %d: %s %s", f, d.field, d.message);
        if (rc == 0) {
            CHECK_MSG(spec_equal(&s, &p), "flavour %d", f);
            model_spec_free(&p);
        }
        free(json);
    }
}

static void check_mutation(const char *fixture, int ji, const char *key, const char *value,
                           const char *field, const char *needle)
{
    cJSON *root = cJSON_Parse(fixture);
    cJSON *layer = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "config"), "layers"), ji);
    cJSON *cfg = cJSON_GetObjectItem(layer, "config");
    cJSON_DeleteItemFromObject(cfg, key);
    if (value)
        cJSON_AddItemToObject(cfg, key, cJSON_Parse(value));
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    struct diag d = {0};
    struct model_spec p;
    int rc = model_spec_parse_json(&p, json, strlen(json), NULL, &d);
    CHECK_MSG(rc == -EINVAL, "layer %d %s=%s: rc %d", ji, key, value ? value : "(removed)", rc);
    if (rc == 0)
        model_spec_free(&p);
    CHECK_MSG(strcmp(d.field, field) == 0, "layer %d %s=%s: field %s, want %s", ji, key,
              value ? value : "(removed)", d.field, field);
    CHECK_MSG(strstr(d.message, needle) != NULL, "message \"%s\" lacks \"%s\"", d.message, needle);
    free(json);
}

static void test_rejections(void)
{
    char *fx = read_text("tests/fixtures/models/minivggnet_tf2.json");
    CHECK(fx != NULL);
    if (!fx)
        return;
    /* layer 1 Conv2D, 3 BatchNormalization (4-D), 7 MaxPooling2D, 8 Dropout,
     * 17 Flatten, 18 Dense, 20 BatchNormalization (2-D) */
    struct {
        int ji;
        const char *key, *value, *needle;
    } cases[] = {
        {1, "data_format", "\"channels_first\"", "channels_last"},
        {1, "dilation_rate", "[0, 2]", "list of two"},
        {1, "groups", "2", "groups"},
        {1, "kernel_initializer", "\"identity\"", "unsupported initializer \"identity\""},
        {1, "kernel_initializer", "17", "initializer name"},
        {1, "bias_initializer", "\"orthogonal\"", "2 dimensions"},
        {1, "kernel_regularizer", "{\"class_name\": \"L2\", \"config\": {\"l2\": 0.01}}", "regularizers"},
        {1, "bias_constraint", "{\"class_name\": \"MaxNorm\", \"config\": {}}", "constraints"},
        {1, "activation", "\"mish\"", "mish"},
        {1, "padding", "\"causal\"", "same"},
        {1, "kernel_size", "[3, 0]", "Conv2D"},
        {1, "kernel_size", "[3, 3, 3]", "list of two"},
        {1, "filters", "32.5", "filters"},
        {1, "dtype", "\"float16\"", "float32"},
        {1, "trainable", "0", "true or false"},
        {1, "unknown_option", "1", "unknown_option"},
        {3, "axis", "[1]", "channels axis"},
        {3, "axis", "2", "channels axis"},
        {3, "center", "false", "center"},
        {3, "scale", "false", "scale"},
        {3, "gamma_initializer", "\"he_normall\"", "he_normall"},
        {3, "momentum", "1.5", "momentum"},
        {3, "epsilon", "0", "epsilon"},
        {7, "pool_size", "\"2\"", "pool_size"},
        {7, "data_format", "\"channels_first\"", "channels_last"},
        {8, "noise_shape", "[null, 1, 1, 32]", "noise_shape"},
        {8, "rate", "1.0", "rate"},
        {18, "units", "0", "units"},
        {20, "axis", "[3]", "2-D"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char field[128];
        snprintf(field, sizeof(field), "/config/layers/%d/config/%s", cases[i].ji, cases[i].key);
        check_mutation(fx, cases[i].ji, cases[i].key, cases[i].value, field, cases[i].needle);
    }
    /* required keys */
    check_mutation(fx, 1, "filters", NULL, "/config/layers/1", "filters");
    check_mutation(fx, 8, "rate", NULL, "/config/layers/8", "rate");
    /* a duplicate name */
    check_mutation(fx, 4, "name", "\"conv2d\"", "/config/layers/4/config/name", "conv2d");
    /* valid 15x15 pooling of a 14x14 input: the shape error names the layer */
    check_mutation(fx, 15, "pool_size", "[15, 15]", "/config/layers/15", "max_pooling2d_1");
    free(fx);
}

/* A Keras 3 Sequential config with a dilated, grouped Conv2D and a
 * SeparableConv2D; %s: extra keys of the Conv2D, then of the
 * SeparableConv2D (each starting with ", " or empty). */
static const char conv_options_fmt[] =
    "{\"module\": \"keras\", \"class_name\": \"Sequential\", \"config\": {\"name\": "
    "\"sequential\", \"trainable\": true, \"layers\": ["
    "{\"module\": \"keras.layers\", \"class_name\": \"InputLayer\", \"config\": "
    "{\"batch_shape\": [null, 16, 16, 4], \"dtype\": \"float32\", \"sparse\": false, "
    "\"name\": \"input_layer\"}, \"registered_name\": null},"
    "{\"module\": \"keras.layers\", \"class_name\": \"Conv2D\", \"config\": {\"name\": "
    "\"conv2d\", \"trainable\": true, \"filters\": 8, \"kernel_size\": [3, 3], \"padding\": "
    "\"same\", \"data_format\": \"channels_last\", \"activation\": \"relu\", \"use_bias\": "
    "true%s}, \"registered_name\": null},"
    "{\"module\": \"keras.layers\", \"class_name\": \"SeparableConv2D\", \"config\": "
    "{\"name\": \"separable_conv2d\", \"trainable\": true, \"kernel_size\": [3, 3], "
    "\"padding\": \"valid\", \"data_format\": \"channels_last\", \"activation\": "
    "\"linear\", \"use_bias\": true, \"depthwise_initializer\": {\"module\": "
    "\"keras.initializers\", \"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}, "
    "\"registered_name\": null}, \"pointwise_initializer\": {\"module\": "
    "\"keras.initializers\", \"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}, "
    "\"registered_name\": null}, \"bias_initializer\": {\"module\": \"keras.initializers\", "
    "\"class_name\": \"Zeros\", \"config\": {}, \"registered_name\": null}, "
    "\"depthwise_regularizer\": null, \"pointwise_regularizer\": null, \"bias_regularizer\": "
    "null, \"activity_regularizer\": null, \"depthwise_constraint\": null, "
    "\"pointwise_constraint\": null, \"bias_constraint\": null%s}, \"registered_name\": null},"
    "{\"module\": \"keras.layers\", \"class_name\": \"Flatten\", \"config\": {\"name\": "
    "\"flatten\"}},"
    "{\"module\": \"keras.layers\", \"class_name\": \"Dense\", \"config\": {\"name\": "
    "\"dense\", \"units\": 3, \"activation\": \"softmax\"}}]}}";

static char *conv_options_json(const char *conv_extra, const char *sep_extra)
{
    size_t n = sizeof(conv_options_fmt) + strlen(conv_extra) + strlen(sep_extra);
    char *s = malloc(n);
    if (s)
        snprintf(s, n, conv_options_fmt, conv_extra, sep_extra);
    return s;
}

static void expect_error(const char *json, const char *field, const char *needle);

static void expect_conv_options_error(const char *conv_extra, const char *sep_extra,
                                      const char *field, const char *needle)
{
    char *json = conv_options_json(conv_extra, sep_extra);
    CHECK(json != NULL);
    if (json)
        expect_error(json, field, needle);
    free(json);
}

/* Conv2D dilation_rate and groups, SeparableConv2D: Keras 3's config keys,
 * shapes and parameter counts, the round trip through model_spec_to_json,
 * and errors naming the layer and key. */
static void test_conv_options(void)
{
    char *json = conv_options_json(", \"strides\": [1, 1], \"dilation_rate\": [2, 2], "
                                   "\"groups\": 2",
                                   ", \"filters\": 6, \"strides\": 1, \"depth_multiplier\": 2, "
                                   "\"dilation_rate\": [1, 2]");
    struct model_spec s, p;
    struct diag d = {0};
    int rc = json ? model_spec_parse_json(&s, json, strlen(json), NULL, &d) : -1;
    free(json);
    CHECK_MSG(rc == 0, "%s %s", d.field, d.message);
    if (rc != 0)
        return;
    CHECK_INT_EQ(s.n_layers, 4);
    const struct layer_config *c = &s.layers[0], *sep = &s.layers[1];
    CHECK(c->kind == LAYER_KIND_CONV2D && c->dilation_rate[0] == 2 && c->dilation_rate[1] == 2 &&
          c->groups == 2);
    CHECK(sep->kind == LAYER_KIND_SEPARABLE_CONV2D && sep->filters == 6 &&
          sep->depth_multiplier == 2 && sep->dilation_rate[0] == 1 && sep->dilation_rate[1] == 2 &&
          sep->padding == PADDING_KIND_VALID && sep->use_bias);
    int shape[4][3];
    CHECK_INT_EQ(model_spec_infer_shapes(&s, shape, &d), 0);
    /* conv same 16x16x8; separable valid, effective kernel (3, 5): 14x12x6 */
    CHECK(shape[0][0] == 16 && shape[0][1] == 16 && shape[0][2] == 8);
    CHECK(shape[1][0] == 14 && shape[1][1] == 12 && shape[1][2] == 6);
    size_t total = 0;
    CHECK_INT_EQ(model_spec_count_params(&s, &total, NULL, &d), 0);
    /* conv 3*3*(4/2)*8 + 8 = 152; separable 3*3*8*2 + 16*6 + 6 = 246;
     * dense 1008*3 + 3 = 3027 */
    CHECK_INT_EQ(total, 152 + 246 + 3027);
    /* SeparableConv2D's initializer slots: depthwise 0, pointwise 1, bias 2 */
    CHECK(sep->init[0].kind == INIT_GLOROT_UNIFORM && sep->init[1].kind == INIT_GLOROT_UNIFORM &&
          sep->init[2].kind == INIT_ZEROS);
    initializer_init(&s.layers[1].init[1], INIT_HE_NORMAL);
    initializer_init(&s.layers[1].init[2], INIT_ONES);
    char *out = model_spec_to_json(&s);
    CHECK(out && strstr(out, "\"pointwise_initializer\": {\"class_name\": \"HeNormal\"") &&
          strstr(out, "\"bias_initializer\": {\"class_name\": \"Ones\""));
    CHECK(out && strstr(out, "\"dilation_rate\": [2, 2], \"groups\": 2") &&
          strstr(out, "\"class_name\": \"SeparableConv2D\"") &&
          strstr(out, "\"pointwise_initializer\""));
    rc = out ? model_spec_parse_json(&p, out, strlen(out), NULL, &d) : -1;
    CHECK_MSG(rc == 0, "round trip: %s %s", d.field, d.message);
    if (rc == 0) {
        CHECK(spec_equal(&s, &p));
        CHECK(p.layers[1].init[0].kind == INIT_GLOROT_UNIFORM &&
              p.layers[1].init[1].kind == INIT_HE_NORMAL && p.layers[1].init[2].kind == INIT_ONES);
        model_spec_free(&p);
    }
    free(out);
    model_spec_free(&s);

    const char *sep_ok = ", \"filters\": 6";
    /* Keras: strides > 1 with dilation_rate > 1 is refused */
    expect_conv_options_error(", \"strides\": 2, \"dilation_rate\": 2", sep_ok,
                              "/config/layers/1/config/dilation_rate", "strides (2, 2) > 1");
    expect_conv_options_error("", ", \"filters\": 6, \"strides\": [1, 2], \"dilation_rate\": [2, 1]",
                              "/config/layers/2/config/dilation_rate", "not supported");
    /* groups divide the input channels (4) and the filters (8) */
    expect_conv_options_error(", \"groups\": 3", sep_ok, "/config/layers/1/config/groups",
                              "groups 3 must divide the input channels (4) and filters (8)");
    expect_conv_options_error(", \"groups\": 8", sep_ok, "/config/layers/1/config/groups",
                              "groups 8 must divide");
    expect_conv_options_error(", \"groups\": 0", sep_ok, "/config/layers/1/config/groups",
                              "integer");
    expect_conv_options_error(", \"dilation_rate\": [1, 0]", sep_ok,
                              "/config/layers/1/config/dilation_rate", "list of two");
    /* a dilated kernel larger than the input, 'valid' */
    expect_conv_options_error("", ", \"filters\": 6, \"dilation_rate\": 9",
                              "/config/layers/2", "not positive");
    expect_conv_options_error("", "", "/config/layers/2", "required key \"filters\"");
    expect_conv_options_error("", ", \"filters\": 6, \"depth_multiplier\": 0",
                              "/config/layers/2/config/depth_multiplier", "integer");
    expect_conv_options_error("", ", \"filters\": 6, \"kernel_initializer\": null",
                              "/config/layers/2/config/kernel_initializer", "unknown key");
    expect_conv_options_error("", ", \"filters\": 6, \"groups\": 1",
                              "/config/layers/2/config/groups", "unknown key");
}

static void expect_error(const char *json, const char *field, const char *needle)
{
    struct diag d = {0};
    struct model_spec p;
    int rc = model_spec_parse_json(&p, json, strlen(json), NULL, &d);
    CHECK_MSG(rc < 0, "accepted: %s", json);
    if (rc == 0)
        model_spec_free(&p);
    CHECK_MSG(strcmp(d.field, field) == 0, "field %s, want %s", d.field, field);
    CHECK_MSG(strstr(d.message, needle) != NULL, "message \"%s\" lacks \"%s\"", d.message, needle);
}

static void test_structural_errors(void)
{
    expect_error("{\"class_name\": \"Sequential\", ", "", "invalid JSON");
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}} x", "", "trailing");
    expect_error("[1, 2]", "", "object");
    /* whitespace and a terminating NUL after the JSON are fine */
    struct model_spec p;
    struct diag d = {0};
    const char *ok = "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                     "\"Flatten\", \"config\": {\"batch_input_shape\": [null, 2, 2, 1]}}]}} \n";
    CHECK_INT_EQ(model_spec_parse_json(&p, ok, strlen(ok) + 1, NULL, &d), 0);
    model_spec_free(&p);
    expect_error("{\"class_name\": \"MyModel\", \"config\": {}}", "/class_name", "Sequential");
    expect_error("{\"class_name\": \"Functional\", \"config\": {}}", "/config/layers", "missing");
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": []}}", "/config/layers",
                 "no layers");
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [], \"extra\": 1}}",
                 "/config", "extra");
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                 "\"InputLayer\", \"config\": {\"batch_input_shape\": [null, 8, 8, 1]}}, "
                 "{\"class_name\": \"Conv3D\", \"config\": {\"filters\": 1}}]}}",
                 "/config/layers/1", "Conv3D");
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                 "\"InputLayer\", \"config\": {\"batch_input_shape\": [null, 8, 8]}}, "
                 "{\"class_name\": \"Flatten\", \"config\": {}}]}}",
                 "/config/layers/0/config/batch_input_shape", "[null, H, W, C]");
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                 "\"InputLayer\", \"config\": {\"batch_input_shape\": [null, 8, 8, 1], "
                 "\"sparse\": true}}, {\"class_name\": \"Flatten\", \"config\": {}}]}}",
                 "/config/layers/0/config/sparse", "InputLayer");
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                 "\"Flatten\", \"config\": {\"batch_input_shape\": [null, 8, 8, 1]}}, "
                 "{\"class_name\": \"InputLayer\", \"config\": {}}]}}",
                 "/config/layers/1", "first layer");
    /* Dense straight on a 4-D tensor: per pixel, as Keras; a BatchNormalization
     * after it normalises the channels axis 3 */
    const char *per_pixel =
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
        "\"Dense\", \"config\": {\"batch_input_shape\": [null, 8, 8, 1], \"units\": 4}}, "
        "{\"class_name\": \"BatchNormalization\", \"config\": {\"axis\": 3}}, "
        "{\"class_name\": \"Flatten\", \"config\": {}}, "
        "{\"class_name\": \"Dense\", \"config\": {\"units\": 3, \"activation\": \"softmax\"}}]}}";
    CHECK_INT_EQ(model_spec_parse_json(&p, per_pixel, strlen(per_pixel), NULL, &d), 0);
    size_t total = 0;
    CHECK_INT_EQ(model_spec_count_params(&p, &total, NULL, &d), 0);
    CHECK_INT_EQ(total, (1 * 4 + 4) + 4 * 4 + (8 * 8 * 4 * 3 + 3));
    model_spec_free(&p);
    /* duplicate keys are not silently resolved */
    expect_error("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": "
                 "\"Dense\", \"config\": {\"units\": 4, \"units\": 5}}]}}",
                 "/config/layers/0/config/units", "duplicate");
}

/* Random byte edits and truncations of the fixture: every result is either
 * a valid spec that prints and parses back to itself, or -EINVAL with a
 * message; nothing crashes (run under ASan/UBSan too). */
static void test_mutations(void)
{
    char *fx = read_text("tests/fixtures/models/minivggnet_tf2.json");
    CHECK(fx != NULL);
    if (!fx)
        return;
    size_t len = strlen(fx);
    char *buf = malloc(len + 1);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    static const char alphabet[] = "{}[]\",:0123456789.-eE aznul\\tf";
    int ok = 0, rejected = 0, bad = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, fx, len + 1);
        size_t n = len;
        int edits = 1 + iter % 3;
        for (int e = 0; e < edits; e++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t pos = (size_t)(x % n);
            switch ((x >> 32) % 4) {
            case 0: /* truncate */
                n = pos;
                break;
            case 1: /* delete one byte */
                memmove(buf + pos, buf + pos + 1, n - pos);
                n--;
                break;
            default: /* replace with a JSON-ish character */
                buf[pos] = alphabet[(x >> 40) % (sizeof(alphabet) - 1)];
                break;
            }
            if (n == 0)
                break;
        }
        struct model_spec p;
        struct diag d = {0};
        int rc = model_spec_parse_json(&p, buf, n, NULL, &d);
        if (rc == 0) {
            ok++;
            struct model_spec q;
            char *json = model_spec_to_json(&p);
            size_t total;
            bad += !json || model_spec_count_params(&p, &total, NULL, &d) != 0;
            if (json && model_spec_parse_json(&q, json, strlen(json), NULL, &d) == 0) {
                bad += !spec_equal(&p, &q);
                model_spec_free(&q);
            } else {
                bad++;
            }
            free(json);
            model_spec_free(&p);
        } else {
            rejected++;
            bad += rc != -EINVAL || d.message[0] == '\0';
        }
    }
    CHECK_INT_EQ(bad, 0);
    CHECK(rejected > 2000);
    CHECK(ok > 0); /* e.g. edits inside names or numbers that stay valid */
    fprintf(stderr, "  mutations: %d parsed, %d rejected\n", ok, rejected);
    free(buf);
    free(fx);
}

/* trainable: false (Keras' frozen layer): its parameters count as
 * non-trainable, and the JSON written back says false. */
static void test_frozen_layers(void)
{
    char *fx = read_text("tests/fixtures/models/minivggnet_tf2.json");
    CHECK(fx != NULL);
    if (!fx)
        return;
    cJSON *root = cJSON_Parse(fx);
    free(fx);
    cJSON *layers = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "config"), "layers");
    /* layer 1 Conv2D (3*3*1*32 + 32), 3 BatchNormalization (4 * 32) */
    for (int ji = 1; ji <= 3; ji += 2)
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetArrayItem(layers, ji), "config"),
                                  "trainable", cJSON_CreateFalse());
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    struct model_spec s, p;
    struct diag d = {0};
    int rc = model_spec_parse_json(&s, json, strlen(json), NULL, &d);
    free(json);
    CHECK_MSG(rc == 0, "%s %s", d.field, d.message);
    if (rc)
        return;
    CHECK(s.layers[0].frozen && s.layers[2].frozen && !s.layers[1].frozen && !s.layers[3].frozen);
    size_t total = 0, trainable = 0;
    CHECK_INT_EQ(model_spec_count_params(&s, &total, &trainable, &d), 0);
    CHECK_INT_EQ(total, 1679082);
    CHECK_INT_EQ(trainable, 1677674 - (3 * 3 * 1 * 32 + 32) - 2 * 32);
    for (int f = 0; f < 2; f++) {
        char *out = model_spec_to_json_flavour(&s, f ? KERAS_FLAVOUR_KERAS3 : KERAS_FLAVOUR_TF2);
        CHECK(out != NULL);
        rc = out ? model_spec_parse_json(&p, out, strlen(out), NULL, &d) : -1;
        CHECK_INT_EQ(rc, 0);
        if (rc == 0) {
            CHECK(spec_equal(&s, &p));
            model_spec_free(&p);
        }
        free(out);
    }
    model_spec_free(&s);
}

int main(void)
{
    TEST_RUN(test_minivggnet_keras_counts);
    TEST_RUN(test_other_builtin_counts);
    TEST_RUN(test_resnet20);
    TEST_RUN(test_shape_formulas);
    TEST_RUN(test_round_trip);
    TEST_RUN(test_keras_fixtures);
    TEST_RUN(test_input_shape_sources);
    TEST_RUN(test_rejections);
    TEST_RUN(test_structural_errors);
    TEST_RUN(test_mutations);
    TEST_RUN(test_functional_fixtures);
    TEST_RUN(test_functional_errors);
    TEST_RUN(test_new_layers_round_trip);
    TEST_RUN(test_conv_options);
    TEST_RUN(test_frozen_layers);
    return TEST_EXIT();
}
