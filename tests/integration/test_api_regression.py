# test_api_regression.py - data sets of float regression targets through the
# HTTP API of the real daemon: an .npz whose y is float (Keras'
# np.savez(x_train=..., y_train=..., ...)) and an HDF5 file become data sets
# with "targets" {"kind": "float32", "shape": [K]}; a small Dense model trained
# with mean squared error and metrics ["mae"] lowers val_loss, logs "mae" /
# "val_mae" (Keras 3 names a metric by the string given), renders
# {val_mae:.4f} into checkpoint names; evaluate and predict equal numpy over
# the saved weights; what cannot train on float targets is a 400 naming the
# field.

import io

import numpy as np
import pytest

from conftest import assert_error, tiny_spec
from test_h5_layouts import numpy_predict

F, K = 6, 2
N_TRAIN, N_TEST = 256, 64


def model(units=K):
    return {
        "class_name": "Sequential",
        "config": {"name": "regressor", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 1, F, 1],
                                                    "dtype": "float32", "name": "x"}},
            {"class_name": "Flatten", "config": {"name": "flatten"}},
            {"class_name": "Dense", "config": {"name": "hidden", "units": 8,
                                               "activation": "relu"}},
            {"class_name": "Dense", "config": {"name": "out", "units": units,
                                               "activation": "linear"}}]},
        "keras_version": "2.15.0", "backend": "tensorflow"}


def linear_set(n, seed):
    """x (n, 1, F, 1) float32 and y = x W + b + noise, (n, K) float64."""
    rng = np.random.default_rng(seed)
    w = np.linspace(-1.0, 1.0, F * K).reshape(F, K)
    x = rng.uniform(-1, 1, size=(n, 1, F, 1)).astype(np.float32)
    y = x.reshape(n, F).astype(np.float64) @ w + np.array([0.5, -0.25])
    return x, y + rng.normal(0, 0.01, size=y.shape)


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def put(c, name, body, ctype="application/octet-stream"):
    return c.request("PUT", f"/v1/datasets/{name}", body=body,
                     headers={"Content-Type": ctype})


def history(c, jid):
    body = c.get(f"/v1/jobs/{jid}/metrics").json()
    hist = body["history"] if isinstance(body, dict) else body
    return [h.get("logs", h) for h in hist]


def reg_spec(**kw):
    spec = tiny_spec(name="reg", dataset="lin", model=model(), loss="mse", metrics=["mae"],
                     optimizer={"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
                     batch_size=32, epochs=4, steps_per_epoch=None,
                     checkpoints=[{"filepath": "r-{epoch:02d}-{val_mae:.4f}.h5",
                                   "monitor": "val_mae", "save_best_only": False}])
    spec.update(kw)
    return spec


@pytest.fixture(scope="module")
def regression(module_traind):
    c = module_traind.client
    x, y = linear_set(N_TRAIN, 1)
    xt, yt = linear_set(N_TEST, 2)
    r = put(c, "lin", npz_bytes(x_train=x, y_train=y, x_test=xt, y_test=yt))
    assert r.status == 201, r
    job = c.submit(reg_spec())
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    return {"job": final, "xt": xt, "yt": yt.astype(np.float32), "res": r.json()}


def test_dataset_says_float_targets(module_traind, regression):
    c = module_traind.client
    res = regression["res"]
    assert res["targets"] == {"kind": "float32", "shape": [K]}, res
    assert res["classes"] == [] and (res["train"], res["test"]) == (N_TRAIN, N_TEST)
    assert c.get("/v1/datasets/lin").json()["targets"] == {"kind": "float32", "shape": [K]}
    listed = {d["name"]: d for d in c.get("/v1/datasets").json()["datasets"]}
    assert listed["lin"]["targets"]["kind"] == "float32"
    assert listed["fashion-mnist"]["targets"] == {"kind": "classes", "shape": []}


def test_training_logs_and_checkpoint_names(module_traind, regression):
    c = module_traind.client
    jid = regression["job"]["id"]
    hist = history(c, jid)
    assert len(hist) == 4
    for h in hist:
        assert {"loss", "mae", "val_loss", "val_mae"} <= set(h), h
        assert "accuracy" not in h and "val_accuracy" not in h
    # a broken gradient does not lower the validation loss over 4 epochs
    assert hist[-1]["val_loss"] < hist[0]["val_loss"], hist
    names = sorted(f["name"] for f in regression["job"]["checkpoints"])
    want = sorted(f"r-{e:02d}-{hist[e - 1]['val_mae']:.4f}.h5" for e in range(1, 5))
    assert names == want


def test_evaluate_and_predict_equal_numpy(module_traind, regression, tmp_path):
    c = module_traind.client
    jid = regression["job"]["id"]
    got = c.get(f"/v1/jobs/{jid}/latest")
    assert got.status == 200, got
    path = tmp_path / "latest.h5"
    path.write_bytes(got.body)
    xt, yt = regression["xt"], regression["yt"]
    want = numpy_predict(path, xt.astype(np.float64))
    assert want.shape == (N_TEST, K)

    ev = c.post(f"/v1/jobs/{jid}/evaluate", {"checkpoint": "latest", "dataset": "lin"})
    assert ev.status == 200, ev
    ev = ev.json()
    assert ev["examples"] == N_TEST
    # Keras: the per-example loss is the mean over the last axis, then the mean over examples
    assert ev["loss"] == pytest.approx(np.mean((yt - want) ** 2), rel=1e-4)
    assert ev["mae"] == pytest.approx(np.mean(np.abs(yt - want)), rel=1e-4)

    buf = io.BytesIO()
    np.save(buf, xt[:5])
    r = c.request("POST", f"/v1/jobs/{jid}/predict?checkpoint=latest", body=buf.getvalue(),
                  headers={"Content-Type": "application/x-npy"})
    assert r.status == 200, r
    body = r.json()
    assert "probabilities" not in body and "classes" not in body
    out = np.array(body["outputs"], dtype=np.float64)
    assert out.shape == (5, K)
    scale = np.max(np.abs(want[:5]))
    np.testing.assert_allclose(out, want[:5], rtol=1e-4, atol=1e-5 * scale)


def test_what_float_targets_cannot_train(module_traind, regression):
    c = module_traind.client
    cases = [
        (reg_spec(loss="categorical_crossentropy"), "/loss"),
        (reg_spec(loss="sparse_categorical_crossentropy"), "/loss"),
        (reg_spec(metrics=["mae", "accuracy"]), "/metrics/1"),
        (reg_spec(metrics=[{"class_name": "TopKCategoricalAccuracy", "config": {"k": 3}}],
                  checkpoints=[]), "/metrics/0"),
        (reg_spec(class_weight={"0": 2.0}), "/class_weight"),
        (reg_spec(model="mlp"), "/model"),
        (reg_spec(model=model(units=3)), "/model"),
    ]
    no_metrics = reg_spec(checkpoints=[])
    del no_metrics["metrics"]
    cases.append((no_metrics, "/metrics"))
    for spec, field in cases:
        err = assert_error(c.post("/v1/jobs", spec), 400, field=field)
        assert "regression" in err["message"] or "float targets" in err["message"], err
    # the aliases Keras accepts log under the name given
    job = c.submit(reg_spec(loss="mean_absolute_error", epochs=1,
                            metrics=["mean_squared_error", "mse"], checkpoints=[]))
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    h = history(c, final["id"])[0]
    assert {"loss", "mean_squared_error", "mse", "val_mean_squared_error", "val_mse"} <= set(h)
    assert h["mse"] == h["mean_squared_error"]


def test_float_y_forms_and_bad_targets(module_traind):
    c = module_traind.client
    x, y = linear_set(32, 3)
    # y (n,) is one target per example, as Keras matches it to an (n, 1) output
    r = put(c, "lin1", npz_bytes(x_train=x, y_train=y[:, 0].astype(np.float32)))
    assert r.status == 201, r
    assert r.json()["targets"] == {"kind": "float32", "shape": [1]}
    # one-hot float rows stay class labels
    onehot = np.eye(3, dtype=np.float32)[np.arange(32) % 3]
    r = put(c, "onehot", npz_bytes(x_train=x, y_train=onehot))
    assert r.status == 201, r
    assert r.json()["targets"] == {"kind": "classes", "shape": []}
    assert len(r.json()["classes"]) == 3
    bad = y.copy()
    bad[5, 1] = np.nan
    assert_error(put(c, "nan", npz_bytes(x_train=x, y_train=bad)), 400, field="y_train")
    assert c.get("/v1/datasets/nan").status == 404
    assert_error(put(c, "mixed", npz_bytes(x_train=x, y_train=y, x_test=x,
                                           y_test=np.arange(32) % 3)), 400, field="y_test")
    assert_error(put(c, "widths", npz_bytes(x_train=x, y_train=y, x_test=x,
                                            y_test=y[:, :1])), 400, field="y_test")


def test_hdf5_float_targets(module_traind, tmp_path):
    import h5py
    c = module_traind.client
    x, y = linear_set(40, 4)
    path = tmp_path / "reg.h5"
    with h5py.File(path, "w") as f:
        f["x_train"] = x[:30]
        f["y_train"] = y[:30]  # float64, stored as float32
        f["x_test"] = x[30:]
        f["y_test"] = y[30:]
    r = put(c, "linh5", path.read_bytes(), ctype="application/x-hdf5")
    assert r.status == 201, r
    res = r.json()
    assert res["format"] == "hdf5" and res["targets"] == {"kind": "float32", "shape": [K]}
    job = c.submit(reg_spec(dataset="linh5", epochs=1, checkpoints=[]))
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    assert {"loss", "mae", "val_loss", "val_mae"} <= set(history(c, final["id"])[0])
