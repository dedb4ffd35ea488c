/* dense.c - Dense (fully connected) forward and backward with cblas_sgemm
 * (see layers.h).  Kernel (IN, OUT) as Keras stores it. */
#include <cblas.h>

#include "gemm.h"
#include "layers.h"

void dense_forward(float *out, const float *inp, const float *weight, const float *bias,
                   enum activation_kind act, int n, int in, int outdim)
{
    if (n <= 0)
        return;
    /* out (N, OUT) = inp (N, IN) * W (IN, OUT) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, outdim, in, 1.0f, inp, in, weight,
                outdim, 0.0f, out, outdim);
    activation_bias_forward(out, bias, (size_t)n, outdim, act);
}

void dense_forward_infer(float *out, const float *inp, const float *weight, const float *bias,
                         enum activation_kind act, int n, int in, int outdim)
{
    if (n <= 0)
        return;
    gemm_nn(out, inp, weight, n, outdim, in, in, outdim, outdim);
    activation_bias_forward(out, bias, (size_t)n, outdim, act);
}

void dense_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                    const float *inp, const float *weight, int n, int in, int outdim)
{
    if (n <= 0)
        return;
    if (dbias)
        for (int r = 0; r < n; r++)
            for (int o = 0; o < outdim; o++)
                dbias[o] += dout[(size_t)r * outdim + o];
    /* dW (IN, OUT) += inp^T (IN, N) * dout (N, OUT) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, outdim, n, 1.0f, inp, in, dout,
                outdim, 1.0f, dweight, outdim);
    /* dinp (N, IN) = dout (N, OUT) * W^T (OUT, IN) */
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, in, outdim, 1.0f, dout, outdim,
                    weight, outdim, 0.0f, dinp, in);
}
