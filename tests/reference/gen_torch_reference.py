#!/usr/bin/python3
"""Reference values for tests/unit/test_reference.c, computed with PyTorch.

MiniVGGNet as Keras builds it (tests use the engine's built-in "minivggnet"
spec for input (12, 12, 3) and 10 classes, with the Dropout rates set to 0):

    [Conv2D 3x3 same -> ReLU -> BatchNormalization] x2 -> MaxPooling2D 2x2 -> Dropout
    [Conv2D 3x3 same -> ReLU -> BatchNormalization] x2 -> MaxPooling2D 2x2 -> Dropout
    Flatten -> Dense 512 -> ReLU -> BatchNormalization -> Dropout -> Dense 10 -> softmax

Dropout is left out here (rate 0 is the identity).  BatchNormalization runs in
training mode (batch statistics, biased variance for normalisation, epsilon
1e-3).  Flatten follows Keras' channels-last order: the NCHW activations are
permuted to NHWC before flattening, so that the Dense kernel keeps the Keras
(in, out) layout with in = (h, w, c) row-major.

Weights come from a fixed numpy RNG (Glorot-uniform-like kernels, non-zero
biases, gamma around 1, beta around 0, small non-zero moving statistics),
rounded to float32; the forward and backward passes run in float64 on those
float32 values, so the committed results are the exact answers for the C
engine's float32 inputs up to float64 rounding.

Files written to tests/fixtures/reference/ (float32 little-endian, raw, in
Keras layout: Conv2D kernel HWIO, Dense kernel (in, out)):
    x.f32                       input (N, 12, 12, 3)
    y.f32                       one-hot labels (N, 10)
    probs.f32                   softmax output (N, 10), training mode
    probs_eval.f32              softmax output (N, 10), inference mode, BN with the
                                moving statistics e.*
    e.<layer>.<weight>.f32      moving_mean / moving_variance for probs_eval
    w.<layer>.<weight>.f32      every variable before the step
    g.<layer>.<weight>.f32      gradient of the mean loss, trainable variables
    m.<layer>.<weight>.f32      moving_mean / moving_variance after one training
                                step with Keras' update (momentum 0.99):
                                moving = 0.99 * moving + 0.01 * batch statistic,
                                where the batch variance is the unbiased one
                                (n / (n - 1)) after Conv2D (tf.keras' fused kernel)
                                and the biased one after Dense (tf.nn.moments);
                                see core/batchnorm.c
    manifest.txt                shapes, the loss, and every file with its element count

Usage: /usr/bin/python3 tests/reference/gen_torch_reference.py [outdir]
"""

import numpy as np
import torch.nn.functional as F

from torch_ref_io import (BatchNorm, bias, bn_step_fixture, bn_weights, fixture_dir, glorot,
                          inputs, nchw, torch_params)

N, H, W, C, CLASSES = 6, 12, 12, 3, 10
BN_MOMENTUM, BN_EPS = 0.99, 1e-3
LABELS = [3, 1, 4, 1, 5, 9]


def main():
    out = fixture_dir("reference")
    rng = np.random.RandomState(20261128)

    # ---- variables in Keras layout and order, float32
    layers = []  # (keras layer name, [(weight name, array, trainable)])

    def conv(name, cin, cout):
        k = glorot(rng, (3, 3, cin, cout), 9 * cin, 9 * cout)
        layers.append((name, [("kernel", k, True), ("bias", bias(rng, cout), True)]))

    def bn(name, c):
        layers.append((name, bn_weights(rng, c)))

    def dense(name, fin, fout):
        k = glorot(rng, (fin, fout), fin, fout)
        layers.append((name, [("kernel", k, True), ("bias", bias(rng, fout), True)]))

    flat = (H // 4) * (W // 4) * 64
    conv("conv2d", C, 32)
    bn("batch_normalization", 32)
    conv("conv2d_1", 32, 32)
    bn("batch_normalization_1", 32)
    conv("conv2d_2", 32, 64)
    bn("batch_normalization_2", 64)
    conv("conv2d_3", 64, 64)
    bn("batch_normalization_3", 64)
    dense("dense", flat, 512)
    bn("batch_normalization_4", 512)
    dense("dense_1", 512, CLASSES)

    x, y = inputs((N, H, W, C), CLASSES, LABELS, 0.37, 0.23, 1.3, 0.11)

    # ---- the same network in torch, float64, parameters from the arrays above
    P = torch_params(layers)
    batchnorm = BatchNorm(P, BN_MOMENTUM, BN_EPS)

    def block(t, a, b):
        t = batchnorm(a[1], F.relu(F.conv2d(t, P[(a[0], "kernel")], P[(a[0], "bias")], padding=1)))
        t = batchnorm(b[1], F.relu(F.conv2d(t, P[(b[0], "kernel")], P[(b[0], "bias")], padding=1)))
        return F.max_pool2d(t, 2)

    def forward(x_nhwc):
        t = nchw(x_nhwc)
        t = block(t, ("conv2d", "batch_normalization"), ("conv2d_1", "batch_normalization_1"))
        t = block(t, ("conv2d_2", "batch_normalization_2"), ("conv2d_3", "batch_normalization_3"))
        t = t.permute(0, 2, 3, 1).flatten(1)  # Keras Flatten order (h, w, c)
        t = batchnorm("batch_normalization_4",
                      F.relu(F.linear(t, P[("dense", "kernel")], P[("dense", "bias")])))
        return F.linear(t, P[("dense_1", "kernel")], P[("dense_1", "bias")])

    bn_step_fixture(out, "MiniVGGNet reference, see tests/reference/gen_torch_reference.py",
                    (N, H, W, C), CLASSES, forward, x, y, layers, P, batchnorm)


if __name__ == "__main__":
    main()
