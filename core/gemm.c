/* gemm.c - see gemm.h: dispatch to the active path's kernels, cblas otherwise. */
#include "gemm.h"

#include <cblas.h>
#include <stddef.h>

#include "gemm_kernels.h"
#include "kernels.h"

static const struct gemm_kernels *active_kernels(void)
{
    switch (kernels_active()) {
#ifdef TRAIND_X86_KERNELS
    case KERNELS_KIND_AVX2:
        return &gemm_kernels_avx2;
    case KERNELS_KIND_AVX512:
        return &gemm_kernels_avx512;
#endif
    default:
        return NULL;
    }
}

int gemm_has_conv_kernels(void)
{
    return active_kernels() != NULL;
}

void gemm_nn(float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb,
             int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    const struct gemm_kernels *t = active_kernels();
    if (t && n % 16 == 0)
        t->nn(c, a, b, m, n, k, lda, ldb, ldc);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb,
                    0.0f, c, ldc);
}

/* Callers check gemm_has_conv_kernels() first; without kernels these run the
 * references so that a wrong call is slow, not wrong. */
void gemm_nn_seg(float *c, const float *a, const int *rowoff, const long *off, int nseg,
                 const float *b, int m, int n, int k, int ldb, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    const struct gemm_kernels *t = active_kernels();
    if (t && n % 16 == 0)
        t->nn_seg(c, a, rowoff, off, nseg, b, m, n, k, ldb, ldc);
    else
        gemm_nn_seg_ref(c, a, rowoff, off, nseg, b, m, n, k, ldb, ldc);
}

void gemm_tn_acc(float *c, const float *a, const int *rowoff, const float *b, int m, int n, int k,
                 int ldb, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    const struct gemm_kernels *t = active_kernels();
    if (t && n % 16 == 0)
        t->tn_acc(c, a, rowoff, b, m, n, k, ldb, ldc);
    else
        gemm_tn_acc_ref(c, a, rowoff, b, m, n, k, ldb, ldc);
}
