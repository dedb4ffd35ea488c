# test_api_functional.py - a functional (residual) Keras model trained through
# the daemon: the model.to_json() of tests/fixtures/models/residual_*.json in
# its tf.keras 2 and Keras 3 forms, the weight file read layer by layer with
# h5py (Keras' layer order and names, the InputLayer included, the
# Functional model_config), and a numpy forward pass of the residual graph
# over those weights that must give the daemon's /predict probabilities.

import json
import os

import h5py
import numpy as np
import pytest

from conftest import SRC_ROOT, TERMINAL, assert_model_refused, tiny_spec
from kerasfile import (assert_predict_matches, attr_str, read_keras_weights, softmax,
                       train_tiny_best)

FIXTURES = os.path.join(SRC_ROOT, "tests", "fixtures", "models")
LAYERS = ["input_1", "conv2d", "batch_normalization", "conv2d_1", "batch_normalization_1",
          "add", "re_lu", "concatenate", "global_average_pooling2d", "dense"]
WEIGHTS = {
    "conv2d": [("kernel", (3, 3, 1, 8)), ("bias", (8,))],
    "batch_normalization": [("gamma", (8,)), ("beta", (8,)), ("moving_mean", (8,)),
                            ("moving_variance", (8,))],
    "conv2d_1": [("kernel", (3, 3, 8, 8)), ("bias", (8,))],
    "batch_normalization_1": [("gamma", (8,)), ("beta", (8,)), ("moving_mean", (8,)),
                              ("moving_variance", (8,))],
    "dense": [("kernel", (16, 10)), ("bias", (10,))],
}


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def trained(module_traind, tmp_path_factory):
    return train_tiny_best(module_traind, tmp_path_factory, "residual",
                           fixture("residual_tf215.json"))


def read_weights(g):
    """{layer: {weight: array}} in the tf.keras layout, checking names and shapes."""
    return read_keras_weights(g, LAYERS, WEIGHTS)


def conv_same(x, k, b, stride):
    """TF 'same' convolution, NHWC, kernel HWIO."""
    n, h, w, _ = x.shape
    kh, kw, _, co = k.shape
    oh, ow = -(-h // stride), -(-w // stride)
    ph = max((oh - 1) * stride + kh - h, 0)
    pw = max((ow - 1) * stride + kw - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    out = np.zeros((n, oh, ow, co))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            out += patch @ k[i, j]
    return out + b


def bn(x, p):
    return (x - p["moving_mean"]) / np.sqrt(p["moving_variance"] + 1e-3) * p["gamma"] + p["beta"]


def numpy_predict(W, x):
    a = np.maximum(conv_same(x, W["conv2d"]["kernel"], W["conv2d"]["bias"], 2), 0)
    b = bn(a, W["batch_normalization"])
    c = conv_same(b, W["conv2d_1"]["kernel"], W["conv2d_1"]["bias"], 1)
    d = bn(c, W["batch_normalization_1"])
    r = np.maximum(d + b, 0)
    cat = np.concatenate([r, b], axis=-1)
    g = cat.mean(axis=(1, 2))
    return softmax(g @ W["dense"]["kernel"] + W["dense"]["bias"])


def test_weight_file_layer_by_layer(trained):
    _, _, path = trained
    with h5py.File(path, "r") as f:
        cfg = json.loads(attr_str(f.attrs["model_config"]))
        assert cfg["class_name"] == "Functional"
        names = [l["name"] for l in cfg["config"]["layers"]]
        assert names == LAYERS
        add = cfg["config"]["layers"][5]
        assert add["inbound_nodes"] == [[["batch_normalization_1", 0, 0, {}],
                                         ["batch_normalization", 0, 0, {}]]]
        assert cfg["config"]["input_layers"] == [["input_1", 0, 0]]
        assert cfg["config"]["output_layers"] == [["dense", 0, 0]]
        W = read_weights(f["model_weights"])
    # trained: the BN moving statistics moved away from their initial 0 / 1
    assert np.abs(W["batch_normalization"]["moving_mean"]).max() > 0
    assert np.abs(W["batch_normalization_1"]["moving_variance"] - 1).max() > 0


def test_predict_equals_numpy_graph(trained):
    assert_predict_matches(trained, LAYERS, WEIGHTS, numpy_predict, seed=5, n=6)


def test_keras3_form_trains(module_traind):
    c = module_traind.client
    job = c.submit(tiny_spec(name="residual-k3", model=fixture("residual_keras3.json"),
                             epochs=1))
    final = c.wait_state(job["id"], TERMINAL, daemon=module_traind)
    assert final["state"] == "succeeded", final


def test_functional_errors_name_layer_and_key(module_traind):
    m = fixture("residual_tf215.json")
    m["config"]["layers"][5]["inbound_nodes"][0][1][0] = "missing_layer"
    err = assert_model_refused(module_traind.client, m, "/model/config/layers/5/inbound_nodes")
    assert "missing_layer" in err["message"]
