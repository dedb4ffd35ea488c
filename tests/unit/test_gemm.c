/* test_gemm.c - core/gemm.c on every kernel path this CPU can run: gemm_nn
 * against cblas_sgemm and against the plain-loop reference (gemm_ref.c),
 * gemm_nn_seg and gemm_tn_acc against theirs, over the shapes the
 * convolutions use (N = 16, 32, 48, 64 and not multiples of 16; row counts
 * that leave every tile remainder; k blocks crossed; strided operands).
 *
 * Tolerance: |x - ref| <= 1e-5 * (sum of |terms|), i.e. 1e-5 relative to the
 * product of |A| and |B|, which bounds float rounding of any summation order
 * and does not depend on cancellation. */
#include <cblas.h>
#include <errno.h>
#include <stdlib.h>

#include "gemm.h"
#include "kernels.h"
#include "rng.h"
#include "test.h"

#define RTOL 1e-5

static float *randn(size_t n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed, 11);
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; x && i < n; i++)
        x[i] = (float)(rng_uniform(&r) * 2.0 - 1.0);
    return x;
}

static float *absdup(const float *x, size_t n)
{
    float *y = malloc(n * sizeof(float));
    for (size_t i = 0; y && i < n; i++)
        y[i] = fabsf(x[i]);
    return y;
}

/* got vs want within RTOL of scale, element-wise over (m, n) with stride ld */
static int close_all(const float *got, const float *want, const float *scale, int m, int n,
                     int ld, const char *what, const char *path)
{
    int bad = 0;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            long e = (long)i * ld + j;
            double diff = fabs((double)got[e] - want[e]);
            if (!(diff <= RTOL * (scale[e] + 1e-30)) && bad++ < 3)
                fprintf(stderr, "  %s [%s] (%d, %d): %.9g vs %.9g (scale %.3g)\n", what, path, i,
                        j, got[e], want[e], scale[e]);
        }
    CHECK_MSG(bad == 0, "%s on %s: %d elements off", what, path, bad);
    return bad;
}

static void check_nn(int m, int n, int k, int pad, const char *path)
{
    int lda = k + pad, ldb = n + pad, ldc = n + pad;
    float *a = randn((size_t)m * lda, 1 + m), *b = randn((size_t)k * ldb, 2 + n);
    float *c = randn((size_t)m * ldc, 3), *ref = calloc((size_t)m * ldc, sizeof(float));
    float *blas = calloc((size_t)m * ldc, sizeof(float)), *scale = calloc((size_t)m * ldc, 4);
    float *aa = absdup(a, (size_t)m * lda), *ab = absdup(b, (size_t)k * ldb);
    gemm_nn(c, a, b, m, n, k, lda, ldb, ldc);
    gemm_nn_ref(ref, a, b, m, n, k, lda, ldb, ldc);
    gemm_nn_ref(scale, aa, ab, m, n, k, lda, ldb, ldc);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f,
                blas, ldc);
    char what[64];
    snprintf(what, sizeof(what), "gemm_nn m%d n%d k%d", m, n, k);
    close_all(c, ref, scale, m, n, ldc, what, path);
    snprintf(what, sizeof(what), "gemm_nn vs cblas m%d n%d k%d", m, n, k);
    close_all(c, blas, scale, m, n, ldc, what, path);
    free(a), free(b), free(c), free(ref), free(blas), free(scale), free(aa), free(ab);
}

/* gemm_nn_seg over a random "padded image" of width wp and C = k channels,
 * taps of a kh x kw window: the shapes conv2d's implicit path passes */
static void check_seg(int oh, int ow, int kh, int kw, int k, int n, const char *path)
{
    int wp = ow + kw - 1, hp = oh + kh - 1, m = oh * ow, nseg = kh * kw;
    size_t pad_len = ((size_t)hp * wp + kw) * k;
    float *a = randn(pad_len, 4), *b = randn((size_t)nseg * k * n, 5);
    float *aa = absdup(a, pad_len), *ab = absdup(b, (size_t)nseg * k * n);
    int *ro = malloc((size_t)m * sizeof(int));
    long off[64];
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            ro[y * ow + x] = (y * wp + x) * k;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++)
            off[i * kw + j] = ((long)i * wp + j) * k;
    float *c = randn((size_t)m * n, 6), *ref = calloc((size_t)m * n, 4),
          *scale = calloc((size_t)m * n, 4);
    gemm_nn_seg(c, a, ro, off, nseg, b, m, n, k, n, n);
    gemm_nn_seg_ref(ref, a, ro, off, nseg, b, m, n, k, n, n);
    gemm_nn_seg_ref(scale, aa, ro, off, nseg, ab, m, n, k, n, n);
    char what[80];
    snprintf(what, sizeof(what), "gemm_nn_seg %dx%d taps %dx%d C%d N%d", oh, ow, kh, kw, k, n);
    close_all(c, ref, scale, m, n, n, what, path);
    free(a), free(b), free(aa), free(ab), free(ro), free(c), free(ref), free(scale);
}

/* gemm_tn_acc: C (m, n) += A^T B, rows of A (m values) at rowoff[p] */
static void check_tn(int m, int n, int k, const char *path)
{
    int stride = m + 5; /* rows of A apart, as in a padded image */
    size_t alen = (size_t)k * stride + m;
    float *a = randn(alen, 7), *b = randn((size_t)k * n, 8), *c0 = randn((size_t)m * n, 9);
    float *aa = absdup(a, alen), *ab = absdup(b, (size_t)k * n), *ac = absdup(c0, (size_t)m * n);
    int *ro = malloc((size_t)k * sizeof(int));
    for (int p = 0; p < k; p++)
        ro[p] = p * stride;
    float *c = malloc((size_t)m * n * 4), *ref = malloc((size_t)m * n * 4);
    memcpy(c, c0, (size_t)m * n * 4);
    memcpy(ref, c0, (size_t)m * n * 4);
    gemm_tn_acc(c, a, ro, b, m, n, k, n, n);
    gemm_tn_acc_ref(ref, a, ro, b, m, n, k, n, n);
    gemm_tn_acc_ref(ac, aa, ro, ab, m, n, k, n, n); /* |C| + |A|^T |B| */
    char what[64];
    snprintf(what, sizeof(what), "gemm_tn_acc m%d n%d k%d", m, n, k);
    close_all(c, ref, ac, m, n, n, what, path);
    free(a), free(b), free(c0), free(aa), free(ab), free(ac), free(ro), free(c), free(ref);
}

static void check_path(enum kernels_kind kind)
{
    CHECK_INT_EQ(kernels_use(kind), 0);
    const char *path = kernels_name(kind);
    CHECK_INT_EQ(gemm_has_conv_kernels(), kind != KERNELS_KIND_GENERIC);
    static const int ns[] = {16, 32, 48, 64, 10, 9, 1};
    static const int ms[] = {1, 4, 5, 11, 12, 13, 17, 24, 29, 100};
    for (size_t in = 0; in < sizeof(ns) / sizeof(ns[0]); in++)
        for (size_t im = 0; im < sizeof(ms) / sizeof(ms[0]); im++) {
            check_nn(ms[im], ns[in], 27, 0, path);
            check_nn(ms[im], ns[in], 300, 3, path); /* crosses k blocks, strided */
        }
    if (kind == KERNELS_KIND_GENERIC)
        return; /* the conv kernels are only called when gemm_has_conv_kernels() */
    static const int taps[][2] = {{1, 1}, {3, 3}, {5, 5}};
    for (int t = 0; t < 3; t++)
        for (int cn = 0; cn < 4; cn++) {
            static const int chans[][2] = {{3, 16}, {16, 32}, {32, 48}, {5, 64}};
            check_seg(7, 9, taps[t][0], taps[t][1], chans[cn][0], chans[cn][1], path);
            check_seg(1, 1, taps[t][0], taps[t][1], chans[cn][0], chans[cn][1], path);
        }
    check_seg(8, 8, 3, 3, 300, 32, path); /* segment groups of one */
    static const int tm[] = {4, 5, 8, 12, 13, 16, 29, 32, 64};
    static const int tn[] = {16, 32, 48, 64};
    for (size_t i = 0; i < sizeof(tm) / sizeof(tm[0]); i++)
        for (size_t j = 0; j < sizeof(tn) / sizeof(tn[0]); j++) {
            check_tn(tm[i], tn[j], 7, path);
            check_tn(tm[i], tn[j], 250, path); /* crosses k blocks */
        }
}

static void test_paths(void)
{
    int ran = 0;
    for (int k = 0; k < KERNELS_KIND_COUNT; k++)
        if (kernels_supported((enum kernels_kind)k)) {
            fprintf(stderr, "path %s\n", kernels_name((enum kernels_kind)k));
            check_path((enum kernels_kind)k);
            ran++;
        }
    CHECK(ran >= 1);
}

/* kernels.h: names, parsing, TRAIND_KERNELS errors */
static void test_select(void)
{
    enum kernels_kind k;
    for (int i = 0; i < KERNELS_KIND_COUNT; i++) {
        CHECK_INT_EQ(kernels_parse(kernels_name((enum kernels_kind)i), &k), 0);
        CHECK_INT_EQ(k, i);
    }
    CHECK_INT_EQ(kernels_parse("AVX2", &k), -EINVAL);
    CHECK_INT_EQ(kernels_parse("", &k), -EINVAL);
    struct diag d = {0};
    CHECK_INT_EQ(kernels_init("sse9", &d), -EINVAL);
    CHECK_STR_EQ(d.field, "TRAIND_KERNELS");
    CHECK(strstr(d.message, "sse9") != NULL);
    CHECK(kernels_supported(KERNELS_KIND_GENERIC));
    CHECK_INT_EQ(kernels_init(NULL, &d), 0);
    CHECK_INT_EQ(kernels_active(), kernels_best());
    CHECK(kernels_supported(kernels_best()));
    for (int i = 0; i < KERNELS_KIND_COUNT; i++) {
        enum kernels_kind ki = (enum kernels_kind)i;
        memset(&d, 0, sizeof(d));
        int r = kernels_init(kernels_name(ki), &d);
        if (kernels_supported(ki)) {
            CHECK_INT_EQ(r, 0);
            CHECK_INT_EQ(kernels_active(), ki);
        } else {
            CHECK_INT_EQ(r, -ENOTSUP);
            CHECK_STR_EQ(d.field, "TRAIND_KERNELS");
            CHECK_INT_EQ(kernels_use(ki), -ENOTSUP);
        }
    }
    /* the best path is the widest the CPU has */
#ifdef __x86_64__
    __builtin_cpu_init();
    enum kernels_kind want = __builtin_cpu_supports("avx512f") ? KERNELS_KIND_AVX512
                             : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                                 ? KERNELS_KIND_AVX2
                                 : KERNELS_KIND_GENERIC;
    CHECK_INT_EQ(kernels_best(), want);
#else
    CHECK_INT_EQ(kernels_best(), KERNELS_KIND_GENERIC);
#endif
}

int main(void)
{
    /* a TRAIND_KERNELS the test is run with must be valid on this CPU */
    struct diag d = {0};
    int r = kernels_init(getenv("TRAIND_KERNELS"), &d);
    CHECK_MSG(r == 0, "%s: %s", d.field, d.message);
    TEST_RUN(test_select);
    TEST_RUN(test_paths);
    return TEST_EXIT();
}
