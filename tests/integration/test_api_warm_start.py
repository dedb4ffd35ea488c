# test_api_warm_start.py - "initial_weights" through the HTTP API of the real
# daemon: a job warm-started from another job's checkpoint (tf.keras
# full-model .hdf5, Keras 3 .keras archive, Keras 3 .weights.h5) starts from
# exactly its weights (a learning rate of 1e-30 keeps them, so its first val_loss
# and its own checkpoint equal the source's), a model whose shapes differ is
# a 400 naming layer, weight and both shapes, and skip_mismatch trains with
# the mismatched weights left as seeded and lists them in the
# initial_weights event.  Checkpoint files are read with h5py and zipfile.

import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

from conftest import assert_error, event_fields, tiny_spec

SOURCES = ["src.hdf5", "src.keras", "src.weights.h5"]


def epoch_logs(client, job_id):
    _, events = client.events(job_id, "?after=0", ndjson=True)
    return [event_fields(e) for e in events if e["type"] == "epoch_end"], \
        [event_fields(e) for e in events if e["type"] == "initial_weights"]


def tf_weights(path):
    """{(layer, weight): array} of a tf.keras file (weights-only or full model)."""
    out = {}
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        for name in g.attrs["layer_names"]:
            name = name.decode()
            for w in g[name].attrs["weight_names"]:
                w = w.decode()
                out[(name, w.split("/")[-1].split(":")[0])] = g[name][w][()]
    return out


def keras3_vars(f):
    """{key: [arrays]} of a Keras 3 weights file (h5py File)."""
    return {k: [f["layers"][k]["vars"][str(i)][()] for i in range(len(f["layers"][k]["vars"]))]
            for k in f["layers"]}


@pytest.fixture(scope="module")
def source(module_traind):
    """One epoch of shallownet saving the same weights in three layouts."""
    c = module_traind.client
    spec = tiny_spec(name="source", epochs=1, checkpoints=[
        {"filepath": "src.hdf5"},
        {"filepath": "src.keras"},
        {"filepath": "src.weights.h5", "save_weights_only": True},
    ])
    job = c.submit(spec)
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    ends, _ = epoch_logs(c, job["id"])
    return job["id"], ends[0]["logs"], module_traind.job_dir(job["id"])


def still_spec(**kw):
    """One epoch at a learning rate of 1e-30 (0 is refused): every step changes
    a weight by less than half its float32 spacing (|w| > 1e-20 for a
    trained weight, |gradient| far below 1e10), so the weights stay what
    they started as, exactly, on every kernel path."""
    return tiny_spec(name="warm", epochs=1, optimizer={"name": "sgd", "learning_rate": 1e-30},
                     checkpoints=[{"filepath": "end.weights.h5", "save_weights_only": True}], **kw)


@pytest.mark.parametrize("file", SOURCES)
def test_warm_start_starts_at_the_source_weights(module_traind, source, file):
    c = module_traind.client
    src_id, src_logs, src_dir = source
    job = c.submit(still_spec(initial_weights={"job": src_id, "file": file}))
    assert job["spec"]["initial_weights"] == {"job": src_id, "file": file, "skip_mismatch": False}
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    ends, loaded = epoch_logs(c, job["id"])
    # the source's weights, evaluated on the same validation set by the same code
    assert ends[0]["logs"]["val_loss"] == src_logs["val_loss"]
    assert ends[0]["logs"]["val_accuracy"] == src_logs["val_accuracy"]
    layout = {"src.hdf5": "tf_model", "src.keras": "keras_archive",
              "src.weights.h5": "keras3_weights"}[file]
    assert len(loaded) == 1 and loaded[0]["layout"] == layout
    assert loaded[0]["source"] == f"job {src_id}, {file}"
    assert loaded[0]["loaded"] == 4 and loaded[0]["skipped"] == [] and loaded[0]["absent"] == []
    # and the weights file it wrote holds the source's values
    with h5py.File(os.path.join(src_dir, "checkpoints", "src.weights.h5"), "r") as a, \
            h5py.File(os.path.join(module_traind.job_dir(job["id"]), "checkpoints",
                                   "end.weights.h5"), "r") as b:
        va, vb = keras3_vars(a), keras3_vars(b)
        assert sorted(va) == sorted(vb) and sum(len(v) for v in va.values()) == 4
        for k in va:
            for x, y in zip(va[k], vb[k]):
                np.testing.assert_array_equal(x, y)


def test_without_warm_start_the_run_differs(module_traind, source):
    """The control: the same job seeded, not warm-started, does not match."""
    c = module_traind.client
    _, src_logs, _ = source
    job = c.submit(still_spec())
    assert job["spec"]["initial_weights"] is None
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    ends, loaded = epoch_logs(c, job["id"])
    assert loaded == []
    assert ends[0]["logs"]["val_loss"] != src_logs["val_loss"]


def test_best_file_is_the_default(module_traind, source):
    c = module_traind.client
    src_id, src_logs, _ = source
    # tiny_spec's own policy keeps the best val_loss file; its first policy here is src.hdf5
    job = c.submit(still_spec(initial_weights={"job": src_id}))
    assert job["spec"]["initial_weights"]["file"] == "best"
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    ends, loaded = epoch_logs(c, job["id"])
    assert loaded[0]["source"] == f"job {src_id}, best"
    assert ends[0]["logs"]["val_loss"] == src_logs["val_loss"]


def narrow_model(src_dir, filters):
    """The source's own model_config (full-model file) with another filter count."""
    with h5py.File(os.path.join(src_dir, "checkpoints", "src.hdf5"), "r") as f:
        cfg = json.loads(f.attrs["model_config"])
    convs = [l for l in cfg["config"]["layers"] if l["class_name"] == "Conv2D"]
    convs[0]["config"]["filters"] = filters
    return cfg, convs[0]["config"]["name"]


@pytest.mark.parametrize("file", ["src.hdf5", "src.keras"])
def test_shape_mismatch_is_a_400_naming_layer_weight_and_shapes(module_traind, source, file):
    c = module_traind.client
    src_id, _, src_dir = source
    model, conv = narrow_model(src_dir, 16)
    r = c.post("/v1/jobs", still_spec(model=model, initial_weights={"job": src_id, "file": file}))
    err = assert_error(r, 400, field="/initial_weights")
    msg = err["message"]
    assert conv in msg and "kernel" in msg, msg
    assert "(3, 3, 1, 16)" in msg and "(3, 3, 1, 32)" in msg, msg
    assert not [j for j in c.list_jobs() if j.get("name") == "narrow"]


def test_skip_mismatch_reports_the_skipped_weights(module_traind, source):
    c = module_traind.client
    src_id, _, src_dir = source
    model, conv = narrow_model(src_dir, 16)
    job = c.submit(still_spec(model=model, initial_weights={"job": src_id, "file": "src.keras",
                                                            "skip_mismatch": True}))
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    _, loaded = epoch_logs(c, job["id"])
    skipped = loaded[0]["skipped"]
    by = {(s["layer"], s["weight"]): s for s in skipped}
    assert by[(conv, "kernel")]["model_shape"] == "(3, 3, 1, 16)"
    assert by[(conv, "kernel")]["file_shape"] == "(3, 3, 1, 32)"
    assert by[(conv, "bias")]["model_shape"] == "(16,)"
    assert by[(conv, "bias")]["file_shape"] == "(32,)"
    # the Dense kernel follows the narrower Flatten; its bias still fits and is loaded
    dense = [s for s in skipped if s["layer"] != conv]
    assert [s["weight"] for s in dense] == ["kernel"]
    assert loaded[0]["loaded"] == 1
    src = tf_weights(os.path.join(src_dir, "checkpoints", "src.hdf5"))
    with h5py.File(os.path.join(module_traind.job_dir(job["id"]), "checkpoints",
                                "end.weights.h5"), "r") as f:
        bias = [v for k, v in keras3_vars(f).items() if k.startswith("dense")][0][1]
    np.testing.assert_array_equal(bias, src[(dense[0]["layer"], "bias")])


@pytest.mark.parametrize("iw,field", [
    ({"job": "0123456789abcdef"}, "/initial_weights/job"),
    ({"job": "not-an-id"}, "/initial_weights/job"),
    ({"upload": "nothing-here"}, "/initial_weights/upload"),
    ({}, "/initial_weights"),
    ("src.h5", "/initial_weights"),
    ({"job": "0123456789abcdef", "upload": "x"}, "/initial_weights"),
    ({"job": "0123456789abcdef", "skip_mismatch": "yes"}, "/initial_weights/skip_mismatch"),
    ({"job": "0123456789abcdef", "bogus": 1}, "/initial_weights/bogus"),
])
def test_bad_initial_weights(module_traind, iw, field):
    assert_error(module_traind.client.post("/v1/jobs", still_spec(initial_weights=iw)), 400,
                 field=field)


def test_unknown_checkpoint_file(module_traind, source):
    src_id, _, _ = source
    r = module_traind.client.post("/v1/jobs", still_spec(
        initial_weights={"job": src_id, "file": "nope.h5"}))
    err = assert_error(r, 400, field="/initial_weights/file")
    assert "nope.h5" in err["message"]


def put_weights(client, name, body):
    return client.request("PUT", f"/v1/weights/{name}", body=body,
                          headers={"Content-Type": "application/octet-stream"})


@pytest.mark.parametrize("file", ["src.keras", "src.weights.h5"])
def test_uploaded_weights_file(module_traind, source, file):
    """A .keras / .weights.h5 file PUT to /v1/weights/{name} warm-starts a job."""
    c = module_traind.client
    _, src_logs, src_dir = source
    raw = open(os.path.join(src_dir, "checkpoints", file), "rb").read()
    name = "up-" + file.replace("src.", "").replace(".", "-")
    r = put_weights(c, name, raw)
    assert r.status == 201, r
    body = r.json()
    assert body["name"] == name and body["bytes"] == len(raw)
    assert body["layout"] == {"src.keras": "keras_archive", "src.weights.h5": "keras3_weights"}[file]
    assert r.headers["Location"] == f"/v1/weights/{name}"
    stored = os.path.join(module_traind.state_dir, "weights", name)
    assert open(stored, "rb").read() == raw
    job = c.submit(still_spec(initial_weights={"upload": name}))
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    ends, loaded = epoch_logs(c, job["id"])
    assert loaded[0]["source"] == f"upload {name}"
    assert ends[0]["logs"]["val_loss"] == src_logs["val_loss"]


def test_upload_that_is_no_weight_file_is_a_400(module_traind):
    c = module_traind.client
    for bad in [b"not a weight file", zipfile_without_weights()]:
        err = assert_error(put_weights(c, "bad", bad), 400, field="body")
        assert "weight file" in err["message"]
    assert not os.path.exists(os.path.join(module_traind.state_dir, "weights", "bad"))
    assert_error(c.request("PUT", "/v1/weights/.hidden", body=b"x"), 400)


def zipfile_without_weights():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", "{}")
    return buf.getvalue()
