# test_api_conv_options.py - Conv2D dilation_rate and groups, SeparableConv2D
# through the daemon: a Sequential model using them trains, its weight file
# has Keras' layout (layer and weight names, kernel shapes (kh, kw, cin/groups,
# filters), depthwise_kernel (kh, kw, cin, depth_multiplier), pointwise_kernel
# (1, 1, cin * depth_multiplier, filters)), the model_config carries the
# options, and a numpy forward pass written from the definitions (direct
# loops over taps, no shared code) over those weights gives the daemon's
# /predict probabilities.  Bad options are refused naming layer and key.

import copy
import json

import h5py
import numpy as np
import pytest

from conftest import assert_model_refused
from kerasfile import (assert_predict_matches, attr_str, read_keras_weights, softmax,
                       train_tiny_best)


def layer(cls, **cfg):
    return {"class_name": cls, "config": cfg}


MODEL = {
    "class_name": "Sequential",
    "config": {"name": "sequential", "layers": [
        layer("Conv2D", name="conv2d", filters=8, kernel_size=[3, 3], padding="same",
              dilation_rate=[2, 2], activation="relu", batch_input_shape=[None, 28, 28, 1]),
        layer("Conv2D", name="conv2d_1", filters=8, kernel_size=3, strides=2, padding="valid",
              groups=2, activation="relu"),
        layer("SeparableConv2D", name="separable_conv2d", filters=6, kernel_size=[3, 3],
              padding="same", depth_multiplier=2, dilation_rate=2, activation="relu"),
        layer("SeparableConv2D", name="separable_conv2d_1", filters=4, kernel_size=[3, 3],
              strides=[2, 2], padding="valid", use_bias=False, activation="linear"),
        layer("GlobalAveragePooling2D", name="global_average_pooling2d"),
        layer("Dense", name="dense", units=10, activation="softmax"),
    ]},
}
LAYERS = ["conv2d", "conv2d_1", "separable_conv2d", "separable_conv2d_1",
          "global_average_pooling2d", "dense"]
WEIGHTS = {
    "conv2d": [("kernel", (3, 3, 1, 8)), ("bias", (8,))],
    "conv2d_1": [("kernel", (3, 3, 4, 8)), ("bias", (8,))],
    "separable_conv2d": [("depthwise_kernel", (3, 3, 8, 2)), ("pointwise_kernel", (1, 1, 16, 6)),
                         ("bias", (6,))],
    "separable_conv2d_1": [("depthwise_kernel", (3, 3, 6, 1)),
                           ("pointwise_kernel", (1, 1, 6, 4))],
    "dense": [("kernel", (4, 10)), ("bias", (10,))],
}


@pytest.fixture(scope="module")
def trained(module_traind, tmp_path_factory):
    return train_tiny_best(module_traind, tmp_path_factory, "conv-options", MODEL)


def read_weights(g):
    """{layer: {weight: array}}, checking Keras' names, order and shapes."""
    return read_keras_weights(g, LAYERS, WEIGHTS)


def conv(x, k, stride=1, dilation=1, padding="same", groups=1):
    """TF convolution, NHWC, kernel (kh, kw, cin / groups, cout): every output
    (y, x, o) sums x[y*s - pt + i*d, x*s - pl + j*d, g*cg + c] * k[i, j, c, o]
    over the taps and the channels of o's group g."""
    n, h, w, cin = x.shape
    kh, kw, cg, cout = k.shape
    assert cg * groups == cin
    ekh, ekw = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    if padding == "same":
        oh, ow = -(-h // stride), -(-w // stride)
        pt = max((oh - 1) * stride + ekh - h, 0) // 2
        pl = max((ow - 1) * stride + ekw - w, 0) // 2
    else:
        oh, ow = (h - ekh) // stride + 1, (w - ekw) // stride + 1
        pt = pl = 0
    kg = cout // groups
    out = np.zeros((n, oh, ow, cout))
    for oy in range(oh):
        for ox in range(ow):
            for i in range(kh):
                iy = oy * stride - pt + i * dilation
                if not 0 <= iy < h:
                    continue
                for j in range(kw):
                    ix = ox * stride - pl + j * dilation
                    if not 0 <= ix < w:
                        continue
                    for g in range(groups):
                        out[:, oy, ox, g * kg:(g + 1) * kg] += (
                            x[:, iy, ix, g * cg:(g + 1) * cg] @ k[i, j, :, g * kg:(g + 1) * kg])
    return out


def depthwise(x, k, **kw):
    """Keras DepthwiseConv2D: output channel c * M + m = input channel c with
    k[:, :, c, m], i.e. a conv with groups = C on the kernel (kh, kw, 1, C * M)."""
    kh, kw_, c, m = k.shape
    return conv(x, k.reshape(kh, kw_, 1, c * m), groups=c, **kw)


def separable(x, p, stride=1, dilation=1, padding="same"):
    y = depthwise(x, p["depthwise_kernel"], stride=stride, dilation=dilation, padding=padding)
    y = y @ p["pointwise_kernel"][0, 0]
    return y + p["bias"] if "bias" in p else y


def numpy_predict(W, x):
    relu = lambda v: np.maximum(v, 0)
    a = relu(conv(x, W["conv2d"]["kernel"], dilation=2) + W["conv2d"]["bias"])
    b = relu(conv(a, W["conv2d_1"]["kernel"], stride=2, padding="valid", groups=2)
             + W["conv2d_1"]["bias"])
    c = relu(separable(b, W["separable_conv2d"], dilation=2))
    d = separable(c, W["separable_conv2d_1"], stride=2, padding="valid")
    return softmax(d.mean(axis=(1, 2)) @ W["dense"]["kernel"] + W["dense"]["bias"])


def test_weight_file_layout(trained):
    _, _, path = trained
    with h5py.File(path, "r") as f:
        cfg = json.loads(attr_str(f.attrs["model_config"]))
        layers = {l["config"]["name"]: l for l in cfg["config"]["layers"]}
        c0, c1 = layers["conv2d"]["config"], layers["conv2d_1"]["config"]
        assert c0["dilation_rate"] == [2, 2] and c0["groups"] == 1
        assert c1["dilation_rate"] == [1, 1] and c1["groups"] == 2 and c1["strides"] == [2, 2]
        s0 = layers["separable_conv2d"]
        assert s0["class_name"] == "SeparableConv2D"
        assert s0["config"]["depth_multiplier"] == 2 and s0["config"]["dilation_rate"] == [2, 2]
        assert s0["config"]["pointwise_initializer"]["class_name"] == "GlorotUniform"
        assert layers["separable_conv2d_1"]["config"]["use_bias"] is False
        W = read_weights(f["model_weights"])
    # trained: the weights are not their initial values
    assert np.abs(W["separable_conv2d"]["bias"]).max() > 0


def test_predict_equals_numpy(trained):
    assert_predict_matches(trained, LAYERS, WEIGHTS, numpy_predict, seed=7, n=5)


@pytest.mark.parametrize("index,key,value,field,needle", [
    (0, "strides", 2, "dilation_rate", "strides"),
    (1, "groups", 3, "groups", "must divide"),
    (2, "dilation_rate", [0, 1], "dilation_rate", "integer"),
    (3, "pointwise_initializer", {"class_name": "Foo", "config": {}},
     "pointwise_initializer/class_name", "GlorotUniform"),
])
def test_bad_options_name_layer_and_key(module_traind, index, key, value, field, needle):
    m = copy.deepcopy(MODEL)
    m["config"]["layers"][index]["config"][key] = value
    err = assert_model_refused(module_traind.client, m,
                               f"/model/config/layers/{index}/config/{field}")
    assert needle in err["message"]
