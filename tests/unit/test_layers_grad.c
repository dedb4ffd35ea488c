/* test_layers_grad.c - finite-difference gradient checks for every layer
 * kernel in core/layers.h and for a whole model through
 * model_forward_backward_f32.
 *
 * Each check builds a scalar L = sum(out * R) for a fixed random R (so that
 * dout = R), runs the analytic backward, and compares a sample of gradient
 * entries with central differences (L evaluated in double from the float
 * outputs).  Tolerances are per op: piecewise-linear ops (conv, dense, pools,
 * relu) are exact up to rounding; smooth non-linear ones use a smaller step. */
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "model.h"
#include "rng.h"
#include "test.h"

static struct rng g_rng;

static void fill_uniform(float *p, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)rng_uniform(&g_rng);
}

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* A forward function: evaluates L = sum(out * R) in double. */
typedef double (*loss_fn)(void *ctx);

/* Compare analytic grad[0..n) of param[0..n) with central differences on up
 * to `samples` entries. */
static int check_grad(const char *what, loss_fn f, void *ctx, float *param, const float *grad,
                      size_t n, float eps, double rtol, double atol)
{
    int bad = 0;
    size_t samples = n < 24 ? n : 24;
    for (size_t s = 0; s < samples; s++) {
        size_t j = n <= 24 ? s : (size_t)rng_below(&g_rng, n);
        float keep = param[j];
        param[j] = keep + eps;
        double lp = f(ctx);
        param[j] = keep - eps;
        double lm = f(ctx);
        double num = (lp - lm) / (2.0 * (double)eps);
        double ana = grad[j];
        double scale = fabs(num) > fabs(ana) ? fabs(num) : fabs(ana);
        if (!(fabs(num - ana) <= atol + rtol * scale)) {
            /* a kink (relu, max) inside [x - eps, x + eps] spoils the difference:
             * one retry with a 4x smaller step */
            float e2 = eps / 4;
            param[j] = keep + e2;
            lp = f(ctx);
            param[j] = keep - e2;
            lm = f(ctx);
            num = (lp - lm) / (2.0 * (double)e2);
            scale = fabs(num) > fabs(ana) ? fabs(num) : fabs(ana);
        }
        param[j] = keep;
        if (!(fabs(num - ana) <= atol + rtol * scale)) {
            if (bad < 3)
                fprintf(stderr, "  %s[%zu]: analytic %.6g numeric %.6g\n", what, j, ana, num);
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu entries off", what, bad, samples);
    return bad;
}

static double dot_out(const float *out, const float *r, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)out[i] * r[i];
    return s;
}

/* ------------------------------------------------------------- Conv2D */

struct conv_case {
    struct conv2d_geom g;
    int n;
    enum activation_kind act;
    bool bias, flip;
    float *x, *w, *b, *out, *r, *scratch, *wflip;
};

static double conv_loss(void *ctx)
{
    struct conv_case *c = ctx;
    conv2d_forward(c->out, c->scratch, c->x, c->w, c->bias ? c->b : NULL, c->act, c->n, &c->g);
    return dot_out(c->out, c->r, (size_t)c->n * c->g.oh * c->g.ow * c->g.k);
}

static void conv_check(const char *name, int h, int w, int cin, int k, int kh, int kw, int s,
                       enum padding_kind pad, enum activation_kind act, bool bias, bool flip)
{
    struct conv_case c = {.n = 2, .act = act, .bias = bias, .flip = flip};
    conv2d_geom_init(&c.g, h, w, cin, k, kh, kw, s, s, pad);
    size_t nx = (size_t)c.n * h * w * cin, nw = (size_t)kh * kw * cin * k;
    size_t no = (size_t)c.n * c.g.oh * c.g.ow * k;
    c.x = falloc(nx), c.w = falloc(nw), c.b = falloc(k), c.out = falloc(no), c.r = falloc(no);
    c.scratch = falloc(conv2d_scratch_floats(&c.g));
    c.wflip = falloc(nw);
    fill_uniform(c.x, nx, -1, 1);
    fill_uniform(c.w, nw, -0.5f, 0.5f);
    fill_uniform(c.b, k, -0.2f, 0.2f);
    fill_uniform(c.r, no, -1, 1);
    float *dx = falloc(nx), *dw = falloc(nw), *db = falloc(k), *g = falloc(no);

    /* outputs within 0.02 of relu's kink get no weight in L, so the central
     * differences never straddle a kink that matters */
    enum activation_kind act0 = c.act;
    c.act = ACTIVATION_KIND_LINEAR;
    conv_loss(&c);
    c.act = act0;
    for (size_t i = 0; i < no; i++)
        if (fabsf(c.out[i]) < 0.02f)
            c.r[i] = 0.0f;
    conv_loss(&c);
    activation_backward(g, c.r, c.out, no / k, k, act);
    if (flip)
        conv2d_flip_weight(c.wflip, c.w, &c.g);
    conv2d_backward(dx, dw, bias ? db : NULL, c.scratch, g, c.x, c.w, flip ? c.wflip : NULL, c.n,
                    &c.g);
    float eps = act == ACTIVATION_KIND_LINEAR ? 1e-2f : 1e-3f; /* small steps near relu's kink */
    char what[160];
    snprintf(what, sizeof(what), "%s dinp", name);
    check_grad(what, conv_loss, &c, c.x, dx, nx, eps, 2e-2, 2e-3);
    snprintf(what, sizeof(what), "%s dweight", name);
    check_grad(what, conv_loss, &c, c.w, dw, nw, eps, 2e-2, 2e-3);
    if (bias) {
        snprintf(what, sizeof(what), "%s dbias", name);
        check_grad(what, conv_loss, &c, c.b, db, (size_t)k, eps, 2e-2, 2e-3);
    }
    free(c.x), free(c.w), free(c.b), free(c.out), free(c.r), free(c.scratch), free(c.wflip);
    free(dx), free(dw), free(db), free(g);
}

static void test_conv2d_geometry(void)
{
    struct conv2d_geom g;
    /* TF same: in 7, k 3, s 2 -> out 4, pad_total = 3*2 + 3 - 7 = 2, before 1 */
    conv2d_geom_init(&g, 7, 7, 1, 1, 3, 3, 2, 2, PADDING_KIND_SAME);
    CHECK_INT_EQ(g.oh, 4);
    CHECK_INT_EQ(g.pad_top, 1);
    /* in 6, k 3, s 2 -> out 3, pad_total = 4 + 3 - 6 = 1, before 0 */
    conv2d_geom_init(&g, 6, 6, 1, 1, 3, 3, 2, 2, PADDING_KIND_SAME);
    CHECK_INT_EQ(g.oh, 3);
    CHECK_INT_EQ(g.pad_top, 0);
    /* even kernel, stride 1: pad_total 1, before 0 */
    conv2d_geom_init(&g, 5, 5, 1, 1, 2, 2, 1, 1, PADDING_KIND_SAME);
    CHECK_INT_EQ(g.oh, 5);
    CHECK_INT_EQ(g.pad_top, 0);
    conv2d_geom_init(&g, 28, 28, 1, 1, 5, 5, 1, 1, PADDING_KIND_VALID);
    CHECK_INT_EQ(g.oh, 24);
}

static void test_conv2d_forward_value(void)
{
    /* 3x3 input 1..9, 2x2 kernel of ones, valid: sums of 2x2 windows */
    struct conv2d_geom g;
    conv2d_geom_init(&g, 3, 3, 1, 1, 2, 2, 1, 1, PADDING_KIND_VALID);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[4] = {1, 1, 1, 1}, out[4];
    float *scratch = falloc(conv2d_scratch_floats(&g));
    conv2d_forward(out, scratch, x, w, NULL, ACTIVATION_KIND_LINEAR, 1, &g);
    CHECK_CLOSE(out[0], 12, 0, 1e-6);
    CHECK_CLOSE(out[1], 16, 0, 1e-6);
    CHECK_CLOSE(out[2], 24, 0, 1e-6);
    CHECK_CLOSE(out[3], 28, 0, 1e-6);
    /* C = 2 through the im2col path, bias and relu */
    conv2d_geom_init(&g, 2, 2, 2, 1, 1, 1, 1, 1, PADDING_KIND_VALID);
    float x2[8] = {1, -1, 2, -2, 3, -3, 4, -4}, w2[2] = {1, 2}, b = 0.5f, o2[4];
    conv2d_forward(o2, scratch, x2, w2, &b, ACTIVATION_KIND_RELU, 1, &g);
    CHECK_CLOSE(o2[0], 0.0, 0, 1e-6); /* 1 - 2 + .5 < 0 */
    free(scratch);
}

static void test_conv2d_grad(void)
{
    conv_check("conv same 3x3", 6, 5, 3, 4, 3, 3, 1, PADDING_KIND_SAME, ACTIVATION_KIND_LINEAR,
               true, false);
    conv_check("conv same 3x3 flip", 6, 5, 3, 4, 3, 3, 1, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, true, true);
    conv_check("conv valid 3x3", 6, 7, 2, 3, 3, 3, 1, PADDING_KIND_VALID, ACTIVATION_KIND_LINEAR,
               true, false);
    conv_check("conv valid 3x3 flip", 6, 7, 2, 3, 3, 3, 1, PADDING_KIND_VALID,
               ACTIVATION_KIND_RELU, true, true);
    conv_check("conv same stride 2", 7, 6, 3, 4, 3, 3, 2, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, true, true);
    conv_check("conv valid stride 2", 7, 7, 2, 2, 3, 3, 2, PADDING_KIND_VALID,
               ACTIVATION_KIND_LINEAR, true, false);
    conv_check("conv same 5x5", 6, 6, 2, 3, 5, 5, 1, PADDING_KIND_SAME, ACTIVATION_KIND_LINEAR,
               true, true);
    conv_check("conv same 2x2 even", 5, 5, 2, 3, 2, 2, 1, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, true, true);
    conv_check("conv no bias", 5, 5, 3, 4, 3, 3, 1, PADDING_KIND_SAME, ACTIVATION_KIND_LINEAR,
               false, true);
    conv_check("conv 1x1", 4, 4, 5, 3, 1, 1, 1, PADDING_KIND_VALID, ACTIVATION_KIND_LINEAR, true,
               true);
    conv_check("conv C=1 direct", 6, 6, 1, 4, 3, 3, 1, PADDING_KIND_SAME, ACTIVATION_KIND_RELU,
               true, true);
    conv_check("conv relu", 5, 5, 3, 4, 3, 3, 1, PADDING_KIND_SAME, ACTIVATION_KIND_RELU, true,
               true);
    conv_check("conv sigmoid", 5, 5, 2, 3, 3, 3, 1, PADDING_KIND_SAME, ACTIVATION_KIND_SIGMOID,
               true, true);
    conv_check("conv tanh", 5, 5, 2, 3, 3, 3, 1, PADDING_KIND_SAME, ACTIVATION_KIND_TANH, true,
               true);
    /* 16k output channels: the implicit-GEMM path (forward, dweight and, with
     * 16k input channels, the flipped-kernel dinp) */
    conv_check("conv implicit same", 6, 5, 16, 16, 3, 3, 1, PADDING_KIND_SAME,
               ACTIVATION_KIND_RELU, true, true);
    conv_check("conv implicit valid", 6, 7, 3, 32, 3, 3, 1, PADDING_KIND_VALID,
               ACTIVATION_KIND_LINEAR, true, true);
    conv_check("conv implicit 5x5 no bias", 7, 6, 16, 16, 5, 5, 1, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, false, true);
    conv_check("conv implicit 2x2 even", 5, 6, 5, 16, 2, 2, 1, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, true, true);
    conv_check("conv implicit C=1", 6, 6, 1, 16, 3, 3, 1, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, true, false);
    conv_check("conv implicit 1x1", 4, 5, 16, 16, 1, 1, 1, PADDING_KIND_VALID,
               ACTIVATION_KIND_LINEAR, true, true);
    conv_check("conv stride 2 K16", 7, 7, 16, 16, 3, 3, 2, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, true, true);
    /* large enough that the column buffer is processed in several chunks */
    conv_check("conv chunked", 24, 24, 16, 8, 3, 3, 1, PADDING_KIND_SAME, ACTIVATION_KIND_LINEAR,
               true, true);
    conv_check("conv chunked col2im", 24, 24, 16, 8, 3, 3, 1, PADDING_KIND_SAME,
               ACTIVATION_KIND_LINEAR, true, false);
}

/* -------------------------------------------------------------- Dense */

struct dense_case {
    int n, in, out;
    enum activation_kind act;
    float *x, *w, *b, *y, *r;
};

static double dense_loss(void *ctx)
{
    struct dense_case *c = ctx;
    dense_forward(c->y, c->x, c->w, c->b, c->act, c->n, c->in, c->out);
    return dot_out(c->y, c->r, (size_t)c->n * c->out);
}

static void test_dense_grad(void)
{
    enum activation_kind acts[] = {ACTIVATION_KIND_LINEAR, ACTIVATION_KIND_RELU,
                                   ACTIVATION_KIND_SIGMOID, ACTIVATION_KIND_TANH};
    for (int a = 0; a < 4; a++) {
        struct dense_case c = {.n = 3, .in = 7, .out = 5, .act = acts[a]};
        c.x = falloc(21), c.w = falloc(35), c.b = falloc(5), c.y = falloc(15), c.r = falloc(15);
        fill_uniform(c.x, 21, -1, 1);
        fill_uniform(c.w, 35, -1, 1);
        fill_uniform(c.b, 5, -0.5f, 0.5f);
        fill_uniform(c.r, 15, -1, 1);
        float *dx = falloc(21), *dw = falloc(35), *db = falloc(5), *g = falloc(15);
        dense_loss(&c);
        activation_backward(g, c.r, c.y, 3, 5, c.act);
        dense_backward(dx, dw, db, g, c.x, c.w, 3, 7, 5);
        float eps = a >= 2 ? 1e-3f : 1e-2f;
        check_grad("dense dinp", dense_loss, &c, c.x, dx, 21, eps, 2e-2, 2e-3);
        check_grad("dense dweight", dense_loss, &c, c.w, dw, 35, eps, 2e-2, 2e-3);
        check_grad("dense dbias", dense_loss, &c, c.b, db, 5, eps, 2e-2, 2e-3);
        free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
        free(g);
    }
}

/* --------------------------------------------------------- Activation */

struct act_case {
    enum activation_kind act;
    float *x, *y, *r;
    int rows, d;
};

static double act_loss(void *ctx)
{
    struct act_case *c = ctx;
    activation_forward(c->y, c->x, (size_t)c->rows, c->d, c->act);
    return dot_out(c->y, c->r, (size_t)c->rows * c->d);
}

static void test_activation_grad(void)
{
    const char *names[] = {"linear", "relu", "sigmoid", "tanh", "softmax"};
    enum activation_kind acts[] = {ACTIVATION_KIND_LINEAR, ACTIVATION_KIND_RELU,
                                   ACTIVATION_KIND_SIGMOID, ACTIVATION_KIND_TANH,
                                   ACTIVATION_KIND_SOFTMAX};
    for (int a = 0; a < 5; a++) {
        struct act_case c = {.act = acts[a], .rows = 4, .d = 6};
        c.x = falloc(24), c.y = falloc(24), c.r = falloc(24);
        fill_uniform(c.x, 24, -2, 2);
        fill_uniform(c.r, 24, -1, 1);
        float *dx = falloc(24);
        act_loss(&c);
        activation_backward(dx, c.r, c.y, 4, 6, c.act);
        check_grad(names[a], act_loss, &c, c.x, dx, 24, 1e-3f, 2e-2, 1e-3);
        free(c.x), free(c.y), free(c.r), free(dx);
    }
    /* the activations added later, backward through activation_backward_x
     * (gelu and swish need the input); x away from the kinks of leaky_relu,
     * elu, selu and hard_sigmoid (+-3) */
    const char *names2[] = {"elu", "selu", "gelu", "swish", "softplus", "hard_sigmoid",
                            "leaky_relu"};
    enum activation_kind acts2[] = {ACTIVATION_KIND_ELU, ACTIVATION_KIND_SELU,
                                    ACTIVATION_KIND_GELU, ACTIVATION_KIND_SWISH,
                                    ACTIVATION_KIND_SOFTPLUS, ACTIVATION_KIND_HARD_SIGMOID,
                                    ACTIVATION_KIND_LEAKY_RELU};
    for (int a = 0; a < 7; a++) {
        struct act_case c = {.act = acts2[a], .rows = 4, .d = 6};
        c.x = falloc(24), c.y = falloc(24), c.r = falloc(24);
        fill_uniform(c.x, 24, -4, 4);
        for (int i = 0; i < 24; i++)
            if (fabsf(c.x[i]) < 0.05f || fabsf(fabsf(c.x[i]) - 3.0f) < 0.05f)
                c.x[i] += 0.2f;
        fill_uniform(c.r, 24, -1, 1);
        float *dx = falloc(24);
        act_loss(&c);
        activation_backward_x(dx, c.r, c.x, c.y, 4, 6, c.act);
        check_grad(names2[a], act_loss, &c, c.x, dx, 24, 1e-3f, 2e-2, 1e-3);
        /* the Conv2D/Dense epilogue computes the same function */
        float *z = falloc(24);
        act_loss(&c);
        activation_bias_copy(z, c.x, NULL, 4, 6, c.act);
        CHECK_MSG(memcmp(z, c.y, sizeof(float) * 24) == 0, "%s: epilogue differs", names2[a]);
        free(c.x), free(c.y), free(c.r), free(dx), free(z);
    }
    /* Keras values: selu(1), gelu(1) = 0.5 (1 + erf(1 / sqrt 2)), softplus(0) = log 2,
     * hard_sigmoid(1) = 4 / 6, silu is swish */
    float v = 1.0f, o;
    activation_forward(&o, &v, 1, 1, ACTIVATION_KIND_SELU);
    CHECK_CLOSE(o, 1.0507009873554805, 1e-6, 0);
    activation_forward(&o, &v, 1, 1, ACTIVATION_KIND_GELU);
    CHECK_CLOSE(o, 0.8413447460685429, 1e-6, 0);
    activation_forward(&o, &v, 1, 1, ACTIVATION_KIND_HARD_SIGMOID);
    CHECK_CLOSE(o, 4.0 / 6.0, 1e-6, 0);
    v = 0.0f;
    activation_forward(&o, &v, 1, 1, ACTIVATION_KIND_SOFTPLUS);
    CHECK_CLOSE(o, log(2.0), 1e-6, 0);
    enum activation_kind silu;
    CHECK_INT_EQ(activation_kind_from_name("silu", &silu), 0);
    CHECK_INT_EQ(silu, ACTIVATION_KIND_SWISH);

    float x[3] = {1, 2, 3}, y[3];
    activation_forward(y, x, 1, 3, ACTIVATION_KIND_SOFTMAX);
    CHECK_CLOSE(y[0] + y[1] + y[2], 1.0, 1e-6, 0);
    CHECK_CLOSE(y[2], exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0)), 1e-6, 0);
}

/* ------------------------------- layers with a forward and a backward */

/* A layer kernel as a pair: forward y (ny) from x (nx); backward dx (nx)
 * from dy = r, x and y. */
struct op_case {
    int kind;
    int n, h, w, c;
    float p[3];
    int pad[4];
    float *x, *y, *r;
    size_t nx, ny;
};

enum { OP_RELU, OP_ELU, OP_RESCALE, OP_GAP, OP_GMP, OP_ZPAD, OP_CONCAT, OP_DEPTHWISE };

/* OP_DEPTHWISE: kernel (3, 3, c, 2), stride 2, same padding */
static float g_dw_weight[3 * 3 * 8 * 2];
static struct conv2d_geom g_dw_geom;

static void op_forward(struct op_case *o)
{
    int hw = o->h * o->w;
    switch (o->kind) {
    case OP_RELU:
        relu_layer_forward(o->y, o->x, o->nx, o->p[0], o->p[1], o->p[2]);
        break;
    case OP_ELU:
        elu_layer_forward(o->y, o->x, o->nx, o->p[0]);
        break;
    case OP_RESCALE:
        rescaling_forward(o->y, o->x, o->nx, o->p[0], o->p[1]);
        break;
    case OP_GAP:
        global_avgpool_forward(o->y, o->x, o->n, hw, o->c);
        break;
    case OP_GMP:
        global_maxpool_forward(o->y, o->x, o->n, hw, o->c);
        break;
    case OP_ZPAD:
        zero_padding2d_forward(o->y, o->x, o->n, o->h, o->w, o->c, o->pad);
        break;
    case OP_DEPTHWISE:
        depthwise_conv2d_forward(o->y, o->x, g_dw_weight, NULL, ACTIVATION_KIND_LINEAR, o->n,
                                 &g_dw_geom);
        break;
    case OP_CONCAT: { /* x is two tensors of c and c + 1 channels, back to back */
        size_t rows = (size_t)o->n * hw;
        const float *in[2] = {o->x, o->x + rows * o->c};
        int cs[2] = {o->c, o->c + 1};
        concat_forward(o->y, in, cs, 2, rows);
        break;
    }
    }
}

static double op_loss(void *ctx)
{
    struct op_case *o = ctx;
    op_forward(o);
    return dot_out(o->y, o->r, o->ny);
}

static void op_backward(struct op_case *o, float *dx)
{
    int hw = o->h * o->w;
    switch (o->kind) {
    case OP_RELU:
        relu_layer_backward(dx, o->r, o->x, o->nx, o->p[0], o->p[1], o->p[2]);
        break;
    case OP_ELU:
        elu_layer_backward(dx, o->r, o->x, o->nx, o->p[0]);
        break;
    case OP_RESCALE:
        rescaling_backward(dx, o->r, o->nx, o->p[0]);
        break;
    case OP_GAP:
        global_avgpool_backward(dx, o->r, o->n, hw, o->c);
        break;
    case OP_GMP:
        global_maxpool_backward(dx, o->r, o->x, o->n, hw, o->c);
        break;
    case OP_ZPAD:
        zero_padding2d_backward(dx, o->r, o->n, o->h, o->w, o->c, o->pad);
        break;
    case OP_DEPTHWISE: {
        float dw[3 * 3 * 8 * 2] = {0};
        depthwise_conv2d_backward(dx, dw, NULL, o->r, o->x, g_dw_weight, o->n, &g_dw_geom);
        break;
    }
    case OP_CONCAT: {
        size_t rows = (size_t)o->n * hw;
        concat_backward_part(dx, o->r, rows, 2 * o->c + 1, 0, o->c, false);
        concat_backward_part(dx + rows * o->c, o->r, rows, 2 * o->c + 1, o->c, o->c + 1, false);
        break;
    }
    }
}

static void op_check(const char *name, struct op_case o, size_t ny)
{
    o.nx = (size_t)o.n * o.h * o.w * o.c;
    if (o.kind == OP_CONCAT)
        o.nx = (size_t)o.n * o.h * o.w * (2 * o.c + 1);
    o.ny = ny;
    o.x = falloc(o.nx), o.y = falloc(ny), o.r = falloc(ny);
    /* distinct values spaced > 2 eps apart (max pooling), away from the
     * kinks at 0 and at the ReLU threshold / max_value */
    for (size_t i = 0; i < o.nx; i++)
        o.x[i] = -2.0f + (float)i * (4.0f / (float)o.nx) + 0.013f;
    for (size_t i = o.nx - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(&g_rng, i + 1);
        float t = o.x[i];
        o.x[i] = o.x[j], o.x[j] = t;
    }
    fill_uniform(o.r, ny, -1, 1);
    float *dx = falloc(o.nx);
    op_loss(&o);
    op_backward(&o, dx);
    check_grad(name, op_loss, &o, o.x, dx, o.nx, 1e-3f, 1e-2, 1e-3);
    free(o.x), free(o.y), free(o.r), free(dx);
}

static void test_layer_ops_grad(void)
{
    struct op_case o = {.n = 2, .h = 3, .w = 4, .c = 3};
    size_t nx = 2 * 3 * 4 * 3;
    o.kind = OP_RELU, o.p[0] = 0.0f, o.p[1] = INFINITY, o.p[2] = 0.0f;
    op_check("ReLU", o, nx);
    o.p[0] = 0.1f, o.p[1] = 1.5f, o.p[2] = 0.5f;
    op_check("ReLU(max_value 1.5, negative_slope 0.1, threshold 0.5)", o, nx);
    o.p[0] = 0.3f, o.p[1] = INFINITY, o.p[2] = 0.0f;
    op_check("LeakyReLU", o, nx);
    o.kind = OP_ELU, o.p[0] = 0.7f;
    op_check("ELU(0.7)", o, nx);
    o.kind = OP_RESCALE, o.p[0] = 1.0f / 255.0f, o.p[1] = -0.5f;
    op_check("Rescaling", o, nx);
    o.kind = OP_GAP;
    op_check("GlobalAveragePooling2D", o, 2 * 3);
    o.kind = OP_GMP;
    op_check("GlobalMaxPooling2D", o, 2 * 3);
    o.kind = OP_ZPAD, o.pad[0] = 1, o.pad[1] = 2, o.pad[2] = 0, o.pad[3] = 1;
    op_check("ZeroPadding2D", o, 2 * 6 * 5 * 3);
    o.kind = OP_CONCAT;
    op_check("Concatenate", o, 2 * 3 * 4 * 7);
    o.kind = OP_DEPTHWISE;
    fill_uniform(g_dw_weight, 3 * 3 * 3 * 2, -1, 1);
    conv2d_geom_init(&g_dw_geom, 3, 4, 3, 6, 3, 3, 2, 2, PADDING_KIND_SAME);
    op_check("DepthwiseConv2D (input)", o, (size_t)2 * g_dw_geom.oh * g_dw_geom.ow * 6);
    /* values: ReLU(max_value 6, threshold 1, slope 0.5) at -1, 0.5, 3, 8 */
    float x[4] = {-1, 0.5f, 3, 8}, y[4];
    relu_layer_forward(y, x, 4, 0.5f, 6.0f, 1.0f);
    CHECK_CLOSE(y[0], -1.0, 0, 1e-6);
    CHECK_CLOSE(y[1], -0.25, 0, 1e-6);
    CHECK_CLOSE(y[2], 3.0, 0, 1e-6);
    CHECK_CLOSE(y[3], 6.0, 0, 1e-6);
    /* Add sums its inputs */
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, s3[3];
    const float *ab[2] = {a, b};
    add_forward(s3, ab, 2, 3);
    CHECK_CLOSE(s3[2], 33.0, 0, 0);
}

/* SpatialDropout2D drops whole channels: the mask is constant over H, W. */
static void test_spatial_dropout(void)
{
    int n = 3, hw = 5, c = 8;
    uint8_t *mask = calloc((size_t)n * hw * c, 1), *chan = calloc((size_t)n * c, 1);
    spatial_dropout_mask(mask, chan, n, hw, c, 0.5f, 7, 3, 2, 0);
    int kept = 0;
    for (int e = 0; e < n; e++)
        for (int k = 0; k < c; k++) {
            kept += chan[e * c + k];
            for (int p = 0; p < hw; p++)
                CHECK(mask[((size_t)e * hw + p) * c + k] == chan[e * c + k]);
        }
    CHECK(kept > 0 && kept < n * c);
    free(mask), free(chan);
}

/* ------------------------------------------------- BatchNormalization */

/* Training-mode BN over rows split in two parts, as two threads would. */
struct bn_case {
    int rows, c;
    float *x, *gamma, *beta, *y, *r, mean[8], var[8];
};

static void bn_stats(struct bn_case *b)
{
    double s[16] = {0};
    double p1[16] = {0}, p2[16] = {0};
    int half = b->rows / 2;
    batchnorm_stats_accumulate(p1, p1 + b->c, b->x, (size_t)half, b->c);
    batchnorm_stats_accumulate(p2, p2 + b->c, b->x + (size_t)half * b->c,
                               (size_t)(b->rows - half), b->c);
    for (int i = 0; i < 2 * b->c; i++)
        s[i] = p1[i] + p2[i];
    batchnorm_stats_finalize(b->mean, b->var, s, s + b->c, (size_t)b->rows, b->c);
}

static double bn_loss(void *ctx)
{
    struct bn_case *b = ctx;
    bn_stats(b);
    batchnorm_forward(b->y, b->x, b->mean, b->var, b->gamma, b->beta, 1e-3f, (size_t)b->rows,
                      b->c);
    return dot_out(b->y, b->r, (size_t)b->rows * b->c);
}

static void test_batchnorm_grad(void)
{
    struct bn_case b = {.rows = 10, .c = 3};
    size_t n = 30;
    b.x = falloc(n), b.gamma = falloc(3), b.beta = falloc(3), b.y = falloc(n), b.r = falloc(n);
    fill_uniform(b.x, n, -2, 3);
    fill_uniform(b.gamma, 3, 0.5f, 1.5f);
    fill_uniform(b.beta, 3, -0.5f, 0.5f);
    fill_uniform(b.r, n, -1, 1);
    bn_loss(&b);
    /* forward: normalised output has zero mean, unit (biased) variance per channel */
    for (int ch = 0; ch < 3; ch++) {
        double m = 0, v = 0;
        for (int r = 0; r < 10; r++)
            m += (b.y[r * 3 + ch] - b.beta[ch]) / b.gamma[ch];
        m /= 10;
        for (int r = 0; r < 10; r++) {
            double z = (b.y[r * 3 + ch] - b.beta[ch]) / b.gamma[ch] - m;
            v += z * z;
        }
        CHECK_CLOSE(m, 0.0, 0, 1e-5);
        CHECK_CLOSE(v / 10 * (b.var[ch] + 1e-3) / b.var[ch], 1.0, 1e-3, 0);
    }
    double s1[6] = {0}, s2[6] = {0}, sum[6];
    batchnorm_backward_accumulate(s1, s1 + 3, b.r, b.x, b.mean, b.var, 1e-3f, 5, 3);
    batchnorm_backward_accumulate(s2, s2 + 3, b.r + 15, b.x + 15, b.mean, b.var, 1e-3f, 5, 3);
    for (int i = 0; i < 6; i++)
        sum[i] = s1[i] + s2[i];
    float dx[30], dgamma[3], dbeta[3];
    batchnorm_backward(dx, b.r, b.x, b.mean, b.var, b.gamma, sum, sum + 3, 10, 1e-3f, false, 5,
                       3);
    batchnorm_backward(dx + 15, b.r + 15, b.x + 15, b.mean, b.var, b.gamma, sum, sum + 3, 10,
                       1e-3f, false, 5, 3);
    /* the fused ReLU mask equals activation_backward(relu) on the BN input */
    float dxm[30], dxr[30];
    batchnorm_backward(dxm, b.r, b.x, b.mean, b.var, b.gamma, sum, sum + 3, 10, 1e-3f, true, 10,
                       3);
    activation_backward(dxr, dx, b.x, 10, 3, ACTIVATION_KIND_RELU);
    int masked = 0;
    for (int i = 0; i < 30; i++) {
        CHECK(dxm[i] == dxr[i]);
        masked += b.x[i] <= 0.0f;
    }
    CHECK(masked > 0 && masked < 30);
    for (int i = 0; i < 3; i++) {
        dgamma[i] = (float)sum[3 + i];
        dbeta[i] = (float)sum[i];
    }
    check_grad("bn dinp", bn_loss, &b, b.x, dx, n, 1e-3f, 2e-2, 2e-3);
    check_grad("bn dgamma", bn_loss, &b, b.gamma, dgamma, 3, 1e-3f, 2e-2, 2e-3);
    check_grad("bn dbeta", bn_loss, &b, b.beta, dbeta, 3, 1e-3f, 2e-2, 2e-3);

    /* moving statistics: Bessel's correction only when asked (4D inputs) */
    float mm[1] = {0}, mv[1] = {1}, mean[1] = {2}, var[1] = {4};
    batchnorm_update_moving(mm, mv, mean, var, 5, 0.99f, true, 1);
    CHECK_CLOSE(mm[0], 0.02, 1e-5, 0);
    CHECK_CLOSE(mv[0], 0.99 + 0.01 * 4 * 5 / 4.0, 1e-5, 0);
    mv[0] = 1;
    batchnorm_update_moving(mm, mv, mean, var, 5, 0.99f, false, 1);
    CHECK_CLOSE(mv[0], 0.99 + 0.01 * 4, 1e-5, 0);
    free(b.x), free(b.gamma), free(b.beta), free(b.y), free(b.r);
}

/* ------------------------------------------------------------ Pooling */

struct pool_case {
    struct pool2d_geom g;
    bool max;
    int n;
    float *x, *y, *r;
};

static double pool_loss(void *ctx)
{
    struct pool_case *c = ctx;
    if (c->max)
        maxpool2d_forward(c->y, c->x, c->n, &c->g);
    else
        avgpool2d_forward(c->y, c->x, c->n, &c->g);
    return dot_out(c->y, c->r, (size_t)c->n * c->g.oh * c->g.ow * c->g.c);
}

static void pool_check(const char *name, bool max, int h, int w, int ph, int s,
                       enum padding_kind pad)
{
    struct pool_case c = {.max = max, .n = 2};
    pool2d_geom_init(&c.g, h, w, 3, ph, ph, s, s, pad);
    size_t nx = (size_t)2 * h * w * 3, ny = (size_t)2 * c.g.oh * c.g.ow * 3;
    c.x = falloc(nx), c.y = falloc(ny), c.r = falloc(ny);
    /* distinct values spaced > 2 eps apart so the max does not switch */
    for (size_t i = 0; i < nx; i++)
        c.x[i] = (float)i * 0.05f;
    for (size_t i = nx - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(&g_rng, i + 1);
        float t = c.x[i];
        c.x[i] = c.x[j], c.x[j] = t;
    }
    fill_uniform(c.r, ny, -1, 1);
    float *dx = falloc(nx);
    pool_loss(&c);
    if (max)
        maxpool2d_backward(dx, c.r, c.x, c.n, &c.g);
    else
        avgpool2d_backward(dx, c.r, c.n, &c.g);
    check_grad(name, pool_loss, &c, c.x, dx, nx, 1e-2f, 1e-2, 1e-3);
    free(c.x), free(c.y), free(c.r), free(dx);
}

static void test_pooling_grad(void)
{
    pool_check("maxpool 2 valid", true, 6, 6, 2, 2, PADDING_KIND_VALID);
    pool_check("maxpool 3 s2 same", true, 7, 6, 3, 2, PADDING_KIND_SAME);
    pool_check("maxpool 2 valid odd", true, 7, 7, 2, 2, PADDING_KIND_VALID);
    pool_check("avgpool 2 valid", false, 6, 6, 2, 2, PADDING_KIND_VALID);
    pool_check("avgpool 3 s2 same", false, 7, 6, 3, 2, PADDING_KIND_SAME);
    /* same-padded average divides by the valid elements only */
    struct pool2d_geom g;
    pool2d_geom_init(&g, 3, 3, 1, 2, 2, 2, 2, PADDING_KIND_SAME);
    CHECK_INT_EQ(g.oh, 2);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[4];
    avgpool2d_forward(y, x, 1, &g);
    CHECK_CLOSE(y[0], 3.0, 0, 1e-6);
    CHECK_CLOSE(y[1], 4.5, 0, 1e-6);
    CHECK_CLOSE(y[3], 9.0, 0, 1e-6);
    maxpool2d_forward(y, x, 1, &g);
    CHECK_CLOSE(y[0], 5.0, 0, 1e-6);
    CHECK_CLOSE(y[2], 8.0, 0, 1e-6);
}

/* ------------------------------------------------------------ Dropout */

struct drop_case {
    float *x, *y, *r;
    uint8_t *mask;
    float rate;
    size_t n;
};

static double drop_loss(void *ctx)
{
    struct drop_case *c = ctx;
    dropout_forward(c->y, c->x, c->mask, c->rate, c->n);
    return dot_out(c->y, c->r, c->n);
}

static void test_dropout(void)
{
    const int n = 4;
    const size_t d = 1001;
    uint8_t *m1 = calloc(n * d, 1), *m2 = calloc(n * d, 1), *m3 = calloc(n * d, 1);
    dropout_mask(m1, n, d, 0.25f, 7, 3, 5, 0);
    /* the same examples drawn as two halves (two threads) give the same masks */
    dropout_mask(m2, 2, d, 0.25f, 7, 3, 5, 0);
    dropout_mask(m2 + 2 * d, 2, d, 0.25f, 7, 3, 5, 2);
    CHECK(memcmp(m1, m2, n * d) == 0);
    dropout_mask(m3, n, d, 0.25f, 7, 4, 5, 0); /* another step */
    CHECK(memcmp(m1, m3, n * d) != 0);
    size_t kept = 0;
    for (size_t i = 0; i < n * d; i++)
        kept += m1[i];
    CHECK_CLOSE((double)kept / (n * d), 0.75, 0, 0.03);
    CHECK(memcmp(m1, m1 + d, d) != 0); /* examples differ */

    struct drop_case c = {.rate = 0.25f, .n = n * d, .mask = m1};
    c.x = falloc(c.n), c.y = falloc(c.n), c.r = falloc(c.n);
    fill_uniform(c.x, c.n, -1, 1);
    fill_uniform(c.r, c.n, -1, 1);
    float *dx = falloc(c.n);
    drop_loss(&c);
    for (size_t i = 0; i < c.n; i++)
        if (m1[i] ? fabsf(c.y[i] - c.x[i] / 0.75f) > 1e-6f : c.y[i] != 0.0f) {
            CHECK_MSG(0, "dropout output %zu", i);
            break;
        }
    dropout_backward(dx, c.r, m1, c.rate, c.n);
    check_grad("dropout dinp", drop_loss, &c, c.x, dx, c.n, 1e-2f, 1e-2, 1e-3);
    free(m1), free(m2), free(m3), free(c.x), free(c.y), free(c.r), free(dx);
}

/* ------------------------------------------------- softmax + CE loss */

struct ce_case {
    float *z, *y, *p, loss[4];
    int n, k;
};

static double ce_loss(void *ctx)
{
    struct ce_case *c = ctx;
    softmax_crossentropy_forward(c->p, c->loss, c->z, c->y, c->n, c->k);
    double s = 0;
    for (int i = 0; i < c->n; i++)
        s += c->loss[i];
    return s / c->n;
}

static void test_softmax_crossentropy(void)
{
    struct ce_case c = {.n = 4, .k = 5};
    c.z = falloc(20), c.y = falloc(20), c.p = falloc(20);
    fill_uniform(c.z, 20, -3, 3);
    for (int i = 0; i < 4; i++)
        c.y[i * 5 + (i * 3) % 5] = 1.0f;
    float *dz = falloc(20);
    ce_loss(&c);
    softmax_crossentropy_backward(dz, c.p, c.y, 0.25f, 4, 5);
    check_grad("softmax-ce dlogits", ce_loss, &c, c.z, dz, 20, 1e-3f, 1e-2, 1e-4);
    /* value: -log softmax of the true class */
    double s = 0;
    for (int j = 0; j < 5; j++)
        s += exp(c.z[j]);
    CHECK_CLOSE(c.loss[0], -(c.z[0] - log(s)), 1e-5, 1e-6);
    /* floor at log(1e-7): a hopeless example costs -log(1e-7) */
    float z[2] = {0, 40}, y[2] = {1, 0}, p[2], l;
    softmax_crossentropy_forward(p, &l, z, y, 1, 2);
    CHECK_CLOSE(l, -log(1e-7), 1e-5, 0);
    /* a NaN or infinite logit (diverged weights) gives a NaN loss, not the floor */
    float zn[2] = {NAN, 0}, zi[2] = {INFINITY, 0};
    softmax_crossentropy_forward(p, &l, zn, y, 1, 2);
    CHECK(isnan(l));
    softmax_crossentropy_forward(p, &l, zi, y, 1, 2);
    CHECK(isnan(l));
    free(c.z), free(c.y), free(c.p), free(dz);
}

/* --------------------------------------------------- whole model */

static struct layer_config lc(enum layer_kind kind, const char *name)
{
    struct layer_config c = {.kind = kind, .use_bias = true, .momentum = 0.99f,
                             .epsilon = 1e-3f, .strides = {1, 1}, .pool_size = {2, 2},
                             .kernel_size = {3, 3}};
    snprintf(c.name, sizeof(c.name), "%s", name);
    return c;
}

struct model_case {
    struct model *m;
    float *x, *y;
    int n;
};

static double model_loss(void *ctx)
{
    struct model_case *c = ctx;
    double loss = 0;
    model_forward_backward_f32(c->m, c->x, c->y, c->n, 1, 0, false, &loss, NULL);
    return loss;
}

static void spec_grad_check(const char *what, const struct model_spec *spec, int threads);

/* frozen: batch_normalization and dense are trainable=False (their
 * weights get no gradient; the BN runs on its moving statistics, set to
 * random values here, with the ReLU of the Conv2D before it fused into its
 * backward); the gradients of the layers around them go through them. */
static void model_grad_check(int threads, bool frozen)
{
    struct layer_config L[12];
    int k = 0;
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d"), L[k].filters = 4, L[k].padding = PADDING_KIND_SAME;
    L[k++].activation = ACTIVATION_KIND_LINEAR;
    L[k] = lc(LAYER_KIND_ACTIVATION, "activation");
    L[k++].activation = frozen ? ACTIVATION_KIND_RELU : ACTIVATION_KIND_TANH;
    L[k] = lc(LAYER_KIND_BATCH_NORMALIZATION, "batch_normalization"), L[k++].frozen = frozen;
    L[k] = lc(LAYER_KIND_MAX_POOLING2D, "max_pooling2d"), L[k].strides[0] = L[k].strides[1] = 2;
    k++;
    L[k] = lc(LAYER_KIND_DROPOUT, "dropout"), L[k++].rate = 0.0f;
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d_1"), L[k].filters = 3, L[k].strides[0] = 2;
    L[k].strides[1] = 2, L[k].padding = PADDING_KIND_SAME, L[k++].activation = ACTIVATION_KIND_TANH;
    L[k] = lc(LAYER_KIND_AVERAGE_POOLING2D, "average_pooling2d"), L[k].pool_size[0] = 1;
    L[k].strides[0] = L[k].strides[1] = 1, L[k++].pool_size[1] = 1;
    L[k++] = lc(LAYER_KIND_FLATTEN, "flatten");
    L[k] = lc(LAYER_KIND_DENSE, "dense"), L[k].units = 6, L[k].frozen = frozen;
    L[k++].activation = ACTIVATION_KIND_SIGMOID;
    L[k++] = lc(LAYER_KIND_BATCH_NORMALIZATION, "batch_normalization_1");
    L[k] = lc(LAYER_KIND_DENSE, "dense_1"), L[k].units = 3, L[k++].activation = ACTIVATION_KIND_LINEAR;
    L[k] = lc(LAYER_KIND_ACTIVATION, "activation_1"), L[k++].activation = ACTIVATION_KIND_SOFTMAX;
    struct model_spec spec = {.name = "sequential", .input_shape = {8, 8, 2}, .n_layers = k,
                              .layers = L};
    spec_grad_check("sequential", &spec, threads);
}

/* Gradient check of every trainable weight of a model for spec (input (8,
 * 8, 2) or as given, 3 classes). */
static void spec_grad_check(const char *what, const struct model_spec *spec, int threads)
{
    struct model_case c = {.n = 5};
    struct diag d = {0};
    int err = model_create(&c.m, spec, 8, threads, &d);
    CHECK_MSG(err == 0, "%s: model_create: %s %s", what, d.field, d.message);
    if (err)
        return;
    model_init_weights(c.m, 3);
    /* a frozen layer's weights are all non-trainable; a frozen BN's moving
     * statistics (which it runs on) get random values */
    for (int i = 0; i < c.m->n_layers; i++) {
        const struct layer *l = &c.m->layers[i];
        for (int j = 0; l->cfg.frozen && j < l->n_weights; j++) {
            CHECK_MSG(!l->weights[j].trainable, "%s: frozen %s/%s is trainable", what,
                      l->cfg.name, l->weights[j].name);
            if (l->cfg.kind == LAYER_KIND_BATCH_NORMALIZATION)
                fill_uniform(c.m->params + l->weights[j].offset, l->weights[j].size,
                             j == 3 ? 0.5f : -0.5f, j == 3 ? 2.0f : (j == 0 ? 1.5f : 0.5f));
        }
    }
    const int K = c.m->classes;
    size_t nx = (size_t)c.n * spec->input_shape[0] * spec->input_shape[1] * spec->input_shape[2];
    c.x = falloc(nx), c.y = falloc((size_t)c.n * K);
    fill_uniform(c.x, nx, 0, 1);
    for (int i = 0; i < c.n; i++)
        c.y[i * K + i % K] = 1.0f;
    model_loss(&c);
    float *grads = falloc(c.m->n_params);
    memcpy(grads, c.m->grads, sizeof(float) * c.m->n_params);
    for (int i = 0; i < c.m->n_layers; i++)
        for (int j = 0; j < c.m->layers[i].n_weights; j++) {
            const struct weight *w = &c.m->layers[i].weights[j];
            float *p = c.m->params + w->offset;
            if (!w->trainable) {
                for (size_t e = 0; e < w->size; e++)
                    CHECK(grads[w->offset + e] == 0.0f);
                continue;
            }
            /* directional derivative along a random +-1 direction v: the
             * difference sums the signal of every entry, well above float noise */
            float *keep = falloc(w->size), *v = falloc(w->size);
            memcpy(keep, p, sizeof(float) * w->size);
            double ana = 0.0, norm = 0.0;
            for (size_t e = 0; e < w->size; e++) {
                v[e] = rng_uniform(&g_rng) < 0.5 ? -1.0f : 1.0f;
                ana += (double)v[e] * grads[w->offset + e];
                norm += (double)grads[w->offset + e] * grads[w->offset + e];
            }
            /* error allowed: 2 % of the value plus 1 % of the gradient's norm
             * (float noise of the batch-statistics forward) */
            double tol = 2e-2 * fabs(ana) + 1e-2 * sqrt(norm) + 1e-5;
            double num = 0.0;
            bool ok = false;
            for (float eps = 4e-3f; eps > 1e-4f && !ok; eps /= 4) {
                for (size_t e = 0; e < w->size; e++)
                    p[e] = keep[e] + eps * v[e];
                double lp = model_loss(&c);
                for (size_t e = 0; e < w->size; e++)
                    p[e] = keep[e] - eps * v[e];
                double lm = model_loss(&c);
                num = (lp - lm) / (2.0 * eps);
                ok = fabs(num - ana) <= tol;
            }
            memcpy(p, keep, sizeof(float) * w->size);
            CHECK_MSG(ok, "%s model(threads=%d) %s/%s: analytic %.6g numeric %.6g", what,
                      threads, c.m->layers[i].cfg.name, w->name, ana, num);
            free(keep), free(v);
        }
    free(grads), free(c.x), free(c.y);
    model_free(c.m);
}

static void test_model_grad(void)
{
    model_grad_check(1, false);
    model_grad_check(2, false);
}

static void test_model_grad_frozen(void)
{
    model_grad_check(1, true);
    model_grad_check(2, true);
}

/* DepthwiseConv2D on one input channel is a Conv2D with depth_multiplier
 * filters; on C channels, channel c's outputs see only channel c. */
static void test_depthwise_value(void)
{
    struct conv2d_geom g;
    conv2d_geom_init(&g, 5, 4, 1, 3, 3, 3, 2, 1, PADDING_KIND_SAME);
    float x[20], w[27], b[3] = {0.1f, -0.2f, 0.3f}, y1[3 * 4 * 3], y2[3 * 4 * 3];
    fill_uniform(x, 20, -1, 1);
    fill_uniform(w, 27, -1, 1);
    float *scratch = falloc(conv2d_scratch_floats(&g));
    conv2d_forward(y1, scratch, x, w, b, ACTIVATION_KIND_LINEAR, 1, &g);
    depthwise_conv2d_forward(y2, x, w, b, ACTIVATION_KIND_LINEAR, 1, &g);
    for (int i = 0; i < 3 * 4 * 3; i++)
        CHECK_CLOSE(y2[i], y1[i], 1e-5, 1e-6);
    free(scratch);
    /* two channels, multiplier 1, 1x1 kernel: a per-channel scale */
    conv2d_geom_init(&g, 1, 1, 2, 2, 1, 1, 1, 1, PADDING_KIND_VALID);
    float x2[2] = {2, 3}, w2[2] = {10, 100}, y3[2];
    depthwise_conv2d_forward(y3, x2, w2, NULL, ACTIVATION_KIND_LINEAR, 1, &g);
    CHECK_CLOSE(y3[0], 20.0, 0, 0);
    CHECK_CLOSE(y3[1], 300.0, 0, 0);
}

/* A Sequential model of the layers and activations added with the
 * functional API work: Rescaling, gelu/swish epilogues (the pre-activation
 * kept for backward), elu/softplus/hard_sigmoid epilogues, ZeroPadding2D,
 * ReLU, Reshape, LeakyReLU, SpatialDropout2D, ELU, DepthwiseConv2D,
 * GlobalAveragePooling2D with keepdims, Softmax.  ReLU and LeakyReLU get
 * slope 1 on both sides and no selu: a kink (in the function or its slope)
 * spoils the model-wide finite differences; each op is checked with its
 * kinks above, and ReLU(max_value) and LeakyReLU in the residual model
 * against PyTorch.  Passes for every seed of g_rng tried (1 to 11). */
static void test_model_grad_new_layers(void)
{
    struct layer_config L[24];
    int k = 0;
    L[k] = lc(LAYER_KIND_RESCALING, "rescaling"), L[k].scale = 2.0f, L[k++].offset = -1.0f;
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d"), L[k].filters = 4, L[k].padding = PADDING_KIND_SAME;
    L[k++].activation = ACTIVATION_KIND_GELU;
    L[k] = lc(LAYER_KIND_ZERO_PADDING2D, "zero_padding2d"), L[k].pad[0] = 1, L[k++].pad[3] = 2;
    L[k] = lc(LAYER_KIND_RELU, "re_lu"), L[k].max_value = INFINITY, L[k].alpha = 1.0f;
    L[k++].threshold = 0.0f;
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d_1"), L[k].filters = 4, L[k].strides[0] = 2;
    L[k].strides[1] = 2, L[k++].activation = ACTIVATION_KIND_SWISH;
    L[k] = lc(LAYER_KIND_RESHAPE, "reshape"), L[k].target_shape[0] = 2, L[k].target_shape[1] = -1;
    L[k++].target_shape[2] = 4;
    L[k] = lc(LAYER_KIND_LEAKY_RELU, "leaky_re_lu"), L[k++].alpha = 1.0f;
    L[k] = lc(LAYER_KIND_SPATIAL_DROPOUT2D, "spatial_dropout2d"), L[k++].rate = 0.0f;
    L[k] = lc(LAYER_KIND_ELU, "elu"), L[k++].alpha = 1.0f;
    L[k] = lc(LAYER_KIND_DEPTHWISE_CONV2D, "depthwise_conv2d"), L[k].depth_multiplier = 2;
    L[k].padding = PADDING_KIND_SAME, L[k++].activation = ACTIVATION_KIND_TANH;
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d_2"), L[k].filters = 5, L[k].kernel_size[0] = 1;
    L[k].kernel_size[1] = 1, L[k++].activation = ACTIVATION_KIND_ELU;
    L[k] = lc(LAYER_KIND_GLOBAL_AVERAGE_POOLING2D, "global_average_pooling2d");
    L[k++].keepdims = true;
    L[k++] = lc(LAYER_KIND_FLATTEN, "flatten");
    L[k] = lc(LAYER_KIND_DENSE, "dense"), L[k].units = 6, L[k++].activation = ACTIVATION_KIND_SOFTPLUS;
    L[k] = lc(LAYER_KIND_DENSE, "dense_1"), L[k].units = 6, L[k++].activation = ACTIVATION_KIND_HARD_SIGMOID;
    L[k] = lc(LAYER_KIND_DENSE, "dense_2"), L[k].units = 3, L[k++].activation = ACTIVATION_KIND_LINEAR;
    L[k] = lc(LAYER_KIND_SOFTMAX, "softmax"), k++;
    struct model_spec spec = {.name = "sequential", .input_shape = {8, 8, 2}, .n_layers = k,
                              .layers = L};
    spec_grad_check("new layers", &spec, 1);
    spec_grad_check("new layers", &spec, 2);
}

/* A functional residual model: an ELU output that fans out to three
 * consumers, Add, Concatenate, a fused Conv2D + Activation, a Conv2D with a
 * swish epilogue, GlobalAveragePooling2D.  Smooth activations only: a kink
 * of ReLU next to the normalised values spoils finite differences. */
static int residual_spec(struct layer_config *L)
{
    int k = 0;
    L[k++] = lc(LAYER_KIND_INPUT, "input_1");
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d"), L[k].filters = 4, L[k].padding = PADDING_KIND_SAME;
    L[k].activation = ACTIVATION_KIND_SWISH, L[k].n_inputs = 1, L[k++].inputs[0] = 0;
    L[k] = lc(LAYER_KIND_BATCH_NORMALIZATION, "batch_normalization");
    L[k].n_inputs = 1, L[k++].inputs[0] = 1;
    L[k] = lc(LAYER_KIND_ELU, "elu"), L[k].alpha = 1.0f;
    L[k].n_inputs = 1, L[k++].inputs[0] = 2;
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d_1"), L[k].filters = 4, L[k].padding = PADDING_KIND_SAME;
    L[k].n_inputs = 1, L[k++].inputs[0] = 3;
    L[k] = lc(LAYER_KIND_ACTIVATION, "activation"), L[k].activation = ACTIVATION_KIND_TANH;
    L[k].n_inputs = 1, L[k++].inputs[0] = 4;
    L[k] = lc(LAYER_KIND_CONV2D, "conv2d_2"), L[k].filters = 4, L[k].padding = PADDING_KIND_SAME;
    L[k].n_inputs = 1, L[k++].inputs[0] = 5;
    L[k] = lc(LAYER_KIND_ADD, "add"), L[k].n_inputs = 2, L[k].inputs[0] = 6;
    L[k++].inputs[1] = 3;
    L[k] = lc(LAYER_KIND_ACTIVATION, "activation_1"), L[k].activation = ACTIVATION_KIND_ELU;
    L[k].n_inputs = 1, L[k++].inputs[0] = 7;
    L[k] = lc(LAYER_KIND_CONCATENATE, "concatenate"), L[k].n_inputs = 2, L[k].inputs[0] = 8;
    L[k++].inputs[1] = 3;
    L[k] = lc(LAYER_KIND_GLOBAL_AVERAGE_POOLING2D, "global_average_pooling2d");
    L[k].n_inputs = 1, L[k++].inputs[0] = 9;
    L[k] = lc(LAYER_KIND_DENSE, "dense"), L[k].units = 3, L[k].n_inputs = 1;
    L[k++].inputs[0] = 10;
    L[k] = lc(LAYER_KIND_SOFTMAX, "softmax"), L[k].n_inputs = 1, L[k++].inputs[0] = 11;
    return k;
}

static void test_model_grad_functional(void)
{
    struct layer_config L[24];
    int k = residual_spec(L);
    struct model_spec spec = {.name = "model", .functional = true, .input_shape = {6, 6, 2},
                              .n_layers = k, .layers = L};
    spec_grad_check("functional", &spec, 1);
    spec_grad_check("functional", &spec, 3);

    /* graph inference runs max_batch examples at a time: an example's
     * probabilities do not depend on the chunk it is in */
    struct model *m = NULL;
    struct diag d = {0};
    CHECK_INT_EQ(model_create(&m, &spec, 4, 2, &d), 0);
    if (!m)
        return;
    model_init_weights(m, 9);
    float x[10 * 72], p1[30], p2[30];
    fill_uniform(x, 10 * 72, 0, 1);
    CHECK_INT_EQ(model_predict_f32(m, x, 10, p1), 0); /* 10 > max_batch: chunks */
    CHECK_INT_EQ(model_predict_f32(m, x + 4 * 72, 6, p2), 0);
    CHECK(memcmp(p1 + 12, p2, sizeof(float) * 18) == 0);
    for (int e = 0; e < 10; e++)
        CHECK_CLOSE(p1[e * 3] + p1[e * 3 + 1] + p1[e * 3 + 2], 1.0, 1e-5, 0);
    model_free(m);
}

/* The residual model with its first BatchNormalization and its second
 * Conv2D trainable=False: the BN runs on its moving statistics in training
 * (Keras 2.1+), neither gets a gradient, and the gradients of the layers
 * before them go through them (the Conv2D's input fans out to the Add and
 * the Concatenate). */
static void test_model_grad_functional_frozen(void)
{
    struct layer_config L[24];
    int k = residual_spec(L);
    L[2].frozen = true;
    L[4].frozen = true;
    struct model_spec spec = {.name = "model", .functional = true, .input_shape = {6, 6, 2},
                              .n_layers = k, .layers = L};
    spec_grad_check("functional frozen", &spec, 1);
    spec_grad_check("functional frozen", &spec, 2);
}

int main(void)
{
    rng_seed(&g_rng, 12345, 0);
    TEST_RUN(test_conv2d_geometry);
    TEST_RUN(test_conv2d_forward_value);
    TEST_RUN(test_conv2d_grad);
    TEST_RUN(test_dense_grad);
    TEST_RUN(test_activation_grad);
    TEST_RUN(test_batchnorm_grad);
    TEST_RUN(test_pooling_grad);
    TEST_RUN(test_dropout);
    TEST_RUN(test_softmax_crossentropy);
    TEST_RUN(test_model_grad);
    TEST_RUN(test_model_grad_frozen);
    TEST_RUN(test_layer_ops_grad);
    TEST_RUN(test_spatial_dropout);
    TEST_RUN(test_depthwise_value);
    TEST_RUN(test_model_grad_new_layers);
    TEST_RUN(test_model_grad_functional);
    TEST_RUN(test_model_grad_functional_frozen);
    return TEST_EXIT();
}
