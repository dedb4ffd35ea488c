/* layers_isa.h - forced into each compilation of the elementwise layer files
 * (activation.c, batchnorm.c, pooling.c, dropout.c, global_pool.c, merge.c) by core/meson.build with
 * -include, next to -DLAYERS_ISA_SUFFIX=_generic or _avx2: every public
 * function of those files gets the suffix, so the files are built twice (plain
 * and with -mavx2 -mfma, where GCC vectorises their loops 8 floats wide)
 * without a change to their source.  layers_isa.c defines the public names
 * and calls the copy for the active kernel path (kernels.h).  A new public
 * function in those files must be listed here and in layers_isa.c (the
 * build fails with a duplicate symbol otherwise).
 *
 * Both copies compute bit-identical results: ISO C mode does not contract
 * a * b + c into FMAs, and GCC vectorises no float reduction without
 * -fassociative-math, so only the width of the element-wise loops differs. */
#ifndef TRAIND_LAYERS_ISA_H
#define TRAIND_LAYERS_ISA_H

#define LAYERS_ISA_CAT2(a, b) a##b
#define LAYERS_ISA_CAT(a, b) LAYERS_ISA_CAT2(a, b)
#define LAYERS_ISA(name) LAYERS_ISA_CAT(name, LAYERS_ISA_SUFFIX)

#define activation_forward LAYERS_ISA(activation_forward)
#define activation_bias_forward LAYERS_ISA(activation_bias_forward)
#define activation_bias_copy LAYERS_ISA(activation_bias_copy)
#define activation_backward LAYERS_ISA(activation_backward)
#define batchnorm_stats_accumulate LAYERS_ISA(batchnorm_stats_accumulate)
#define batchnorm_stats_finalize LAYERS_ISA(batchnorm_stats_finalize)
#define batchnorm_forward LAYERS_ISA(batchnorm_forward)
#define batchnorm_update_moving LAYERS_ISA(batchnorm_update_moving)
#define batchnorm_backward_accumulate LAYERS_ISA(batchnorm_backward_accumulate)
#define batchnorm_backward LAYERS_ISA(batchnorm_backward)
#define pool2d_geom_init LAYERS_ISA(pool2d_geom_init)
#define maxpool2d_forward LAYERS_ISA(maxpool2d_forward)
#define maxpool2d_backward LAYERS_ISA(maxpool2d_backward)
#define avgpool2d_forward LAYERS_ISA(avgpool2d_forward)
#define avgpool2d_backward LAYERS_ISA(avgpool2d_backward)
#define dropout_mask LAYERS_ISA(dropout_mask)
#define dropout_forward LAYERS_ISA(dropout_forward)
#define dropout_backward LAYERS_ISA(dropout_backward)
#define activation_backward_x LAYERS_ISA(activation_backward_x)
#define relu_layer_forward LAYERS_ISA(relu_layer_forward)
#define relu_layer_backward LAYERS_ISA(relu_layer_backward)
#define elu_layer_forward LAYERS_ISA(elu_layer_forward)
#define elu_layer_backward LAYERS_ISA(elu_layer_backward)
#define rescaling_forward LAYERS_ISA(rescaling_forward)
#define rescaling_backward LAYERS_ISA(rescaling_backward)
#define global_avgpool_forward LAYERS_ISA(global_avgpool_forward)
#define global_avgpool_backward LAYERS_ISA(global_avgpool_backward)
#define global_maxpool_forward LAYERS_ISA(global_maxpool_forward)
#define global_maxpool_backward LAYERS_ISA(global_maxpool_backward)
#define zero_padding2d_forward LAYERS_ISA(zero_padding2d_forward)
#define zero_padding2d_backward LAYERS_ISA(zero_padding2d_backward)
#define add_forward LAYERS_ISA(add_forward)
#define concat_forward LAYERS_ISA(concat_forward)
#define concat_backward_part LAYERS_ISA(concat_backward_part)
#define spatial_dropout_mask LAYERS_ISA(spatial_dropout_mask)

#endif
