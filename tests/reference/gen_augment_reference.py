#!/usr/bin/python3
"""Reference values of the augmentation transforms for tests/unit/test_augment.c.

Written from Keras 3's own definitions (keras/src/backend/torch/image.py and
jax/image.py: map_coordinates with its index fixers; the affine matrices of
keras/src/layers/preprocessing/image_preprocessing/*.py; RandomCrop's
inference window and TF's half-pixel bilinear resize), in numpy, vectorised
and independent of the C code.  Run it to regenerate
tests/fixtures/augment/reference.json:

    /usr/bin/python3 tests/reference/gen_augment_reference.py
"""
import json
import math
import os

import numpy as np


def mirror_index_fixer(index, size):
    s = size - 1
    return np.abs((index + s) % (2 * s) - s)


def reflect_index_fixer(index, size):
    return np.floor_divide(mirror_index_fixer(2 * index + 1, 2 * size + 1) - 1, 2)


INDEX_FIXERS = {
    "constant": lambda index, size: np.clip(index, 0, size - 1),
    "nearest": lambda index, size: np.clip(index, 0, size - 1),
    "wrap": lambda index, size: index % size,
    "reflect": reflect_index_fixer,
}


def interp_nodes(coord, order):
    if order == 0:
        return [(np.round(coord).astype(np.int64), np.ones_like(coord))]
    lower = np.floor(coord)
    upper_weight = coord - lower
    return [(lower.astype(np.int64), 1 - upper_weight),
            (lower.astype(np.int64) + 1, upper_weight)]


def map_coordinates_2d(channel, ys, xs, order, fill_mode, fill_value):
    """Keras 3 map_coordinates of one (H, W) channel at (ys, xs)."""
    out = np.zeros(ys.shape, dtype=np.float64)
    fixer = INDEX_FIXERS[fill_mode]
    for iy, wy in interp_nodes(ys, order):
        for ix, wx in interp_nodes(xs, order):
            fy, fx = fixer(iy, channel.shape[0]), fixer(ix, channel.shape[1])
            val = channel[fy, fx]
            if fill_mode == "constant":
                ok = (iy >= 0) & (iy < channel.shape[0]) & (ix >= 0) & (ix < channel.shape[1])
                val = np.where(ok, val, fill_value)
            out += wy * wx * val
    return out


def affine_transform(img, m, interpolation, fill_mode, fill_value):
    """keras.ops.image.affine_transform of one (H, W, C) image, transform
    [a0, a1, a2, b0, b1, b2, 0, 0]: output (y, x) reads (b0 x + b1 y + b2,
    a0 x + a1 y + a2)."""
    h, w, c = img.shape
    y, x = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32),
                       indexing="ij")
    m = np.asarray(m, dtype=np.float32)
    xs = m[0] * x + m[1] * y + m[2]
    ys = m[3] * x + m[4] * y + m[5]
    order = 0 if interpolation == "nearest" else 1
    return np.stack([map_coordinates_2d(img[:, :, k].astype(np.float64), ys, xs, order,
                                        fill_mode, fill_value) for k in range(c)], axis=-1)


def rotation_matrix(deg, h, w):
    """BaseImagePreprocessingLayer._compute_affine_matrix, rotation only."""
    th = deg * math.pi / 180.0
    cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
    a0, a1 = math.cos(th), -math.sin(th)
    b0, b1 = math.sin(th), math.cos(th)
    return [a0, a1, cx - cx * a0 - cy * a1, b0, b1, cy - cx * b0 - cy * b1]


def zoom_matrix(zx, zy, h, w):
    """RandomZoom._get_zoom_matrix"""
    return [zx, 0, (w - 1) / 2 * (1 - zx), 0, zy, (h - 1) / 2 * (1 - zy)]


def translation_matrix(dx, dy):
    """RandomTranslation._get_translation_matrix"""
    return [1, 0, -dx, 0, 1, -dy]


def crop_window(h, w, th, tw):
    """RandomCrop.get_random_transformation outside training."""
    crop_height = max(min(h, int(float(w * th) / tw)), 1)
    crop_width = max(min(w, int(float(h * tw) / th)), 1)
    return [int(float(h - crop_height) / 2), int(float(w - crop_width) / 2), crop_height,
            crop_width]


def resize_bilinear(img, oh, ow):
    """tf.image.resize(method="bilinear", antialias=False): half-pixel centres."""
    h, w, _ = img.shape

    def taps(o, n_in, n_out):
        v = (o + 0.5) * (n_in / n_out) - 0.5
        f = math.floor(v)
        return max(f, 0), min(math.ceil(v), n_in - 1), v - f

    out = np.zeros((oh, ow, img.shape[2]))
    for y in range(oh):
        y0, y1, fy = taps(y, h, oh)
        for x in range(ow):
            x0, x1, fx = taps(x, w, ow)
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * fx
            bot = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * fx
            out[y, x] = top + (bot - top) * fy
    return out


def main():
    rng = np.random.RandomState(20261130)
    h, w, c = 5, 6, 2
    img = rng.uniform(-1, 1, (h, w, c)).astype(np.float32)
    mats = {
        "translation": translation_matrix(1.7, -2.3),
        "translation_far": translation_matrix(-13.25, 8.5),
        "rotation": rotation_matrix(37.0, h, w),
        "rotation_neg": rotation_matrix(-151.0, h, w),
        "zoom": zoom_matrix(1.3, 0.6, h, w),
        "flip_horizontal": [-1, 0, w - 1, 0, 1, 0],
        "flip_vertical": [1, 0, 0, 0, -1, h - 1],
    }
    affine = []
    for name, m in mats.items():
        for interp in ("bilinear", "nearest"):
            for fill in ("reflect", "wrap", "constant", "nearest"):
                out = affine_transform(img, m, interp, fill, 0.25)
                affine.append({"name": name, "h": h, "w": w, "c": c,
                               "m": [float(np.float32(v)) for v in m], "interpolation": interp,
                               "fill_mode": fill, "fill_value": 0.25,
                               "input": img.ravel().tolist(), "output": out.ravel().tolist()})
    crop = []
    big = rng.uniform(0, 1, (7, 9, 2)).astype(np.float32)
    for th, tw in ((4, 5), (3, 3), (7, 9), (10, 12), (2, 8)):
        win = crop_window(7, 9, th, tw)
        window = big[win[0]:win[0] + win[2], win[1]:win[1] + win[3]].astype(np.float64)
        out = window if (win[2], win[3]) == (th, tw) else resize_bilinear(window, th, tw)
        crop.append({"h": 7, "w": 9, "c": 2, "height": th, "width": tw, "window": win,
                     "input": big.ravel().tolist(), "output": out.ravel().tolist()})
    contrast = []
    for f, lo, hi in ((1.7, 0.2, 0.8), (0.4, 0.0, 255.0)):
        mean = big.astype(np.float64).mean(axis=(0, 1), keepdims=True)
        out = np.clip((big - mean) * f + mean, lo, hi)
        contrast.append({"h": 7, "w": 9, "c": 2, "factor": f, "value_range": [lo, hi],
                         "input": big.ravel().tolist(), "output": out.ravel().tolist()})
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "fixtures", "augment", "reference.json")
    with open(path, "w") as f:
        json.dump({"affine": affine, "crop": crop, "contrast": contrast}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
