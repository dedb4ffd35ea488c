/* winograd_transforms.h - the F(2x2, 3x3) transforms of conv2d_winograd.c
 * (internal to it).  winograd_transforms.c is compiled once per kernel path
 * (core/meson.build: plain, -mavx2 -mfma, -mavx512f -mfma), where GCC
 * vectorises the channel loops 4, 8 or 16 floats wide; each copy exports one
 * table.  The copies compute bit-identical results: the transforms only add,
 * subtract and halve, and ISO C mode contracts nothing into FMAs. */
#ifndef TRAIND_WINOGRAD_TRANSFORMS_H
#define TRAIND_WINOGRAD_TRANSFORMS_H

#include <stdbool.h>
#include <stddef.h>

struct winograd_transforms {
    /* U[xi][c][k] = (G g G^T)[xi] of the (3, 3, C, K) kernel */
    void (*filter)(float *u, const float *weight, int C, int K);
    /* V[xi][0..C) at v + xi * vs = (B^T d B)[xi] for the 4x4 patch whose
     * pixels (C-vectors, input or zeros) start at p[0..16), row-major */
    void (*input)(float *v, size_t vs, const float *const p[16], int C);
    /* the 2x2 outputs q[0..4) (K-vectors, row-major) = A^T M A + bias
     * (may be NULL), then ReLU when relu, then y * scale + shift when scale
     * is not NULL (an inference BatchNormalization; shift then too);
     * M[xi][0..K) at m + xi * ms.  With pool, only q[0] is written: the
     * maximum of the four (a 2x2 stride-2 MaxPooling2D window, compared in
     * maxpool2d_forward's order) */
    void (*output)(float *const q[4], const float *m, size_t ms, const float *bias, bool relu,
                   const float *scale, const float *shift, bool pool, int K);
};

extern const struct winograd_transforms winograd_transforms_generic;
extern const struct winograd_transforms winograd_transforms_avx2;
extern const struct winograd_transforms winograd_transforms_avx512;

#endif
