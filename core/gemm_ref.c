/* gemm_ref.c - plain-loop references for gemm.h: what every kernel path
 * computes, written for reading, not speed.  Sums are accumulated in double, so the
 * references are closer to the exact product than any kernel path. */
#include "gemm.h"

void gemm_nn_ref(float *c, const float *a, const float *b, int m, int n, int k, int lda, int ldb,
                 int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)a[(long)i * lda + p] * b[(long)p * ldb + j];
            c[(long)i * ldc + j] = (float)s;
        }
}

void gemm_nn_seg_ref(float *c, const float *a, const int *rowoff, const long *off, int nseg,
                     const float *b, int m, int n, int k, int ldb, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int seg = 0; seg < nseg; seg++) {
                const float *as = a + off[seg] + rowoff[i];       /* A_s row i */
                const float *bs = b + (long)seg * k * ldb;        /* B_s */
                for (int p = 0; p < k; p++)
                    s += (double)as[p] * bs[(long)p * ldb + j];
            }
            c[(long)i * ldc + j] = (float)s;
        }
}

void gemm_tn_acc_ref(float *c, const float *a, const int *rowoff, const float *b, int m, int n,
                     int k, int ldb, int ldc)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = c[(long)i * ldc + j];
            for (int p = 0; p < k; p++)
                s += (double)a[rowoff[p] + i] * b[(long)p * ldb + j]; /* A^T[i][p] = row p of A, col i */
            c[(long)i * ldc + j] = (float)s;
        }
}
