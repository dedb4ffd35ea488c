/* gemm_kernels.h - the per-ISA conv GEMM kernels behind gemm.h (internal to
 * gemm*.c).  Each instruction set's file is compiled on its own with that
 * set's flags (core/meson.build) and exports one table; gemm.c calls the
 * table of the active path (kernels.h).  Every entry requires N % 16 == 0
 * and M > 0; the contracts are gemm.h's. */
#ifndef TRAIND_GEMM_KERNELS_H
#define TRAIND_GEMM_KERNELS_H

struct gemm_kernels {
    void (*nn)(float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb,
               int ldc);
    void (*nn_seg)(float *c, const float *a, const int *rowoff, const long *off, int nseg,
                   const float *b, int m, int n, int k, int ldb, int ldc);
    void (*tn_acc)(float *c, const float *a, const int *rowoff, const float *b, int m, int n,
                   int k, int ldb, int ldc);
};

extern const struct gemm_kernels gemm_kernels_avx2;   /* gemm_avx2.c */
extern const struct gemm_kernels gemm_kernels_avx512; /* gemm_avx512.c */

#endif
