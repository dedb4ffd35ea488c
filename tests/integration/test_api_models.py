# test_api_models.py - the model catalog: GET /v1/models lists the built-ins
# with Keras' parameter counts on CIFAR-10 and (Fashion-)MNIST input shapes,
# and POST /v1/models/validate answers a model config's model.summary()
# (layers, output shapes in Keras' (None, ...) form, Param #, Connected to,
# totals) or a 400 naming the layer and key, without training.
#
# Expected numbers: ResNet-20 274,442 / 273,066 / 1,376 and MiniVGGNet
# 2,171,178 (32x32x3) and 1,679,082 (28x28x1) with 1,408 non-trainable are
# the totals Keras' model.summary() prints for these models (the derivation
# term by term is in tests/unit/test_model_config.c; test_api_models_tfjs.py
# checks them against the same models built in TensorFlow.js); the per-layer
# rows of the committed configs below are Keras' formulas worked out by hand:
# Conv2D kh * kw * cin * filters + filters, BatchNormalization 4 * C (2 * C
# trainable), Dense in * units + units.

import copy
import json
import os

import pytest

from conftest import SRC_ROOT, assert_error

FIXTURES = os.path.join(SRC_ROOT, "tests", "fixtures", "models")


def fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def validate(c, body, **kw):
    return c.post("/v1/models/validate", body, **kw)


def rows(summary):
    return [(l["name"], l["class_name"], l["output_shape"], l["params"])
            for l in summary["layers"]]


def test_catalog_counts(module_traind):
    r = module_traind.client.get("/v1/models")
    assert r.status == 200, r
    models = {m["name"]: m for m in r.json()["models"]}
    assert {"minivggnet", "shallownet", "lenet", "mlp", "resnet20"} <= set(models)
    assert models["custom"]["kind"] == "keras_json"

    def counts(name, shape):
        m = models[name]
        assert m["kind"] == "builtin" and m["classes"] == 10
        v = [v for v in m["variants"] if v["input_shape"] == shape]
        assert len(v) == 1, m
        return v[0]["total_params"], v[0]["trainable_params"], v[0]["non_trainable_params"]
    assert counts("resnet20", [32, 32, 3]) == (274442, 273066, 1376)
    assert counts("minivggnet", [32, 32, 3]) == (2171178, 2171178 - 1408, 1408)
    assert counts("minivggnet", [28, 28, 1]) == (1679082, 1679082 - 1408, 1408)
    # the catalog's counts are the summary's for the same model
    for name, m in models.items():
        for v in m.get("variants", []):
            s = validate(module_traind.client, {"model": name, "input_shape": v["input_shape"]})
            assert s.status == 200, s
            s = s.json()
            assert (s["total_params"], s["trainable_params"], s["non_trainable_params"]) == \
                (v["total_params"], v["trainable_params"], v["non_trainable_params"]), name
            assert sum(l["params"] for l in s["layers"]) == s["total_params"]


def test_resnet20_summary(module_traind):
    r = validate(module_traind.client, {"model": "resnet20"})  # 32x32x3, 10 classes
    assert r.status == 200, r
    s = r.json()
    assert s["class_name"] == "Functional" and s["input_shape"] == [None, 32, 32, 3]
    assert (s["total_params"], s["trainable_params"], s["non_trainable_params"]) == \
        (274442, 273066, 1376)
    layers = {l["name"]: l for l in s["layers"]}
    assert s["layers"][0] == {"name": "input_1", "class_name": "InputLayer",
                              "output_shape": [None, 32, 32, 3], "params": 0,
                              "trainable_params": 0, "trainable": True, "inbound": []}
    assert layers["conv2d"]["params"] == 3 * 3 * 3 * 16 + 16
    assert layers["conv2d"]["inbound"] == ["input_1"]
    # the first block of stage 2: stride 2 and its 1x1 projection shortcut
    assert layers["conv2d_7"]["output_shape"] == [None, 16, 16, 32]
    assert layers["conv2d_9"]["params"] == 16 * 32 + 32
    add = layers["add_3"]
    assert add["class_name"] == "Add" and add["output_shape"] == [None, 16, 16, 32]
    assert sorted(add["inbound"]) == sorted(["conv2d_9", "batch_normalization_8"])
    assert s["layers"][-1]["output_shape"] == [None, 10]
    assert s["layers"][-1]["params"] == 64 * 10 + 10
    # 19 BatchNormalization layers, 2 * C of each not trainable
    bn = [l for l in s["layers"] if l["class_name"] == "BatchNormalization"]
    assert len(bn) == 19
    assert sum(l["params"] - l["trainable_params"] for l in bn) == 1376


RESIDUAL = [
    ("input_1", "InputLayer", [None, 28, 28, 1], 0),
    ("conv2d", "Conv2D", [None, 14, 14, 8], 3 * 3 * 1 * 8 + 8),
    ("batch_normalization", "BatchNormalization", [None, 14, 14, 8], 32),
    ("conv2d_1", "Conv2D", [None, 14, 14, 8], 3 * 3 * 8 * 8 + 8),
    ("batch_normalization_1", "BatchNormalization", [None, 14, 14, 8], 32),
    ("add", "Add", [None, 14, 14, 8], 0),
    ("re_lu", "ReLU", [None, 14, 14, 8], 0),
    ("concatenate", "Concatenate", [None, 14, 14, 16], 0),
    ("global_average_pooling2d", "GlobalAveragePooling2D", [None, 16], 0),
    ("dense", "Dense", [None, 10], 16 * 10 + 10),
]


@pytest.mark.parametrize("name", ["residual_tf215.json", "residual_keras3.json"])
def test_functional_summary(module_traind, name):
    r = validate(module_traind.client, {"model": fixture(name)})
    assert r.status == 200, r
    s = r.json()
    assert s["class_name"] == "Functional"
    got = rows(s)
    if name == "residual_keras3.json":  # Keras 3 names its input input_layer
        got[0] = ("input_1",) + got[0][1:]
    assert got == RESIDUAL
    inbound = {l["name"]: l["inbound"] for l in s["layers"]}
    first = s["layers"][0]["name"]
    assert inbound["conv2d"] == [first]
    assert inbound["add"] == ["batch_normalization_1", "batch_normalization"]
    assert inbound["concatenate"] == ["re_lu", "batch_normalization"]
    assert (s["total_params"], s["trainable_params"], s["non_trainable_params"]) == (898, 866, 32)


def test_frozen_layer_counts(module_traind):
    m = fixture("residual_tf215.json")
    layer = [l for l in m["config"]["layers"] if l["config"]["name"] == "batch_normalization"][0]
    layer["config"]["trainable"] = False
    s = validate(module_traind.client, {"model": m}).json()
    bn = [l for l in s["layers"] if l["name"] == "batch_normalization"][0]
    assert bn["trainable"] is False and bn["params"] == 32 and bn["trainable_params"] == 0
    assert (s["total_params"], s["trainable_params"], s["non_trainable_params"]) == (898, 850, 48)


def test_sequential_summary(module_traind):
    c = module_traind.client
    m = fixture("minivggnet_tf2.json")  # 28x28x1, as its batch_input_shape says
    for body in ({"model": m}, {"model": json.dumps(m)}):
        r = validate(c, body)
        assert r.status == 200, r
        s = r.json()
        assert s["class_name"] == "Sequential" and s["input_shape"] == [None, 28, 28, 1]
        assert (s["total_params"], s["non_trainable_params"]) == (1679082, 1408)
        got = {n: (shape, p) for n, _, shape, p in rows(s)}
        assert got["conv2d"] == ([None, 28, 28, 32], 3 * 3 * 1 * 32 + 32)
        assert got["max_pooling2d_1"] == ([None, 7, 7, 64], 0)
        assert got["flatten"] == ([None, 7 * 7 * 64], 0)
        assert got["dense"] == ([None, 512], 7 * 7 * 64 * 512 + 512)
        assert got["batch_normalization_4"] == ([None, 512], 4 * 512)
        assert got["dense_1"] == ([None, 10], 512 * 10 + 10)
        assert all("inbound" not in l for l in s["layers"])
    # the same config on 32x32x3: Keras' 2,171,178
    s = validate(c, {"model": m, "input_shape": [32, 32, 3]}).json()
    assert s["total_params"] == 2171178 and s["input_shape"] == [None, 32, 32, 3]
    # Dense on a 4-D tensor: the last axis, (None, h, w, units)
    seq = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4, 4, 2]}},
        {"class_name": "Dense", "config": {"units": 3}}]}}
    s = validate(c, {"model": seq}).json()
    assert rows(s) == [("dense", "Dense", [None, 4, 4, 3], 2 * 3 + 3)]


def test_errors_name_layer_and_key(module_traind):
    c = module_traind.client
    m = fixture("minivggnet_tf2.json")
    bad = copy.deepcopy(m)
    bad["config"]["layers"][1]["config"]["filters"] = 0
    r = validate(c, {"model": bad})
    err = assert_error(r, 400)
    assert err["field"].startswith("/model/config/layers/1"), err
    bad = copy.deepcopy(m)
    bad["config"]["layers"][1]["config"]["padding"] = "causal"
    assert_error(validate(c, {"model": bad}), 400, field="/model/config/layers/1/config/padding")
    f = fixture("residual_tf215.json")
    f["config"]["layers"][5]["inbound_nodes"][0][1][0] = "missing_layer"
    r = validate(c, {"model": f})
    assert_error(r, 400, field="/model/config/layers/5/inbound_nodes")
    assert "missing_layer" in r.json()["error"]["message"]
    # a config without an input shape needs input_shape
    noshape = copy.deepcopy(m)
    noshape["config"]["layers"] = [l for l in noshape["config"]["layers"]
                                   if l["class_name"] != "InputLayer"]
    for l in noshape["config"]["layers"]:
        l["config"].pop("batch_input_shape", None)
    noshape["config"].pop("build_input_shape", None)
    assert_error(validate(c, {"model": noshape}), 400, field="/model/config/layers/0")
    s = validate(c, {"model": noshape, "input_shape": [28, 28, 1]})
    assert s.status == 200 and s.json()["total_params"] == 1679082, s
    # the request itself
    assert_error(validate(c, {"model": "resnet21"}), 400, field="/model")
    assert_error(validate(c, {}), 400, field="/model")
    assert_error(validate(c, {"model": "lenet", "input_shape": [28, 28]}), 400,
                 field="/input_shape")
    assert_error(validate(c, {"model": "lenet", "classes": 1}), 400, field="/classes")
    assert_error(validate(c, {"model": m, "classes": 10}), 400, field="/classes")
    assert_error(validate(c, {"model": "lenet", "epochs": 3}), 400, field="/epochs")
    assert_error(validate(c, b"[1, 2]", headers={"Content-Type": "application/json"}), 400)
    assert_error(validate(c, b"{\"model\": \"lenet\"}", headers={"Content-Type": "text/plain"}),
                 415)
    assert_error(c.get("/v1/models/validate"), 405)
    # nothing was submitted
    assert c.list_jobs() == []
