"""Writing a PyTorch reference fixture (shared by gen_torch_reference.py and
gen_torch_residual.py): float32 little-endian raw files in Keras layout and
manifest.txt listing the shapes, the loss and every file with its element
count, as tests/unit/test_reference.c reads them."""

import os

import numpy as np


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
