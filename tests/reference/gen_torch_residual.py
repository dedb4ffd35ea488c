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
import sys

import numpy as np
import torch
import torch.nn.functional as F

from torch_ref_io import write_fixture

N, H, W, C, CLASSES = 6, 8, 8, 2, 5
BN_MOMENTUM, BN_EPS = 0.99, 1e-3
LABELS = [3, 1, 4, 0, 2, 4]


def f32(a):
    return np.asarray(a, dtype=np.float32)


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
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures",
                                                             "reference_residual")
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(20261130)
    layers = []  # (keras layer name, [(weight name, array, trainable)]) in Keras order

    def conv(name, k, cin, cout):
        lim = np.sqrt(6.0 / (k * k * (cin + cout)))
        layers.append((name, [("kernel", f32(rng.uniform(-lim, lim, size=(k, k, cin, cout)))
                               * np.float32(1.5), True),
                              ("bias", f32(rng.uniform(-0.1, 0.1, size=cout)), True)]))

    def bn(name, c):
        layers.append((name, [
            ("gamma", f32(rng.uniform(0.8, 1.2, size=c)), True),
            ("beta", f32(rng.uniform(-0.2, 0.2, size=c)), True),
            ("moving_mean", f32(rng.uniform(-0.05, 0.05, size=c)), False),
            ("moving_variance", f32(rng.uniform(0.002, 0.02, size=c)), False),
        ]))

    conv("conv2d", 3, C, 4)
    bn("batch_normalization", 4)
    conv("conv2d_1", 3, 4, 4)
    bn("batch_normalization_1", 4)
    conv("conv2d_2", 3, 4, 6)
    conv("conv2d_3", 1, 4, 6)
    lim = np.sqrt(6.0 / (12 + CLASSES))
    layers.append(("dense", [("kernel", f32(rng.uniform(-lim, lim, size=(12, CLASSES))), True),
                             ("bias", f32(rng.uniform(-0.1, 0.1, size=CLASSES)), True)]))

    n, h, w, c = np.meshgrid(np.arange(N), np.arange(H), np.arange(W), np.arange(C), indexing="ij")
    x = f32(0.5 + 0.45 * np.sin(0.41 * h + 0.29 * w * (c + 1) + 1.7 * n) * np.cos(0.13 * (h - w) + n))
    y = np.zeros((N, CLASSES), dtype=np.float32)
    y[np.arange(N), LABELS] = 1.0

    dt = torch.float64
    P = {}
    for lname, ws in layers:
        for wname, arr, trainable in ws:
            t = torch.tensor(arr.astype(np.float64), dtype=dt)
            if wname == "kernel" and t.dim() == 4:
                t = t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
            elif wname == "kernel":
                t = t.t().contiguous()
            t.requires_grad_(trainable)
            P[(lname, wname)] = t

    bn_inputs, torch_running, eval_stats = {}, {}, {}
    eval_mode = [False]

    def batchnorm(name, t):
        if eval_mode[0]:
            em, ev = eval_stats[name]
            return F.batch_norm(t, torch.tensor(em, dtype=dt), torch.tensor(ev, dtype=dt),
                                P[(name, "gamma")], P[(name, "beta")], training=False, eps=BN_EPS)
        bn_inputs[name] = t.detach().clone()
        rm = P[(name, "moving_mean")].detach().clone()
        rv = P[(name, "moving_variance")].detach().clone()
        res = F.batch_norm(t, rm, rv, P[(name, "gamma")], P[(name, "beta")], training=True,
                           momentum=1.0 - BN_MOMENTUM, eps=BN_EPS)
        torch_running[name] = (rm, rv)
        return res

    def conv2d(name, t, stride, same):
        k = P[(name, "kernel")]
        kh = k.shape[2]
        if same:  # TF: pad_total = max((ceil(in / s) - 1) * s + k - in, 0), extra after
            size = t.shape[2]
            out = -(-size // stride)
            tot = max((out - 1) * stride + kh - size, 0)
            t = F.pad(t, (tot // 2, tot - tot // 2, tot // 2, tot - tot // 2))
        return F.conv2d(t, k, P[(name, "bias")], stride=stride)

    def forward(x_nhwc):
        t = torch.tensor(x_nhwc.astype(np.float64), dtype=dt).permute(0, 3, 1, 2)
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

    logits = forward(x)
    yt = torch.tensor(y.astype(np.float64), dtype=dt)
    loss = -(yt * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss.backward()
    probs = torch.softmax(logits, dim=1).detach().numpy()

    for lname, t in bn_inputs.items():
        inp = t.numpy()
        eval_stats[lname] = (f32(inp.mean(axis=(0, 2, 3)) * 1.1 + 0.01).astype(np.float64),
                             f32(inp.var(axis=(0, 2, 3)) * 0.9 + 0.01).astype(np.float64))
    eval_mode[0] = True
    with torch.no_grad():
        probs_eval = torch.softmax(forward(x), dim=1).numpy()
    eval_mode[0] = False

    moving = {}
    for lname, ws in layers:
        if lname not in bn_inputs:
            continue
        inp = bn_inputs[lname].numpy()
        cnt = inp.size // inp.shape[1]
        mean = inp.mean(axis=(0, 2, 3))
        var = inp.var(axis=(0, 2, 3)) * cnt / (cnt - 1)
        d = dict((wn, a) for wn, a, _ in ws)
        moving[lname] = (d["moving_mean"].astype(np.float64) * BN_MOMENTUM + mean * (1 - BN_MOMENTUM),
                         d["moving_variance"].astype(np.float64) * BN_MOMENTUM + var * (1 - BN_MOMENTUM))
        rm, rv = torch_running[lname]
        assert np.allclose(rm.numpy(), moving[lname][0], rtol=1e-12, atol=1e-12)
        assert np.allclose(rv.numpy(), moving[lname][1], rtol=1e-12, atol=1e-12)

    title = "residual functional model reference, see tests/reference/gen_torch_residual.py"
    count = write_fixture(out, title, torch.__version__, (N, H, W, C), CLASSES, loss.item(),
                          x, y, probs, probs_eval, layers, P, moving, eval_stats)
    with open(os.path.join(out, "model.json"), "w") as f:
        f.write(json.dumps(keras_json()) + "\n")
    print(f"loss {loss.item():.6f}; wrote {count} files to {out}")


if __name__ == "__main__":
    main()
