"""What the PyTorch reference generators (gen_torch_reference.py,
gen_torch_residual.py, gen_torch_conv_options.py) share: the output folder,
float32 weights from a seeded numpy RNG, the formula input and one-hot
labels, the Keras -> torch weight layouts, TF 'same' padding, the loss step,
BatchNormalization in training and inference mode with Keras' moving
statistics, and writing the fixture (float32 little-endian raw files in Keras
layout and manifest.txt listing the shapes, the loss and every file with its
element count, as tests/unit/test_reference.c reads them)."""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

DT = torch.float64


def f32(a):
    return np.asarray(a, dtype=np.float32)


def fixture_dir(name):
    """argv[1], else tests/fixtures/<name>; created if missing."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "fixtures", name)
    os.makedirs(out, exist_ok=True)
    return out


def glorot(rng, shape, fan_in, fan_out, gain=1.0):
    """Glorot-uniform-like float32 weights, scaled by gain (in float32)."""
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return f32(rng.uniform(-lim, lim, size=shape)) * np.float32(gain)


def bias(rng, n):
    return f32(rng.uniform(-0.1, 0.1, size=n))


def bn_weights(rng, c):
    """BatchNormalization's four variables: gamma around 1, beta around 0, and
    small moving statistics, so that float32 resolves the batch statistics'
    share of the update finely (the test recovers them from the moving
    values)."""
    return [
        ("gamma", f32(rng.uniform(0.8, 1.2, size=c)), True),
        ("beta", f32(rng.uniform(-0.2, 0.2, size=c)), True),
        ("moving_mean", f32(rng.uniform(-0.05, 0.05, size=c)), False),
        ("moving_variance", f32(rng.uniform(0.002, 0.02, size=c)), False),
    ]


def inputs(nhwc, classes, labels, a, b, e, g):
    """x (N, H, W, C) in [0, 1] from
    0.5 + 0.45 sin(a h + b w (c + 1) + e n) cos(g (h - w) + n), and one-hot y."""
    N, H, W, C = nhwc
    n, h, w, c = np.meshgrid(np.arange(N), np.arange(H), np.arange(W), np.arange(C), indexing="ij")
    x = f32(0.5 + 0.45 * np.sin(a * h + b * w * (c + 1) + e * n) * np.cos(g * (h - w) + n))
    y = np.zeros((N, classes), dtype=np.float32)
    y[np.arange(N), labels] = 1.0
    return x, y


def to_torch(wname, a):
    """A Keras weight as a float64 torch tensor in torch's layout."""
    t = torch.tensor(a.astype(np.float64), dtype=DT)
    if wname == "depthwise_kernel":  # (kh, kw, cin, M) -> (cin * M, 1, kh, kw)
        kh, kw, ci, m = a.shape
        return t.reshape(kh, kw, ci * m).permute(2, 0, 1).unsqueeze(1).contiguous()
    if t.dim() == 4:
        return t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    if wname == "kernel":
        return t.t().contiguous()                   # (in, out) -> (out, in)
    return t


def torch_params(layers):
    """P[(layer, weight)]: the torch tensor of every variable of layers
    ([(keras layer name, [(weight name, array, trainable)])]), trainable ones
    requiring gradients."""
    P = {}
    for lname, ws in layers:
        for wname, arr, trainable in ws:
            t = to_torch(wname, arr)
            t.requires_grad_(trainable)
            P[(lname, wname)] = t
    return P


def nchw(x_nhwc):
    return torch.tensor(x_nhwc.astype(np.float64), dtype=DT).permute(0, 3, 1, 2)


def pad_same(t, k, stride, dil=(1, 1)):
    """TF 'same': pad_total = max((ceil(in / s) - 1) * s + (k - 1) * d + 1 - in, 0),
    the odd pad after (bottom/right)."""
    pads = []
    for axis in (3, 2):  # F.pad wants (left, right, top, bottom)
        size = t.shape[axis]
        ek = (k[axis - 2] - 1) * dil[axis - 2] + 1
        o = -(-size // stride)
        tot = max((o - 1) * stride + ek - size, 0)
        pads += [tot // 2, tot - tot // 2]
    return F.pad(t, pads)


def loss_step(forward, x, y):
    """Categorical cross-entropy (mean over the batch) of forward(x)'s logits,
    back-propagated into the parameters; returns the loss tensor, the logits
    and the softmax probabilities."""
    logits = forward(x)
    yt = torch.tensor(y.astype(np.float64), dtype=DT)
    loss = -(yt * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss.backward()
    return loss, logits, torch.softmax(logits, dim=1).detach().numpy()


class BatchNorm:
    """BatchNormalization over P's gamma / beta / moving statistics: training
    mode with the batch statistics (biased variance), epsilon eps; the inputs
    are kept for Keras' moving-statistics update (momentum)."""

    def __init__(self, P, momentum, eps):
        self.P, self.momentum, self.eps = P, momentum, eps
        self.inputs, self.running, self.eval_stats = {}, {}, {}
        self.eval_mode = False

    def __call__(self, name, t):
        P = self.P
        if self.eval_mode:  # inference with the statistics in eval_stats, nothing updated
            em, ev = self.eval_stats[name]
            return F.batch_norm(t, torch.tensor(em, dtype=DT), torch.tensor(ev, dtype=DT),
                                P[(name, "gamma")], P[(name, "beta")], training=False,
                                eps=self.eps)
        self.inputs[name] = t.detach().clone()
        rm = P[(name, "moving_mean")].detach().clone()
        rv = P[(name, "moving_variance")].detach().clone()
        # torch's momentum is Keras' 1 - momentum; torch updates rm, rv in place
        res = F.batch_norm(t, rm, rv, P[(name, "gamma")], P[(name, "beta")], training=True,
                           momentum=1.0 - self.momentum, eps=self.eps)
        self.running[name] = (rm, rv)
        return res

    def eval_pass(self, forward, x):
        """Softmax of forward(x) in inference mode (model.predict) with moving
        statistics of a realistic size: the batch's statistics, moved a little."""
        for lname, t in self.inputs.items():
            inp = t.numpy()
            axes = (0, 2, 3) if inp.ndim == 4 else (0,)
            self.eval_stats[lname] = (f32(inp.mean(axis=axes) * 1.1 + 0.01).astype(np.float64),
                                      f32(inp.var(axis=axes) * 0.9 + 0.01).astype(np.float64))
        self.eval_mode = True
        with torch.no_grad():
            probs_eval = torch.softmax(forward(x), dim=1).numpy()
        self.eval_mode = False
        return probs_eval

    def moving(self, layers):
        """{bn layer: (moving_mean, moving_variance)} after Keras' update
        moving = momentum * moving + (1 - momentum) * batch statistic, where
        the batch variance is the unbiased one (n / (n - 1)) after Conv2D
        (tf.keras' fused kernel) and the biased one after Dense
        (tf.nn.moments); see core/batchnorm.c."""
        mom = self.momentum
        moving = {}
        for lname, ws in layers:
            if lname not in self.inputs:
                continue
            inp = self.inputs[lname].numpy()
            four_d = inp.ndim == 4
            axes = (0, 2, 3) if four_d else (0,)
            cnt = inp.size // inp.shape[1]
            mean = inp.mean(axis=axes)
            var = inp.var(axis=axes)  # biased
            if four_d:
                var = var * cnt / (cnt - 1)
            d = dict((wn, a) for wn, a, _ in ws)
            moving[lname] = (d["moving_mean"].astype(np.float64) * mom + mean * (1 - mom),
                             d["moving_variance"].astype(np.float64) * mom + var * (1 - mom))
            # cross-check with torch's own running statistics (torch always uses the
            # unbiased variance: equal to Keras after Conv2D, not after Dense)
            rm, rv = self.running[lname]
            assert np.allclose(rm.numpy(), moving[lname][0], rtol=1e-12, atol=1e-12)
            if four_d:
                assert np.allclose(rv.numpy(), moving[lname][1], rtol=1e-12, atol=1e-12)
            else:
                assert not np.allclose(rv.numpy(), moving[lname][1], rtol=1e-9, atol=0)
        return moving


def bn_step_fixture(out, title, nhwc, classes, forward, x, y, layers, P, batchnorm):
    """One training step (loss, gradients, moving statistics) and one inference
    pass of forward, a network with BatchNormalization, on x, y; written as
    the fixture in out."""
    loss, _, probs = loss_step(forward, x, y)
    probs_eval = batchnorm.eval_pass(forward, x)
    moving = batchnorm.moving(layers)
    count = write_fixture(out, title, torch.__version__, nhwc, classes, loss.item(), x, y, probs,
                          probs_eval, layers, P, moving, batchnorm.eval_stats)
    print(f"loss {loss.item():.6f}; wrote {count} files to {out}")


def write_fixture(out, title, torch_version, nhwc, classes, loss, x, y, probs, probs_eval,
                  layers, P, moving, eval_stats):
    """layers: [(keras layer name, [(weight name, array, trainable)])] in Keras
    order; P[(layer, weight)]: the torch tensors holding the gradients
    (kernels OIHW or (out, in)); moving / eval_stats: {bn layer: (mean, var)}."""
    n, h, w, c = nhwc
    manifest = [f"# {title}", f"torch {torch_version}", f"input {n} {h} {w} {c}",
                f"classes {classes}", f"loss {float(loss)!r}"]

    def put(fname, arr):
        a = np.ascontiguousarray(arr, dtype="<f4")
        with open(os.path.join(out, fname), "wb") as f:
            f.write(a.tobytes())
        manifest.append(f"file {fname} {a.size}")

    put("x.f32", x)
    put("y.f32", y)
    put("probs.f32", probs)
    put("probs_eval.f32", probs_eval)
    for lname, ws in layers:
        for wname, arr, trainable in ws:
            put(f"w.{lname}.{wname}.f32", arr)
            if trainable:
                g = P[(lname, wname)].grad
                if wname == "kernel" and g.dim() == 4:
                    g = g.permute(2, 3, 1, 0)  # OIHW -> HWIO
                elif wname == "kernel":
                    g = g.t()
                put(f"g.{lname}.{wname}.f32", g.numpy())
        if lname in moving:
            put(f"m.{lname}.moving_mean.f32", moving[lname][0])
            put(f"m.{lname}.moving_variance.f32", moving[lname][1])
            put(f"e.{lname}.moving_mean.f32", eval_stats[lname][0])
            put(f"e.{lname}.moving_variance.f32", eval_stats[lname][1])
    with open(os.path.join(out, "manifest.txt"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    return len(manifest) - 5
