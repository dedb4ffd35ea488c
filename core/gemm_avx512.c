/* gemm_avx512.c - the AVX-512F conv GEMM kernels (see gemm.h, gemm_kernels.h).
 *
 * Register blocking for the 32 zmm registers: a 12x32 tile of C is 24
 * accumulators (12 rows x 2 zmm of 16 floats), plus 2 registers for the row of
 * B and 1 for the broadcast A value; each step of k is 24 independent FMAs,
 * enough to cover the FMA latency on two pipes.  A 16-column remainder panel
 * uses 12x16 tiles, a row remainder 4-row and 1-row tiles.  Compiled with
 * -mavx512f -mfma on its own (core/meson.build); called only when kernels.h
 * selected avx512.
 *
 * The tiles are written once as macros over constant R (rows) and V (zmm per
 * row); GCC unrolls the constant loops and keeps acc[][] in registers. */
#include <immintrin.h>

#include "gemm_kernels.h"

#define NN_KB 128   /* gemm_nn k block: a 32-column panel of B is 16 KiB */
#define TN_KB 96    /* tn_acc k block: A and B rows of a block stay in L1 */
#define SEG_PANEL (16 * 1024) /* bytes of B per gemm_nn_seg pass */

#define UNROLL _Pragma("GCC unroll 16")

#define ACC_INIT(R, V)                                                                 \
    __m512 t[R][V];                                                                    \
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int v = 0; v < V; v++) t[r][v] =    \
        acc ? _mm512_loadu_ps(c + (long)r * ldc + 16 * v) : _mm512_setzero_ps();

#define ACC_STORE(R, V)                                                                \
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int v = 0; v < V; v++)              \
        _mm512_storeu_ps(c + (long)r * ldc + 16 * v, t[r][v]);

/* one k step: t[r][:] += A(r, p) * B(p, :) with A(r, p) at AV(r) */
#define FMA_STEP(R, V, BP, AV)                                                         \
    {                                                                                  \
        __m512 bv[V];                                                                  \
        UNROLL for (int v = 0; v < V; v++) bv[v] = _mm512_loadu_ps((BP) + 16 * v);     \
        UNROLL for (int r = 0; r < R; r++)                                             \
        {                                                                              \
            __m512 x = _mm512_set1_ps(AV(r));                                          \
            UNROLL for (int v = 0; v < V; v++) t[r][v] = _mm512_fmadd_ps(x, bv[v], t[r][v]); \
        }                                                                              \
    }

/* C[0..R)[0..16V) (+)= A[0..R)[0..K) B[0..K)[0..16V); rows of A lda apart */
#define DEF_NN(R, V)                                                                   \
    static void nn_##R##x##V(float *c, const float *a, const float *b, int k, int lda,  \
                             int ldb, int ldc, int acc)                                \
    {                                                                                  \
        ACC_INIT(R, V)                                                                 \
        for (int p = 0; p < k; p++) {                                                  \
            const float *ap = a + p;                                                   \
            FMA_STEP(R, V, b + (long)p * ldb, NN_A)                                    \
        }                                                                              \
        ACC_STORE(R, V)                                                                \
    }
#define NN_A(r) ap[(long)(r) * lda]

/* C[0..R)[0..16V) (+)= sum over s in [s0, s1) of A_s[0..R) B_s, row r of A_s at
 * a + off[s] + ro[r] */
#define DEF_SEG(R, V)                                                                  \
    static void seg_##R##x##V(float *c, const float *a, const int *ro, const long *off, \
                              int s0, int s1, const float *b, int k, int ldb, int ldc,  \
                              int acc)                                                 \
    {                                                                                  \
        ACC_INIT(R, V)                                                                 \
        for (int s = s0; s < s1; s++) {                                                \
            const float *ar[R];                                                        \
            UNROLL for (int r = 0; r < R; r++) ar[r] = a + off[s] + ro[r];             \
            const float *bs = b + (long)s * k * ldb;                                   \
            for (int p = 0; p < k; p++)                                                \
                FMA_STEP(R, V, bs + (long)p * ldb, SEG_A)                              \
        }                                                                              \
        ACC_STORE(R, V)                                                                \
    }
#define SEG_A(r) ar[r][p]

/* C[0..R)[0..16V) += sum_p A[p][0..R) B[p][0..16V), row p of A at a + ro[p] */
#define DEF_TN(R, V)                                                                   \
    static void tn_##R##x##V(float *c, const float *a, const int *ro, const float *b,   \
                             int k, int ldb, int ldc)                                  \
    {                                                                                  \
        const int acc = 1;                                                             \
        ACC_INIT(R, V)                                                                 \
        for (int p = 0; p < k; p++) {                                                  \
            const float *ap = a + ro[p];                                               \
            FMA_STEP(R, V, b + (long)p * ldb, TN_A)                                    \
        }                                                                              \
        ACC_STORE(R, V)                                                                \
    }
#define TN_A(r) ap[r]

DEF_NN(12, 2)
DEF_NN(12, 1)
DEF_NN(4, 2)
DEF_NN(4, 1)
DEF_NN(1, 2)
DEF_NN(1, 1)
DEF_SEG(12, 2)
DEF_SEG(12, 1)
DEF_SEG(4, 2)
DEF_SEG(4, 1)
DEF_SEG(1, 2)
DEF_SEG(1, 1)
DEF_TN(12, 2)
DEF_TN(12, 1)
DEF_TN(4, 2)
DEF_TN(4, 1)
DEF_TN(1, 2)
DEF_TN(1, 1)

/* rows i..m of one panel (V = 2: 32 columns, else 16) with the R = 12, 4, 1
 * tiles; CALL(R, V) runs one tile at row i */
#define ROW_TILES(V, CALL)                                                             \
    do {                                                                               \
        int i = 0;                                                                     \
        if ((V) == 2) {                                                                \
            for (; i + 12 <= m; i += 12) CALL(12, 2);                                  \
            for (; i + 4 <= m; i += 4) CALL(4, 2);                                     \
            for (; i < m; i++) CALL(1, 2);                                             \
        } else {                                                                       \
            for (; i + 12 <= m; i += 12) CALL(12, 1);                                  \
            for (; i + 4 <= m; i += 4) CALL(4, 1);                                     \
            for (; i < m; i++) CALL(1, 1);                                             \
        }                                                                              \
    } while (0)

static void avx512_nn(float *c, const float *a, const float *b, int m, int n, int k, int lda,
                      int ldb, int ldc)
{
    for (int j = 0; j < n;) {
        int v = n - j >= 32 ? 2 : 1;
        for (int p = 0; p < k; p += NN_KB) {
            int kb = k - p < NN_KB ? k - p : NN_KB;
            const float *bp = b + (long)p * ldb + j;
#define NN_CALL(R, V) nn_##R##x##V(c + (long)i * ldc + j, a + (long)i * lda + p, bp, kb, lda, \
                                   ldb, ldc, p > 0)
            ROW_TILES(v, NN_CALL);
#undef NN_CALL
        }
        j += 16 * v;
    }
}

static void avx512_nn_seg(float *c, const float *a, const int *rowoff, const long *off,
                          int nseg, const float *b, int m, int n, int k, int ldb, int ldc)
{
    for (int j = 0; j < n;) {
        int v = n - j >= 32 ? 2 : 1;
        /* segments per pass so that the panel of B stays around SEG_PANEL bytes */
        int group = SEG_PANEL / (k * 64 * v);
        if (group < 1)
            group = 1;
        for (int s0 = 0; s0 < nseg; s0 += group) {
            int s1 = s0 + group < nseg ? s0 + group : nseg;
#define SEG_CALL(R, V) seg_##R##x##V(c + (long)i * ldc + j, a, rowoff + i, off, s0, s1, b + j, \
                                     k, ldb, ldc, s0 > 0)
            ROW_TILES(v, SEG_CALL);
#undef SEG_CALL
        }
        j += 16 * v;
    }
}

static void avx512_tn_acc(float *c, const float *a, const int *rowoff, const float *b, int m,
                          int n, int k, int ldb, int ldc)
{
    for (int p0 = 0; p0 < k; p0 += TN_KB) {
        int kb = k - p0 < TN_KB ? k - p0 : TN_KB;
        const int *ro = rowoff + p0;
        const float *bp = b + (long)p0 * ldb;
        for (int j = 0; j < n;) {
            int v = n - j >= 32 ? 2 : 1;
#define TN_CALL(R, V) tn_##R##x##V(c + (long)i * ldc + j, a + i, ro, bp + j, kb, ldb, ldc)
            ROW_TILES(v, TN_CALL);
#undef TN_CALL
            j += 16 * v;
        }
    }
}

const struct gemm_kernels gemm_kernels_avx512 = {
    .nn = avx512_nn,
    .nn_seg = avx512_nn_seg,
    .tn_acc = avx512_tn_acc,
};
