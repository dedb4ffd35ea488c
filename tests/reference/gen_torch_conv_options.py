#!/usr/bin/python3
"""Reference values for the convolution-options part of
tests/unit/test_reference.c, computed with PyTorch (float64) as
gen_torch_residual.py does for its functional model.

A Sequential model of dilated, grouped and separable convolutions (written to
model.json as tf.keras 2.15's model.to_json() prints it):

    input (10, 10, 4)
    conv2d               Conv2D(8, 3x3, dilation_rate 2, same, tanh)      -> (10, 10, 8)
    conv2d_1             Conv2D(8, 3x3, groups 4, valid, swish)           -> (8, 8, 8)
    separable_conv2d     SeparableConv2D(6, 3x3, depth_multiplier 2,
                         dilation_rate (2, 1), same, gelu)                -> (8, 8, 6)
    separable_conv2d_1   SeparableConv2D(5, 3x3, strides 2, valid,
                         use_bias false)                                  -> (3, 3, 5)
    global_average_pooling2d
    dense                Dense(4)
    softmax              Softmax

Keras weight layouts and their torch counterparts:
    Conv2D kernel (kh, kw, cin / groups, cout)       -> (cout, cin / groups, kh, kw),
                                                        F.conv2d(groups=groups)
    depthwise_kernel (kh, kw, cin, M)                -> (cin * M, 1, kh, kw),
                                                        F.conv2d(groups=cin): output
                                                        channel c * M + m reads channel c
    pointwise_kernel (1, 1, cin * M, filters)        -> (filters, cin * M, 1, 1)
TF 'same' padding on the dilated kernel (k - 1) * d + 1, the odd pad after.

Files in tests/fixtures/reference_conv_options/ as in the other fixtures
(x, y, probs, probs_eval, w.*, g.*, manifest.txt) plus model.json; there is
no BatchNormalization, so probs_eval equals probs.

Usage: /usr/bin/python3 tests/reference/gen_torch_conv_options.py [outdir]
"""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from torch_ref_io import (bias, fixture_dir, glorot, inputs, loss_step, nchw, pad_same,
                          torch_params, write_fixture)

N, H, W, C, CLASSES = 5, 10, 10, 4, 4
LABELS = [2, 0, 3, 1, 2]


def keras_json():
    """The model as tf.keras 2.15 prints it (only the keys that matter)."""
    layers = []

    def add(cls, name, **cfg):
        c = {"name": name, "trainable": True, "dtype": "float32"}
        c.update(cfg)
        layers.append({"class_name": cls, "config": c})

    add("InputLayer", "input_1", batch_input_shape=[None, H, W, C], sparse=False, ragged=False)
    layers[-1]["config"].pop("trainable")
    add("Conv2D", "conv2d", filters=8, kernel_size=[3, 3], strides=[1, 1], padding="same",
        data_format="channels_last", dilation_rate=[2, 2], groups=1, activation="tanh",
        use_bias=True)
    add("Conv2D", "conv2d_1", filters=8, kernel_size=[3, 3], strides=[1, 1], padding="valid",
        data_format="channels_last", dilation_rate=[1, 1], groups=4, activation="swish",
        use_bias=True)
    add("SeparableConv2D", "separable_conv2d", filters=6, kernel_size=[3, 3], strides=[1, 1],
        padding="same", data_format="channels_last", dilation_rate=[2, 1], depth_multiplier=2,
        activation="gelu", use_bias=True)
    add("SeparableConv2D", "separable_conv2d_1", filters=5, kernel_size=[3, 3], strides=[2, 2],
        padding="valid", data_format="channels_last", dilation_rate=[1, 1], depth_multiplier=1,
        activation="linear", use_bias=False)
    add("GlobalAveragePooling2D", "global_average_pooling2d", data_format="channels_last",
        keepdims=False)
    add("Dense", "dense", units=CLASSES, activation="linear", use_bias=True)
    add("Softmax", "softmax", axis=-1)
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
            "keras_version": "2.15.0", "backend": "tensorflow"}


def main():
    out = fixture_dir("reference_conv_options")
    rng = np.random.RandomState(20261201)
    layers = []  # (keras layer name, [(weight name, array, trainable)]) in Keras order

    def uni(shape, fan_in, fan_out, gain=1.5):
        return glorot(rng, shape, fan_in, fan_out, gain)

    layers.append(("conv2d", [("kernel", uni((3, 3, 4, 8), 36, 72), True),
                              ("bias", bias(rng, 8), True)]))
    layers.append(("conv2d_1", [("kernel", uni((3, 3, 2, 8), 18, 72), True),
                                ("bias", bias(rng, 8), True)]))
    layers.append(("separable_conv2d", [("depthwise_kernel", uni((3, 3, 8, 2), 72, 18), True),
                                        ("pointwise_kernel", uni((1, 1, 16, 6), 16, 6), True),
                                        ("bias", bias(rng, 6), True)]))
    layers.append(("separable_conv2d_1", [("depthwise_kernel", uni((3, 3, 6, 1), 54, 9), True),
                                          ("pointwise_kernel", uni((1, 1, 6, 5), 6, 5), True)]))
    layers.append(("dense", [("kernel", uni((5, CLASSES), 5, CLASSES, 1.0), True),
                             ("bias", bias(rng, CLASSES), True)]))

    x, y = inputs((N, H, W, C), CLASSES, LABELS, 0.37, 0.23, 1.3, 0.17)

    def to_keras(wname, g, shape):
        """A torch gradient in the Keras layout of a weight of that shape."""
        if wname == "depthwise_kernel":
            return g.squeeze(1).permute(1, 2, 0).reshape(shape)
        if g.dim() == 4:
            return g.permute(2, 3, 1, 0)
        if wname == "kernel":
            return g.t()
        return g

    P = torch_params(layers)

    def conv(name, t, stride=1, dil=(1, 1), same=False, groups=1):
        k = P[(name, "kernel")]
        if same:
            t = pad_same(t, k.shape[2:], stride, dil)
        return F.conv2d(t, k, P[(name, "bias")], stride=stride, dilation=dil, groups=groups)

    def separable(name, t, stride=1, dil=(1, 1), same=False):
        dk = P[(name, "depthwise_kernel")]
        if same:
            t = pad_same(t, dk.shape[2:], stride, dil)
        t = F.conv2d(t, dk, None, stride=stride, dilation=dil, groups=t.shape[1])
        return F.conv2d(t, P[(name, "pointwise_kernel")], P.get((name, "bias")))

    def forward(x_nhwc):
        t = nchw(x_nhwc)
        a = torch.tanh(conv("conv2d", t, dil=(2, 2), same=True))
        b = conv("conv2d_1", a, groups=4)
        b = b * torch.sigmoid(b)                                    # swish
        s = F.gelu(separable("separable_conv2d", b, dil=(2, 1), same=True))
        s = separable("separable_conv2d_1", s, stride=2)
        g = s.mean(dim=(2, 3))
        return F.linear(g, P[("dense", "kernel")], P[("dense", "bias")])

    loss, logits, probs = loss_step(forward, x, y)
    assert tuple(logits.shape) == (N, CLASSES)

    # write_fixture transposes 'kernel' gradients only: hand it the others in
    # Keras' layout already
    class KerasGrad:
        def __init__(self, g):
            self.grad = g

    G = {}
    for lname, ws in layers:
        for wname, arr, _ in ws:
            g = to_keras(wname, P[(lname, wname)].grad, arr.shape)
            assert tuple(g.shape) == arr.shape, (lname, wname, g.shape, arr.shape)
            G[(lname, wname)] = P[(lname, wname)] if wname == "kernel" else KerasGrad(g)

    title = "convolution options reference, see tests/reference/gen_torch_conv_options.py"
    count = write_fixture(out, title, torch.__version__, (N, H, W, C), CLASSES, loss.item(),
                          x, y, probs, probs, layers, G, {}, {})
    with open(os.path.join(out, "model.json"), "w") as f:
        f.write(json.dumps(keras_json()) + "\n")
    print(f"loss {loss.item():.6f}; wrote {count} files to {out}")


if __name__ == "__main__":
    main()
