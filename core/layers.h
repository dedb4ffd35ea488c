/* layers.h - the engine's layer kernels as pairs of free functions
 * (llm.c style): <layer>_forward(out, inp, params..., sizes) and
 * <layer>_backward(dinp, dparams..., dout, inp, params..., sizes).
 *
 * Conventions:
 *   - tensors are float32 NHWC; a per-example shape (H, W, C) is stored
 *     row-major, so "rows" of a channel-wise op are N*H*W rows of C floats;
 *   - kernels are single-threaded and work on the slice of the batch they are
 *     given; the model runtime (model.c) splits the batch across its threads
 *     and combines the few whole-batch reductions (BatchNormalization);
 *   - backward functions ACCUMULATE into parameter gradients (dweight += ...,
 *     dbias += ...) and OVERWRITE dinp (dinp may be NULL when the input needs
 *     no gradient, e.g. the first layer);
 *   - Flatten is a no-op: NHWC rows are already Keras' channels_last order.
 *
 * Weight layouts are exactly Keras': Conv2D kernel (kh, kw, in, out) = HWIO,
 * Dense kernel (in, out). */
#ifndef TRAIND_LAYERS_H
#define TRAIND_LAYERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* ------------------------------------------------------------- Conv2D */

/* Geometry of a 2D convolution.  TensorFlow 'same' padding:
 * pad_total = max((ceil(in / s) - 1) * s + k - in, 0), pad_before = pad_total / 2
 * (the extra row/column goes after).  'valid': no padding. */
struct conv2d_geom {
    int h, w, c;          /* input (H, W, C) */
    int oh, ow, k;        /* output (OH, OW, K) */
    int kh, kw;           /* kernel */
    int sh, sw;           /* strides */
    int pad_top, pad_left;
    int dh, dw;           /* dilation (1: none); tap (i, j) reads row oy*sh - pad_top + i*dh */
    int groups;           /* Conv2D groups: input channels c*C/G.. and outputs g*K/G.. (1) */
};

void conv2d_geom_init(struct conv2d_geom *g, int h, int w, int c, int k, int kh, int kw,
                      int sh, int sw, enum padding_kind padding);
/* Same, with explicit leading pads; the output size follows from the pads:
 * oh = (h + pad_top + pad_bottom - kh) / sh + 1. */
void conv2d_geom_init_pads(struct conv2d_geom *g, int h, int w, int c, int k, int kh, int kw,
                           int sh, int sw, int pad_top, int pad_bottom, int pad_left,
                           int pad_right);
/* Same with dilation (dh, dw) and groups (conv2d_general.c): TF's 'same'
 * and 'valid' on the effective kernel (kh - 1) * dh + 1.  The init functions
 * above set dh = dw = groups = 1. */
void conv2d_geom_init_dilated(struct conv2d_geom *g, int h, int w, int c, int k, int kh, int kw,
                              int sh, int sw, int dh, int dw, int groups,
                              enum padding_kind padding);
/* Dilated or grouped: conv2d_forward / conv2d_backward run it as grouped
 * im2col + GEMM (conv2d_general.c); the other paths need dh = dw = groups = 1. */
bool conv2d_geom_general(const struct conv2d_geom *g);
/* Floats of per-thread scratch conv2d_forward / conv2d_backward need. */
size_t conv2d_scratch_floats(const struct conv2d_geom *g);
/* Offset in one image's (H, W, C) of the input pixel that output (oy, ox)
 * reads at tap (i, j), or -1 when it falls in the padding. */
long conv2d_geom_tap(const struct conv2d_geom *g, int oy, int ox, int i, int j);

/* out = act(conv(inp, weight) + bias).  bias may be NULL (use_bias=false).
 * act must not be SOFTMAX. */
void conv2d_forward(float *out,          /* (N, OH, OW, K) */
                    float *scratch,      /* (conv2d_scratch_floats) */
                    const float *inp,    /* (N, H, W, C) */
                    const float *weight, /* (KH, KW, C / G, K) */
                    const float *bias,   /* (K) or NULL */
                    enum activation_kind act, int n, const struct conv2d_geom *g);
/* Inference: conv2d_forward, then out = out * scale[k] + shift[k] for every
 * output channel k when scale is not NULL (an inference BatchNormalization
 * after the convolution and its activation, applied while the output is in
 * cache; bit-identical to batchnorm_forward on conv2d_forward's output with
 * scale = gamma / sqrtf(var + eps), shift = beta - mean * scale).  wt: NULL
 * or the weight transform (conv2d_weight_transform) of weight, which the
 * Winograd algorithm then does not recompute. */
void conv2d_forward_post(float *out, float *scratch, const float *inp, const float *weight,
                         const float *wt, const float *bias, enum activation_kind act,
                         const float *scale, const float *shift, bool pool, int n,
                         const struct conv2d_geom *g);
/* True when conv2d_forward_post can take pool for g and act: then out is
 * (N, OH/2, OW/2, K), the 2x2 stride-2 'valid' max pooling of the above,
 * bit-identical to maxpool2d_forward on it, computed in the store without
 * writing the full output (Winograd on an even output size, the tiles being
 * the pooling windows; activation linear or ReLU). */
bool conv2d_pool_fusable(const struct conv2d_geom *g, enum activation_kind act);
/* Floats of the weight transform conv2d_forward_post can take for g (0 when
 * conv2d_forward's algorithm for g has none), and the transform itself (valid
 * while the weights and the kernel path stay the same). */
size_t conv2d_weight_transform_floats(const struct conv2d_geom *g);
void conv2d_weight_transform(float *wt, const float *weight, const struct conv2d_geom *g);

/* The kernel of the transposed stride-1 convolution: wflip[kh-1-i][kw-1-j][k][c]
 * = weight[i][j][c][k]. */
void conv2d_flip_weight(float *wflip,        /* (KH, KW, K, C) */
                        const float *weight, /* (KH, KW, C, K) */
                        const struct conv2d_geom *g);

/* Gradients of a conv without activation (apply activation_backward first).
 * dweight += inp^T * dout (im2col), dbias += column sums of dout (dbias may be
 * NULL).  dinp (may be NULL) = transposed convolution of dout: when wflip is
 * non-NULL and the strides are 1 it is computed as a plain convolution of dout
 * with wflip (from conv2d_flip_weight), otherwise with col2im. */
void conv2d_backward(float *dinp,         /* (N, H, W, C) or NULL */
                     float *dweight,      /* (KH, KW, C, K) */
                     float *dbias,        /* (K) or NULL */
                     float *scratch,      /* (conv2d_scratch_floats) */
                     const float *dout,   /* (N, OH, OW, K) */
                     const float *inp,    /* (N, H, W, C) */
                     const float *weight, /* (KH, KW, C, K) */
                     const float *wflip,  /* (KH, KW, K, C) or NULL */
                     int n, const struct conv2d_geom *g);

/* ---------------------------------------------------- DepthwiseConv2D */

/* out = act(depthwise conv(inp, weight) + bias) on the geometry of a conv
 * with k = C * depth_multiplier outputs; output channel c * M + m comes from
 * input channel c and weight[.][.][c][m].  act must not be SOFTMAX. */
void depthwise_conv2d_forward(float *out,          /* (N, OH, OW, C * M) */
                              const float *inp,    /* (N, H, W, C) */
                              const float *weight, /* (KH, KW, C, M) */
                              const float *bias,   /* (C * M) or NULL */
                              enum activation_kind act, int n, const struct conv2d_geom *g);
/* Gradients without activation: dweight += ..., dbias += ..., dinp (may be
 * NULL) overwritten. */
void depthwise_conv2d_backward(float *dinp,         /* (N, H, W, C) or NULL */
                               float *dweight,      /* (KH, KW, C, M) */
                               float *dbias,        /* (C * M) or NULL */
                               const float *dout,   /* (N, OH, OW, C * M) */
                               const float *inp,    /* (N, H, W, C) */
                               const float *weight, /* (KH, KW, C, M) */
                               int n, const struct conv2d_geom *g);
/* The algorithm conv2d_forward / conv2d_backward run for g on the active
 * kernel path (for reports such as bench/compare's): "winograd_f2x2_3x3",
 * "implicit_gemm", "direct_c1", "pointwise_gemm", "im2col_gemm",
 * "col2im_gemm", or for dilated / grouped geometries "grouped_im2col_gemm"
 * and "grouped_col2im_gemm"; dinp / wflip: whether the backward computes dinp and gets
 * a flipped kernel.  Static strings. */
const char *conv2d_forward_algorithm(const struct conv2d_geom *g);
const char *conv2d_dinput_algorithm(const struct conv2d_geom *g, bool wflip);
const char *conv2d_dweight_algorithm(const struct conv2d_geom *g, bool dinp, bool wflip);

/* -------------------------------------------------------------- Dense */

/* out = act(inp * weight + bias); act must not be SOFTMAX. */
void dense_forward(float *out,          /* (N, OUT) */
                   const float *inp,    /* (N, IN) */
                   const float *weight, /* (IN, OUT) */
                   const float *bias,   /* (OUT) or NULL */
                   enum activation_kind act, int n, int in, int outdim);
/* The same for inference through gemm_nn: the kernel path's own GEMM when
 * outdim % 16 == 0 (reads the kernel unpacked; for the few rows of an
 * inference chunk about 1.7x faster than cblas_sgemm, which packs the whole
 * kernel every call), else cblas.  Results may differ from dense_forward's
 * in the last bits (another summation blocking). */
void dense_forward_infer(float *out, const float *inp, const float *weight, const float *bias,
                         enum activation_kind act, int n, int in, int outdim);
/* dweight += inp^T dout, dbias += sum dout, dinp = dout weight^T (dinp may be NULL). */
void dense_backward(float *dinp,         /* (N, IN) or NULL */
                    float *dweight,      /* (IN, OUT) */
                    float *dbias,        /* (OUT) or NULL */
                    const float *dout,   /* (N, OUT) */
                    const float *inp,    /* (N, IN) */
                    const float *weight, /* (IN, OUT) */
                    int n, int in, int outdim);

/* --------------------------------------------------------- Activation */

/* out = f(inp) on rows of d (softmax is per row); out may equal inp. */
void activation_forward(float *out, const float *inp, /* (rows, d) */
                        size_t rows, int d, enum activation_kind act);
/* In place: x = f(x + bias) on rows of d (bias may be NULL); the epilogue
 * that Conv2D and Dense run on their GEMM output.  act must not be SOFTMAX. */
void activation_bias_forward(float *x, /* (rows, d) */
                             const float *bias, /* (d) or NULL */
                             size_t rows, int d, enum activation_kind act);
/* out = f(inp + bias), the same epilogue out of place (out may equal inp). */
void activation_bias_copy(float *out, const float *inp, /* (rows, d) */
                          const float *bias,            /* (d) or NULL */
                          size_t rows, int d, enum activation_kind act);
/* dinp = f'(.) * dout expressed through the forward output out (relu: out > 0,
 * sigmoid: out (1 - out), tanh: 1 - out^2, softmax: out (dout - <dout, out>));
 * dinp may equal dout. */
void activation_backward(float *dinp, const float *dout, const float *out, /* (rows, d) */
                         size_t rows, int d, enum activation_kind act);

/* The same for every activation: gelu and swish take their derivative from
 * the input inp (the pre-activation), the others from out. */
void activation_backward_x(float *dinp, const float *dout,
                           const float *inp, const float *out, /* (rows, d) */
                           size_t rows, int d, enum activation_kind act);

/* ReLU layer (LeakyReLU: threshold 0, max_value INFINITY):
 * y = min(x, max_value) for x > threshold (and >= 0), 0 up to threshold,
 * negative_slope * (x - threshold) below it.  out may equal inp.  Backward
 * from the input; dinp may equal dout. */
void relu_layer_forward(float *out, const float *inp, size_t count, float negative_slope,
                        float max_value, float threshold);
void relu_layer_backward(float *dinp, const float *dout, const float *inp, size_t count,
                         float negative_slope, float max_value, float threshold);
/* ELU layer: y = x for x > 0, alpha (exp(x) - 1) otherwise. */
void elu_layer_forward(float *out, const float *inp, size_t count, float alpha);
void elu_layer_backward(float *dinp, const float *dout, const float *inp, size_t count,
                        float alpha);
/* Rescaling: y = x * scale + offset; dinp = dout * scale. */
void rescaling_forward(float *out, const float *inp, size_t count, float scale, float offset);
void rescaling_backward(float *dinp, const float *dout, size_t count, float scale);

/* ------------------------------------------- global pooling, padding */

/* GlobalAveragePooling2D / GlobalMaxPooling2D: out (N, C) from inp
 * (N, HW, C).  Max backward sends the gradient to the first maximal element. */
void global_avgpool_forward(float *out, const float *inp, int n, int hw, int c);
void global_avgpool_backward(float *dinp, const float *dout, int n, int hw, int c);
void global_maxpool_forward(float *out, const float *inp, int n, int hw, int c);
void global_maxpool_backward(float *dinp, const float *dout, const float *inp, int n, int hw,
                             int c);
/* ZeroPadding2D: out (N, H + pt + pb, W + pl + pr, C); backward crops. */
void zero_padding2d_forward(float *out, const float *inp, int n, int h, int w, int c,
                            const int pad[4]);
void zero_padding2d_backward(float *dinp, const float *dout, int n, int h, int w, int c,
                             const int pad[4]);

/* ----------------------------------------------- Add, Concatenate */

/* out = inp0 + inp1 + ... (count floats each, summed in input order). */
void add_forward(float *out, const float *const *inps, int n_inputs, size_t count);
/* Concatenate on the channel axis: rows of out (C = sum c[k]) are the rows
 * of the inputs side by side. */
void concat_forward(float *out, const float *const *inps, const int *c, int n_inputs,
                    size_t rows);
/* The part of dout (rows, ctotal) that belongs to the input at channel
 * offset c0 with c channels, added to (add true) or written into dinp. */
void concat_backward_part(float *dinp, const float *dout, size_t rows, int ctotal, int c0,
                          int c, bool add);

/* ------------------------------------------------- BatchNormalization */

/* Training mode over the whole batch (possibly split across threads):
 *   1. each part: batchnorm_stats_accumulate(sum, sumsq) over its rows;
 *   2. combine the parts' sums in a fixed order, batchnorm_stats_finalize;
 *   3. batchnorm_forward with the batch mean/var (biased variance);
 *   4. batchnorm_update_moving (see batchnorm.c for the variance Keras feeds
 *      to the moving average).
 * Backward: batchnorm_backward_accumulate per part, combine, then
 * batchnorm_backward per part.  dgamma = sum_dout_xhat, dbeta = sum_dout. */
void batchnorm_stats_accumulate(double *sum, double *sumsq, /* (C), += */
                                const float *inp,           /* (rows, C) */
                                size_t rows, int c);
void batchnorm_stats_finalize(float *mean, float *var, /* (C) biased variance */
                              const double *sum, const double *sumsq, size_t count, int c);
/* out = gamma * (inp - mean) / sqrt(var + eps) + beta; gamma/beta may be NULL
 * (center/scale off: 1 and 0). */
void batchnorm_forward(float *out,                          /* (rows, C) */
                       const float *inp,                    /* (rows, C) */
                       const float *mean, const float *var, /* (C) */
                       const float *gamma, const float *beta, float eps, size_t rows, int c);
/* moving = moving * momentum + batch * (1 - momentum); bessel: feed the variance
 * scaled by count / (count - 1). */
void batchnorm_update_moving(float *moving_mean, float *moving_var,     /* (C) */
                             const float *mean, const float *var,       /* (C) biased */
                             size_t count, float momentum, bool bessel, int c);
void batchnorm_backward_accumulate(double *sum_dout, double *sum_dout_xhat, /* (C), += */
                                   const float *dout, const float *inp,     /* (rows, C) */
                                   const float *mean, const float *var, float eps,
                                   size_t rows, int c);
/* dinp = gamma * rstd / count * (count * dout - sum_dout - xhat * sum_dout_xhat);
 * relu_mask: also apply the backward of a ReLU whose output is inp (dinp = 0
 * where inp <= 0), saving Conv2D + ReLU + BN a pass. */
void batchnorm_backward(float *dinp,                                   /* (rows, C) */
                        const float *dout, const float *inp,           /* (rows, C) */
                        const float *mean, const float *var,           /* (C) */
                        const float *gamma,                            /* (C) or NULL */
                        const double *sum_dout, const double *sum_dout_xhat, /* (C) */
                        size_t count, float eps, bool relu_mask, size_t rows, int c);

/* ------------------------------------------------------------ Pooling */

/* Pooling geometry (TF padding as Conv2D; padded positions are ignored: max
 * over the valid elements, average divides by the number of valid elements). */
struct pool2d_geom {
    int h, w, c;      /* input (H, W, C) */
    int oh, ow;       /* output (OH, OW, C) */
    int ph, pw;       /* pool size */
    int sh, sw;       /* strides */
    int pad_top, pad_left;
};

void pool2d_geom_init(struct pool2d_geom *g, int h, int w, int c, int ph, int pw, int sh,
                      int sw, enum padding_kind padding);
void maxpool2d_forward(float *out,       /* (N, OH, OW, C) */
                       const float *inp, /* (N, H, W, C) */
                       int n, const struct pool2d_geom *g);
/* The gradient goes to the first maximal element of each window (recomputed
 * from inp). */
void maxpool2d_backward(float *dinp,       /* (N, H, W, C) */
                        const float *dout, /* (N, OH, OW, C) */
                        const float *inp,  /* (N, H, W, C) */
                        int n, const struct pool2d_geom *g);
void avgpool2d_forward(float *out, const float *inp, int n, const struct pool2d_geom *g);
void avgpool2d_backward(float *dinp, const float *dout, int n, const struct pool2d_geom *g);

/* ------------------------------------------------------------ Dropout */

/* Inverted dropout masks: keep with probability 1 - rate.  Example e (global
 * index example0 + i) uses its own xoshiro stream seeded from (seed, step,
 * layer, e), so masks do not depend on how the batch is split. */
void dropout_mask(uint8_t *mask, /* (N, d): 1 keep, 0 drop */
                  int n, size_t d, float rate, uint64_t seed, int64_t step, int layer,
                  int example0);
/* SpatialDropout2D: a mask per (example, channel) (drawn as dropout_mask of
 * d = C) spread over the H*W positions: mask (N, HW, C). */
void spatial_dropout_mask(uint8_t *mask, uint8_t *chan, /* (N, HW, C), (N, C) scratch */
                          int n, int hw, int c, float rate, uint64_t seed, int64_t step,
                          int layer, int example0);
/* out = inp * mask / (1 - rate); out may equal inp. */
void dropout_forward(float *out, const float *inp, const uint8_t *mask, float rate,
                     size_t count);
void dropout_backward(float *dinp, const float *dout, const uint8_t *mask, float rate,
                      size_t count);

/* ------------------------------------------------------- augmentation */

/* Keras 3 affine_transform of one image: output (y, x) samples the input at
 * x_in = m0 x + m1 y + m2, y_in = m3 x + m4 y + m5 (Keras' [a0 a1 a2 b0 b1 b2])
 * with interp and fill (augment.c says how).  Backward is the adjoint:
 * dinp overwritten, the fill value gets no gradient. */
void affine_forward(float *out,       /* (OH, OW, C) */
                    const float *inp, /* (H, W, C) */
                    int h, int w, int c, int oh, int ow, const float m[6],
                    enum interpolation_kind interp, enum fill_mode fill, float fill_value);
void affine_backward(float *dinp,       /* (H, W, C) */
                     const float *dout, /* (OH, OW, C) */
                     int h, int w, int c, int oh, int ow, const float m[6],
                     enum interpolation_kind interp, enum fill_mode fill);
/* The window win = (top, left, height, width) of the input resized to
 * (OH, OW) with TF's half-pixel bilinear resize (a plain crop when the sizes
 * agree); backward is the adjoint (dinp overwritten). */
void crop_resize_forward(float *out,       /* (OH, OW, C) */
                         const float *inp, /* (H, W, C) */
                         int h, int w, int c, int oh, int ow, const int win[4]);
void crop_resize_backward(float *dinp,       /* (H, W, C) */
                          const float *dout, /* (OH, OW, C) */
                          int h, int w, int c, int oh, int ow, const int win[4]);
/* RandomContrast of one image: clip((x - mean) * factor + mean, lo, hi), the
 * mean per channel over the H*W positions; backward from the input
 * (dinp overwritten, must not alias dout). */
void contrast_forward(float *out, const float *inp, /* (HW, C) */
                      int hw, int c, float factor, float lo, float hi);
void contrast_backward(float *dinp, const float *dout, const float *inp, /* (HW, C) */
                       int hw, int c, float factor, float lo, float hi);

/* One image's random transform in a training step. */
struct augment_draw {
    bool identity;   /* nothing to do (an unflipped image) */
    float m[6];      /* the affine sampling (flip, translation, rotation, zoom) */
    float contrast;  /* RandomContrast's factor */
};
/* The draw of image `example` (its global index in the batch) of layer
 * `layer` at `step`: a stream of its own seeded from (seed, step, layer,
 * example) and the layer's seed, so draws do not depend on how the batch is
 * split across threads.  Keras 3's distributions: flip when u <= 0.5,
 * translation (u_h H, u_w W), rotation u * 360 degrees about the centre,
 * zoom 1 + u, contrast in [1 - lower, 1 + upper]. */
void augment_draw(struct augment_draw *d, enum layer_kind kind, const struct augment_config *a,
                  int h, int w, uint64_t seed, int64_t step, int layer, int example);
/* RandomCrop's window (top, left, height, width) of an (H, W) input: in
 * training with an input larger than the target in both axes, one random
 * window of the target size for the whole batch (as Keras); otherwise the
 * largest centred window with the target's aspect ratio (then resized). */
void random_crop_window(int win[4], const struct augment_config *a, int h, int w, bool training,
                        uint64_t seed, int64_t step, int layer);
/* RandomFlip .. RandomContrast in training on n images (global indices
 * example0 ..): out (N, H, W, C) from inp; backward overwrites dinp (which
 * must not alias dout) with the adjoint of the same draws. */
void augment_forward(float *out, const float *inp, int n, int h, int w, int c,
                     enum layer_kind kind, const struct augment_config *a, uint64_t seed,
                     int64_t step, int layer, int example0);
void augment_backward(float *dinp, const float *dout, const float *inp, int n, int h, int w,
                      int c, enum layer_kind kind, const struct augment_config *a, uint64_t seed,
                      int64_t step, int layer, int example0);

/* --------------------------------------------- softmax cross-entropy */

/* Fused softmax + categorical cross-entropy on logits.
 * probs = softmax(logits); losses[i] = -sum_j y_ij * max(log p_ij, log 1e-7)
 * (log-softmax computed stably; the floor is Keras' clip of p to >= 1e-7). */
void softmax_crossentropy_forward(float *probs,        /* (N, classes) */
                                  float *losses,       /* (N) */
                                  const float *logits, /* (N, classes) */
                                  const float *y,      /* (N, classes) one-hot or soft */
                                  int n, int classes);
/* dlogits = (probs - y) * scale (scale = 1 / batch size for a mean loss). */
void softmax_crossentropy_backward(float *dlogits,                   /* (N, classes) */
                                   const float *probs, const float *y, /* (N, classes) */
                                   float scale, int n, int classes);
/* The same for integer labels (sparse categorical cross-entropy), without a
 * one-hot copy: losses[i] = -max(log p_i,label_i, log 1e-7);
 * dlogits = (probs - one_hot(labels)) * scale.  labels < classes. */
void softmax_sparse_crossentropy_forward(float *probs,          /* (N, classes) */
                                         float *losses,         /* (N) */
                                         const float *logits,   /* (N, classes) */
                                         const uint8_t *labels, /* (N) */
                                         int n, int classes);
void softmax_sparse_crossentropy_backward(float *dlogits,                          /* (N, classes) */
                                          const float *probs, const uint8_t *labels, /* (N) */
                                          float scale, int n, int classes);

#endif
