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

#endif
