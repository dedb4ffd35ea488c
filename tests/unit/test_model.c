/* test_model.c - the model runtime (core/model.c): MiniVGGNet's parameter
 * counts and shapes, weight layout and names, Keras initialisation
 * statistics, bit-identical determinism across runs with 2 threads,
 * train-mode vs inference-mode behaviour (dropout off, moving statistics),
 * and invalid specs. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "model.h"
#include "rng.h"
#include "test.h"

static struct layer_config lc(enum layer_kind kind, const char *name)
{
    struct layer_config c = {.kind = kind, .use_bias = true, .momentum = 0.99f,
                             .epsilon = 1e-3f, .strides = {1, 1}, .pool_size = {2, 2},
                             .kernel_size = {3, 3}, .padding = PADDING_KIND_SAME};
    snprintf(c.name, sizeof(c.name), "%s", name);
    return c;
}

/* MiniVGGNet by hand, with Keras' automatic layer names. */
static int minivgg(struct layer_config *L, int classes, float drop_scale)
{
    int k = 0, nconv = 0, nact = 0, nbn = 0, npool = 0, ndrop = 0;
    char name[64];
#define NAME(base, counter) \
    (counter ? snprintf(name, sizeof(name), "%s_%d", base, counter) : snprintf(name, sizeof(name), "%s", base), counter++, name)
    for (int block = 0; block < 2; block++) {
        for (int j = 0; j < 2; j++) {
            L[k] = lc(LAYER_KIND_CONV2D, NAME("conv2d", nconv));
            L[k++].filters = block ? 64 : 32;
            L[k] = lc(LAYER_KIND_ACTIVATION, NAME("activation", nact));
            L[k++].activation = ACTIVATION_KIND_RELU;
            L[k++] = lc(LAYER_KIND_BATCH_NORMALIZATION, NAME("batch_normalization", nbn));
        }
        L[k] = lc(LAYER_KIND_MAX_POOLING2D, NAME("max_pooling2d", npool));
        L[k].strides[0] = L[k].strides[1] = 2, L[k++].padding = PADDING_KIND_VALID;
        L[k] = lc(LAYER_KIND_DROPOUT, NAME("dropout", ndrop));
        L[k++].rate = 0.25f * drop_scale;
    }
    L[k++] = lc(LAYER_KIND_FLATTEN, "flatten");
    L[k] = lc(LAYER_KIND_DENSE, "dense"), L[k++].units = 512;
    L[k] = lc(LAYER_KIND_ACTIVATION, NAME("activation", nact));
    L[k++].activation = ACTIVATION_KIND_RELU;
    L[k++] = lc(LAYER_KIND_BATCH_NORMALIZATION, NAME("batch_normalization", nbn));
    L[k] = lc(LAYER_KIND_DROPOUT, NAME("dropout", ndrop));
    L[k++].rate = 0.5f * drop_scale;
    L[k] = lc(LAYER_KIND_DENSE, "dense_1"), L[k++].units = classes;
    L[k] = lc(LAYER_KIND_ACTIVATION, NAME("activation", nact));
    L[k++].activation = ACTIVATION_KIND_SOFTMAX;
#undef NAME
    return k;
}

static struct model *make(int h, int w, int c, int max_batch, int threads, float drop_scale)
{
    static struct layer_config L[32];
    struct model_spec spec = {.name = "sequential", .input_shape = {h, w, c}, .layers = L};
    spec.n_layers = minivgg(L, 10, drop_scale);
    struct model *m = NULL;
    struct diag d = {0};
    int err = model_create(&m, &spec, max_batch, threads, &d);
    CHECK_MSG(err == 0, "model_create: %s %s", d.field, d.message);
    return err ? NULL : m;
}

static void test_param_counts(void)
{
    struct model *m = make(32, 32, 3, 4, 1, 1);
    if (!m)
        return;
    CHECK_INT_EQ(m->n_params, 2171178);
    CHECK_INT_EQ(m->n_layers, 23);
    CHECK_INT_EQ(m->classes, 10);
    /* non-trainable: BN moving statistics 2 * (32 + 32 + 64 + 64 + 512) */
    CHECK_INT_EQ(m->n_params - m->n_trainable, 2 * (32 + 32 + 64 + 64 + 512));
    const struct weight *w = model_find_weight(m, "conv2d_1", "kernel");
    CHECK(w && w->ndim == 4 && w->shape[0] == 3 && w->shape[1] == 3 && w->shape[2] == 32 &&
          w->shape[3] == 32);
    w = model_find_weight(m, "dense", "kernel");
    CHECK(w && w->ndim == 2 && w->shape[0] == 8 * 8 * 64 && w->shape[1] == 512);
    CHECK(model_find_weight(m, "batch_normalization_4", "moving_variance") != NULL);
    CHECK(model_find_weight(m, "batch_normalization_4", "kernel") == NULL);
    CHECK(model_find_weight(m, "nope", "kernel") == NULL);
    /* two blocks, trainable weights then the moving statistics, each in
     * layer order and Keras order inside a layer, no gaps */
    size_t off[2] = {0, m->n_trainable};
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < m->layers[i].n_weights; j++) {
            const struct weight *wj = &m->layers[i].weights[j];
            CHECK_INT_EQ(wj->offset, off[!wj->trainable]);
            off[!wj->trainable] += wj->size;
        }
    CHECK_INT_EQ(off[0], m->n_trainable);
    CHECK_INT_EQ(off[1], m->n_params);
    const struct layer *bn = &m->layers[2];
    CHECK_STR_EQ(bn->weights[0].name, "gamma");
    CHECK_STR_EQ(bn->weights[3].name, "moving_variance");
    CHECK(!bn->weights[2].trainable && bn->weights[1].trainable);
    CHECK(((uintptr_t)m->params & 63) == 0 && ((uintptr_t)m->grads & 63) == 0);
    model_free(m);

    m = make(28, 28, 1, 4, 2, 1);
    if (!m)
        return;
    CHECK_INT_EQ(m->n_params, 1679082);
    CHECK_INT_EQ(m->layers[6].out_shape[0], 14);
    CHECK_INT_EQ(m->layers[14].out_shape[0], 7);
    CHECK_INT_EQ(m->layers[16].out_shape[2], 7 * 7 * 64);
    CHECK_INT_EQ(m->layers[22].out_shape[2], 10);
    model_free(m);
}

static void test_init_stats(void)
{
    struct model *m = make(28, 28, 1, 2, 1, 1);
    if (!m)
        return;
    model_init_weights(m, 42);
    const struct weight *w = model_find_weight(m, "dense", "kernel");
    double limit = sqrt(6.0 / (3136 + 512)), sum = 0, sq = 0, mx = 0;
    const float *p = m->params + w->offset;
    for (size_t i = 0; i < w->size; i++) {
        sum += p[i];
        sq += (double)p[i] * p[i];
        mx = fabs(p[i]) > mx ? fabs(p[i]) : mx;
    }
    CHECK(mx <= limit);
    CHECK(mx > 0.99 * limit);
    CHECK_CLOSE(sum / w->size, 0.0, 0, limit * 0.01);
    CHECK_CLOSE(sq / w->size, limit * limit / 3.0, 0.02, 0); /* variance of U(-l, l) */
    w = model_find_weight(m, "conv2d_2", "kernel"); /* 3x3x32x64 */
    limit = sqrt(6.0 / (9 * 32 + 9 * 64));
    p = m->params + w->offset;
    mx = 0;
    for (size_t i = 0; i < w->size; i++)
        mx = fabs(p[i]) > mx ? fabs(p[i]) : mx;
    CHECK(mx <= limit && mx > 0.98 * limit);
    const char *bn[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    const float want[] = {1, 0, 0, 1};
    for (int j = 0; j < 4; j++) {
        w = model_find_weight(m, "batch_normalization_3", bn[j]);
        for (size_t i = 0; i < w->size; i++)
            CHECK(m->params[w->offset + i] == want[j]);
    }
    w = model_find_weight(m, "conv2d", "bias");
    for (size_t i = 0; i < w->size; i++)
        CHECK(m->params[w->offset + i] == 0.0f);
    /* same seed, same weights; another seed, others */
    float *copy = malloc(sizeof(float) * m->n_params);
    memcpy(copy, m->params, sizeof(float) * m->n_params);
    model_init_weights(m, 42);
    CHECK(memcmp(copy, m->params, sizeof(float) * m->n_params) == 0);
    model_init_weights(m, 43);
    CHECK(memcmp(copy, m->params, sizeof(float) * m->n_params) != 0);
    free(copy);
    model_free(m);
}

static void fill_batch(uint8_t *img, uint8_t *lab, int n, size_t ex, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed, 5);
    for (size_t i = 0; i < (size_t)n * ex; i++)
        img[i] = (uint8_t)rng_below(&r, 256);
    for (int i = 0; i < n; i++)
        lab[i] = (uint8_t)rng_below(&r, 10);
}

/* Train a few SGD steps (plain p -= lr * g) and return the model. */
static struct model *train_few(int threads, int steps)
{
    struct model *m = make(16, 16, 3, 12, threads, 1);
    if (!m)
        return NULL;
    model_init_weights(m, 7);
    enum { N = 11, PX = 16 * 16 * 3 };
    uint8_t img[12 * PX], lab[12];
    static float x[N * PX], y[N * 10], probs[N * 10];
    for (int s = 0; s < steps; s++) {
        fill_batch(img, lab, N, PX, (uint64_t)s);
        /* the step's loss and correct count, predicted by the same
         * training-mode forward on the float input (moving statistics kept) */
        memset(y, 0, sizeof(y));
        for (int i = 0; i < N * PX; i++)
            x[i] = (float)img[i] * (1.0f / 255.0f);
        for (int e = 0; e < N; e++)
            y[e * 10 + lab[e]] = 1.0f;
        double want_loss;
        CHECK(model_forward_backward_f32(m, x, y, N, 99, s, false, &want_loss, probs) == 0);
        int want_ok = 0;
        for (int e = 0; e < N; e++) {
            int am = 0;
            for (int k = 1; k < 10; k++)
                if (probs[e * 10 + k] > probs[e * 10 + am])
                    am = k;
            want_ok += am == lab[e];
        }
        double loss;
        double ok;
        CHECK(model_train_step(m, img, PIXELS_UINT8, lab, N, 99, s, &loss, &ok) == 0);
        CHECK(ok == want_ok);
        CHECK_MSG(loss == want_loss, "loss %.9g, training-mode forward %.9g", loss, want_loss);
        for (size_t i = 0; i < m->n_params; i++)
            m->params[i] -= 0.01f * m->grads[i];
    }
    return m;
}

/* The determinism promise (README): the same spec, seed, thread count and
 * kernel path give bit-identical weights.  Checked on every path this CPU can
 * run, with 1 and 2 threads (test_determinism below checks more of one run). */
static void test_determinism_every_path(void)
{
    enum kernels_kind was = kernels_active();
    for (int k = 0; k < KERNELS_KIND_COUNT; k++) {
        if (!kernels_supported((enum kernels_kind)k))
            continue;
        CHECK_INT_EQ(kernels_use((enum kernels_kind)k), 0);
        for (int threads = 1; threads <= 2; threads++) {
            struct model *a = train_few(threads, 3), *b = train_few(threads, 3);
            if (a && b) {
                bool same = memcmp(a->params, b->params, sizeof(float) * a->n_params) == 0;
                CHECK_MSG(same, "kernels %s, %d threads: weights differ between two runs",
                          kernels_name((enum kernels_kind)k), threads);
            }
            model_free(a);
            model_free(b);
        }
    }
    kernels_use(was);
}

static void test_determinism(void)
{
    struct model *a = train_few(2, 3), *b = train_few(2, 3);
    if (!a || !b)
        return;
    CHECK(memcmp(a->grads, b->grads, sizeof(float) * a->n_params) == 0);
    CHECK(memcmp(a->params, b->params, sizeof(float) * a->n_params) == 0); /* incl. BN stats */
    const struct weight *mv = model_find_weight(a, "batch_normalization", "moving_variance");
    CHECK(a->params[mv->offset] != 1.0f); /* the moving statistics moved */
    /* one thread gives the same gradients up to float summation order (after
     * one step: later steps may flip a relu or max-pool tie and diverge) */
    struct model *c1 = train_few(1, 1), *c2 = train_few(2, 1);
    if (c1 && c2) {
        double md = 0, mg = 0;
        for (size_t i = 0; i < c1->n_params; i++) {
            md = fmax(md, fabs(c1->grads[i] - c2->grads[i]));
            mg = fmax(mg, fabs(c1->grads[i]));
        }
        CHECK_MSG(md <= 1e-5 * mg, "threads 1 vs 2: max grad difference %g (max |g| %g)", md, mg);
        CHECK(mg > 0);
    }
    model_free(c1);
    model_free(c2);
    model_free(a);
    model_free(b);
}

static void test_train_vs_eval(void)
{
    struct model *m = make(16, 16, 3, 8, 2, 1);
    struct model *m0 = make(16, 16, 3, 8, 2, 0); /* same net, dropout rate 0 */
    if (!m || !m0)
        return;
    model_init_weights(m, 3);
    model_init_weights(m0, 3);
    size_t ex = 16 * 16 * 3;
    float *x = malloc(sizeof(float) * 8 * ex), y[80] = {0}, p1[80], p2[80], p3[80], pe[80];
    struct rng r;
    rng_seed(&r, 1, 1);
    for (size_t i = 0; i < 8 * ex; i++)
        x[i] = (float)rng_uniform(&r);
    for (int i = 0; i < 8; i++)
        y[i * 10 + i % 10] = 1;
    double l1, l2, l3;
    /* dropout masks follow (seed, step) */
    model_forward_backward_f32(m, x, y, 8, 5, 1, false, &l1, p1);
    model_forward_backward_f32(m, x, y, 8, 5, 1, false, &l2, p2);
    model_forward_backward_f32(m, x, y, 8, 5, 2, false, &l3, p3);
    CHECK(memcmp(p1, p2, sizeof(p1)) == 0 && l1 == l2);
    CHECK(memcmp(p1, p3, sizeof(p1)) != 0);
    /* inference: deterministic, no dropout, moving statistics (mean 0, var 1
     * at init, so BN is ~identity): differs from training mode */
    model_predict_f32(m, x, 8, pe);
    float pe2[80];
    model_predict_f32(m, x, 8, pe2);
    CHECK(memcmp(pe, pe2, sizeof(pe)) == 0);
    CHECK(memcmp(pe, p1, sizeof(pe)) != 0);
    /* with dropout rate 0 and BN moving stats set to this batch's statistics
     * (momentum 0), inference equals the training forward up to Bessel's
     * correction; check the moving-stats path is really used: predictions
     * change when moving stats change */
    model_forward_backward_f32(m0, x, y, 8, 5, 1, false, &l1, p1);
    float pe0[80];
    model_predict_f32(m0, x, 8, pe0);
    CHECK(memcmp(pe0, pe, sizeof(pe)) == 0); /* dropout has no effect at inference */
    const struct weight *mv = model_find_weight(m0, "batch_normalization_4", "moving_variance");
    for (size_t i = 0; i < mv->size; i++)
        m0->params[mv->offset + i] = 4.0f;
    model_predict_f32(m0, x, 8, pe0);
    CHECK(memcmp(pe0, pe, sizeof(pe)) != 0);
    /* the BN moving statistics are untouched by inference and by
     * update_moving_stats = false, and move with model_train_step */
    const struct weight *mm = model_find_weight(m, "batch_normalization", "moving_mean");
    CHECK(m->params[mm->offset] == 0.0f);
    uint8_t img[8 * 16 * 16 * 3], lab[8];
    fill_batch(img, lab, 8, ex, 3);
    double loss_sum;
    double ok;
    CHECK(model_evaluate(m, img, PIXELS_UINT8, lab, 8, &loss_sum, &ok) == 0);
    CHECK(m->params[mm->offset] == 0.0f);
    CHECK(isfinite(loss_sum) && loss_sum > 0 && ok >= 0 && ok <= 8);
    /* evaluate's loss equals the CE of predict's probabilities */
    float xf[8 * 16 * 16 * 3], pp[80];
    for (size_t i = 0; i < 8 * ex; i++)
        xf[i] = img[i] / 255.0f;
    model_predict_f32(m, xf, 8, pp);
    double ce = 0;
    for (int i = 0; i < 8; i++)
        ce -= log(fmax(pp[i * 10 + lab[i]], 1e-7));
    CHECK_CLOSE(loss_sum, ce, 1e-4, 1e-5);
    CHECK(model_train_step(m, img, PIXELS_UINT8, lab, 8, 1, 0, &l1, &ok) == 0);
    CHECK(m->params[mm->offset] != 0.0f);
    lab[0] = 10;
    CHECK(model_train_step(m, img, PIXELS_UINT8, lab, 8, 1, 0, &l1, &ok) == -EINVAL);
    CHECK(model_evaluate(m, img, PIXELS_UINT8, lab, 8, &loss_sum, &ok) == -EINVAL);
    CHECK(model_train_step(m, img, PIXELS_UINT8, lab, 9, 1, 0, &l1, &ok) == -EINVAL);
    free(x);
    model_free(m);
    model_free(m0);
}

static void test_invalid_specs(void)
{
    struct layer_config L[3];
    L[0] = lc(LAYER_KIND_FLATTEN, "flatten");
    L[1] = lc(LAYER_KIND_DENSE, "dense"), L[1].units = 3;
    L[1].activation = ACTIVATION_KIND_RELU; /* a regression head: no softmax at the end */
    struct model_spec spec = {.name = "s", .input_shape = {4, 4, 1}, .n_layers = 2, .layers = L};
    struct model *m = NULL;
    struct diag d = {0};
    CHECK(model_create(&m, &spec, 4, 1, &d) == 0);
    /* ... that a cross-entropy cannot train */
    struct model_head h = {.loss = {.kind = LOSS_KIND_CATEGORICAL_CROSSENTROPY}};
    CHECK(m && model_set_head(m, &h, &d) == -EINVAL);
    CHECK_STR_EQ(d.field, "/loss");
    h.loss.kind = LOSS_KIND_MEAN_SQUARED_ERROR;
    CHECK(m && model_set_head(m, &h, &d) == 0);
    model_free(m);
    m = NULL;
    spec.n_layers = 1; /* ends in Flatten */
    CHECK(model_create(&m, &spec, 4, 1, &d) == -EINVAL && m == NULL);
    CHECK(d.message[0] != 0);
    spec.n_layers = 2;
    L[1].activation = ACTIVATION_KIND_SOFTMAX;
    CHECK(model_create(&m, &spec, 4, 1, &d) == 0);
    model_free(m);
    m = NULL;
    L[0] = lc(LAYER_KIND_DENSE, "dense0"), L[0].units = 3; /* Dense per pixel of a 4x4 input */
    CHECK(model_create(&m, &spec, 4, 1, &d) == -EINVAL); /* so the softmax output is 4-D */
    CHECK_STR_EQ(d.field, "/config/layers/2");
    L[0] = lc(LAYER_KIND_CONV2D, "conv2d"), L[0].filters = 2, L[0].kernel_size[0] = 5;
    L[0].padding = PADDING_KIND_VALID; /* 5x3 kernel on 4x4 valid */
    CHECK(model_create(&m, &spec, 4, 1, &d) == -EINVAL);
    CHECK(model_create(&m, &spec, 0, 1, &d) == -EINVAL);
    model_free(NULL);
}

/* --- heads: every loss, metric and class weight through a training step ---
 * Flatten + Dense(K, act) on (1, 1, F) inputs, so that the reference is a
 * few lines of double arithmetic: z = x W + b, o = act(z), Keras' loss on o
 * (losses.h), loss = sum_e w_e l_e / n with w_e = class_weight[label_e], and
 * d loss / d z by hand: dW = x^T g, db = sum_e g. */
enum { HF = 3, HK = 4, HN = 5 };

struct head_case {
    const char *what;
    enum activation_kind act;
    struct loss_config loss;
    struct metric_config metric;
    bool weighted;
    double wscale; /* the kernel's scale: large saturates a sigmoid */
};

static double sigm(double z)
{
    return 1.0 / (1.0 + exp(-z));
}

/* Keras' per-example loss l (double) and d l / d z into g (HK), for the
 * output o = act(z), targets from label.  Binary cross-entropy on a sigmoid
 * output is TensorFlow's Keras: computed from the logits behind the sigmoid
 * (tf.nn.sigmoid_cross_entropy_with_logits), never clipped. */
static double head_reference(const struct head_case *c, const double *z, int label, double *g)
{
    double o[HK], t[HK], l = 0;
    double s = c->loss.label_smoothing, eps = 1e-7; /* Keras' epsilon */
    for (int j = 0; j < HK; j++) {
        t[j] = j == label ? 1.0 : 0.0;
        o[j] = c->act == ACTIVATION_KIND_SIGMOID ? sigm(z[j])
               : c->act == ACTIVATION_KIND_TANH  ? tanh(z[j])
                                                 : z[j];
    }
    if (c->act == ACTIVATION_KIND_SOFTMAX || (c->loss.from_logits &&
                                                 c->loss.kind != LOSS_KIND_BINARY_CROSSENTROPY)) {
        /* categorical cross-entropy on softmax(z) (fused, or from logits) */
        double mx = z[0], sum = 0;
        for (int j = 1; j < HK; j++)
            mx = fmax(mx, z[j]);
        for (int j = 0; j < HK; j++)
            sum += exp(z[j] - mx);
        for (int j = 0; j < HK; j++) {
            double p = exp(z[j] - mx) / sum, y = t[j] * (1 - s) + s / HK;
            l -= y * log(fmax(p, eps));
            g[j] = p - y;
        }
        return l;
    }
    for (int j = 0; j < HK; j++) {
        double d;
        switch (c->loss.kind) {
        case LOSS_KIND_BINARY_CROSSENTROPY: {
            double y = t[j] * (1 - s) + s / 2;
            l += fmax(z[j], 0) - z[j] * y + log(1 + exp(-fabs(z[j])));
            d = sigm(z[j]) - y;
            break;
        }
        case LOSS_KIND_MEAN_SQUARED_ERROR:
            l += (t[j] - o[j]) * (t[j] - o[j]);
            d = 2 * (o[j] - t[j]);
            if (c->act == ACTIVATION_KIND_SIGMOID)
                d *= o[j] * (1 - o[j]);
            break;
        default: /* mean absolute error, through tanh */
            l += fabs(t[j] - o[j]);
            d = (o[j] > t[j] ? 1.0 : -1.0) * (1 - o[j] * o[j]);
            break;
        }
        g[j] = d / HK;
    }
    return l / HK;
}

/* The metric of one example by its Keras definition. */
static double metric_reference(const struct metric_config *mc, const double *o, int label)
{
    int above = 0, am = 0, ok = 0;
    double se = 0;
    for (int j = 0; j < HK; j++) {
        above += o[j] > o[label];
        if (o[j] > o[am])
            am = j;
        double t = j == label;
        ok += (o[j] > mc->threshold ? 1.0 : 0.0) == t;
        se += mc->kind == METRIC_KIND_MEAN_SQUARED_ERROR ? (o[j] - t) * (o[j] - t) : fabs(o[j] - t);
    }
    switch (mc->kind) {
    case METRIC_KIND_CATEGORICAL_ACCURACY:
    case METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY:
        return am == label;
    case METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY:
        return above < mc->k;
    case METRIC_KIND_BINARY_ACCURACY:
        return (double)ok / HK;
    default:
        return se / HK;
    }
}

static bool close_to(double got, double want)
{
    return fabs(got - want) <= 1e-6 + 1e-4 * fabs(want);
}

static void test_heads(void)
{
    const struct metric_config acc = {METRIC_KIND_CATEGORICAL_ACCURACY, 5, 0.5};
    const struct head_case cases[] = {
        {"softmax + categorical_crossentropy", ACTIVATION_KIND_SOFTMAX,
         {LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0}, acc, false, 1},
        {"softmax + categorical_crossentropy, label_smoothing 0.2, class_weight",
         ACTIVATION_KIND_SOFTMAX, {LOSS_KIND_CATEGORICAL_CROSSENTROPY, false, 0.2},
         {METRIC_KIND_TOP_K_CATEGORICAL_ACCURACY, 2, 0.5}, true, 1},
        {"softmax + sparse_categorical_crossentropy, class_weight", ACTIVATION_KIND_SOFTMAX,
         {LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY, false, 0},
         {METRIC_KIND_SPARSE_CATEGORICAL_ACCURACY, 5, 0.5}, true, 1},
        {"linear + categorical_crossentropy from_logits, label_smoothing 0.1",
         ACTIVATION_KIND_LINEAR, {LOSS_KIND_CATEGORICAL_CROSSENTROPY, true, 0.1}, acc, false, 1},
        {"linear + sparse_categorical_crossentropy from_logits", ACTIVATION_KIND_LINEAR,
         {LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY, true, 0}, acc, true, 1},
        {"sigmoid + binary_crossentropy", ACTIVATION_KIND_SIGMOID,
         {LOSS_KIND_BINARY_CROSSENTROPY, false, 0},
         {METRIC_KIND_BINARY_ACCURACY, 5, 0.5}, false, 1},
        {"sigmoid + binary_crossentropy, label_smoothing 0.1, class_weight",
         ACTIVATION_KIND_SIGMOID, {LOSS_KIND_BINARY_CROSSENTROPY, false, 0.1},
         {METRIC_KIND_BINARY_ACCURACY, 5, 0.3}, true, 1},
        /* |z| up to ~40: clipping the probabilities at 1e-7 would cap the
         * loss near 16.1 and zero the gradient there; the logits path not */
        {"sigmoid + binary_crossentropy, saturated", ACTIVATION_KIND_SIGMOID,
         {LOSS_KIND_BINARY_CROSSENTROPY, false, 0}, {METRIC_KIND_BINARY_ACCURACY, 5, 0.5}, false,
         25},
        {"sigmoid + mean_squared_error", ACTIVATION_KIND_SIGMOID,
         {LOSS_KIND_MEAN_SQUARED_ERROR, false, 0}, {METRIC_KIND_MEAN_ABSOLUTE_ERROR, 5, 0.5},
         true, 1},
        {"linear + binary_crossentropy from_logits", ACTIVATION_KIND_LINEAR,
         {LOSS_KIND_BINARY_CROSSENTROPY, true, 0}, {METRIC_KIND_MEAN_SQUARED_ERROR, 5, 0.5},
         false, 1},
        {"linear + mean_squared_error, class_weight", ACTIVATION_KIND_LINEAR,
         {LOSS_KIND_MEAN_SQUARED_ERROR, false, 0}, {METRIC_KIND_MEAN_ABSOLUTE_ERROR, 5, 0.5},
         true, 1},
        {"tanh + mean_absolute_error", ACTIVATION_KIND_TANH,
         {LOSS_KIND_MEAN_ABSOLUTE_ERROR, false, 0}, {METRIC_KIND_MEAN_SQUARED_ERROR, 5, 0.5},
         false, 1},
    };
    const float cw[HK] = {1.0f, 0.5f, 2.5f, 0.0f};
    uint8_t img[HN * HF], lab[HN] = {0, 1, 2, 3, 2};
    for (int i = 0; i < HN * HF; i++)
        img[i] = (uint8_t)((i * 53 + 17) % 256);
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        const struct head_case *c = &cases[ci];
        for (int run = 0; run < 4; run++) {
            int threads = 1 + run % 2;
            /* runs 2 and 3: the same head in a functional model, a softmax
             * as a Softmax layer after a linear Dense */
            bool functional = run >= 2;
            struct layer_config L[4] = {lc(LAYER_KIND_FLATTEN, "flatten"),
                                        lc(LAYER_KIND_DENSE, "dense")};
            int dl = 1, n_layers = 2;
            if (functional) {
                L[0] = lc(LAYER_KIND_INPUT, "input_1");
                L[1] = lc(LAYER_KIND_FLATTEN, "flatten"), L[1].n_inputs = 1, L[1].inputs[0] = 0;
                L[2] = lc(LAYER_KIND_DENSE, "dense"), L[2].n_inputs = 1, L[2].inputs[0] = 1;
                dl = 2, n_layers = 3;
            }
            L[dl].units = HK;
            L[dl].activation = c->act;
            if (functional && c->act == ACTIVATION_KIND_SOFTMAX) {
                L[dl].activation = ACTIVATION_KIND_LINEAR;
                L[3] = lc(LAYER_KIND_SOFTMAX, "softmax"), L[3].n_inputs = 1, L[3].inputs[0] = 2;
                n_layers = 4;
            }
            struct model_spec spec = {.name = "s", .functional = functional,
                                      .input_shape = {1, 1, HF}, .n_layers = n_layers,
                                      .layers = L};
            struct model *m = NULL;
            struct diag d = {0};
            CHECK_MSG(model_create(&m, &spec, HN, threads, &d) == 0, "%s", d.message);
            if (!m)
                continue;
            struct model_head h = {.loss = c->loss, .metrics = {c->metric}, .n_metrics = 1,
                                   .class_weight = c->weighted ? cw : NULL};
            CHECK_MSG(model_set_head(m, &h, &d) == 0, "%s: %s %s", c->what, d.field, d.message);
            float *W = m->params + m->layers[dl].weights[0].offset;
            float *b = m->params + m->layers[dl].weights[1].offset;
            for (int k = 0; k < HF * HK; k++)
                W[k] = (float)(c->wscale * 0.9 * sin(1.7 * k + 0.3 * (double)ci));
            for (int j = 0; j < HK; j++)
                b[j] = (float)(0.25 * j - 0.4);
            double loss = 0, metric = 0, loss_sum = 0, emetric = 0;
            CHECK(model_train_step(m, img, PIXELS_UINT8, lab, HN, 1, 0, &loss, &metric) == 0);
            CHECK(model_evaluate(m, img, PIXELS_UINT8, lab, HN, &loss_sum, &emetric) == 0);
            double want_loss = 0, want_unweighted = 0, want_metric = 0;
            double dW[HF * HK] = {0}, db[HK] = {0};
            for (int e = 0; e < HN; e++) {
                double x[HF], z[HK], o[HK], g[HK];
                for (int f = 0; f < HF; f++)
                    x[f] = (double)(float)(img[e * HF + f] * (1.0f / 255.0f));
                for (int j = 0; j < HK; j++) {
                    z[j] = b[j];
                    for (int f = 0; f < HF; f++)
                        z[j] += x[f] * W[f * HK + j];
                }
                double l = head_reference(c, z, lab[e], g);
                double w = c->weighted ? cw[lab[e]] : 1.0;
                want_loss += w * l / HN;
                want_unweighted += l;
                double mx = z[0], sum = 0;
                for (int j = 1; j < HK; j++)
                    mx = fmax(mx, z[j]);
                for (int j = 0; j < HK; j++)
                    sum += exp(z[j] - mx);
                for (int j = 0; j < HK; j++)
                    o[j] = c->act == ACTIVATION_KIND_SOFTMAX   ? exp(z[j] - mx) / sum
                           : c->act == ACTIVATION_KIND_SIGMOID ? sigm(z[j])
                           : c->act == ACTIVATION_KIND_TANH    ? tanh(z[j])
                                                               : z[j];
                want_metric += metric_reference(&c->metric, o, lab[e]);
                for (int j = 0; j < HK; j++) {
                    db[j] += w * g[j] / HN;
                    for (int f = 0; f < HF; f++)
                        dW[f * HK + j] += x[f] * w * g[j] / HN;
                }
            }
            CHECK_MSG(close_to(loss, want_loss), "%s, run %d: loss %.9g, Keras %.9g", c->what, run, loss,
                      want_loss);
            CHECK_MSG(close_to(loss_sum, want_unweighted), "%s: evaluate %.9g, Keras %.9g",
                      c->what, loss_sum, want_unweighted);
            CHECK_MSG(close_to(metric, want_metric) && close_to(emetric, want_metric),
                      "%s: metric %.9g / %.9g, Keras %.9g", c->what, metric, emetric, want_metric);
            const float *gW = m->grads + m->layers[dl].weights[0].offset;
            const float *gb = m->grads + m->layers[dl].weights[1].offset;
            for (int k = 0; k < HF * HK; k++)
                CHECK_MSG(close_to(gW[k], dW[k]), "%s: dW[%d] %.9g, Keras %.9g", c->what, k,
                          gW[k], dW[k]);
            for (int j = 0; j < HK; j++)
                CHECK_MSG(close_to(gb[j], db[j]), "%s: db[%d] %.9g, Keras %.9g", c->what, j,
                          gb[j], db[j]);
            model_free(m);
        }
    }
}

/* Float regression targets (model_train_step_targets, model_evaluate_targets)
 * on a linear Dense head of K = 3 outputs, sequential and functional, 1 and 2
 * threads: loss (Keras: per example the mean over the last axis of the
 * squared / absolute error, then the mean over the batch), the mse and mae
 * metrics and d(loss)/d(W, b) against the formulas in double. */
static void test_float_targets(void)
{
    enum { RN = 5, RF = 4, RK = 3 };
    uint8_t img[RN * RF];
    float y[RN * RK];
    for (int i = 0; i < RN * RF; i++)
        img[i] = (uint8_t)((i * 71 + 5) % 256);
    for (int i = 0; i < RN * RK; i++)
        y[i] = (float)(0.75 * cos(0.9 * i) - 0.1);
    for (int kind = 0; kind < 2; kind++) {
        for (int run = 0; run < 4; run++) {
            bool functional = run >= 2;
            struct layer_config L[3] = {lc(LAYER_KIND_FLATTEN, "flatten"),
                                        lc(LAYER_KIND_DENSE, "dense")};
            int dl = 1;
            if (functional) {
                L[0] = lc(LAYER_KIND_INPUT, "input_1");
                L[1] = lc(LAYER_KIND_FLATTEN, "flatten"), L[1].n_inputs = 1, L[1].inputs[0] = 0;
                L[2] = lc(LAYER_KIND_DENSE, "dense"), L[2].n_inputs = 1, L[2].inputs[0] = 1;
                dl = 2;
            }
            L[dl].units = RK;
            L[dl].activation = ACTIVATION_KIND_LINEAR;
            struct model_spec spec = {.name = "r", .functional = functional,
                                      .input_shape = {1, 1, RF}, .n_layers = dl + 1,
                                      .layers = L};
            struct model *m = NULL;
            struct diag d = {0};
            CHECK_MSG(model_create(&m, &spec, RN, 1 + run % 2, &d) == 0, "%s", d.message);
            if (!m)
                continue;
            enum loss_kind lk = kind ? LOSS_KIND_MEAN_ABSOLUTE_ERROR : LOSS_KIND_MEAN_SQUARED_ERROR;
            struct model_head h = {.loss = {.kind = lk}, .n_metrics = 2};
            CHECK(metric_config_from_name(&h.metrics[0], "mse", lk) == 0);
            CHECK(metric_config_from_name(&h.metrics[1], "mean_absolute_error", lk) == 0);
            CHECK(model_set_head(m, &h, &d) == 0);
            float *W = m->params + m->layers[dl].weights[0].offset;
            float *b = m->params + m->layers[dl].weights[1].offset;
            for (int k = 0; k < RF * RK; k++)
                W[k] = (float)(0.8 * sin(1.3 * k + 0.2));
            for (int j = 0; j < RK; j++)
                b[j] = (float)(0.3 * j - 0.2);
            double loss = 0, met[2] = {0}, loss_sum = 0, emet[2] = {0};
            CHECK(model_evaluate_targets(m, img, PIXELS_UINT8, y, RN, &loss_sum, emet) == 0);
            CHECK(model_train_step_targets(m, img, PIXELS_UINT8, y, RN, 1, 0, &loss, met) == 0);
            double want_loss = 0, want_mse = 0, want_mae = 0, dW[RF * RK] = {0}, db[RK] = {0};
            for (int e = 0; e < RN; e++) {
                double x[RF];
                for (int f = 0; f < RF; f++)
                    x[f] = (double)(float)(img[e * RF + f] * (1.0f / 255.0f));
                for (int j = 0; j < RK; j++) {
                    double z = b[j];
                    for (int f = 0; f < RF; f++)
                        z += x[f] * W[f * RK + j];
                    double dl_ = z - y[e * RK + j];
                    want_mse += dl_ * dl_ / RK;
                    want_mae += fabs(dl_) / RK;
                    /* d/dz of mean_j (.)^2 = 2 dl / K; of mean_j |.| = sign(dl) / K */
                    double g = (kind ? (dl_ > 0) - (dl_ < 0) : 2 * dl_) / RK / RN;
                    db[j] += g;
                    for (int f = 0; f < RF; f++)
                        dW[f * RK + j] += x[f] * g;
                }
            }
            want_loss = kind ? want_mae : want_mse;
            CHECK_MSG(close_to(loss, want_loss / RN), "run %d: loss %.9g, Keras %.9g", run, loss,
                      want_loss / RN);
            CHECK_MSG(close_to(loss_sum, want_loss), "evaluate %.9g, Keras %.9g", loss_sum,
                      want_loss);
            CHECK(close_to(met[0], want_mse) && close_to(emet[0], want_mse));
            CHECK(close_to(met[1], want_mae) && close_to(emet[1], want_mae));
            const float *gW = m->grads + m->layers[dl].weights[0].offset;
            const float *gb = m->grads + m->layers[dl].weights[1].offset;
            for (int k = 0; k < RF * RK; k++)
                CHECK_MSG(close_to(gW[k], dW[k]), "dW[%d] %.9g, Keras %.9g", k, gW[k], dW[k]);
            for (int j = 0; j < RK; j++)
                CHECK_MSG(close_to(gb[j], db[j]), "db[%d] %.9g, Keras %.9g", j, gb[j], db[j]);
            model_free(m);
        }
    }
}

/* A softmax head's default (categorical cross-entropy) and the explicitly
 * set sparse loss give the same step bit for bit: only the path differs. */
static void test_sparse_equals_categorical(void)
{
    struct model *a = make(16, 16, 3, 12, 2, 1.0f), *b = make(16, 16, 3, 12, 2, 1.0f);
    if (!a || !b) {
        model_free(a);
        model_free(b);
        return;
    }
    model_init_weights(a, 5);
    model_init_weights(b, 5);
    struct model_head h = {.loss = {.kind = LOSS_KIND_SPARSE_CATEGORICAL_CROSSENTROPY}};
    metric_config_from_name(&h.metrics[0], "accuracy", h.loss.kind);
    h.n_metrics = 1;
    struct diag d;
    CHECK(model_set_head(b, &h, &d) == 0);
    enum { N = 12, PX = 16 * 16 * 3 };
    static uint8_t img[N * PX];
    uint8_t lab[N];
    fill_batch(img, lab, N, PX, 3);
    double la, lb, ma, mb;
    CHECK(model_train_step(a, img, PIXELS_UINT8, lab, N, 9, 0, &la, &ma) == 0);
    CHECK(model_train_step(b, img, PIXELS_UINT8, lab, N, 9, 0, &lb, &mb) == 0);
    CHECK(la == lb && ma == mb);
    CHECK(memcmp(a->grads, b->grads, sizeof(float) * a->n_params) == 0);
    model_free(a);
    model_free(b);
}

/* model_create() validates with the spec's own checks (model_shape.c): the
 * cases where the engine once had its own rules agree with the spec's. */
static void test_one_validator(void)
{
    struct layer_config L[3];
    struct model_spec spec = {.name = "s", .input_shape = {4, 4, 1}, .n_layers = 1, .layers = L};
    struct model *m = NULL;
    struct diag d = {0}, ds = {0};
    int shape[3][3];

    /* Conv2D with softmax as the last layer on a (1, 1, 3) output: the shapes
     * are valid, but the model does not end in a flat softmax (Keras would
     * give (N, 1, 1, 3)); both the spec check and model_create say so, with
     * the same field. */
    L[0] = lc(LAYER_KIND_CONV2D, "conv2d"), L[0].filters = 3;
    L[0].kernel_size[0] = L[0].kernel_size[1] = 4;
    L[0].padding = PADDING_KIND_VALID, L[0].activation = ACTIVATION_KIND_SOFTMAX;
    CHECK(model_spec_infer_shapes(&spec, shape, &ds) == 0);
    CHECK(shape[0][0] == 1 && shape[0][1] == 1 && shape[0][2] == 3);
    CHECK(model_spec_output_classes(&spec, &ds) == -EINVAL);
    CHECK(model_create(&m, &spec, 4, 1, &d) == -EINVAL && m == NULL);
    CHECK_STR_EQ(d.field, ds.field);
    CHECK_STR_EQ(d.field, "/config/layers/1");

    /* The same Conv2D, flattened into a Dense softmax: accepted by both. */
    L[0].activation = ACTIVATION_KIND_RELU;
    L[1] = lc(LAYER_KIND_FLATTEN, "flatten");
    L[2] = lc(LAYER_KIND_DENSE, "dense"), L[2].units = 2;
    L[2].activation = ACTIVATION_KIND_SOFTMAX;
    spec.n_layers = 3;
    CHECK(model_spec_output_classes(&spec, &ds) == 2);
    CHECK(model_create(&m, &spec, 4, 1, &d) == 0);
    model_free(m);
    m = NULL;

    /* Filters between the engine's old limit (65,536) and the spec's (2^20):
     * the spec's limit holds for both. */
    L[0].filters = 65537;
    L[0].kernel_size[0] = L[0].kernel_size[1] = 1;
    spec.input_shape[0] = spec.input_shape[1] = 1;
    CHECK(model_spec_output_classes(&spec, &ds) == 2);
    CHECK_MSG(model_create(&m, &spec, 1, 1, &d) == 0, "%s %s", d.field, d.message);
    CHECK(m && m->layers[0].out_shape[2] == 65537);
    model_free(m);
    m = NULL;
    L[0].filters = MODEL_SPEC_WIDTH_MAX + 1;
    CHECK(model_spec_infer_shapes(&spec, shape, &ds) == -EINVAL);
    CHECK(model_create(&m, &spec, 1, 1, &d) == -EINVAL && m == NULL);
    CHECK_STR_EQ(d.field, ds.field);
}

/* Two models over a (6, 6, 3) input that differ in their first layer, with
 * the same weights (kernel (3, 5) and (1, 1, 3, 5) have one memory order):
 * the loss, probabilities and gradients of one training step. */
static void check_same_step(const struct layer_config *first_a, const struct layer_config *first_b)
{
    struct layer_config La[3] = {*first_a, lc(LAYER_KIND_FLATTEN, "flatten"),
                                 lc(LAYER_KIND_DENSE, "out")};
    La[2].units = 4;
    La[2].activation = ACTIVATION_KIND_SOFTMAX;
    struct layer_config Lb[3] = {*first_b, La[1], La[2]};
    struct model_spec sa = {.name = "a", .input_shape = {6, 6, 3}, .n_layers = 3, .layers = La};
    struct model_spec sb = {.name = "b", .input_shape = {6, 6, 3}, .n_layers = 3, .layers = Lb};
    struct model *a = NULL, *b = NULL;
    struct diag d = {0};
    CHECK_INT_EQ(model_create(&a, &sa, 8, 2, &d), 0);
    CHECK_INT_EQ(model_create(&b, &sb, 8, 2, &d), 0);
    if (!a || !b)
        goto out;
    CHECK_INT_EQ(a->n_params, b->n_params);
    model_init_weights(a, 5);
    memcpy(b->params, a->params, a->n_params * sizeof(float));
    float x[8 * 6 * 6 * 3], y[8 * 4] = {0}, pa[8 * 4], pb[8 * 4];
    struct rng r;
    rng_seed(&r, 9, 0);
    for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++)
        x[i] = (float)(2.0 * rng_uniform(&r) - 1.0);
    for (int e = 0; e < 8; e++)
        y[e * 4 + e % 4] = 1.0f;
    double la = 0, lb = 0;
    CHECK_INT_EQ(model_forward_backward_f32(a, x, y, 8, 1, 0, false, &la, pa), 0);
    CHECK_INT_EQ(model_forward_backward_f32(b, x, y, 8, 1, 0, false, &lb, pb), 0);
    CHECK_CLOSE(la, lb, 1e-5, 1e-7);
    for (int i = 0; i < 8 * 4; i++)
        CHECK_CLOSE(pa[i], pb[i], 1e-5, 1e-7);
    double worst = 0, scale = 0;
    for (size_t k = 0; k < a->n_params; k++) {
        worst = fmax(worst, fabs((double)a->grads[k] - b->grads[k]));
        scale = fmax(scale, fabs((double)b->grads[k]));
    }
    CHECK_MSG(scale > 0 && worst <= 1e-5 * scale, "gradients differ by %g (largest %g)", worst,
              scale);
out:
    model_free(a);
    model_free(b);
}

/* Dense on a 4-D input works on the last axis, as Keras: the same as a 1x1
 * Conv2D with the same kernel. */
static void test_dense_on_last_axis(void)
{
    struct layer_config dense = lc(LAYER_KIND_DENSE, "per_pixel");
    dense.units = 5;
    dense.activation = ACTIVATION_KIND_RELU;
    struct layer_config conv = lc(LAYER_KIND_CONV2D, "per_pixel");
    conv.filters = 5;
    conv.kernel_size[0] = conv.kernel_size[1] = 1;
    conv.activation = ACTIVATION_KIND_RELU;
    check_same_step(&dense, &conv);
}

/* A frozen BatchNormalization runs in inference mode while training (Keras
 * 2.1+): the training step's probabilities are the inference ones, its
 * moving statistics stay, and the frozen layers' weights are outside the
 * trainable block with no gradient. */
static void test_frozen_layers(void)
{
    struct layer_config L[5] = {lc(LAYER_KIND_CONV2D, "conv2d"),
                                lc(LAYER_KIND_BATCH_NORMALIZATION, "batch_normalization"),
                                lc(LAYER_KIND_FLATTEN, "flatten"), lc(LAYER_KIND_DENSE, "dense")};
    L[0].filters = 4, L[0].activation = ACTIVATION_KIND_RELU, L[0].frozen = true;
    L[1].frozen = true;
    L[3].units = 3, L[3].activation = ACTIVATION_KIND_SOFTMAX;
    struct model_spec spec = {.name = "f", .input_shape = {5, 5, 2}, .n_layers = 4, .layers = L};
    struct model *m = NULL;
    struct diag d = {0};
    CHECK_INT_EQ(model_create(&m, &spec, 6, 2, &d), 0);
    if (!m)
        return;
    CHECK_INT_EQ(m->n_trainable, 5 * 5 * 4 * 3 + 3);
    model_init_weights(m, 8);
    const struct weight *mv = model_find_weight(m, "batch_normalization", "moving_variance");
    const struct weight *mm = model_find_weight(m, "batch_normalization", "moving_mean");
    for (size_t k = 0; k < mv->size; k++) {
        m->params[mv->offset + k] = 0.5f + (float)k;
        m->params[mm->offset + k] = 0.25f * (float)k;
    }
    float *keep = malloc(m->n_params * sizeof(float));
    memcpy(keep, m->params, m->n_params * sizeof(float));
    float x[6 * 5 * 5 * 2], y[6 * 3] = {0}, p_train[6 * 3], p_infer[6 * 3];
    struct rng r;
    rng_seed(&r, 2, 0);
    for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++)
        x[i] = (float)rng_uniform(&r);
    for (int e = 0; e < 6; e++)
        y[e * 3 + e % 3] = 1.0f;
    double loss = 0;
    CHECK_INT_EQ(model_forward_backward_f32(m, x, y, 6, 1, 0, true, &loss, p_train), 0);
    CHECK_INT_EQ(model_predict_f32(m, x, 6, p_infer), 0);
    for (int i = 0; i < 6 * 3; i++)
        CHECK_CLOSE(p_train[i], p_infer[i], 1e-6, 1e-7);
    CHECK(memcmp(keep, m->params, m->n_params * sizeof(float)) == 0);
    bool zero = true, some = false;
    for (size_t k = 0; k < m->n_params; k++) {
        if (k >= m->n_trainable)
            zero &= m->grads[k] == 0.0f;
        else
            some |= m->grads[k] != 0.0f;
    }
    CHECK(zero && some);
    free(keep);
    model_free(m);
}

int main(void)
{
    TEST_RUN(test_param_counts);
    TEST_RUN(test_one_validator);
    TEST_RUN(test_init_stats);
    TEST_RUN(test_determinism);
    TEST_RUN(test_determinism_every_path);
    TEST_RUN(test_train_vs_eval);
    TEST_RUN(test_invalid_specs);
    TEST_RUN(test_heads);
    TEST_RUN(test_float_targets);
    TEST_RUN(test_sparse_equals_categorical);
    TEST_RUN(test_dense_on_last_axis);
    TEST_RUN(test_frozen_layers);
    return TEST_EXIT();
}
