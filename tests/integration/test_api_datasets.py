# test_api_datasets.py - bring your own data, against the real traind:
# PUT /v1/datasets/{name} (npz, image folders in tar, sniffed or by
# Content-Type, query options), GET (list and one), DELETE (409 while a
# queued or running job uses the set, read-only configured sets), limits
# (413) and bad files (400 naming what is wrong, nothing registered, no file
# left), a delete racing a job start, jobs on an uploaded set, and the
# trained model used in place: POST /v1/jobs/{id}/evaluate and /predict,
# whose answers must equal a numpy forward pass over the downloaded weights.

import http.client
import io
import json
import os
import tarfile
import threading
import uuid

import numpy as np
import pytest
from PIL import Image

from conftest import TERMINAL, assert_error, sha256_bytes
from kerasfile import BEST_CHECKPOINT, train_best
from test_h5_layouts import numpy_predict

CLASSES = ["circle", "square", "stripes"]


def png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def pattern(k, seed):
    """An 8x8 grayscale image whose class is easy to learn."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 40, (8, 8))
    if k == 0:
        img[2:6, 2:6] += 200
    elif k == 1:
        img[:, :4] += 200
    else:
        img[::2, :] += 200
    return np.clip(img, 0, 255).astype(np.uint8)


def photos_tar(n_per_class=24):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for k, name in enumerate(CLASSES):
            for i in range(n_per_class):
                data = png(pattern(k, 100 * k + i))
                info = tarfile.TarInfo(f"./{name}/{i:03d}.png")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        note = b"not an image"
        info = tarfile.TarInfo("./README.txt")
        info.size = len(note)
        t.addfile(info, io.BytesIO(note))
    return buf.getvalue()


def mnist_npz(n=64, m=32):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (n, 8, 8)).astype(np.uint8)
    xt = rng.integers(0, 256, (m, 8, 8)).astype(np.uint8)
    buf = io.BytesIO()
    np.savez(buf, x_train=x, y_train=rng.integers(0, 10, n), x_test=xt,
             y_test=rng.integers(0, 10, m))
    return buf.getvalue()


def put(client, name, body, query="", ctype="application/octet-stream", **kw):
    return client.request("PUT", f"/v1/datasets/{name}{query}", body=body,
                          headers={"Content-Type": ctype}, **kw)


def spec_on(name, **kw):
    spec = {
        "name": "byod",
        "dataset": name,
        "model": "mlp",
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "batch_size": 16,
        "epochs": 3,
        "seed": 2,
        "checkpoints": BEST_CHECKPOINT,
    }
    spec.update(kw)
    return spec


def dataset_files(daemon):
    root = os.path.join(daemon.state_dir, "datasets")
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A daemon with an uploaded image set and a job trained on it."""
    from conftest import Daemon
    d = Daemon(tmp_path_factory.mktemp("byod"))
    d.start()
    c = d.client
    r = put(c, "photos", photos_tar(), "?image_size=8x8&color_mode=grayscale"
            "&validation_split=0.25&seed=3", ctype="application/x-tar")
    assert r.status == 201, r
    job_id, path = train_best(d, spec_on("photos"), tmp_path_factory.mktemp("weights"))
    yield d, job_id, r.json(), path
    d.stop(timeout=20)


# --- upload, list, get -------------------------------------------------------------------

def test_upload_image_folder_resource(trained):
    d, job_id, res, _ = trained
    assert res["name"] == "photos" and res["format"] == "images"
    assert res["input_shape"] == [8, 8, 1] and res["dtype"] == "uint8"
    assert (res["train"], res["test"]) == (54, 18)  # 72 images, int(0.25 * 72) held out
    assert [c["name"] for c in res["classes"]] == CLASSES
    assert sum(c["train"] + c["test"] for c in res["classes"]) == 72
    assert res["bytes"] == len(photos_tar())
    assert res["sha256"] == sha256_bytes(photos_tar())
    assert res["skipped_entries"] == 1
    got = d.client.get("/v1/datasets/photos")
    assert got.status == 200
    body = got.json()
    assert body["sha256"] == res["sha256"] and body["jobs"] == [job_id]
    names = [x["name"] for x in d.client.get("/v1/datasets").json()["datasets"]]
    assert "photos" in names and "fashion-mnist" in names


def test_upload_npz_sniffed_and_job(traind):
    c = traind.client
    body = mnist_npz()
    r = put(c, "digits", body)
    assert r.status == 201, r
    res = r.json()
    assert res["format"] == "npz" and (res["train"], res["test"]) == (64, 32)
    assert res["input_shape"] == [8, 8, 1]
    assert r.headers.get("Location") == "/v1/datasets/digits"
    job = c.submit(spec_on("digits", epochs=1))
    assert c.wait_state(job["id"], TERMINAL, daemon=traind)["state"] == "succeeded"


def test_bad_files_register_nothing(traind):
    c = traind.client
    cases = [
        (b"hello world, not a data set", None),
        (mnist_npz()[:500], None),
        (photos_tar()[:3000], None),
    ]
    for body, _ in cases:
        r = put(c, "bad", body)
        assert_error(r, 400)
        assert c.get("/v1/datasets/bad").status == 404
        assert dataset_files(traind) == []
    # a tar with a '..' entry names the entry
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = png(pattern(0, 1))
        info = tarfile.TarInfo("a/../../evil.png")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    r = put(c, "bad", buf.getvalue(), ctype="application/x-tar")
    assert_error(r, 400)
    assert "'..'" in r.json()["error"]["message"]
    assert dataset_files(traind) == []


def test_names_and_conflicts(traind):
    c = traind.client
    assert_error(put(c, ".hidden", mnist_npz()), 400)
    assert_error(put(c, "a%2Fb", mnist_npz()), 400)
    assert put(c, "once", mnist_npz()).status == 201
    assert_error(put(c, "once", mnist_npz()), 409)
    assert_error(put(c, "fashion-mnist", mnist_npz()), 409)
    assert_error(c.delete("/v1/datasets/fashion-mnist"), 409)
    assert_error(c.delete("/v1/datasets/nothing"), 404)
    assert_error(put(c, "once2", mnist_npz(), "?image_size=0x5"), 400, field="image_size")
    assert_error(put(c, "once2", mnist_npz(), "?color_mode=cmyk"), 400, field="color_mode")
    assert_error(put(c, "once2", mnist_npz(), "?validation_split=2"), 400,
                 field="validation_split")


def test_size_limit_413(traind_factory):
    d = traind_factory("small", extra_config="max_dataset_bytes = 4096")
    r = put(d.client, "big", b"\0" * 10000)
    assert r.status == 413, r
    # a chunked body without a length is cut at the limit too
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        conn.request("PUT", "/v1/datasets/big", body=(b"\0" * 1000 for _ in range(20)),
                     headers={"Content-Type": "application/octet-stream"},
                     encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413
        assert json.loads(resp.read())["error"]["code"] == "too_large"
    finally:
        conn.close()
    assert d.client.get("/v1/datasets/big").status == 404
    assert dataset_files(d) == []


def test_token_rules(traind_factory):
    d = traind_factory("auth", token="it-token-5f0c1b2e9a7d4c38b6e1")
    r = d.client.request("PUT", "/v1/datasets/x", body=mnist_npz(), auth=False,
                         headers={"Content-Type": "application/octet-stream"})
    assert_error(r, 401)
    assert put(d.client, "x", mnist_npz()).status == 201
    assert_error(d.client.delete("/v1/datasets/x", auth=False), 401)


# --- delete -------------------------------------------------------------------------------

def test_delete_409_while_used_then_204(traind):
    c = traind.client
    assert put(c, "used", mnist_npz()).status == 201
    job = c.submit(spec_on("used", epochs=10000, steps_per_epoch=2))
    c.wait_state(job["id"], "running", daemon=traind)
    r = c.delete("/v1/datasets/used")
    assert_error(r, 409)
    assert job["id"] in r.json()["error"]["message"]
    c.post(f"/v1/jobs/{job['id']}/cancel")
    c.wait_state(job["id"], TERMINAL, daemon=traind)
    assert c.delete("/v1/datasets/used").status == 204
    assert c.get("/v1/datasets/used").status == 404
    assert dataset_files(traind) == []
    # a job naming the deleted set is refused at submit
    assert_error(c.post("/v1/jobs", spec_on("used")), 400, field="/dataset")


def test_delete_races_job_start(traind):
    """Each round: a submit and a delete at once.  Either the job is accepted
    and the delete gets 409, or the delete wins and the submit gets 400;
    an accepted job never fails for lack of its data."""
    c = traind.client
    body = mnist_npz()
    outcomes = set()
    for i in range(12):
        name = f"race{i}"
        assert put(c, name, body).status == 201
        res = {}
        start = threading.Barrier(2)

        def submit():
            start.wait()
            res["submit"] = c.post("/v1/jobs", spec_on(name, epochs=10000, steps_per_epoch=2))

        def delete():
            start.wait()
            res["delete"] = c.delete(f"/v1/datasets/{name}")

        threads = [threading.Thread(target=submit), threading.Thread(target=delete)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s, dl = res["submit"], res["delete"]
        if s.status == 201:
            assert dl.status == 409, (s, dl)
            job = s.json()
            state = c.wait_state(job["id"], ("running",) + TERMINAL, daemon=traind)
            assert state["state"] == "running", state
            c.post(f"/v1/jobs/{job['id']}/cancel")
            c.wait_state(job["id"], TERMINAL, daemon=traind)
            assert c.delete(f"/v1/datasets/{name}").status == 204
            outcomes.add("job")
        else:
            assert_error(s, 400, field="/dataset")
            assert dl.status == 204, dl
            outcomes.add("delete")
    assert outcomes  # both orders are correct; which occurs depends on timing


# --- evaluate and predict --------------------------------------------------------------------

def test_tensor_file_shared_page_cache(trained):
    d, _, _, _ = trained
    path = os.path.join(d.state_dir, "datasets", "photos", "data.tensor")
    assert os.path.getsize(path) > 4096


def test_evaluate_equals_numpy(trained):
    d, job_id, res, weights = trained
    r = d.client.post(f"/v1/jobs/{job_id}/evaluate", {"checkpoint": "best", "dataset": "photos"})
    assert r.status == 200, r
    ev = r.json()
    assert ev["examples"] == res["test"] and set(ev) >= {"loss", "accuracy", "checkpoint"}
    # the same test split, read from the tensor file's documented layout
    raw = open(os.path.join(d.state_dir, "datasets", "photos", "data.tensor"), "rb").read()
    import struct
    f = struct.unpack_from("<8sIIIIIIQQQQQQQQQ", raw)
    h, w, ch, n_test, x1, y1 = f[3], f[4], f[5], f[8], f[11], f[12]
    x = np.frombuffer(raw, np.uint8, n_test * h * w * ch, x1).reshape(n_test, h, w, ch)
    y = np.frombuffer(raw, np.uint8, n_test, y1)
    probs = numpy_predict(weights, x.astype(np.float64) / 255.0)
    loss = float(np.mean(-np.log(np.maximum(probs[np.arange(n_test), y], 1e-7))))
    acc = float(np.mean(probs.argmax(axis=1) == y))
    assert ev["loss"] == pytest.approx(loss, rel=1e-3, abs=1e-5)
    assert abs(ev["accuracy"] - acc) <= 1.0 / n_test + 1e-9
    assert_error(d.client.post(f"/v1/jobs/{job_id}/evaluate",
                               {"checkpoint": "best", "dataset": "nothing"}), 400,
                 field="/dataset")
    assert_error(d.client.post(f"/v1/jobs/{job_id}/evaluate",
                               {"checkpoint": "nope.hdf5", "dataset": "photos"}), 404)
    assert_error(d.client.post(f"/v1/jobs/{job_id}/evaluate", {"bogus": 1}), 400)


def check_probs(d, body, weights, x_uint8):
    assert [c for c in body["classes"]] == CLASSES
    got = np.array(body["probabilities"], dtype=np.float64)
    want = numpy_predict(weights, x_uint8.astype(np.float64) / 255.0)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    for i, top in enumerate(body["top"]):
        # the top class must be numpy's wherever the two best are not a near-tie
        best = np.sort(want[i])[::-1]
        if best[0] - best[1] > 1e-3:
            assert top == CLASSES[int(want[i].argmax())]


def test_predict_png_multipart_npy(trained):
    d, job_id, _, weights = trained
    c = d.client
    imgs = [pattern(k, 9000 + k) for k in range(3)]
    r = c.request("POST", f"/v1/jobs/{job_id}/predict", body=png(imgs[0]),
                  headers={"Content-Type": "image/png"})
    assert r.status == 200, r
    check_probs(d, r.json(), weights, imgs[0][None, :, :, None])
    boundary = uuid.uuid4().hex
    parts = b""
    for i, im in enumerate(imgs):
        parts += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                  f"filename=\"{i}.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
        parts += png(im) + b"\r\n"
    parts += f"--{boundary}--\r\n".encode()
    r = c.request("POST", f"/v1/jobs/{job_id}/predict", body=parts,
                  headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status == 200, r
    check_probs(d, r.json(), weights, np.stack(imgs)[..., None])
    buf = io.BytesIO()
    np.save(buf, np.stack(imgs))
    r = c.request("POST", f"/v1/jobs/{job_id}/predict?checkpoint=best", body=buf.getvalue(),
                  headers={"Content-Type": "application/x-npy"})
    assert r.status == 200, r
    check_probs(d, r.json(), weights, np.stack(imgs)[..., None])
    # a larger image is resized as at upload; garbage and bad shapes are 400
    big = np.kron(imgs[1], np.ones((2, 2), np.uint8))
    r = c.request("POST", f"/v1/jobs/{job_id}/predict", body=png(big),
                  headers={"Content-Type": "image/png"})
    assert r.status == 200, r
    assert_error(c.request("POST", f"/v1/jobs/{job_id}/predict", body=b"\x89PNG garbage",
                           headers={"Content-Type": "image/png"}), 400)
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 5, 5), np.uint8))
    assert_error(c.request("POST", f"/v1/jobs/{job_id}/predict", body=buf.getvalue(),
                           headers={"Content-Type": "application/x-npy"}), 400)
    buf = io.BytesIO()
    np.save(buf, np.zeros((1000, 8, 8), np.uint8))
    r = c.request("POST", f"/v1/jobs/{job_id}/predict", body=buf.getvalue(),
                  headers={"Content-Type": "application/x-npy"})
    assert_error(r, 400)
    assert_error(c.request("POST", f"/v1/jobs/{job_id}/predict", body=b"x",
                           headers={"Content-Type": "text/plain"}), 415)
    assert_error(c.request("POST", "/v1/jobs/0123456789abcdef/predict", body=png(imgs[0]),
                           headers={"Content-Type": "image/png"}), 404)


# --- float32 data sets -------------------------------------------------------------------------

def pattern_set(n_per_class, seed):
    """uint8 (n, 8, 8) images of the three patterns and their labels, interleaved."""
    xs, ys = [], []
    for i in range(n_per_class):
        for k in range(len(CLASSES)):
            xs.append(pattern(k, seed + 10 * i + k))
            ys.append(k)
    return np.stack(xs), np.array(ys, np.int64)


def as_fed(x_uint8):
    """The float32 values traind feeds a model for uint8 pixels: x * (1.0f / 255.0f),
    rounded to float32 (numpy's x / 255 differs from it in the last bit for about half
    of the 256 values, so it would not give the same inputs)."""
    return x_uint8.astype(np.float32) * np.float32(1.0 / 255.0)


def npz_bytes(**arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def history(c, job_id):
    body = c.get(f"/v1/jobs/{job_id}/metrics").json()
    hist = body["history"] if isinstance(body, dict) else body
    return [h.get("logs", h) for h in hist]


def h5_arrays(path):
    import h5py
    out = {}
    with h5py.File(path, "r") as f:
        f["model_weights"].visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "shape") else None)
    return out


def test_float32_npz_trains_like_uint8(traind, tmp_path):
    """The same images as a uint8 set and as a float32 set holding the values
    traind feeds for uint8 (one-hot labels on the float32 side): the two jobs
    see the same inputs, so their per-epoch logs and weights agree; evaluate
    and predict on the float32 set equal a numpy forward pass over its values
    taken as they are."""
    c = traind.client
    x, y = pattern_set(16, 1)
    xt, yt = pattern_set(6, 5000)
    r8 = put(c, "pat-u8", npz_bytes(x_train=x, y_train=y, x_test=xt, y_test=yt))
    assert r8.status == 201, r8
    onehot = np.eye(len(CLASSES), dtype=np.float32)
    r32 = put(c, "pat-f32", npz_bytes(x_train=as_fed(x), y_train=onehot[y],
                                      x_test=as_fed(xt), y_test=onehot[yt]),
              ctype="application/x-npz")
    assert r32.status == 201, r32
    res = r32.json()
    assert res["dtype"] == "float32" and r8.json()["dtype"] == "uint8"
    assert res["input_shape"] == [8, 8, 1] and (res["train"], res["test"]) == (48, 18)
    assert [(k["train"], k["test"]) for k in res["classes"]] == [(16, 6)] * 3
    # the tensor file keeps float32 values: 4 bytes per pixel against 1
    tensor = lambda name: os.path.getsize(os.path.join(traind.state_dir, "datasets", name,
                                                       "data.tensor"))
    assert tensor("pat-f32") > tensor("pat-u8") + 3 * (48 + 18) * 64 - 4096

    jobs = {}
    for name in ("pat-u8", "pat-f32"):
        job = c.submit(spec_on(name, epochs=3))
        final = c.wait_state(job["id"], TERMINAL, daemon=traind)
        assert final["state"] == "succeeded", final
        jobs[name] = job["id"]
    h8, h32 = history(c, jobs["pat-u8"]), history(c, jobs["pat-f32"])
    assert len(h8) == len(h32) == 3
    for a, b in zip(h8, h32):
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert b[k] == pytest.approx(a[k], rel=1e-6, abs=1e-12), (k, a, b)
    paths = {}
    for name, jid in jobs.items():
        got = c.get(f"/v1/jobs/{jid}/best")
        assert got.status == 200, got
        paths[name] = tmp_path / f"{name}.hdf5"
        paths[name].write_bytes(got.body)
    w8, w32 = h5_arrays(paths["pat-u8"]), h5_arrays(paths["pat-f32"])
    assert sorted(w8) == sorted(w32) and w8
    for k in w8:
        np.testing.assert_allclose(w32[k], w8[k], rtol=1e-6, atol=1e-7, err_msg=k)

    # evaluate on the float32 set: numpy over the stored values, not rescaled
    jid = jobs["pat-f32"]
    ev = c.post(f"/v1/jobs/{jid}/evaluate", {"checkpoint": "best", "dataset": "pat-f32"})
    assert ev.status == 200, ev
    ev = ev.json()
    probs = numpy_predict(paths["pat-f32"], as_fed(xt)[..., None].astype(np.float64))
    loss = float(np.mean(-np.log(np.maximum(probs[np.arange(len(yt)), yt], 1e-7))))
    assert ev["examples"] == len(yt)
    assert ev["loss"] == pytest.approx(loss, rel=1e-3, abs=1e-5)
    acc = float(np.mean(probs.argmax(axis=1) == yt))
    assert abs(ev["accuracy"] - acc) <= 1 / len(yt) + 1e-9

    # predict: a float32 .npy batch is taken as it is
    batch = as_fed(xt[:4])
    buf = io.BytesIO()
    np.save(buf, batch)
    r = c.request("POST", f"/v1/jobs/{jid}/predict", body=buf.getvalue(),
                  headers={"Content-Type": "application/x-npy"})
    assert r.status == 200, r
    body = r.json()
    assert body["classes"] == ["0", "1", "2"]  # an npz names no classes
    want = numpy_predict(paths["pat-f32"], batch[..., None].astype(np.float64))
    np.testing.assert_allclose(np.array(body["probabilities"]), want, rtol=1e-3, atol=1e-5)
    # images and uint8 batches cannot be prepared as float32 data was: 400
    r = c.request("POST", f"/v1/jobs/{jid}/predict", body=png(xt[0]),
                  headers={"Content-Type": "image/png"})
    assert_error(r, 400, field="body")
    assert "float32" in r.json()["error"]["message"]
    buf = io.BytesIO()
    np.save(buf, xt[:2])
    assert_error(c.request("POST", f"/v1/jobs/{jid}/predict", body=buf.getvalue(),
                           headers={"Content-Type": "application/x-npy"}), 400, field="body")


def test_float32_nhwc_hdf5_trains(traind, tmp_path):
    """float32 NHWC from h5py, values outside [0, 1]: a job on it runs and
    evaluate equals numpy over the values as they are."""
    import h5py
    c = traind.client
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, (40, 6, 5, 3)).astype(np.float32)
    y = (x[..., 0].mean(axis=(1, 2)) > 0).astype(np.int64)
    xt = rng.normal(0, 2, (12, 6, 5, 3)).astype(np.float32)
    yt = (xt[..., 0].mean(axis=(1, 2)) > 0).astype(np.int64)
    src = tmp_path / "f.h5"
    with h5py.File(src, "w") as f:
        f["x_train"], f["y_train"], f["x_test"], f["y_test"] = x, y, xt, yt
    r = put(c, "f32-h5", src.read_bytes(), ctype="application/x-hdf5")
    assert r.status == 201, r
    assert r.json()["dtype"] == "float32" and r.json()["input_shape"] == [6, 5, 3]
    job = c.submit(spec_on("f32-h5", epochs=2))
    assert c.wait_state(job["id"], TERMINAL, daemon=traind)["state"] == "succeeded"
    weights = tmp_path / "best.hdf5"
    weights.write_bytes(c.get(f"/v1/jobs/{job['id']}/best").body)
    ev = c.post(f"/v1/jobs/{job['id']}/evaluate", {"checkpoint": "best", "dataset": "f32-h5"})
    assert ev.status == 200, ev
    probs = numpy_predict(weights, xt.astype(np.float64))
    loss = float(np.mean(-np.log(np.maximum(probs[np.arange(len(yt)), yt], 1e-7))))
    assert ev.json()["loss"] == pytest.approx(loss, rel=1e-3, abs=1e-5)


# --- class names of the configured data sets ---------------------------------------------------

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"]
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


def test_configured_class_names(traind_factory, tmp_path):
    from conftest import cifar10_dir, fashion_dir, tiny_spec
    # a CIFAR-10 folder as the tarball unpacks (cifar-10-batches-bin/ with its
    # batches.meta.txt, names of our own), and an IDX set not called fashion
    meta_names = [f"kind {k}" for k in range(10)]
    sub = tmp_path / "cifar-meta" / "cifar-10-batches-bin"
    sub.mkdir(parents=True)
    for f in os.listdir(cifar10_dir()):
        os.symlink(os.path.join(cifar10_dir(), f), sub / f)
    (sub / "batches.meta.txt").write_text("\n".join(meta_names) + "\n\n")
    digits = tmp_path / "digits"
    digits.mkdir()
    for f in os.listdir(fashion_dir()):
        os.symlink(os.path.join(fashion_dir(), f), digits / f)
    extra = (f"[dataset.cifar-meta]\nformat = cifar10\npath = {tmp_path / 'cifar-meta'}\n"
             f"[dataset.digits]\nformat = idx\npath = {digits}\n")
    d = traind_factory("names", extra_config=extra)
    c = d.client

    def names(ds):
        r = c.get(f"/v1/datasets/{ds}")
        assert r.status == 200, r
        body = r.json()
        assert body["dtype"] == "uint8"
        return body["input_shape"], [k["name"] for k in body["classes"]]

    assert names("fashion-mnist") == ([28, 28, 1], FASHION_NAMES)
    assert names("cifar10") == ([32, 32, 3], CIFAR_NAMES)  # no batches.meta.txt
    assert names("cifar-meta") == ([32, 32, 3], meta_names)
    assert names("digits") == ([28, 28, 1], [str(k) for k in range(10)])
    listed = {x["name"]: x for x in c.get("/v1/datasets").json()["datasets"]}
    assert [k["name"] for k in listed["fashion-mnist"]["classes"]] == FASHION_NAMES

    # predict on a model trained on Fashion-MNIST answers with its names
    job = c.submit(tiny_spec(epochs=1))
    assert c.wait_state(job["id"], TERMINAL, daemon=d)["state"] == "succeeded"
    img = np.zeros((28, 28), np.uint8)
    img[4:24, 10:18] = 200
    r = c.request("POST", f"/v1/jobs/{job['id']}/predict", body=png(img),
                  headers={"Content-Type": "image/png"})
    assert r.status == 200, r
    body = r.json()
    assert body["classes"] == FASHION_NAMES
    probs = body["probabilities"][0]
    assert body["top"] == [FASHION_NAMES[int(np.argmax(probs))]]
