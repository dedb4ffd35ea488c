/* conv2d_general.h - the dilated / grouped Conv2D path (conv2d_general.c),
 * which conv2d.c's conv2d_forward / conv2d_backward dispatch to when
 * conv2d_geom_general(g). */
#ifndef TRAIND_CONV2D_GENERAL_H
#define TRAIND_CONV2D_GENERAL_H

#include "layers.h"

size_t conv2d_general_scratch_floats(const struct conv2d_geom *g);
void conv2d_general_forward(float *out, float *scratch, const float *inp, const float *weight,
                            const float *bias, enum activation_kind act, int n,
                            const struct conv2d_geom *g);
void conv2d_general_backward(float *dinp, float *dweight, float *dbias, float *scratch,
                             const float *dout, const float *inp, const float *weight, int n,
                             const struct conv2d_geom *g);

#endif
