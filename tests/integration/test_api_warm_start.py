# test_api_warm_start.py - "initial_weights" through the HTTP API of the real
# daemon: a job warm-started from another job's checkpoint (tf.keras
# full-model .hdf5, Keras 3 .keras archive, Keras 3 .weights.h5) starts from
# exactly its weights (a learning rate of 1e-30 keeps them, so its first val_loss
# and its own checkpoint equal the source's), a model whose shapes differ is
# a 400 naming layer, weight and both shapes, and skip_mismatch trains with
# the mismatched weights left as seeded and lists them in the
# initial_weights event.  Uploaded files are listed, downloaded (ETag,
# Range, If-None-Match) and deleted through /v1/weights, a deletion is a 409
# while a queued or running job names the file, and names that try to leave
# the uploads folder are refused.  Checkpoint files are read with h5py and
# zipfile.

import io
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

import hashlib
import re

from conftest import TERMINAL, assert_error, event_fields, long_spec, tiny_spec

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


def src_bytes(source, file):
    return open(os.path.join(source[2], "checkpoints", file), "rb").read()


def test_weights_list_download_and_delete(module_traind, source):
    c = module_traind.client
    files = {"dl-b": src_bytes(source, "src.keras"), "dl-a": src_bytes(source, "src.hdf5")}
    for name, raw in files.items():
        assert put_weights(c, name, raw).status == 201
    r = c.get("/v1/weights")
    assert r.status == 200, r
    listed = [w for w in r.json()["weights"] if w["name"] in files]
    assert [w["name"] for w in listed] == ["dl-a", "dl-b"]  # by name
    layouts = {"dl-a": "tf_model", "dl-b": "keras_archive"}
    for w in listed:
        raw = files[w["name"]]
        assert w["bytes"] == len(raw) and w["sha256"] == hashlib.sha256(raw).hexdigest()
        assert w["layout"] == layouts[w["name"]]
        # shallownet: its Conv2D and its Dense hold weights
        assert w["layers"] == 2
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", w["uploaded"])
    # the download: the bytes, their digest as ETag, ranges, conditional requests
    raw = files["dl-b"]
    r = c.get("/v1/weights/dl-b")
    assert r.status == 200 and r.body == raw
    etag = f'"{hashlib.sha256(raw).hexdigest()}"'
    assert r.headers["ETag"] == etag and int(r.headers["Content-Length"]) == len(raw)
    assert r.headers["Accept-Ranges"] == "bytes"
    assert 'filename="dl-b"' in r.headers["Content-Disposition"]
    r = c.get("/v1/weights/dl-b", headers={"Range": "bytes=4-99"})
    assert r.status == 206 and r.body == raw[4:100]
    assert r.headers["Content-Range"] == f"bytes 4-99/{len(raw)}"
    assert c.get("/v1/weights/dl-b", headers={"If-None-Match": etag}).status == 304
    r = c.request("HEAD", "/v1/weights/dl-b")
    assert r.status == 200 and int(r.headers["Content-Length"]) == len(raw) and r.body == b""
    assert_error(c.get("/v1/weights/dl-b", headers={"Range": f"bytes={len(raw)}-"}), 416)
    # deleting one leaves the other
    r = c.delete("/v1/weights/dl-b")
    assert r.status == 204, r
    assert not os.path.exists(os.path.join(module_traind.state_dir, "weights", "dl-b"))
    assert_error(c.get("/v1/weights/dl-b"), 404)
    assert_error(c.delete("/v1/weights/dl-b"), 404)
    assert [w["name"] for w in c.get("/v1/weights").json()["weights"] if w["name"] in files] == ["dl-a"]
    assert c.get("/v1/weights/dl-a").body == files["dl-a"]
    # the file replaced behind the daemon's back: served and listed without a digest
    path = os.path.join(module_traind.state_dir, "weights", "dl-a")
    with open(path, "ab") as f:
        f.write(b"x")
    r = c.get("/v1/weights/dl-a")
    assert r.status == 200 and r.body == files["dl-a"] + b"x" and "ETag" not in r.headers
    w = [w for w in c.get("/v1/weights").json()["weights"] if w["name"] == "dl-a"][0]
    assert (w["bytes"], w["sha256"], w["layout"], w["layers"]) == \
        (len(files["dl-a"]) + 1, None, None, None)
    assert c.delete("/v1/weights/dl-a").status == 204


def test_delete_of_weights_a_job_uses_is_a_409(module_traind, source):
    c = module_traind.client
    assert put_weights(c, "in-use", src_bytes(source, "src.weights.h5")).status == 201
    job = c.submit(long_spec(initial_weights={"upload": "in-use"},
                             checkpoints=[{"filepath": "w.weights.h5", "save_weights_only": True}]))
    c.wait_state(job["id"], ("running",) + TERMINAL, daemon=module_traind)
    err = assert_error(c.delete("/v1/weights/in-use"), 409)
    assert job["id"] in err["message"] and "in-use" in err["message"]
    assert c.get("/v1/weights/in-use").status == 200
    assert c.post(f"/v1/jobs/{job['id']}/cancel").status in (200, 202)
    c.wait_state(job["id"], TERMINAL, daemon=module_traind)
    assert c.delete("/v1/weights/in-use").status == 204


@pytest.mark.parametrize("path", [
    "/v1/weights/..", "/v1/weights/%2e%2e", "/v1/weights/..%2f..%2fjobs", "/v1/weights/%2Fetc%2Fpasswd",
    "/v1/weights/.keep.json", "/v1/weights/.tmp-x", "/v1/weights/a/b", "/v1/weights/%00",
])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_weights_names_cannot_leave_the_folder(module_traind, source, path, method):
    c = module_traind.client
    assert put_weights(c, "keep", src_bytes(source, "src.weights.h5")).status == 201
    # a sidecar record exists next to it and must not be reachable
    r = c.raw(method, path)
    assert r.status in (400, 404), (path, r.status)
    assert "error" in json.loads(r.body)
    assert os.path.exists(os.path.join(module_traind.state_dir, "weights", "keep"))
