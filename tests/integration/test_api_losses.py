# test_api_losses.py - Keras compile() losses and metrics and fit()'s
# class_weight through the HTTP API of the real daemon: a sigmoid head
# trained with a serialized BinaryCrossentropy (label smoothing), a
# TopKCategoricalAccuracy(k=3) metric and class weights logs the metric under
# its Keras name, renders it into checkpoint names and monitors it; the
# logged val_loss and val metric equal Keras' formulas evaluated with numpy on
# the saved weights; a loss the model's output cannot train is a 400.

import copy
import gzip
import os

import numpy as np
import pytest

from conftest import assert_error, fashion_dir, tiny_spec

SIGMOID_MODEL = {
    "class_name": "Sequential",
    "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1],
                                                "dtype": "float32", "name": "flatten_input"}},
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 10,
                                           "activation": "sigmoid"}}]},
    "keras_version": "2.15.0", "backend": "tensorflow"}

BCE = {"module": "keras.losses", "class_name": "BinaryCrossentropy",
       "config": {"name": "binary_crossentropy", "reduction": "sum_over_batch_size",
                  "from_logits": False, "label_smoothing": 0.1, "axis": -1},
       "registered_name": None}
TOP3 = {"module": "keras.metrics", "class_name": "TopKCategoricalAccuracy",
        "config": {"name": "top_k_categorical_accuracy", "dtype": "float32", "k": 3},
        "registered_name": None}
VAL_N = 256


def read_idx(name, n):
    with gzip.open(os.path.join(fashion_dir(), name)) as f:
        data = f.read()
    if "images" in name:
        return np.frombuffer(data, np.uint8, offset=16)[:n * 784].reshape(n, 784)
    return np.frombuffer(data, np.uint8, offset=8)[:n]


def sigmoid_logits(path, n):
    """The saved sigmoid Dense's logits (float64, before the sigmoid) on the
    first n test images, and their labels."""
    import h5py
    with h5py.File(path, "r") as f:
        kernel = f["model_weights/dense/dense/kernel:0"][()].astype(np.float64)
        bias = f["model_weights/dense/dense/bias:0"][()].astype(np.float64)
    x = read_idx("t10k-images-idx3-ubyte.gz", n).astype(np.float32) / np.float32(255)
    labels = read_idx("t10k-labels-idx1-ubyte.gz", n).astype(int)
    return x.astype(np.float64) @ kernel + bias, labels


def history(c, jid):
    r = c.get(f"/v1/jobs/{jid}/metrics")
    assert r.status == 200, r
    body = r.json()
    return [h.get("logs", h) for h in (body["history"] if isinstance(body, dict) else body)]


@pytest.fixture(scope="module")
def bce_job(module_traind):
    c = module_traind.client
    spec = tiny_spec(name="bce", model=SIGMOID_MODEL, loss=BCE,
                     metrics=[TOP3, "binary_accuracy", "mse"],
                     class_weight={"0": 2.0, "3": 0.5}, epochs=2,
                     checkpoints=[{"filepath": "w-{epoch:02d}-{val_top_k_categorical_accuracy:.4f}.h5",
                                   "monitor": "val_top_k_categorical_accuracy",
                                   "save_best_only": False}])
    job = c.submit(spec)
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    return final


def test_metric_log_keys_and_templates(module_traind, bce_job):
    c = module_traind.client
    epochs = history(c, bce_job["id"])
    assert len(epochs) == 2
    for logs in epochs:
        keys = {k for k in logs if k not in ("epoch", "lr", "seconds")}
        assert keys == {"loss", "top_k_categorical_accuracy", "binary_accuracy", "mse",
                        "val_loss", "val_top_k_categorical_accuracy", "val_binary_accuracy",
                        "val_mse"}, keys
        assert 0 <= logs["val_top_k_categorical_accuracy"] <= 1
        assert logs["loss"] > 0
    names = sorted(f["name"] for f in bce_job["checkpoints"])
    want = sorted(f"w-{i + 1:02d}-{e['val_top_k_categorical_accuracy']:.4f}.h5"
                  for i, e in enumerate(epochs))
    assert names == want
    echoed = c.job(bce_job["id"])["spec"]
    assert echoed["loss"]["class_name"] == "BinaryCrossentropy"
    assert echoed["loss"]["config"]["label_smoothing"] == 0.1
    assert echoed["metrics"] == [{"class_name": "TopKCategoricalAccuracy",
                                  "config": {"name": "top_k_categorical_accuracy", "k": 3}},
                                 "binary_accuracy", "mse"]
    assert echoed["class_weight"] == {"0": 2.0, "3": 0.5}


def test_val_logs_are_keras_formulas_on_the_saved_weights(module_traind, bce_job):
    c = module_traind.client
    last = history(c, bce_job["id"])[-1]
    name = f"w-02-{last['val_top_k_categorical_accuracy']:.4f}.h5"
    path = os.path.join(module_traind.job_dir(bce_job["id"]), "checkpoints", name)
    z, labels = sigmoid_logits(path, VAL_N)
    p = 1 / (1 + np.exp(-z))
    t = np.eye(10)[labels] * (1 - 0.1) + 0.1 / 2
    # TensorFlow's Keras on a sigmoid output: the cross-entropy of the logits
    bce = (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean(axis=1)
    # validation is unweighted: class_weight applies to training only (Keras)
    assert last["val_loss"] == pytest.approx(bce.mean(), rel=1e-4)
    above = (p > p[np.arange(VAL_N), labels][:, None]).sum(axis=1)
    assert last["val_top_k_categorical_accuracy"] == pytest.approx((above < 3).mean(),
                                                                    abs=1.5 / VAL_N)
    # the other metrics of the list, against the unsmoothed one-hot targets
    onehot = np.eye(10)[labels]
    assert last["val_mse"] == pytest.approx(((p - onehot) ** 2).mean(), rel=1e-4)
    # an output within float rounding of the 0.5 threshold may fall either
    # side: allow one output's share for each such borderline output
    borderline = (np.abs(p - 0.5) < 1e-5).sum()
    assert last["val_binary_accuracy"] == pytest.approx(
        ((p > 0.5) == onehot).mean(), abs=(borderline + 0.5) / (VAL_N * 10))


def test_evaluate_reports_every_metric(module_traind, bce_job):
    """evaluate answers as Keras' evaluate(return_dict=True): the loss and each
    of the job's metrics under its log key, over the whole test split."""
    c = module_traind.client
    r = c.post(f"/v1/jobs/{bce_job['id']}/evaluate",
               {"checkpoint": "latest", "dataset": "fashion-mnist"})
    assert r.status == 200, r
    ev = r.json()
    assert set(ev) == {"job", "checkpoint", "dataset", "examples", "loss",
                       "top_k_categorical_accuracy", "binary_accuracy", "mse"}, str(ev)
    n = ev["examples"]
    path = os.path.join(module_traind.job_dir(bce_job["id"]), "checkpoints", ev["checkpoint"])
    z, labels = sigmoid_logits(path, n)
    p = 1 / (1 + np.exp(-z))
    assert ev["mse"] == pytest.approx(((p - np.eye(10)[labels]) ** 2).mean(), rel=1e-4)
    assert 0 <= ev["binary_accuracy"] <= 1 and 0 <= ev["top_k_categorical_accuracy"] <= 1


def test_weighted_training_differs(module_traind, bce_job):
    """The class weights change the training loss (Keras: sum(w l) / n)."""
    c = module_traind.client
    spec = tiny_spec(name="bce-unweighted", model=SIGMOID_MODEL, loss=BCE, metrics=[TOP3],
                     epochs=1, checkpoints=[])
    job = c.submit(spec)
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    a = history(c, final["id"])[0]
    b = history(c, bce_job["id"])[0]
    assert a["loss"] != b["loss"]


@pytest.mark.parametrize("change,field", [
    ({"loss": "binary_crossentropy"}, "/loss"),  # shallownet ends in softmax
    ({"model": SIGMOID_MODEL, "loss": "categorical_crossentropy"}, "/loss"),
    ({"loss": {"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}}},
     "/loss"),
    ({"loss": {"class_name": "Hinge"}}, "/loss/class_name"),
    ({"metrics": ["f1_score"]}, "/metrics/0"),
    ({"class_weight": {"ten": 1}}, "/class_weight/ten"),
    ({"class_weight": {"2": -1}}, "/class_weight/2"),
    ({"class_weight": {"0": 1, "12": 2}}, "/class_weight/12"),  # 10 classes
])
def test_bad_loss_fields_are_400(module_traind, change, field):
    r = module_traind.client.post("/v1/jobs", tiny_spec(**copy.deepcopy(change)))
    assert_error(r, 400, field=field)
