#!/usr/bin/python3
"""Reference values for the functional-model part of tests/unit/test_reference.c,
computed with PyTorch (float64), as gen_torch_reference.py does for MiniVGGNet.

A small residual network that uses most of the layers of functional models
(written to model.json as tf.keras 2.15's model.to_json() prints it; the test
builds the engine's model from that file):

    input_1 (8, 8, 2)
    rescaling            x * 2 - 1
    conv2d               Conv2D(4, 3x3, same, activation swish)
    batch_normalization
    re_lu                ReLU(max_value 6)
    zero_padding2d       ((1, 1), (1, 1))                        -> (10, 10, 4)
    conv2d_1             Conv2D(4, 3x3, valid, activation gelu)  -> (8, 8, 4)
    batch_normalization_1
    add                  [batch_normalization_1, re_lu]
    leaky_re_lu          LeakyReLU(0.3)
    conv2d_2             Conv2D(6, 3x3, strides 2, same)         -> (4, 4, 6)
    elu                  ELU(1.0)
    conv2d_3             Conv2D(6, 1x1, strides 2) on leaky_re_lu (a shortcut)
    concatenate          [elu, conv2d_3]                          -> (4, 4, 12)
    global_average_pooling2d
    dense                Dense(5)
    softmax              Softmax

re_lu and leaky_re_lu fan out to two layers each, so the engine sums their
gradients.  TF 'same' padding puts the odd pad after (bottom/right).
BatchNormalization as in gen_torch_reference.py: training mode with the
batch statistics (biased variance), epsilon 1e-3; the moving statistics move
with Keras' rule, the unbiased batch variance on these 4-D inputs.

Files in tests/fixtures/reference_residual/ as in tests/fixtures/reference/
(x, y, probs, probs_eval, w.*, g.*, m.*, e.*, manifest.txt) plus model.json.

Usage: /usr/bin/python3 tests/reference/gen_torch_residual.py [outdir]
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from torch_ref_io import (BatchNorm, bias, bn_step_fixture, bn_weights, fixture_dir, glorot,
                          inputs, nchw, pad_same, torch_params)

N, H, W, C, CLASSES = 6, 8, 8, 2, 5
BN_MOMENTUM, BN_EPS = 0.99, 1e-3
LABELS = [3, 1, 4, 0, 2, 4]


def keras_json():
    """The model as tf.keras 2.15 prints it (only the keys that matter)."""
    layers = []

    def add(cls, name, inbound, **cfg):
        c = {"name": name, "trainable": True, "dtype": "float32"}
        c.update(cfg)
        layers.append({"class_name": cls, "config": c, "name": name,
                       "inbound_nodes": [[[n, 0, 0, {}] for n in inbound]] if inbound else []})

    def conv(name, inbound, filters, k, s, padding, act):
        add("Conv2D", name, inbound, filters=filters, kernel_size=[k, k], strides=[s, s],
            padding=padding, data_format="channels_last", dilation_rate=[1, 1], groups=1,
            activation=act, use_bias=True)

    layers.append({"class_name": "InputLayer",
                   "config": {"batch_input_shape": [None, H, W, C], "dtype": "float32",
                              "sparse": False, "ragged": False, "name": "input_1"},
                   "name": "input_1", "inbound_nodes": []})
    add("Rescaling", "rescaling", ["input_1"], scale=2.0, offset=-1.0)
    conv("conv2d", ["rescaling"], 4, 3, 1, "same", "swish")
    add("BatchNormalization", "batch_normalization", ["conv2d"], axis=[3], momentum=0.99,
        epsilon=0.001, center=True, scale=True)
    add("ReLU", "re_lu", ["batch_normalization"], max_value=6.0, negative_slope=0.0,
        threshold=0.0)
    add("ZeroPadding2D", "zero_padding2d", ["re_lu"], padding=[[1, 1], [1, 1]],
        data_format="channels_last")
    conv("conv2d_1", ["zero_padding2d"], 4, 3, 1, "valid", "gelu")
    add("BatchNormalization", "batch_normalization_1", ["conv2d_1"], axis=[3], momentum=0.99,
        epsilon=0.001, center=True, scale=True)
    add("Add", "add", ["batch_normalization_1", "re_lu"])
    add("LeakyReLU", "leaky_re_lu", ["add"], alpha=0.3)
    conv("conv2d_2", ["leaky_re_lu"], 6, 3, 2, "same", "linear")
    add("ELU", "elu", ["conv2d_2"], alpha=1.0)
    conv("conv2d_3", ["leaky_re_lu"], 6, 1, 2, "valid", "linear")
    add("Concatenate", "concatenate", ["elu", "conv2d_3"], axis=-1)
    add("GlobalAveragePooling2D", "global_average_pooling2d", ["concatenate"],
        data_format="channels_last", keepdims=False)
    add("Dense", "dense", ["global_average_pooling2d"], units=CLASSES, activation="linear",
        use_bias=True)
    add("Softmax", "softmax", ["dense"], axis=-1)
    return {"class_name": "Functional",
            "config": {"name": "model", "trainable": True, "layers": layers,
                       "input_layers": [["input_1", 0, 0]],
                       "output_layers": [["softmax", 0, 0]]},
            "keras_version": "2.15.0", "backend": "tensorflow"}


def main():
    out = fixture_dir("reference_residual")
    rng = np.random.RandomState(20261130)
    layers = []  # (keras layer name, [(weight name, array, trainable)]) in Keras order

    def conv(name, k, cin, cout):
        layers.append((name, [("kernel", glorot(rng, (k, k, cin, cout), k * k * cin,
                                                k * k * cout, 1.5), True),
                              ("bias", bias(rng, cout), True)]))

    def bn(name, c):
        layers.append((name, bn_weights(rng, c)))

    conv("conv2d", 3, C, 4)
    bn("batch_normalization", 4)
    conv("conv2d_1", 3, 4, 4)
    bn("batch_normalization_1", 4)
    conv("conv2d_2", 3, 4, 6)
    conv("conv2d_3", 1, 4, 6)
    layers.append(("dense", [("kernel", glorot(rng, (12, CLASSES), 12, CLASSES), True),
                             ("bias", bias(rng, CLASSES), True)]))

    x, y = inputs((N, H, W, C), CLASSES, LABELS, 0.41, 0.29, 1.7, 0.13)

    P = torch_params(layers)
    batchnorm = BatchNorm(P, BN_MOMENTUM, BN_EPS)

    def conv2d(name, t, stride, same):
        k = P[(name, "kernel")]
        if same:
            t = pad_same(t, k.shape[2:], stride)
        return F.conv2d(t, k, P[(name, "bias")], stride=stride)

    def forward(x_nhwc):
        t = nchw(x_nhwc)
        t = t * 2.0 - 1.0                                           # rescaling
        a = conv2d("conv2d", t, 1, True)
        a = a * torch.sigmoid(a)                                    # swish
        a = batchnorm("batch_normalization", a)
        r = torch.clamp(a, 0.0, 6.0)                                # re_lu
        b = F.pad(r, (1, 1, 1, 1))                                  # zero_padding2d
        b = F.gelu(conv2d("conv2d_1", b, 1, False))                 # exact gelu
        b = batchnorm("batch_normalization_1", b)
        s = F.leaky_relu(b + r, 0.3)                                # add, leaky_re_lu
        e = F.elu(conv2d("conv2d_2", s, 2, True), alpha=1.0)
        sc = conv2d("conv2d_3", s, 2, False)
        cat = torch.cat([e, sc], dim=1)                             # channels last: [elu, conv2d_3]
        g = cat.mean(dim=(2, 3))
        return F.linear(g, P[("dense", "kernel")], P[("dense", "bias")])

    bn_step_fixture(out, "residual functional model reference, see "
                    "tests/reference/gen_torch_residual.py", (N, H, W, C), CLASSES, forward, x,
                    y, layers, P, batchnorm)
    with open(os.path.join(out, "model.json"), "w") as f:
        f.write(json.dumps(keras_json()) + "\n")


if __name__ == "__main__":
    main()
