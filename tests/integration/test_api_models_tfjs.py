# test_api_models_tfjs.py - the built-in resnet20 and minivggnet against the
# same models built in Keras' JavaScript port, TensorFlow.js's layers API.
#
# tests/reference/gen_tfjs_models.mjs built each model with tfjs on 32x32x3
# and 28x28x1 inputs and wrote its model.toJSON() (tfjs_<model>_<shape>.json,
# tf.keras 2's "Model" / "Sequential" topology) and its model.summary() as
# data (tfjs_<model>_<shape>.summary.json) into tests/fixtures/models/.  The
# expected numbers here are only those files' (tfjs computed them); this test
# needs no node.
#
# - POST /v1/models/validate of each tfjs config answers the tfjs summary:
#   every layer's name, class, output shape, params, trainable params and
#   inbound layers, in order, and the three totals;
# - the built-in of the same name with the same input_shape answers the same
#   rows (so the built-in is Keras' model, with Keras' layer order and
#   auto-names), and GET /v1/models lists the tfjs totals for it.

import json
import os

import pytest

from conftest import SRC_ROOT

FIXTURES = os.path.join(SRC_ROOT, "tests", "fixtures", "models")
CASES = [(model, shape) for model in ("resnet20", "minivggnet")
         for shape in ([32, 32, 3], [28, 28, 1])]


def ids(case):
    return f"{case[0]}_{'x'.join(map(str, case[1]))}"


def load(model, shape, suffix):
    with open(os.path.join(FIXTURES, f"tfjs_{ids((model, shape))}{suffix}")) as f:
        return json.load(f)


def totals(s):
    return s["total_params"], s["trainable_params"], s["non_trainable_params"]


def rows(summary, functional):
    keys = ["name", "class_name", "output_shape", "params", "trainable_params"]
    if functional:
        keys.append("inbound")
    return [{k: layer[k] for k in keys} for layer in summary["layers"]]


def check_against_tfjs(got, want):
    functional = want["class_name"] == "Model"
    assert got["class_name"] == ("Functional" if functional else "Sequential")
    assert got["input_shape"] == want["input_shape"]
    assert rows(got, functional) == rows(want, functional)
    assert totals(got) == totals(want)


def test_fixtures_are_tfjs_summaries():
    """The committed files are what the generator writes: a summary per
    config, its rows adding up to its totals."""
    for model, shape in CASES:
        config = load(model, shape, ".json")
        want = load(model, shape, ".summary.json")
        assert config["keras_version"] == f"tfjs-layers {want['tfjs_version']}"
        assert config["class_name"] == want["class_name"]
        layers = config["config"]["layers"]
        names = [l["config"]["name"] for l in layers]
        # a Sequential summary has no row for the input layer
        assert names == [l["name"] for l in want["layers"]]
        assert sum(l["params"] for l in want["layers"]) == want["total_params"]
        assert want["input_shape"] == [None] + shape
        assert f"Total params: {want['total_params']}" in want["summary_text"]


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_validate_tfjs_config(module_traind, case):
    model, shape = case
    config = load(model, shape, ".json")
    r = module_traind.client.post("/v1/models/validate", {"model": config})
    assert r.status == 200, r
    check_against_tfjs(r.json(), load(model, shape, ".summary.json"))
    # the same config as the string model.to_json() returns
    r = module_traind.client.post("/v1/models/validate", {"model": json.dumps(config)})
    assert r.status == 200, r
    assert totals(r.json()) == totals(load(model, shape, ".summary.json"))


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_builtin_is_the_tfjs_model(module_traind, case):
    model, shape = case
    r = module_traind.client.post("/v1/models/validate", {"model": model, "input_shape": shape})
    assert r.status == 200, r
    check_against_tfjs(r.json(), load(model, shape, ".summary.json"))


def test_catalog_counts_are_tfjs_totals(module_traind):
    r = module_traind.client.get("/v1/models")
    assert r.status == 200, r
    models = {m["name"]: m for m in r.json()["models"]}
    for model, shape in CASES:
        variants = [v for v in models[model]["variants"] if v["input_shape"] == shape]
        assert len(variants) == 1, models[model]
        assert totals(variants[0]) == totals(load(model, shape, ".summary.json")), (model, shape)
