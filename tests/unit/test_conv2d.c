/* test_conv2d.c - every Conv2D code path against the plain-loop reference
 * (conv2d_ref.c), on every kernel path this CPU can run (kernels.h).
 *
 * Geometries: kernels 1x1, 3x3, 5x5; strides 1 and 2; 'same' and 'valid';
 * input channels 1 (direct single-channel path), 3, 16 and 20, output
 * channels 16 and 32 (implicit-GEMM path on avx2/avx512) and 10 (im2col +
 * cblas); batch 1 and 3.  1x1 stride 1 valid is the pointwise path.  Each
 * case runs the forward (bias + ReLU epilogue), and the backward three ways:
 * dinp through the flipped kernel (stride 1), through col2im (wflip NULL),
 * and without dinp (a first layer).  Dilated and grouped convolutions
 * (conv2d_general.c) run the same comparisons, and are also checked against
 * the ordinary paths on an equivalent kernel: a dilated kernel with zeros
 * between its taps, a grouped kernel as a block-diagonal full one.
 *
 * Tolerance: |x - ref| <= 1e-5 * scale, scale = the same computation on
 * |inp|, |weight|, |dout| (and |bias|, |initial dweight|): 1e-5 relative to
 * the sum of the magnitudes of the terms, which no summation order's float
 * rounding can exceed at these sizes and which cancellation cannot shrink.
 * Where the engine runs Winograd (3x3 stride 1, 16+ channels here: forward and
 * the flipped-kernel dinp) the scale is conv2d_winograd_scale_ref's instead,
 * the same algorithm on magnitudes, which bounds its error by gamma(C + 11)
 * (conv2d_ref.h), below 1e-5 for these channel counts; test_winograd.c
 * covers that algorithm in detail. */
#include <stdlib.h>

#include "conv2d_ref.h"
#include "conv2d_winograd.h"
#include "kernels.h"
#include "rng.h"
#include "test.h"

#define RTOL 1e-5

static void fill(float *x, size_t n, struct rng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(rng_uniform(r) * 2.0 - 1.0);
}

static void absv(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = fabsf(x[i]);
}

static int cases_failed;

static void compare(const float *got, const float *want, const float *scale, size_t n,
                    const char *what, const char *label)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)got[i] - want[i]);
        if (!(diff <= RTOL * scale[i] + 1e-30) && bad++ < 2)
            fprintf(stderr, "  %s %s [%zu]: %.9g vs reference %.9g (scale %.3g)\n", label, what,
                    i, got[i], want[i], scale[i]);
    }
    CHECK_MSG(bad == 0, "%s %s: %d of %zu elements off", label, what, bad, n);
    cases_failed += bad != 0;
}

struct conv_case {
    int h, w, c, k, kh, s, n;
    enum padding_kind pad;
    int d, groups; /* dilation and groups; 0 = 1 */
};

static void case_geom(struct conv2d_geom *g, const struct conv_case *cc)
{
    conv2d_geom_init_dilated(g, cc->h, cc->w, cc->c, cc->k, cc->kh, cc->kh, cc->s, cc->s,
                             cc->d ? cc->d : 1, cc->d ? cc->d : 1, cc->groups ? cc->groups : 1,
                             cc->pad);
}

static void run_case(const struct conv_case *cc, const char *path)
{
    struct conv2d_geom g;
    case_geom(&g, cc);
    char label[160];
    snprintf(label, sizeof(label), "[%s] %dx%dx%d -> K%d %dx%d s%d d%d g%d %s n%d", path, cc->h,
             cc->w, cc->c, cc->k, cc->kh, cc->kh, cc->s, g.dh, g.groups,
             cc->pad == PADDING_KIND_SAME ? "same" : "valid", cc->n);
    const size_t nin = (size_t)cc->n * g.h * g.w * g.c, nout = (size_t)cc->n * g.oh * g.ow * g.k;
    const size_t nw = (size_t)g.kh * g.kw * (g.c / g.groups) * g.k;
    struct rng r;
    rng_seed(&r, (uint64_t)(cc->h * 131 + cc->c * 17 + cc->k * 7 + cc->kh * 3 + cc->s), 3);
    float *inp = malloc(nin * 4), *w = malloc(nw * 4), *bias = malloc(g.k * 4u);
    float *dout = malloc(nout * 4), *wflip = malloc(nw * 4);
    float *ainp = malloc(nin * 4), *aw = malloc(nw * 4), *abias = malloc(g.k * 4u);
    float *adout = malloc(nout * 4);
    float *out = malloc(nout * 4), *ref = malloc(nout * 4), *scale = malloc(nout * 4);
    float *scratch = malloc(conv2d_scratch_floats(&g) * 4);
    float *dinp = malloc(nin * 4), *rdinp = malloc(nin * 4), *sdinp = malloc(nin * 4);
    float *dw0 = malloc(nw * 4), *dw = malloc(nw * 4), *rdw = malloc(nw * 4), *sdw = malloc(nw * 4);
    float *db0 = malloc(g.k * 4u), *db = malloc(g.k * 4u), *rdb = malloc(g.k * 4u),
          *sdb = malloc(g.k * 4u);
    fill(inp, nin, &r), fill(w, nw, &r), fill(bias, g.k, &r), fill(dout, nout, &r);
    fill(dw0, nw, &r), fill(db0, g.k, &r);
    absv(ainp, inp, nin), absv(aw, w, nw), absv(abias, bias, g.k), absv(adout, dout, nout);

    /* forward: act(conv + bias); scale = |inp| (*) |w| + |bias| */
    conv2d_forward(out, scratch, inp, w, bias, ACTIVATION_KIND_RELU, cc->n, &g);
    conv2d_forward_ref(ref, inp, w, bias, ACTIVATION_KIND_RELU, cc->n, &g);
    conv2d_forward_ref(scale, ainp, aw, abias, ACTIVATION_KIND_LINEAR, cc->n, &g);
    if (conv2d_winograd_pays(&g))
        conv2d_winograd_scale_ref(scale, inp, w, bias, cc->n, &g);
    compare(out, ref, scale, nout, "forward", label);

    /* backward references: dinp, dweight += , dbias += */
    memcpy(rdw, dw0, nw * 4), memcpy(rdb, db0, g.k * 4u);
    conv2d_backward_ref(rdinp, rdw, rdb, dout, inp, w, cc->n, &g);
    absv(sdw, dw0, nw), absv(sdb, db0, g.k);
    conv2d_backward_ref(sdinp, sdw, sdb, adout, ainp, aw, cc->n, &g);

    const bool general = conv2d_geom_general(&g); /* no flipped-kernel path */
    if (!general)
        conv2d_flip_weight(wflip, w, &g);
    /* the flipped-kernel dinp is a stride-1 conv of dout: pads kh - 1 - pad */
    float *wdinp = NULL;
    if (cc->s == 1 && cc->kh == 3 && !general) {
        struct conv2d_geom t;
        int pt = 2 - g.pad_top, pl = 2 - g.pad_left;
        int pb = g.h - g.oh + 2 - pt, pr = g.w - g.ow + 2 - pl;
        conv2d_geom_init_pads(&t, g.oh, g.ow, g.k, g.c, 3, 3, 1, 1, pt, pb, pl, pr);
        CHECK(t.oh == g.h && t.ow == g.w);
        if (conv2d_winograd_pays(&t) && (wdinp = malloc(nin * 4)))
            conv2d_winograd_scale_ref(wdinp, dout, wflip, NULL, cc->n, &t);
    }
    for (int variant = 0; variant < 3; variant++) {
        /* 0: dinp via the flipped kernel (stride 1; col2im otherwise),
         * 1: dinp via col2im, 2: no dinp */
        static const char *const names[] = {"flip", "col2im", "no-dinp"};
        memcpy(dw, dw0, nw * 4), memcpy(db, db0, g.k * 4u);
        for (size_t i = 0; i < nin; i++)
            dinp[i] = NAN; /* every element must be written */
        conv2d_backward(variant == 2 ? NULL : dinp, dw, db, scratch, dout, inp, w,
                        variant == 0 && !general ? wflip : NULL, cc->n, &g);
        char what[48];
        snprintf(what, sizeof(what), "%s dweight", names[variant]);
        compare(dw, rdw, sdw, nw, what, label);
        snprintf(what, sizeof(what), "%s dbias", names[variant]);
        compare(db, rdb, sdb, g.k, what, label);
        if (variant < 2) {
            snprintf(what, sizeof(what), "%s dinp", names[variant]);
            compare(dinp, rdinp, variant == 0 && wdinp ? wdinp : sdinp, nin, what, label);
        }
    }
    free(inp), free(w), free(bias), free(dout), free(wflip), free(ainp), free(aw), free(abias);
    free(adout), free(out), free(ref), free(scale), free(scratch), free(dinp), free(rdinp);
    free(sdinp), free(dw0), free(dw), free(rdw), free(sdw), free(db0), free(db), free(rdb);
    free(sdb), free(wdinp);
}

static int run_all(const char *path)
{
    static const int kernels[] = {1, 3, 5}, strides[] = {1, 2}, chans[] = {1, 3, 16, 20};
    static const int outs[] = {16, 32, 10}, batches[] = {1, 3};
    static const enum padding_kind pads[] = {PADDING_KIND_SAME, PADDING_KIND_VALID};
    int cases = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++)
            for (int p = 0; p < 2; p++)
                for (int c = 0; c < 4; c++)
                    for (int k = 0; k < 3; k++)
                        for (int nb = 0; nb < 2; nb++) {
                            /* odd and even sizes, non-square */
                            struct conv_case cc = {.h = 9 + nb, .w = 7 + 2 * nb, .c = chans[c],
                                                   .k = outs[k], .kh = kernels[a],
                                                   .s = strides[b], .n = batches[nb],
                                                   .pad = pads[p]};
                            run_case(&cc, path);
                            cases++;
                        }
    /* larger images: the column buffer is processed in several chunks */
    struct conv_case big[] = {
        {.h = 32, .w = 32, .c = 32, .k = 32, .kh = 3, .s = 1, .n = 3, .pad = PADDING_KIND_SAME},
        {.h = 28, .w = 28, .c = 1, .k = 32, .kh = 3, .s = 1, .n = 3, .pad = PADDING_KIND_SAME},
        {.h = 16, .w = 16, .c = 64, .k = 64, .kh = 3, .s = 2, .n = 1, .pad = PADDING_KIND_SAME},
        {.h = 24, .w = 24, .c = 48, .k = 16, .kh = 1, .s = 1, .n = 3, .pad = PADDING_KIND_VALID},
    };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++, cases++)
        run_case(&big[i], path);
    /* dilated and grouped (conv2d_general.c), 'same' and 'valid' */
    static const int dils[] = {1, 2, 3}, groups[] = {1, 2, 4};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (int p = 0; p < 2; p++) {
                if (dils[a] == 1 && groups[b] == 1)
                    continue;
                struct conv_case cc = {.h = 11, .w = 9, .c = 8, .k = 12, .kh = 3, .s = 1,
                                       .n = 2, .pad = pads[p], .d = dils[a], .groups = groups[b]};
                run_case(&cc, path);
                cases++;
            }
    struct conv_case gen[] = {
        /* grouped with strides; a column buffer in several chunks */
        {.h = 9, .w = 9, .c = 6, .k = 9, .kh = 3, .s = 2, .n = 2, .pad = PADDING_KIND_SAME,
         .groups = 3},
        {.h = 20, .w = 20, .c = 64, .k = 32, .kh = 3, .s = 1, .n = 2, .pad = PADDING_KIND_SAME,
         .d = 2, .groups = 2},
        {.h = 7, .w = 10, .c = 4, .k = 4, .kh = 1, .s = 1, .n = 3, .pad = PADDING_KIND_VALID,
         .groups = 4},
    };
    for (size_t i = 0; i < sizeof(gen) / sizeof(gen[0]); i++, cases++)
        run_case(&gen[i], path);
    return cases;
}

static void test_every_path(void)
{
    int paths = 0;
    for (int k = 0; k < KERNELS_KIND_COUNT; k++) {
        enum kernels_kind kind = (enum kernels_kind)k;
        if (!kernels_supported(kind))
            continue;
        CHECK_INT_EQ(kernels_use(kind), 0);
        cases_failed = 0;
        int cases = run_all(kernels_name(kind));
        fprintf(stderr, "path %s: %d cases, %d comparisons failed\n", kernels_name(kind), cases,
                cases_failed);
        paths++;
    }
    CHECK(paths >= 1);
}

/* avx2 and avx512 run the same FMAs in the same order for every output
 * element (tiles and k blocks differ only in which elements share registers
 * and when partial sums pass through memory, which is exact), so the two paths
 * give bit-identical convolutions, and a job's results do not depend on which
 * of the two the CPU has.  Checked on the cases above. */
static void run_forward_backward(float *out, float *dinp, float *dw, float *db,
                                 const struct conv_case *cc)
{
    struct conv2d_geom g;
    conv2d_geom_init(&g, cc->h, cc->w, cc->c, cc->k, cc->kh, cc->kh, cc->s, cc->s, cc->pad);
    const size_t nin = (size_t)cc->n * g.h * g.w * g.c, nout = (size_t)cc->n * g.oh * g.ow * g.k;
    const size_t nw = (size_t)g.kh * g.kw * g.c * g.k;
    struct rng r;
    rng_seed(&r, (uint64_t)(cc->h * 7 + cc->c * 5 + cc->k), 9);
    float *inp = malloc(nin * 4), *w = malloc(nw * 4), *bias = malloc(g.k * 4u);
    float *dout = malloc(nout * 4), *wflip = malloc(nw * 4);
    float *scratch = malloc(conv2d_scratch_floats(&g) * 4);
    fill(inp, nin, &r), fill(w, nw, &r), fill(bias, g.k, &r), fill(dout, nout, &r);
    memset(dw, 0, nw * 4), memset(db, 0, g.k * 4u);
    conv2d_flip_weight(wflip, w, &g);
    conv2d_forward(out, scratch, inp, w, bias, ACTIVATION_KIND_LINEAR, cc->n, &g);
    conv2d_backward(dinp, dw, db, scratch, dout, inp, w, wflip, cc->n, &g);
    free(inp), free(w), free(bias), free(dout), free(wflip), free(scratch);
}

static void test_avx_paths_agree(void)
{
    if (!kernels_supported(KERNELS_KIND_AVX2) || !kernels_supported(KERNELS_KIND_AVX512)) {
        fprintf(stderr, "skip: this CPU lacks avx2 or avx512\n");
        return;
    }
    static const struct conv_case cases[] = {
        {.h = 32, .w = 32, .c = 32, .k = 32, .kh = 3, .s = 1, .n = 3, .pad = PADDING_KIND_SAME},
        {.h = 14, .w = 14, .c = 64, .k = 64, .kh = 3, .s = 1, .n = 2, .pad = PADDING_KIND_SAME},
        {.h = 28, .w = 28, .c = 1, .k = 32, .kh = 3, .s = 1, .n = 3, .pad = PADDING_KIND_SAME},
        {.h = 11, .w = 9, .c = 20, .k = 48, .kh = 5, .s = 1, .n = 1, .pad = PADDING_KIND_VALID},
        {.h = 10, .w = 10, .c = 16, .k = 16, .kh = 1, .s = 1, .n = 3, .pad = PADDING_KIND_VALID},
        {.h = 16, .w = 16, .c = 16, .k = 32, .kh = 3, .s = 2, .n = 3, .pad = PADDING_KIND_SAME},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct conv_case *cc = &cases[i];
        struct conv2d_geom g;
        conv2d_geom_init(&g, cc->h, cc->w, cc->c, cc->k, cc->kh, cc->kh, cc->s, cc->s, cc->pad);
        size_t nin = (size_t)cc->n * g.h * g.w * g.c, nout = (size_t)cc->n * g.oh * g.ow * g.k;
        size_t nw = (size_t)g.kh * g.kw * g.c * g.k;
        float *buf[2][4];
        for (int p = 0; p < 2; p++) {
            buf[p][0] = malloc(nout * 4), buf[p][1] = malloc(nin * 4);
            buf[p][2] = malloc(nw * 4), buf[p][3] = malloc(g.k * 4u);
            CHECK_INT_EQ(kernels_use(p ? KERNELS_KIND_AVX512 : KERNELS_KIND_AVX2), 0);
            run_forward_backward(buf[p][0], buf[p][1], buf[p][2], buf[p][3], cc);
        }
        CHECK_MSG(memcmp(buf[0][0], buf[1][0], nout * 4) == 0, "case %zu: forward differs", i);
        CHECK_MSG(memcmp(buf[0][1], buf[1][1], nin * 4) == 0, "case %zu: dinp differs", i);
        CHECK_MSG(memcmp(buf[0][2], buf[1][2], nw * 4) == 0, "case %zu: dweight differs", i);
        CHECK_MSG(memcmp(buf[0][3], buf[1][3], g.k * 4u) == 0, "case %zu: dbias differs", i);
        for (int p = 0; p < 2; p++)
            for (int b = 0; b < 4; b++)
                free(buf[p][b]);
    }
}

/* Bound on the difference of two float sums of the same n terms of
 * magnitude <= 1 in any order: each is within (n - 1) u n of the exact sum
 * (u = 2^-24). */
static float sum_bound(size_t n)
{
    return (float)(2.0 * (double)n * (double)n * 0x1p-24);
}

/* A dilated, grouped convolution computes what the ordinary paths compute
 * with the equivalent (KH', KW', C, K) kernel: taps spread d apart with
 * zeros between them (KH' = (KH - 1) d + 1), zeros outside each output's
 * group of input channels.  Forward, dinp, and dweight at the kernel's
 * real taps. */
static void check_equivalent(const struct conv_case *cc)
{
    struct conv2d_geom g, e;
    case_geom(&g, cc);
    const int ekh = (g.kh - 1) * g.dh + 1, Cg = g.c / g.groups, Kg = g.k / g.groups;
    conv2d_geom_init(&e, cc->h, cc->w, cc->c, cc->k, ekh, ekh, cc->s, cc->s, cc->pad);
    CHECK(e.oh == g.oh && e.ow == g.ow && e.pad_top == g.pad_top && e.pad_left == g.pad_left);
    const size_t nin = (size_t)cc->n * g.h * g.w * g.c, nout = (size_t)cc->n * g.oh * g.ow * g.k;
    const size_t nw = (size_t)g.kh * g.kw * Cg * g.k, nwe = (size_t)ekh * ekh * g.c * g.k;
    struct rng r;
    rng_seed(&r, (uint64_t)(cc->c * 31 + g.dh * 5 + g.groups), 5);
    float *inp = malloc(nin * 4), *w = calloc(nw, 4), *we = calloc(nwe, 4);
    float *dout = malloc(nout * 4), *out = malloc(nout * 4), *oute = malloc(nout * 4);
    float *dinp = malloc(nin * 4), *dinpe = malloc(nin * 4), *dw = calloc(nw, 4);
    float *dwe = calloc(nwe, 4), *db = calloc(g.k, 4), *dbe = calloc(g.k, 4);
    size_t ns = conv2d_scratch_floats(&g) > conv2d_scratch_floats(&e) ? conv2d_scratch_floats(&g)
                                                                      : conv2d_scratch_floats(&e);
    float *scratch = malloc(ns * 4);
    fill(inp, nin, &r), fill(w, nw, &r), fill(dout, nout, &r);
    /* the index of kernel entry (i, j, c, k) in the equivalent kernel */
#define EQ_INDEX(i, j, c, k)                                                                    \
    ((((size_t)(i) * g.dh * ekh + (size_t)(j) * g.dw) * g.c + (size_t)((k) / Kg * Cg + (c))) *    \
         g.k + (size_t)(k))
    for (int i = 0; i < g.kh; i++)
        for (int j = 0; j < g.kw; j++)
            for (int c = 0; c < Cg; c++)
                for (int k = 0; k < g.k; k++)
                    we[EQ_INDEX(i, j, c, k)] = w[(((size_t)i * g.kw + j) * Cg + c) * g.k + k];
    conv2d_forward(out, scratch, inp, w, NULL, ACTIVATION_KIND_LINEAR, cc->n, &g);
    conv2d_forward(oute, scratch, inp, we, NULL, ACTIVATION_KIND_LINEAR, cc->n, &e);
    conv2d_backward(dinp, dw, db, scratch, dout, inp, w, NULL, cc->n, &g);
    conv2d_backward(dinpe, dwe, dbe, scratch, dout, inp, we, NULL, cc->n, &e);
    /* the same products (and zeros) summed in another order; |inp|, |w|,
     * |dout| <= 1, so every term is at most 1 */
    int bad = 0;
    for (size_t i = 0; i < nout; i++)
        bad += !(fabsf(out[i] - oute[i]) <= sum_bound(ekh * ekh * g.c));
    for (size_t i = 0; i < nin; i++)
        bad += !(fabsf(dinp[i] - dinpe[i]) <= sum_bound(ekh * ekh * g.k));
    for (int i = 0; i < g.kh; i++)
        for (int j = 0; j < g.kw; j++)
            for (int c = 0; c < Cg; c++)
                for (int k = 0; k < g.k; k++)
                    bad += !(fabsf(dw[(((size_t)i * g.kw + j) * Cg + c) * g.k + k] -
                                   dwe[EQ_INDEX(i, j, c, k)]) <= sum_bound(nout));
#undef EQ_INDEX
    for (int k = 0; k < g.k; k++)
        bad += !(fabsf(db[k] - dbe[k]) <= sum_bound(nout));
    CHECK_MSG(bad == 0, "%dx%dx%d k%d s%d d%d g%d %s: %d values differ from the equivalent "
              "kernel", cc->h, cc->w, cc->c, cc->k, cc->s, g.dh, g.groups,
              cc->pad == PADDING_KIND_SAME ? "same" : "valid", bad);
    free(inp), free(w), free(we), free(dout), free(out), free(oute), free(dinp), free(dinpe);
    free(dw), free(dwe), free(db), free(dbe), free(scratch);
}

static void test_dilated_grouped_equivalent(void)
{
    static const struct conv_case cases[] = {
        {.h = 12, .w = 10, .c = 4, .k = 16, .kh = 3, .s = 1, .n = 2, .pad = PADDING_KIND_SAME,
         .d = 2},
        {.h = 12, .w = 10, .c = 4, .k = 16, .kh = 3, .s = 1, .n = 2, .pad = PADDING_KIND_VALID,
         .d = 3},
        {.h = 9, .w = 11, .c = 8, .k = 12, .kh = 3, .s = 1, .n = 2, .pad = PADDING_KIND_SAME,
         .groups = 4},
        {.h = 9, .w = 9, .c = 6, .k = 6, .kh = 5, .s = 2, .n = 1, .pad = PADDING_KIND_VALID,
         .groups = 3},
        {.h = 10, .w = 10, .c = 8, .k = 32, .kh = 3, .s = 1, .n = 2, .pad = PADDING_KIND_SAME,
         .d = 2, .groups = 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_equivalent(&cases[i]);
}

int main(void)
{
    struct diag d = {0};
    int r = kernels_init(getenv("TRAIND_KERNELS"), &d);
    CHECK_MSG(r == 0, "%s: %s", d.field, d.message);
    TEST_RUN(test_every_path);
    TEST_RUN(test_avx_paths_agree);
    TEST_RUN(test_dilated_grouped_equivalent);
    return TEST_EXIT();
}
