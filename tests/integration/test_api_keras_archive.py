# test_api_keras_archive.py - the .keras archive a daemon job writes, read
# with zipfile + json + h5py and checked against what Keras 3 (3.10.0, the
# version metadata.json names) writes, from its source:
#   saving_lib._save_model_to_fileobj   metadata.json {"keras_version",
#                                       "date_saved": "%Y-%m-%d@%H:%M:%S"}
#   serialization_lib.serialize_keras_object   {"module", "class_name",
#       "config", "registered_name"} + "build_config" + "compile_config"
#   Layer.get_config   "dtype": dtype_policies.serialize(policy), the
#       DTypePolicy object; Layer._build_at_init (3.10): layers whose build()
#       is not overridden (activations, pooling, dropout) are built in the
#       constructor and have no build_config
#   functional.serialize_node   [{"args": [...], "kwargs": {}}] with
#       "__keras_tensor__" {"shape", "dtype", "keras_history"}; Add and
#       Concatenate are called on one list
#   Functional.__init__ calls build(None): "build_config": {"input_shape": null}
#   Trainer.compile's SerializableDict: optimizer, loss, loss_weights,
#       metrics, weighted_metrics, run_eagerly, steps_per_execution,
#       jit_compile (auto: false on CPU-only TensorFlow)
#   BaseOptimizer.get_config + Adam.get_config; Loss / CategoricalCrossentropy
#       get_config; TopKCategoricalAccuracy.get_config
# and the tf.keras 2 training_config of the full-model .hdf5 of the same job.
# Then the archive is used: warm start from it loads every layer, evaluate
# on it equals evaluate on the .hdf5 of the same step.

import io
import json
import os
import re
import zipfile

import h5py
import numpy as np
import pytest

from conftest import SRC_ROOT, event_fields, tiny_spec

FIXTURE = os.path.join(SRC_ROOT, "tests", "fixtures", "models", "residual_keras3.json")
DTYPE_POLICY = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
                "registered_name": None}
BUILT_AT_INIT = {"Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "MaxPooling2D",
                 "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dropout",
                 "SpatialDropout2D"}
LOSS = {"class_name": "CategoricalCrossentropy", "config": {"label_smoothing": 0.1}}
METRICS = ["accuracy", {"class_name": "TopKCategoricalAccuracy", "config": {"k": 3, "name": "top3"}}]
OPTIMIZER = {"name": "adam", "learning_rate": 0.002, "clipnorm": 1.0}


def fixture():
    with open(FIXTURE) as f:
        return json.load(f)


def read_archive(path):
    with zipfile.ZipFile(path) as z:
        assert [i.filename for i in z.infolist()] == ["metadata.json", "config.json",
                                                      "model.weights.h5"]
        return (json.loads(z.read("metadata.json")), json.loads(z.read("config.json")),
                z.read("model.weights.h5"))


@pytest.fixture(scope="module")
def job(module_traind):
    c = module_traind.client
    spec = tiny_spec(name="archive", model=fixture(), epochs=1, loss=LOSS, metrics=METRICS,
                     optimizer=OPTIMIZER,
                     checkpoints=[{"filepath": "model.keras"}, {"filepath": "model.hdf5"}])
    j = c.submit(spec)
    final = c.wait_state(j["id"], "succeeded", daemon=module_traind)
    ck = os.path.join(module_traind.job_dir(j["id"]), "checkpoints")
    return final, os.path.join(ck, "model.keras"), os.path.join(ck, "model.hdf5")


def test_metadata_json(job):
    meta, _, _ = read_archive(job[1])
    assert list(meta) == ["keras_version", "date_saved"]
    assert meta["keras_version"] == "3.10.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d", meta["date_saved"])


def test_functional_config_is_keras3_form(job):
    _, config, _ = read_archive(job[1])
    assert list(config) == ["module", "class_name", "config", "registered_name", "build_config",
                            "compile_config"]
    assert (config["module"], config["class_name"], config["registered_name"]) == \
        ("keras.src.models.functional", "Functional", "Functional")
    assert config["build_config"] == {"input_shape": None}
    cfg = config["config"]
    assert list(cfg) == ["name", "trainable", "layers", "input_layers", "output_layers"]
    layers = cfg["layers"]
    assert cfg["input_layers"] == [layers[0]["name"], 0, 0]
    assert cfg["output_layers"] == [layers[-1]["name"], 0, 0]
    out_shape = {layers[0]["name"]: layers[0]["config"]["batch_shape"]}
    for i, layer in enumerate(layers):
        assert list(layer)[:4] == ["module", "class_name", "config", "registered_name"]
        assert (layer["module"], layer["registered_name"]) == ("keras.layers", None)
        assert layer["name"] == layer["config"]["name"]
        if layer["class_name"] == "InputLayer":
            assert i == 0 and layer["inbound_nodes"] == [] and "build_config" not in layer
            assert layer["config"] == {"batch_shape": [None, 28, 28, 1], "dtype": "float32",
                                       "sparse": False, "ragged": False, "name": layer["name"]}
            continue
        assert layer["config"]["dtype"] == DTYPE_POLICY, layer["name"]
        for k, v in layer["config"].items():
            if k.endswith("_initializer"):
                assert list(v) == ["module", "class_name", "config", "registered_name"]
                assert (v["module"], v["registered_name"]) == ("keras.initializers", None)
            if k.endswith(("_regularizer", "_constraint")):
                assert v is None
        # one call: args holds one tensor, or one list of tensors for a merge
        [node] = layer["inbound_nodes"]
        assert list(node) == ["args", "kwargs"] and node["kwargs"] == {}
        merge = layer["class_name"] in ("Add", "Concatenate")
        assert len(node["args"]) == 1
        tensors = node["args"][0] if merge else node["args"]
        assert isinstance(tensors, list) and len(tensors) == (2 if merge else 1)
        shapes = []
        for t in tensors:
            assert t["class_name"] == "__keras_tensor__" and list(t) == ["class_name", "config"]
            assert list(t["config"]) == ["shape", "dtype", "keras_history"]
            src, node_index, tensor_index = t["config"]["keras_history"]
            assert src in out_shape and (node_index, tensor_index) == (0, 0)
            assert t["config"]["dtype"] == "float32"
            assert t["config"]["shape"] == out_shape[src]
            shapes.append(t["config"]["shape"])
        if layer["class_name"] in BUILT_AT_INIT:
            assert "build_config" not in layer, layer["name"]
        else:
            assert layer["build_config"] == {"input_shape": shapes if merge else shapes[0]}
        out_shape[layer["name"]] = infer_out(layer, shapes)


def infer_out(layer, shapes):
    """The output shape of the fixture's layers (enough for the chain check)."""
    c, s = layer["config"], shapes[0]
    cls = layer["class_name"]
    if cls == "Conv2D":
        st = c["strides"][0]
        return [None, -(-s[1] // st), -(-s[2] // st), c["filters"]]
    if cls == "Concatenate":
        return s[:3] + [sum(x[3] for x in shapes)]
    if cls == "GlobalAveragePooling2D":
        return [None, s[3]]
    if cls == "Dense":
        return s[:-1] + [c["units"]]
    return s


def test_layers_equal_the_keras3_fixture(job):
    """The model's layers are the Keras 3 fixture it was submitted as
    (written in an earlier Keras 3's form) with the 3.10 changes: the
    InputLayer's "ragged" key, no build_config on layers built at construction;
    and Dense without activity_regularizer, which Keras 3's Dense.get_config
    never had (Layer.get_config adds it only when one is set)."""
    _, config, _ = read_archive(job[1])
    want = fixture()["config"]["layers"]
    for layer in want:
        if layer["class_name"] == "InputLayer":
            layer["config"]["ragged"] = False
        if layer["class_name"] in BUILT_AT_INIT:
            layer.pop("build_config", None)
        if layer["class_name"] == "Dense":
            assert layer["config"].pop("activity_regularizer") is None
    assert config["config"]["layers"] == want


def test_compile_config_is_the_jobs(job):
    _, config, _ = read_archive(job[1])
    cc = config["compile_config"]
    assert list(cc) == ["optimizer", "loss", "loss_weights", "metrics", "weighted_metrics",
                        "run_eagerly", "steps_per_execution", "jit_compile"]
    assert cc["optimizer"] == {
        "module": "keras.optimizers", "class_name": "Adam",
        "config": {"name": "adam", "learning_rate": float(np.float32(0.002)), "weight_decay": None,
                   "clipnorm": 1.0, "global_clipnorm": None, "clipvalue": None, "use_ema": False,
                   "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                   "loss_scale_factor": None, "gradient_accumulation_steps": None,
                   "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": False},
        "registered_name": None}
    assert list(cc["optimizer"]["config"])[:11] == [
        "name", "learning_rate", "weight_decay", "clipnorm", "global_clipnorm", "clipvalue",
        "use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
        "gradient_accumulation_steps"]
    assert cc["loss"] == {
        "module": "keras.losses", "class_name": "CategoricalCrossentropy",
        "config": {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                   "from_logits": False, "label_smoothing": 0.1, "axis": -1},
        "registered_name": None}
    assert cc["metrics"] == ["accuracy", {
        "module": "keras.metrics", "class_name": "TopKCategoricalAccuracy",
        "config": {"name": "top3", "dtype": "float32", "k": 3}, "registered_name": None}]
    assert (cc["loss_weights"], cc["weighted_metrics"]) == (None, None)
    assert (cc["run_eagerly"], cc["steps_per_execution"], cc["jit_compile"]) == (False, 1, False)


def test_hdf5_training_config_is_the_jobs(job):
    """tf.keras 2.15 saving_utils.model_metadata of the same compile()."""
    with h5py.File(job[2], "r") as f:
        tc = json.loads(f.attrs["training_config"])
        mc = json.loads(f.attrs["model_config"])
    assert list(tc) == ["loss", "metrics", "weighted_metrics", "loss_weights", "optimizer_config"]
    assert tc["loss"] == {"class_name": "CategoricalCrossentropy",
                          "config": {"reduction": "auto", "name": "categorical_crossentropy",
                                     "from_logits": False, "label_smoothing": 0.1, "axis": -1}}
    assert tc["metrics"] == ["accuracy", {"class_name": "TopKCategoricalAccuracy",
                                          "config": {"name": "top3", "dtype": "float32", "k": 3}}]
    # the resume file (a tf.keras full-model file too) records the same compile()
    resume = os.path.join(os.path.dirname(os.path.dirname(job[2])), "resume.h5")
    with h5py.File(resume, "r") as f:
        assert json.loads(f.attrs["training_config"]) == tc
    oc = tc["optimizer_config"]
    assert oc["class_name"] == "Adam" and oc["config"]["name"] == "Adam"
    assert (oc["config"]["learning_rate"], oc["config"]["clipnorm"]) == (0.002, 1.0)
    # the model_config keeps tf.keras 2's own form
    assert "module" not in mc and mc["class_name"] == "Functional"
    assert all(isinstance(layer["inbound_nodes"], list) and
               all(isinstance(n, list) for n in layer["inbound_nodes"])
               for layer in mc["config"]["layers"])
    assert all(layer["config"]["dtype"] == "float32" for layer in mc["config"]["layers"])


def test_sequential_archive_form(module_traind):
    c = module_traind.client
    j = c.submit(tiny_spec(name="seq", epochs=1, checkpoints=[{"filepath": "m.keras"}]))
    c.wait_state(j["id"], "succeeded", daemon=module_traind)
    _, config, _ = read_archive(os.path.join(module_traind.job_dir(j["id"]), "checkpoints",
                                             "m.keras"))
    assert (config["module"], config["class_name"], config["registered_name"]) == \
        ("keras", "Sequential", None)
    cfg = config["config"]
    assert list(cfg) == ["name", "trainable", "dtype", "layers", "build_input_shape"]
    assert cfg["dtype"] == DTYPE_POLICY
    first = cfg["layers"][0]
    assert first["class_name"] == "InputLayer" and first["config"]["name"] == "input_layer"
    shape = first["config"]["batch_shape"]
    assert cfg["build_input_shape"] == shape and config["build_config"] == {"input_shape": shape}
    prev = shape
    for layer in cfg["layers"][1:]:
        assert layer["config"]["dtype"] == DTYPE_POLICY
        assert "inbound_nodes" not in layer
        if layer["class_name"] == "Dense":
            # Keras 3's Dense writes activity_regularizer only when one is set
            assert "activity_regularizer" not in layer["config"]
        if layer["class_name"] in BUILT_AT_INIT:
            assert "build_config" not in layer
        else:
            assert layer["build_config"] == {"input_shape": prev}
        if layer["class_name"] == "Flatten":
            prev = [None, int(np.prod(prev[1:]))]
        elif layer["class_name"] == "Dense":
            prev = prev[:-1] + [layer["config"]["units"]]
        elif layer["class_name"] == "Conv2D":
            prev = prev[:3] + [layer["config"]["filters"]]
    # a job compiled with Keras' defaults: the loss and metric names stay strings
    cc = config["compile_config"]
    assert cc["loss"] == "categorical_crossentropy" and cc["metrics"] == ["accuracy"]
    assert cc["optimizer"]["class_name"] == "SGD" and cc["optimizer"]["config"]["name"] == "SGD"
    assert cc["optimizer"]["config"]["nesterov"] is True


def test_archive_warm_starts_every_layer(module_traind, job):
    c = module_traind.client
    final, keras_path, _ = job
    spec = tiny_spec(name="from-archive", model=fixture(), epochs=1, loss=LOSS, metrics=METRICS,
                     optimizer={"name": "sgd", "learning_rate": 1e-30},
                     initial_weights={"job": final["id"], "file": "model.keras"},
                     checkpoints=[{"filepath": "end.keras"}])
    j = c.submit(spec)
    c.wait_state(j["id"], "succeeded", daemon=module_traind)
    _, events = c.events(j["id"], "?after=0", ndjson=True)
    [loaded] = [event_fields(e) for e in events if e["type"] == "initial_weights"]
    assert loaded["layout"] == "keras_archive"
    # 14 weights: two Conv2D (kernel, bias), two BatchNormalization (4 each), the Dense
    assert loaded["loaded"] == 14 and loaded["skipped"] == [] and loaded["absent"] == []
    # its own archive holds the same trainable weights (a learning rate of
    # 1e-30 keeps them; BatchNormalization's moving statistics move on)
    _, _, a = read_archive(keras_path)
    _, _, b = read_archive(os.path.join(module_traind.job_dir(j["id"]), "checkpoints",
                                        "end.keras"))
    with h5py.File(io.BytesIO(a), "r") as fa, h5py.File(io.BytesIO(b), "r") as fb:
        keys = sorted(fa["layers"])
        assert keys == sorted(fb["layers"]) and len(keys) >= 5
        for k in keys:
            for i in fa["layers"][k]["vars"]:
                if k.startswith("batch_normalization") and i in ("2", "3"):
                    continue
                np.testing.assert_array_equal(fa["layers"][k]["vars"][i][()],
                                              fb["layers"][k]["vars"][i][()])


def test_archive_evaluates_as_the_hdf5_of_the_same_step(module_traind, job):
    c = module_traind.client
    final, _, _ = job
    out = {}
    for name in ("model.keras", "model.hdf5"):
        r = c.post(f"/v1/jobs/{final['id']}/evaluate",
                   {"checkpoint": name, "dataset": "fashion-mnist"})
        assert r.status == 200, r
        body = r.json()
        assert body.pop("checkpoint") == name
        out[name] = body
    assert out["model.keras"] == out["model.hdf5"]
    assert "top3" in json.dumps(out["model.keras"])
