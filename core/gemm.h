/* gemm.h - the engine's own small-N matrix products for convolution GEMMs.
 *
 * C (M, N) = A (M, K) * B (K, N), row-major with leading dimensions.  When
 * N is a multiple of 16 (Conv2D filters 16, 32, 64, ...) and the active
 * kernel path (kernels.h) is avx2 or avx512, a register-blocked kernel runs
 * it (gemm_avx2.c: 6x16 tiles; gemm_avx512.c: 12x32 tiles in 24 of the 32 zmm
 * registers): A's rows are read in place (no packing, they are an im2col chunk
 * already in cache) and a column panel of B stays in L1.  OpenBLAS handles
 * this tall-skinny shape at well below its peak.  Otherwise cblas_sgemm.
 * The plain-loop references (gemm_ref.c) define what every path computes. */
#ifndef TRAIND_GEMM_H
#define TRAIND_GEMM_H

void gemm_nn(float *c,       /* (M, N), row stride ldc; overwritten */
             const float *a, /* (M, K), row stride lda */
             const float *b, /* (K, N), row stride ldb */
             int m, int n, int k, int lda, int ldb, int ldc);

/* Implicit-GEMM convolution: C (M, N) = sum over s < nseg of A_s (M, K) * B_s (K, N)
 * where row i of A_s starts at a + rowoff[i] + off[s] and B_s = b + s * K * ldb.
 * A stride-1 convolution over a zero-padded image is this with one segment per
 * kernel tap (off = the tap's shift) and rowoff = each output position's place
 * in the padded image.  Requires N % 16 == 0 and gemm_has_conv_kernels(). */
void gemm_nn_seg(float *c, const float *a, const int *rowoff, const long *off, int nseg,
                 const float *b, int m, int n, int k, int ldb, int ldc);
/* C (M, N) += A^T B where row p of A (M values) starts at a + rowoff[p], B (K, N)
 * row stride ldb.  Requires N % 16 == 0 and gemm_has_conv_kernels(). */
void gemm_tn_acc(float *c, const float *a, const int *rowoff, const float *b, int m, int n, int k,
                 int ldb, int ldc);
/* True when the active path has gemm_nn_seg / gemm_tn_acc (avx2, avx512). */
int gemm_has_conv_kernels(void);

/* Plain-loop references (gemm_ref.c), same arguments and contracts, any N. */
void gemm_nn_ref(float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb,
                 int ldc);
void gemm_nn_seg_ref(float *c, const float *a, const int *rowoff, const long *off, int nseg,
                     const float *b, int m, int n, int k, int ldb, int ldc);
void gemm_tn_acc_ref(float *c, const float *a, const int *rowoff, const float *b, int m, int n,
                     int k, int ldb, int ldc);

#endif
