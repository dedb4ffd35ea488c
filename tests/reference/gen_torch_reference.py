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

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from torch_ref_io import write_fixture

N, H, W, C, CLASSES = 6, 12, 12, 3, 10
BN_MOMENTUM, BN_EPS = 0.99, 1e-3
LABELS = [3, 1, 4, 1, 5, 9]


def f32(a):
    return np.asarray(a, dtype=np.float32)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures", "reference")
    os.makedirs(out, exist_ok=True)
    rng = np.random.RandomState(20261128)

    # ---- variables in Keras layout and order, float32
    layers = []  # (keras layer name, [(weight name, array, trainable)])

    def glorot(shape, fan_in, fan_out):
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        return f32(rng.uniform(-lim, lim, size=shape))

    def conv(name, cin, cout):
        k = glorot((3, 3, cin, cout), 9 * cin, 9 * cout)
        b = f32(rng.uniform(-0.1, 0.1, size=cout))
        layers.append((name, [("kernel", k, True), ("bias", b, True)]))

    def bn(name, c):
        layers.append((name, [
            ("gamma", f32(rng.uniform(0.8, 1.2, size=c)), True),
            ("beta", f32(rng.uniform(-0.2, 0.2, size=c)), True),
            # small, so that float32 resolves the batch statistics' share of the
            # update finely (the test recovers them from the moving values)
            ("moving_mean", f32(rng.uniform(-0.05, 0.05, size=c)), False),
            ("moving_variance", f32(rng.uniform(0.002, 0.02, size=c)), False),
        ]))

    def dense(name, fin, fout):
        k = glorot((fin, fout), fin, fout)
        b = f32(rng.uniform(-0.1, 0.1, size=fout))
        layers.append((name, [("kernel", k, True), ("bias", b, True)]))

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

    # input from a formula, in [0, 1]; one-hot labels
    n, h, w, c = np.meshgrid(np.arange(N), np.arange(H), np.arange(W), np.arange(C), indexing="ij")
    x = f32(0.5 + 0.45 * np.sin(0.37 * h + 0.23 * w * (c + 1) + 1.3 * n) * np.cos(0.11 * (h - w) + n))
    y = np.zeros((N, CLASSES), dtype=np.float32)
    y[np.arange(N), LABELS] = 1.0

    # ---- the same network in torch, float64, parameters from the arrays above
    dt = torch.float64
    P = {}
    for lname, ws in layers:
        for wname, arr, trainable in ws:
            t = torch.tensor(arr.astype(np.float64), dtype=dt)
            if wname == "kernel" and t.dim() == 4:
                t = t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
            elif wname == "kernel":
                t = t.t().contiguous()                   # (in, out) -> (out, in)
            t.requires_grad_(trainable)
            P[(lname, wname)] = t

    bn_inputs = {}
    eval_mode = [False]

    def bn_train(name, t):
        if eval_mode[0]:  # inference with the statistics in eval_stats, nothing updated
            em, ev = eval_stats[name]
            return F.batch_norm(t, torch.tensor(em, dtype=dt), torch.tensor(ev, dtype=dt),
                                P[(name, "gamma")], P[(name, "beta")], training=False,
                                eps=BN_EPS)
        bn_inputs[name] = t.detach().clone()
        rm = P[(name, "moving_mean")].detach().clone()
        rv = P[(name, "moving_variance")].detach().clone()
        # torch's momentum is Keras' 1 - momentum; torch updates rm, rv in place
        res = F.batch_norm(t, rm, rv, P[(name, "gamma")], P[(name, "beta")], training=True,
                           momentum=1.0 - BN_MOMENTUM, eps=BN_EPS)
        torch_running[name] = (rm, rv)
        return res

    torch_running = {}

    def block(t, a, b):
        t = bn_train(a[1], F.relu(F.conv2d(t, P[(a[0], "kernel")], P[(a[0], "bias")], padding=1)))
        t = bn_train(b[1], F.relu(F.conv2d(t, P[(b[0], "kernel")], P[(b[0], "bias")], padding=1)))
        return F.max_pool2d(t, 2)

    def forward(x_nhwc):
        t = torch.tensor(x_nhwc.astype(np.float64), dtype=dt).permute(0, 3, 1, 2)  # NHWC -> NCHW
        t = block(t, ("conv2d", "batch_normalization"), ("conv2d_1", "batch_normalization_1"))
        t = block(t, ("conv2d_2", "batch_normalization_2"), ("conv2d_3", "batch_normalization_3"))
        t = t.permute(0, 2, 3, 1).flatten(1)  # Keras Flatten order (h, w, c)
        t = bn_train("batch_normalization_4",
                     F.relu(F.linear(t, P[("dense", "kernel")], P[("dense", "bias")])))
        return F.linear(t, P[("dense_1", "kernel")], P[("dense_1", "bias")])

    logits = forward(x)
    yt = torch.tensor(y.astype(np.float64), dtype=dt)
    logp = F.log_softmax(logits, dim=1)
    loss = -(yt * logp).sum(dim=1).mean()  # categorical cross-entropy, mean over the batch
    loss.backward()
    probs = torch.softmax(logits, dim=1).detach().numpy()

    # ---- inference mode (model.predict) with moving statistics of a realistic
    # size (the fixture's own moving statistics are deliberately small, see bn()):
    # the batch's statistics, moved a little
    eval_stats = {}
    for lname, t in bn_inputs.items():
        inp = t.numpy()
        axes = (0, 2, 3) if inp.ndim == 4 else (0,)
        eval_stats[lname] = (f32(inp.mean(axis=axes) * 1.1 + 0.01).astype(np.float64),
                             f32(inp.var(axis=axes) * 0.9 + 0.01).astype(np.float64))
    eval_mode[0] = True
    with torch.no_grad():
        probs_eval = torch.softmax(forward(x), dim=1).numpy()
    eval_mode[0] = False

    # ---- Keras moving-statistics update
    moving = {}
    for lname, ws in layers:
        if lname not in bn_inputs:
            continue
        inp = bn_inputs[lname].numpy()
        four_d = inp.ndim == 4
        axes = (0, 2, 3) if four_d else (0,)
        cnt = inp.size // inp.shape[1]
        mean = inp.mean(axis=axes)
        var = inp.var(axis=axes)  # biased
        if four_d:
            var = var * cnt / (cnt - 1)
        mm0 = dict((wn, a) for wn, a, _ in ws)["moving_mean"].astype(np.float64)
        mv0 = dict((wn, a) for wn, a, _ in ws)["moving_variance"].astype(np.float64)
        moving[lname] = (mm0 * BN_MOMENTUM + mean * (1 - BN_MOMENTUM),
                         mv0 * BN_MOMENTUM + var * (1 - BN_MOMENTUM))
        # cross-check with torch's own running statistics (torch always uses the
        # unbiased variance: equal to Keras after Conv2D, not after Dense)
        rm, rv = torch_running[lname]
        assert np.allclose(rm.numpy(), moving[lname][0], rtol=1e-12, atol=1e-12)
        if four_d:
            assert np.allclose(rv.numpy(), moving[lname][1], rtol=1e-12, atol=1e-12)
        else:
            assert not np.allclose(rv.numpy(), moving[lname][1], rtol=1e-9, atol=0)

    title = "MiniVGGNet reference, see tests/reference/gen_torch_reference.py"
    count = write_fixture(out, title, torch.__version__, (N, H, W, C), CLASSES, loss.item(),
                          x, y, probs, probs_eval, layers, P, moving, eval_stats)
    print(f"loss {loss.item():.6f}; wrote {count} files to {out}")


if __name__ == "__main__":
    main()
