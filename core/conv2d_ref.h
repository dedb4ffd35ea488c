/* conv2d_ref.h - plain-loop references for conv2d.c: the definition of what
 * every convolution path (pointwise, im2col, implicit GEMM, single input
 * channel; forward, input gradient, weight gradient) on every kernel path
 * computes.  Direct loops over the geometry, sums accumulated in double; no
 * scratch, no blocking.  For tests: slow by design. */
#ifndef TRAIND_CONV2D_REF_H
#define TRAIND_CONV2D_REF_H

#include "layers.h"

/* out = act(conv(inp, weight) + bias); bias may be NULL. */
void conv2d_forward_ref(float *out,          /* (N, OH, OW, K) */
                        const float *inp,    /* (N, H, W, C) */
                        const float *weight, /* (KH, KW, C, K) */
                        const float *bias,   /* (K) or NULL */
                        enum activation_kind act, int n, const struct conv2d_geom *g);

/* conv2d_backward's contract: dinp (may be NULL) overwritten, dweight and
 * dbias (may be NULL) added to. */
void conv2d_backward_ref(float *dinp,         /* (N, H, W, C) or NULL */
                         float *dweight,      /* (KH, KW, C, K) */
                         float *dbias,        /* (K) or NULL */
                         const float *dout,   /* (N, OH, OW, K) */
                         const float *inp,    /* (N, H, W, C) */
                         const float *weight, /* (KH, KW, C, K) */
                         int n, const struct conv2d_geom *g);

/* The Winograd F(2x2, 3x3) algorithm of conv2d_winograd.c run on magnitudes:
 * |A^T| [ (|G| |weight| |G|^T) .* (|B^T| |inp| |B|) ] |A| + |bias| per output,
 * in double.  Every rounding of conv2d_winograd_forward is relative to a
 * partial sum of these terms, so its error on an output is at most
 * gamma(C + 11) = (C + 11) u / (1 - (C + 11) u) times this value
 * (u = 2^-24): 2 roundings in the input transform, 4 in the filter transform,
 * C in the product and the channel sum, 4 in the output transform, 1 for
 * the bias (ReLU does not increase a difference). */
void conv2d_winograd_scale_ref(float *scale,        /* (N, OH, OW, K) */
                               const float *inp,    /* (N, H, W, C) */
                               const float *weight, /* (3, 3, C, K) */
                               const float *bias,   /* (K) or NULL */
                               int n, const struct conv2d_geom *g);

#endif
