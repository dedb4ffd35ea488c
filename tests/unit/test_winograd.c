/* test_winograd.c - Winograd F(2x2, 3x3) (conv2d_winograd.c) against the
 * plain-loop reference (conv2d_ref.c), on every kernel path this CPU can run.
 *
 * Geometries: odd and even, square and not, down to 1x1 images; 'same' and
 * 'valid' 3x3 stride 1; channels in and out not multiples of 16 (cblas GEMMs)
 * and multiples of 16 (the avx2/avx512 kernels); batch 1 and 3.  Forward with
 * bias + ReLU (fused), linear without bias and tanh (epilogue after the
 * transform); the input gradient through conv2d_backward (the flipped-kernel
 * convolution, which runs as Winograd when it pays).
 *
 * Tolerance: |x - ref| <= gamma(C + 14) * scale with gamma(n) = n u / (1 - n u),
 * u = 2^-24 and scale = conv2d_winograd_scale_ref (the same algorithm on
 * magnitudes): gamma(C + 11) bounds Winograd's own rounding (conv2d_ref.h),
 * the rest covers the float rounding of the reference and of the scale.  No
 * correct rounding can cross it; a wrong transform entry or a tile off by one
 * misses it by orders of magnitude. */
#include <errno.h>
#include <float.h>
#include <stdlib.h>

#include "conv2d_ref.h"
#include "conv2d_winograd.h"
#include "kernels.h"
#include "rng.h"
#include "test.h"

static void fill(float *x, size_t n, struct rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(rng_uniform(r) * 2.0 - 1.0);
}

static double gamma_n(int n)
{
    double u = ldexp(1.0, -24);
    return n * u / (1.0 - n * u);
}

static int compare(const float *got, const float *want, const float *scale, size_t n, int c,
                   const char *what, const char *label)
{
    int bad = 0;
    double tol = gamma_n(c + 14);
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - want[i]);
        if (!(diff <= tol * scale[i]) && bad++ < 2)
            fprintf(stderr, "  %s %s [%zu]: %.9g vs reference %.9g (scale %.3g)\n", label, what,
                    i, got[i], want[i], scale[i]);
    }
    CHECK_MSG(bad == 0, "%s %s: %d of %zu elements off", label, what, bad, n);
    return bad;
}

struct wcase {
    int h, w, c, k, n;
    enum padding_kind pad;
};

static int run_case(const struct wcase *wc, const char *path)
{
    struct conv2d_geom g, t;
    conv2d_geom_init(&g, wc->h, wc->w, wc->c, wc->k, 3, 3, 1, 1, wc->pad);
    if (g.oh <= 0 || g.ow <= 0)
        return 0;
    /* the transposed convolution conv2d_backward runs for dinp: 'full' pads
     * of 2 for 'valid', 1 for 'same' */
    int tp = wc->pad == PADDING_KIND_SAME ? 1 : 2;
    conv2d_geom_init_pads(&t, g.oh, g.ow, g.k, g.c, 3, 3, 1, 1, tp, tp, tp, tp);
    CHECK(t.oh == g.h && t.ow == g.w);
    char label[128];
    snprintf(label, sizeof(label), "[%s] %dx%dx%d -> K%d %s n%d", path, wc->h, wc->w, wc->c,
             wc->k, wc->pad == PADDING_KIND_SAME ? "same" : "valid", wc->n);
    const size_t nin = (size_t)wc->n * g.h * g.w * g.c, nout = (size_t)wc->n * g.oh * g.ow * g.k;
    const size_t nw = (size_t)9 * g.c * g.k;
    struct rng r;
    rng_seed(&r, (uint64_t)(wc->h * 131 + wc->w * 31 + wc->c * 17 + wc->k * 7 + wc->n), 5);
    float *inp = malloc(nin * 4), *w = malloc(nw * 4), *bias = malloc(g.k * 4u);
    float *dout = malloc(nout * 4), *wflip = malloc(nw * 4), *dw = calloc(nw, 4);
    float *out = malloc(nout * 4), *ref = malloc(nout * 4), *scale = malloc(nout * 4);
    size_t sf = conv2d_winograd_scratch_floats(&g);
    size_t sc = conv2d_scratch_floats(&g);
    float *scratch = malloc((sf > sc ? sf : sc) * 4);
    float *dinp = malloc(nin * 4), *rdinp = malloc(nin * 4), *sdinp = malloc(nin * 4);
    fill(inp, nin, &r), fill(w, nw, &r), fill(bias, g.k, &r), fill(dout, nout, &r);
    int bad = 0;

    static const enum activation_kind acts[] = {ACTIVATION_KIND_RELU, ACTIVATION_KIND_LINEAR,
                                                ACTIVATION_KIND_TANH};
    static const char *const act_names[] = {"forward relu+bias", "forward linear",
                                            "forward tanh+bias"};
    for (int a = 0; a < 3; a++) {
        const float *b = acts[a] == ACTIVATION_KIND_LINEAR ? NULL : bias;
        for (size_t i = 0; i < nout; i++)
            out[i] = NAN; /* every element must be written */
        conv2d_winograd_forward(out, scratch, inp, w, b, acts[a], wc->n, &g);
        conv2d_forward_ref(ref, inp, w, b, acts[a], wc->n, &g);
        conv2d_winograd_scale_ref(scale, inp, w, b, wc->n, &g);
        bad += compare(out, ref, scale, nout, g.c, act_names[a], label);
    }

    /* input gradient: conv2d_backward through the flipped kernel */
    conv2d_flip_weight(wflip, w, &g);
    for (size_t i = 0; i < nin; i++)
        dinp[i] = NAN;
    conv2d_backward(dinp, dw, NULL, scratch, dout, inp, w, wflip, wc->n, &g);
    conv2d_backward_ref(rdinp, dw, NULL, dout, inp, w, wc->n, &g);
    if (conv2d_winograd_pays(&t)) {
        conv2d_winograd_scale_ref(sdinp, dout, wflip, NULL, wc->n, &t);
        bad += compare(dinp, rdinp, sdinp, nin, t.c, "dinp", label);
    } else {
        /* direct paths: test_conv2d's bound covers them; here only a sanity check */
        int off = 0;
        for (size_t i = 0; i < nin; i++)
            off += !(fabs((double)dinp[i] - rdinp[i]) <= 1e-3 * (1.0 + fabs(rdinp[i])));
        CHECK_MSG(off == 0, "%s dinp (direct): %d of %zu off", label, off, nin);
        bad += off != 0;
    }

    free(inp), free(w), free(bias), free(dout), free(wflip), free(dw), free(out), free(ref);
    free(scale), free(scratch), free(dinp), free(rdinp), free(sdinp);
    return bad != 0;
}

static void test_every_path(void)
{
    static const int sizes[][2] = {{1, 1}, {2, 3}, {5, 5}, {7, 9}, {10, 6}, {13, 11}};
    static const int chans[] = {8, 13, 20, 32}, outs[] = {8, 10, 16, 24, 48};
    int paths = 0;
    for (int kk = 0; kk < KERNELS_KIND_COUNT; kk++) {
        enum kernels_kind kind = (enum kernels_kind)kk;
        if (!kernels_supported(kind))
            continue;
        CHECK_INT_EQ(kernels_use(kind), 0);
        int cases = 0, failed = 0;
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            for (int c = 0; c < 4; c++)
                for (int k = 0; k < 5; k++)
                    for (int p = 0; p < 2; p++) {
                        /* vary the batch with the case: 1 or 3 */
                        struct wcase wc = {.h = sizes[s][0], .w = sizes[s][1], .c = chans[c],
                                           .k = outs[k], .n = (int)((s + c + k) % 2) * 2 + 1,
                                           .pad = p ? PADDING_KIND_VALID : PADDING_KIND_SAME};
                        failed += run_case(&wc, kernels_name(kind));
                        cases++;
                    }
        /* MiniVGGNet's layers, several tile blocks */
        static const struct wcase big[] = {
            {.h = 28, .w = 28, .c = 32, .k = 32, .n = 2, .pad = PADDING_KIND_SAME},
            {.h = 14, .w = 14, .c = 32, .k = 64, .n = 3, .pad = PADDING_KIND_SAME},
            {.h = 16, .w = 16, .c = 64, .k = 64, .n = 2, .pad = PADDING_KIND_SAME},
        };
        for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++, cases++)
            failed += run_case(&big[i], kernels_name(kind));
        fprintf(stderr, "path %s: %d cases, %d failed\n", kernels_name(kind), cases, failed);
        paths++;
    }
    CHECK(paths >= 1);
}

/* Same inputs, same path: bit-identical, whether the batch runs in one call or
 * image by image (how threads split it), on the paths whose GEMMs are the
 * engine's own kernels (K % 16 == 0). */
static void test_deterministic(void)
{
    struct conv2d_geom g;
    const int n = 3;
    conv2d_geom_init(&g, 13, 11, 24, 32, 3, 3, 1, 1, PADDING_KIND_SAME);
    const size_t img = (size_t)g.h * g.w * g.c, oimg = (size_t)g.oh * g.ow * g.k;
    struct rng r;
    rng_seed(&r, 77, 1);
    float *inp = malloc(n * img * 4), *w = malloc((size_t)9 * g.c * g.k * 4);
    float *bias = malloc(g.k * 4u), *o1 = malloc(n * oimg * 4), *o2 = malloc(n * oimg * 4);
    float *scratch = malloc(conv2d_winograd_scratch_floats(&g) * 4);
    fill(inp, n * img, &r), fill(w, (size_t)9 * g.c * g.k, &r), fill(bias, g.k, &r);
    for (int kk = 0; kk < KERNELS_KIND_COUNT; kk++) {
        enum kernels_kind kind = (enum kernels_kind)kk;
        if (!kernels_supported(kind))
            continue;
        CHECK_INT_EQ(kernels_use(kind), 0);
        conv2d_winograd_forward(o1, scratch, inp, w, bias, ACTIVATION_KIND_RELU, n, &g);
        conv2d_winograd_forward(o2, scratch, inp, w, bias, ACTIVATION_KIND_RELU, n, &g);
        CHECK_MSG(memcmp(o1, o2, n * oimg * 4) == 0, "[%s] two runs differ", kernels_name(kind));
        if (kind == KERNELS_KIND_GENERIC)
            continue;
        for (int b = 0; b < n; b++)
            conv2d_winograd_forward(o2 + b * oimg, scratch, inp + b * img, w, bias,
                                    ACTIVATION_KIND_RELU, 1, &g);
        CHECK_MSG(memcmp(o1, o2, n * oimg * 4) == 0, "[%s] batch vs image by image differ",
                  kernels_name(kind));
    }
    free(inp), free(w), free(bias), free(o1), free(o2), free(scratch);
}

/* The engine's choice: MiniVGGNet's 3x3 layers after the first run Winograd,
 * the first (1 or 3 input channels), strided and 5x5 convolutions do not. */
static void test_choice(void)
{
    struct conv2d_geom g;
    conv2d_geom_init(&g, 28, 28, 32, 32, 3, 3, 1, 1, PADDING_KIND_SAME);
    CHECK(conv2d_winograd_pays(&g));
    CHECK_STR_EQ(conv2d_forward_algorithm(&g), "winograd_f2x2_3x3");
    CHECK_STR_EQ(conv2d_dinput_algorithm(&g, true), "winograd_f2x2_3x3");
    CHECK_STR_EQ(conv2d_dinput_algorithm(&g, false), "col2im_gemm");
    conv2d_geom_init(&g, 14, 14, 64, 64, 3, 3, 1, 1, PADDING_KIND_SAME);
    CHECK(conv2d_winograd_pays(&g));
    conv2d_geom_init(&g, 28, 28, 1, 32, 3, 3, 1, 1, PADDING_KIND_SAME);
    CHECK(!conv2d_winograd_pays(&g));
    CHECK(strcmp(conv2d_forward_algorithm(&g), "winograd_f2x2_3x3") != 0);
    conv2d_geom_init(&g, 32, 32, 3, 32, 3, 3, 1, 1, PADDING_KIND_SAME);
    CHECK(!conv2d_winograd_pays(&g));
    conv2d_geom_init(&g, 28, 28, 32, 32, 3, 3, 2, 2, PADDING_KIND_SAME);
    CHECK(!conv2d_winograd_pays(&g));
    conv2d_geom_init(&g, 28, 28, 32, 32, 5, 5, 1, 1, PADDING_KIND_SAME);
    CHECK(!conv2d_winograd_pays(&g));
}

/* conv2d_forward_post (inference: the weight transform computed once, a
 * BatchNormalization's scale and shift applied in the store) against
 * conv2d_forward followed by batchnorm_forward: the same float operations in
 * the same order, so bit-identical, on every path and algorithm (Winograd,
 * implicit GEMM, the C = 1 kernel, im2col, strided) and activation. */
static void test_forward_post(void)
{
    static const struct {
        int h, w, c, k, kh, s;
    } geo[] = {{13, 11, 24, 32, 3, 1}, {9, 7, 13, 10, 3, 1}, {28, 28, 1, 32, 3, 1},
               {10, 9, 3, 20, 3, 1},   {11, 12, 8, 16, 3, 2}, {7, 7, 16, 32, 5, 1},
               {12, 10, 24, 32, 3, 1}, {14, 14, 13, 10, 3, 1}, {8, 6, 16, 16, 3, 1}};
    static const enum activation_kind acts[] = {ACTIVATION_KIND_RELU, ACTIVATION_KIND_LINEAR,
                                                ACTIVATION_KIND_TANH};
    const int n = 3;
    const float eps = 1e-3f;
    int pools = 0;
    for (int kk = 0; kk < KERNELS_KIND_COUNT; kk++) {
        enum kernels_kind kind = (enum kernels_kind)kk;
        if (!kernels_supported(kind))
            continue;
        CHECK_INT_EQ(kernels_use(kind), 0);
        for (size_t gi = 0; gi < sizeof(geo) / sizeof(geo[0]); gi++) {
            struct conv2d_geom g;
            conv2d_geom_init(&g, geo[gi].h, geo[gi].w, geo[gi].c, geo[gi].k, geo[gi].kh,
                             geo[gi].kh, geo[gi].s, geo[gi].s, PADDING_KIND_SAME);
            const size_t nin = (size_t)n * g.h * g.w * g.c, nout = (size_t)n * g.oh * g.ow * g.k;
            const size_t nw = (size_t)g.kh * g.kw * g.c * g.k, K = (size_t)g.k;
            struct rng r;
            rng_seed(&r, 1000 + gi, 3);
            float *inp = malloc(nin * 4), *w = malloc(nw * 4), *bias = malloc(K * 4);
            float *bn = malloc(6 * K * 4), *o1 = malloc(nout * 4), *o2 = malloc(nout * 4);
            float *p1 = malloc(nout * 4);
            size_t wtf = conv2d_weight_transform_floats(&g);
            float *wt = wtf ? malloc(wtf * 4) : NULL;
            float *scratch = malloc(conv2d_scratch_floats(&g) * 4);
            fill(inp, nin, &r), fill(w, nw, &r), fill(bias, g.k, &r), fill(bn, 4 * K, &r);
            float *gamma = bn, *beta = bn + K, *mean = bn + 2 * K, *var = bn + 3 * K;
            float *scale = bn + 4 * K, *shift = bn + 5 * K;
            for (size_t k = 0; k < K; k++) {
                var[k] = var[k] * var[k] + 0.01f;
                scale[k] = gamma[k] / sqrtf(var[k] + eps);
                shift[k] = beta[k] - mean[k] * scale[k];
            }
            CHECK(wtf == 0 || conv2d_winograd_pays(&g));
            if (wt)
                conv2d_weight_transform(wt, w, &g);
            for (int a = 0; a < 3; a++) {
                conv2d_forward(o1, scratch, inp, w, bias, acts[a], n, &g);
                batchnorm_forward(o1, o1, mean, var, gamma, beta, eps,
                                  (size_t)n * g.oh * g.ow, g.k);
                for (int use_wt = 0; use_wt < 2; use_wt++) {
                    conv2d_forward_post(o2, scratch, inp, w, use_wt ? wt : NULL, bias, acts[a],
                                        scale, shift, false, n, &g);
                    CHECK_MSG(memcmp(o1, o2, nout * 4) == 0, "[%s] %s act %d wt %d: differs",
                              kernels_name(kind), conv2d_forward_algorithm(&g), a, use_wt);
                }
                /* the 2x2 stride-2 max pooling in the store where it can be */
                bool even = g.oh % 2 == 0 && g.ow % 2 == 0;
                CHECK(conv2d_pool_fusable(&g, acts[a]) ==
                      (conv2d_winograd_pays(&g) && even && acts[a] != ACTIVATION_KIND_TANH));
                if (conv2d_pool_fusable(&g, acts[a])) {
                    struct pool2d_geom pg;
                    pool2d_geom_init(&pg, g.oh, g.ow, g.k, 2, 2, 2, 2, PADDING_KIND_VALID);
                    size_t np = (size_t)n * pg.oh * pg.ow * g.k;
                    maxpool2d_forward(p1, o1, n, &pg);
                    for (size_t e = 0; e < nout; e++)
                        o2[e] = NAN; /* nothing past the pooled output is written */
                    conv2d_forward_post(o2, scratch, inp, w, wt, bias, acts[a], scale, shift,
                                        true, n, &g);
                    CHECK_MSG(memcmp(p1, o2, np * 4) == 0, "[%s] act %d pooled: differs",
                              kernels_name(kind), a);
                    int untouched = 0;
                    for (size_t e = np; e < nout; e++)
                        untouched += isnan(o2[e]);
                    CHECK_INT_EQ(untouched, (int)(nout - np));
                    pools++;
                }
                /* without the affine: conv2d_forward itself */
                conv2d_forward(o1, scratch, inp, w, bias, acts[a], n, &g);
                conv2d_forward_post(o2, scratch, inp, w, wt, bias, acts[a], NULL, NULL, false, n,
                                    &g);
                CHECK_MSG(memcmp(o1, o2, nout * 4) == 0, "[%s] %s act %d no affine: differs",
                          kernels_name(kind), conv2d_forward_algorithm(&g), a);
            }
            free(inp), free(w), free(bias), free(bn), free(o1), free(o2), free(wt), free(scratch);
            free(p1);
        }
    }
    CHECK(pools > 0);
}

/* TRAIND_CONV_ALGO: direct turns Winograd off (and back on with auto),
 * anything else is refused naming the variable */
static void test_conv_algo_switch(void)
{
    struct conv2d_geom g;
    conv2d_geom_init(&g, 28, 28, 32, 32, 3, 3, 1, 1, PADDING_KIND_SAME);
    struct diag d = {0};
    CHECK_INT_EQ(kernels_conv_algo_init("direct", &d), 0);
    CHECK(!conv2d_winograd_pays(&g));
    CHECK(conv2d_winograd_fits(&g));
    CHECK(strcmp(conv2d_forward_algorithm(&g), "winograd_f2x2_3x3") != 0);
    CHECK(strcmp(conv2d_dinput_algorithm(&g, true), "winograd_f2x2_3x3") != 0);
    CHECK_INT_EQ(kernels_conv_algo_init("winograd", &d), -EINVAL);
    CHECK_STR_EQ(d.field, "TRAIND_CONV_ALGO");
    CHECK(!kernels_winograd_allowed()); /* unchanged on failure */
    CHECK_INT_EQ(kernels_conv_algo_init("auto", &d), 0);
    CHECK(conv2d_winograd_pays(&g));
    CHECK_INT_EQ(kernels_conv_algo_init(NULL, &d), 0);
    CHECK_STR_EQ(conv2d_forward_algorithm(&g), "winograd_f2x2_3x3");
}

int main(void)
{
    struct diag d = {0};
    int r = kernels_init(getenv("TRAIND_KERNELS"), &d);
    CHECK_MSG(r == 0, "%s: %s", d.field, d.message);
    TEST_RUN(test_choice);
    TEST_RUN(test_every_path);
    TEST_RUN(test_deterministic);
    TEST_RUN(test_forward_post);
    TEST_RUN(test_conv_algo_switch);
    return TEST_EXIT();
}
