# test_api_augment.py - augmentation layers trained through the daemon: a
# Sequential model.to_json() with RandomFlip and RandomTranslation on a tiny
# Fashion-MNIST job.  Two runs with the same seed write the same weights
# (SHA-256 of every weight array, read with h5py), another seed writes
# others, and the same model without the two layers writes others too (the
# layers act in training); bad layer configs are refused with the key named.

import hashlib

import h5py
import numpy as np
import pytest

from conftest import TERMINAL, assert_model_refused, tiny_spec


def model(augment=True, flip_mode="horizontal"):
    layers = [{"class_name": "InputLayer",
               "config": {"batch_shape": [None, 28, 28, 1], "dtype": "float32",
                          "sparse": False, "name": "input_layer"}}]
    if augment:
        layers += [
            {"class_name": "RandomFlip",
             "config": {"name": "random_flip", "trainable": True, "dtype": "float32",
                        "seed": None, "mode": flip_mode, "data_format": "channels_last"}},
            {"class_name": "RandomTranslation",
             "config": {"name": "random_translation", "trainable": True, "dtype": "float32",
                        "height_factor": 0.1, "width_factor": [-0.1, 0.1],
                        "fill_mode": "reflect", "interpolation": "bilinear", "seed": None,
                        "fill_value": 0.0, "data_format": "channels_last"}},
        ]
    layers += [
        {"class_name": "Conv2D", "config": {"name": "conv2d", "filters": 4, "kernel_size": [3, 3],
                                            "padding": "same", "activation": "relu"}},
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 10,
                                           "activation": "softmax"}},
    ]
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def weights_digest(path):
    """SHA-256 over every dataset of the weight file, in name order."""
    h = hashlib.sha256()
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        assert names
        for n in sorted(names):
            h.update(n.encode())
            h.update(np.ascontiguousarray(f[n][()]).tobytes())
    return h.hexdigest(), sorted(names)


def train(daemon, tmp_path, tag, **kw):
    c = daemon.client
    spec = tiny_spec(name=f"augment-{tag}", epochs=1,
                     checkpoints=[{"filepath": "last.hdf5", "save_best_only": False}], **kw)
    job = c.submit(spec)
    final = c.wait_state(job["id"], TERMINAL, daemon=daemon)
    assert final["state"] == "succeeded", final
    r = c.get(f"/v1/jobs/{job['id']}/latest")
    assert r.status == 200, r
    path = tmp_path / f"{tag}.hdf5"
    path.write_bytes(r.body)
    return weights_digest(path)


def test_same_seed_same_weights(module_traind, tmp_path):
    a, names = train(module_traind, tmp_path, "a", model=model(), seed=7)
    b, _ = train(module_traind, tmp_path, "b", model=model(), seed=7)
    other, _ = train(module_traind, tmp_path, "c", model=model(), seed=8)
    plain, plain_names = train(module_traind, tmp_path, "d", model=model(augment=False), seed=7)
    assert a == b
    assert a != other
    assert names == plain_names  # no weights of their own
    assert a != plain


@pytest.mark.parametrize("layer,field", [
    ({"class_name": "RandomFlip", "config": {"mode": "sideways"}}, "/config/layers/1/config/mode"),
    ({"class_name": "RandomTranslation", "config": {"height_factor": 2.0, "width_factor": 0.1}},
     "/config/layers/1/config/height_factor"),
    ({"class_name": "RandomRotation", "config": {"factor": 0.1, "fill_mode": "mirror"}},
     "/config/layers/1/config/fill_mode"),
])
def test_bad_layer_config(module_traind, layer, field):
    m = model(augment=False)
    m["config"]["layers"].insert(1, layer)
    assert_model_refused(module_traind.client, m, "/model" + field)
