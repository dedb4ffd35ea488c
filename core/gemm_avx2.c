/* gemm_avx2.c - the AVX2 + FMA conv GEMM kernels (see gemm.h, gemm_kernels.h):
 * 6x16 register blocks, 12 ymm accumulators.  Compiled with -mavx2 -mfma on
 * its own (core/meson.build); called only when kernels.h selected avx2. */
#include <immintrin.h>

#include "gemm_kernels.h"

#define GEMM_KB 160 /* k block: a 16-column panel of B is 10 KiB */
#define GEMM_TN_KB 96 /* gemm_tn_acc k block */

/* C[0..6)[0..16) (+)= A[0..6)[0..K) * B[0..K)[0..16); acc: add to C */
static void kernel_6x16(float *c, const float *a, const float *b, int k, int lda, int ldb,
                        int ldc, int acc)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (acc) {
        c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
        c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
        c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
        c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
        c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
        c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = _mm256_setzero_ps();
        c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    }
    const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * (long)lda, *a3 = a + 3 * (long)lda;
    const float *a4 = a + 4 * (long)lda, *a5 = a + 5 * (long)lda;
    for (int p = 0; p < k; p++) {
        const float *bp = b + (long)p * ldb;
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        __m256 x;
        x = _mm256_broadcast_ss(a0 + p);
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a1 + p);
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a2 + p);
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a3 + p);
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a4 + p);
        c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a5 + p);
        c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
    c += ldc;
    _mm256_storeu_ps(c, c10), _mm256_storeu_ps(c + 8, c11);
    c += ldc;
    _mm256_storeu_ps(c, c20), _mm256_storeu_ps(c + 8, c21);
    c += ldc;
    _mm256_storeu_ps(c, c30), _mm256_storeu_ps(c + 8, c31);
    c += ldc;
    _mm256_storeu_ps(c, c40), _mm256_storeu_ps(c + 8, c41);
    c += ldc;
    _mm256_storeu_ps(c, c50), _mm256_storeu_ps(c + 8, c51);
}

/* One row: C[0][0..16) (+)= A[0][0..K) * B */
static void kernel_1x16(float *c, const float *a, const float *b, int k, int ldb, int acc)
{
    __m256 c0 = acc ? _mm256_loadu_ps(c) : _mm256_setzero_ps();
    __m256 c1 = acc ? _mm256_loadu_ps(c + 8) : _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        __m256 x = _mm256_broadcast_ss(a + p);
        c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (long)p * ldb), c0);
        c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (long)p * ldb + 8), c1);
    }
    _mm256_storeu_ps(c, c0), _mm256_storeu_ps(c + 8, c1);
}

static void avx2_nn(float *c, const float *a, const float *b, int m, int n, int k, int lda,
                    int ldb, int ldc)
{
    /* a 16-column panel of B (k * 64 bytes) stays in L1 while the row blocks
     * of A stream past it */
    for (int j = 0; j < n; j += 16)
        for (int p = 0; p < k; p += GEMM_KB) {
            int kb = k - p < GEMM_KB ? k - p : GEMM_KB;
            const float *bp = b + (long)p * ldb + j;
            int i = 0;
            for (; i + 6 <= m; i += 6)
                kernel_6x16(c + (long)i * ldc + j, a + (long)i * lda + p, bp, kb, lda, ldb, ldc,
                            p > 0);
            for (; i < m; i++)
                kernel_1x16(c + (long)i * ldc + j, a + (long)i * lda + p, bp, kb, ldb, p > 0);
        }
}

/* Segmented 6x16 block: C (+)= sum_s A_s[0..6) * B_s, segments s0..s1. */
static void kernel_seg_6x16(float *c, const float *a, const int *ro, const long *off, int s0,
                            int s1, const float *b, int k, int ldb, int ldc, int acc)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (acc) {
        c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
        c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
        c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
        c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
        c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
        c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
    } else {
        c00 = c01 = c10 = c11 = c20 = c21 = _mm256_setzero_ps();
        c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    }
    for (int s = s0; s < s1; s++) {
        const float *as = a + off[s];
        const float *a0 = as + ro[0], *a1 = as + ro[1], *a2 = as + ro[2];
        const float *a3 = as + ro[3], *a4 = as + ro[4], *a5 = as + ro[5];
        const float *bs = b + (long)s * k * ldb;
        for (int p = 0; p < k; p++) {
            const float *bp = bs + (long)p * ldb;
            __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
            __m256 x;
            x = _mm256_broadcast_ss(a0 + p);
            c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a1 + p);
            c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a2 + p);
            c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a3 + p);
            c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
            x = _mm256_broadcast_ss(a4 + p);
            c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
            x = _mm256_broadcast_ss(a5 + p);
            c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
        }
    }
    _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
    c += ldc;
    _mm256_storeu_ps(c, c10), _mm256_storeu_ps(c + 8, c11);
    c += ldc;
    _mm256_storeu_ps(c, c20), _mm256_storeu_ps(c + 8, c21);
    c += ldc;
    _mm256_storeu_ps(c, c30), _mm256_storeu_ps(c + 8, c31);
    c += ldc;
    _mm256_storeu_ps(c, c40), _mm256_storeu_ps(c + 8, c41);
    c += ldc;
    _mm256_storeu_ps(c, c50), _mm256_storeu_ps(c + 8, c51);
}

static void kernel_seg_1x16(float *c, const float *a, const long *off, int s0, int s1,
                            const float *b, int k, int ldb, int acc)
{
    __m256 c0 = acc ? _mm256_loadu_ps(c) : _mm256_setzero_ps();
    __m256 c1 = acc ? _mm256_loadu_ps(c + 8) : _mm256_setzero_ps();
    for (int s = s0; s < s1; s++) {
        const float *as = a + off[s], *bs = b + (long)s * k * ldb;
        for (int p = 0; p < k; p++) {
            __m256 x = _mm256_broadcast_ss(as + p);
            c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(bs + (long)p * ldb), c0);
            c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(bs + (long)p * ldb + 8), c1);
        }
    }
    _mm256_storeu_ps(c, c0), _mm256_storeu_ps(c + 8, c1);
}

static void avx2_nn_seg(float *c, const float *a, const int *rowoff, const long *off,
                        int nseg, const float *b, int m, int n, int k, int ldb, int ldc)
{
    /* segments per pass so that the 16-column panel of B stays around 16 KiB */
    int group = (16 * 1024) / (k * 64);
    if (group < 1)
        group = 1;
    for (int j = 0; j < n; j += 16)
        for (int s0 = 0; s0 < nseg; s0 += group) {
            int s1 = s0 + group < nseg ? s0 + group : nseg;
            int i = 0;
            for (; i + 6 <= m; i += 6)
                kernel_seg_6x16(c + (long)i * ldc + j, a, rowoff + i, off, s0, s1, b + j, k, ldb,
                                ldc, s0 > 0);
            for (; i < m; i++)
                kernel_seg_1x16(c + (long)i * ldc + j, a + rowoff[i], off, s0, s1, b + j, k, ldb,
                                s0 > 0);
        }
}

/* C[0..6)[0..16) += sum_p A[p][0..6) * B[p][0..16) (12 accumulators: enough
 * independent FMAs in flight to cover their latency) */
static void kernel_tn_6x16(float *c, const float *a, const int *ro, const float *b, int k,
                           int ldb, int ldc)
{
    __m256 c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
    __m256 c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
    __m256 c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    __m256 c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    __m256 c40 = _mm256_loadu_ps(c + 4 * ldc), c41 = _mm256_loadu_ps(c + 4 * ldc + 8);
    __m256 c50 = _mm256_loadu_ps(c + 5 * ldc), c51 = _mm256_loadu_ps(c + 5 * ldc + 8);
    for (int p = 0; p < k; p++) {
        const float *ap = a + ro[p], *bp = b + (long)p * ldb;
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        __m256 x;
        x = _mm256_broadcast_ss(ap);
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(ap + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(ap + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(ap + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(ap + 4);
        c40 = _mm256_fmadd_ps(x, b0, c40), c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(ap + 5);
        c50 = _mm256_fmadd_ps(x, b0, c50), c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
    c += ldc;
    _mm256_storeu_ps(c, c10), _mm256_storeu_ps(c + 8, c11);
    c += ldc;
    _mm256_storeu_ps(c, c20), _mm256_storeu_ps(c + 8, c21);
    c += ldc;
    _mm256_storeu_ps(c, c30), _mm256_storeu_ps(c + 8, c31);
    c += ldc;
    _mm256_storeu_ps(c, c40), _mm256_storeu_ps(c + 8, c41);
    c += ldc;
    _mm256_storeu_ps(c, c50), _mm256_storeu_ps(c + 8, c51);
}

/* C[0..4)[0..16) += sum_p A[p][0..4) * B[p][0..16) */
static void kernel_tn_4x16(float *c, const float *a, const int *ro, const float *b, int k,
                           int ldb, int ldc)
{
    __m256 c00 = _mm256_loadu_ps(c), c01 = _mm256_loadu_ps(c + 8);
    __m256 c10 = _mm256_loadu_ps(c + ldc), c11 = _mm256_loadu_ps(c + ldc + 8);
    __m256 c20 = _mm256_loadu_ps(c + 2 * ldc), c21 = _mm256_loadu_ps(c + 2 * ldc + 8);
    __m256 c30 = _mm256_loadu_ps(c + 3 * ldc), c31 = _mm256_loadu_ps(c + 3 * ldc + 8);
    for (int p = 0; p < k; p++) {
        const float *ap = a + ro[p], *bp = b + (long)p * ldb;
        __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
        __m256 x;
        x = _mm256_broadcast_ss(ap);
        c00 = _mm256_fmadd_ps(x, b0, c00), c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(ap + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10), c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(ap + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20), c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(ap + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30), c31 = _mm256_fmadd_ps(x, b1, c31);
    }
    _mm256_storeu_ps(c, c00), _mm256_storeu_ps(c + 8, c01);
    c += ldc;
    _mm256_storeu_ps(c, c10), _mm256_storeu_ps(c + 8, c11);
    c += ldc;
    _mm256_storeu_ps(c, c20), _mm256_storeu_ps(c + 8, c21);
    c += ldc;
    _mm256_storeu_ps(c, c30), _mm256_storeu_ps(c + 8, c31);
}

static void kernel_tn_1x16(float *c, const float *a, const int *ro, const float *b, int k,
                           int ldb)
{
    __m256 c0 = _mm256_loadu_ps(c), c1 = _mm256_loadu_ps(c + 8);
    for (int p = 0; p < k; p++) {
        __m256 x = _mm256_broadcast_ss(a + ro[p]);
        c0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (long)p * ldb), c0);
        c1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b + (long)p * ldb + 8), c1);
    }
    _mm256_storeu_ps(c, c0), _mm256_storeu_ps(c + 8, c1);
}

static void avx2_tn_acc(float *c, const float *a, const int *rowoff, const float *b, int m,
                        int n, int k, int ldb, int ldc)
{
    /* k blocks of GEMM_TN_KB rows: the A and B rows of a block stay in L1
     * while every (i, j) block of C passes over them */
    for (int p0 = 0; p0 < k; p0 += GEMM_TN_KB) {
        int kb = k - p0 < GEMM_TN_KB ? k - p0 : GEMM_TN_KB;
        const int *ro = rowoff + p0;
        const float *bp = b + (long)p0 * ldb;
        for (int j = 0; j < n; j += 16) {
            /* 6-row blocks, and 4-row blocks for a remainder of 8 (C = 32: 6*4 + 4*2) */
            int m6 = m % 6 == 2 && m >= 8 ? m - 8 : m, i = 0;
            for (; i + 6 <= m6; i += 6)
                kernel_tn_6x16(c + (long)i * ldc + j, a + i, ro, bp + j, kb, ldb, ldc);
            for (; i + 4 <= m; i += 4)
                kernel_tn_4x16(c + (long)i * ldc + j, a + i, ro, bp + j, kb, ldb, ldc);
            for (; i < m; i++)
                kernel_tn_1x16(c + (long)i * ldc + j, a + i, ro, bp + j, kb, ldb);
        }
    }
}

const struct gemm_kernels gemm_kernels_avx2 = {
    .nn = avx2_nn,
    .nn_seg = avx2_nn_seg,
    .tn_acc = avx2_tn_acc,
};
