/* conv2d_winograd.h - Winograd F(2x2, 3x3) for stride-1 3x3 convolutions
 * (internal to conv2d.c; tests call it directly).
 *
 * Each 2x2 block of outputs ("tile") is computed from the 4x4 input patch
 * under it as Y = A^T [ (G g G^T) .* (B^T d B) ] A per channel pair, summed
 * over the input channels: 16 multiplications per tile and channel pair
 * instead of the direct algorithm's 36.  Batched GEMM form:
 *   U[xi] (C, K)      = the filter transform, once per call;
 *   V[xi] (tiles, C)  = the input transform of a block of tiles;
 *   M[xi] (tiles, K)  = V[xi] U[xi], 16 GEMMs through gemm_nn (the active
 *                       kernel path's kernel when K % 16 == 0, else cblas);
 *   out               = the inverse transform of M with bias and activation.
 * Tiles run over (image, tile row, tile column) in blocks sized to stay in L2.
 * Every output element is computed by the same operations in the same order
 * whatever the block it falls in, so results do not depend on the batch split
 * between threads on the avx2/avx512 paths (the generic path's cblas may sum
 * differently for another block height). */
#ifndef TRAIND_CONV2D_WINOGRAD_H
#define TRAIND_CONV2D_WINOGRAD_H

#include <stdbool.h>
#include <stddef.h>

#include "layers.h"

/* True when g is a 3x3 stride-1 convolution (any pads): the shapes
 * conv2d_winograd_forward accepts. */
bool conv2d_winograd_shape(const struct conv2d_geom *g);
/* conv2d_winograd_shape and enough channels in and out to pay for the
 * transforms (scratch is sized for these whatever the switch below says). */
bool conv2d_winograd_fits(const struct conv2d_geom *g);
/* True when conv2d_forward runs g with Winograd (the engine's choice:
 * conv2d_winograd_fits, unless TRAIND_CONV_ALGO=direct, see kernels.h). */
bool conv2d_winograd_pays(const struct conv2d_geom *g);
/* Floats of scratch conv2d_winograd_forward needs for g. */
size_t conv2d_winograd_scratch_floats(const struct conv2d_geom *g);

/* Floats of U, the filter transform (16, C, K) of a (3, 3, C, K) kernel, and
 * U itself (with the active kernel path's transform) */
size_t conv2d_winograd_u_floats(const struct conv2d_geom *g);
void conv2d_winograd_filter(float *u, const float *weight, const struct conv2d_geom *g);

/* conv2d_forward's contract for a conv2d_winograd_shape geometry. */
void conv2d_winograd_forward(float *out,          /* (N, OH, OW, K) */
                             float *scratch,      /* (conv2d_winograd_scratch_floats) */
                             const float *inp,    /* (N, H, W, C) */
                             const float *weight, /* (3, 3, C, K) */
                             const float *bias,   /* (K) or NULL */
                             enum activation_kind act, int n, const struct conv2d_geom *g);
/* The same with wu, U of weight (conv2d_winograd_filter), instead of
 * transforming weight (when wu is not NULL), and, when scale is not NULL,
 * every output y = y * scale[k] + shift[k] after bias and activation in the
 * inverse transform's store (act must then be linear or ReLU).  With pool
 * (OH and OW even, act linear or ReLU) out is (N, OH/2, OW/2, K): the 2x2
 * stride-2 max pooling of that, each tile being one pooling window. */
void conv2d_winograd_forward_post(float *out, float *scratch, const float *inp,
                                  const float *weight, const float *wu, const float *bias,
                                  enum activation_kind act, const float *scale,
                                  const float *shift, bool pool, int n,
                                  const struct conv2d_geom *g);

#endif
