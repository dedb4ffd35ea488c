# test_api_downloads.py - weight downloads through curl: GET and HEAD of
# checkpoints/{path}, best (?policy=N) and latest, with Content-Type
# application/x-hdf5, Content-Length, Content-Disposition, ETag equal to
# sha256sum of the file on disk, If-None-Match -> 304, single Range requests
# (206 with Content-Range and the exact bytes, 416); the files themselves are
# opened with h5py and checked against the tf.keras / Keras 3 layouts.

import json
import os
import subprocess
import urllib.parse

import h5py
import numpy as np
import pytest

from conftest import assert_error, event_fields, sha256_bytes, sha256_file, tiny_spec

POLICIES = [
    {"filepath": "weights-{epoch:03d}-{val_loss:.4f}.hdf5", "monitor": "val_loss",
     "mode": "min", "save_best_only": True, "verbose": 1},
    {"filepath": "acc/best.h5", "monitor": "val_accuracy", "mode": "max",
     "save_best_only": True, "save_weights_only": True},
    {"filepath": "last.h5", "monitor": "val_loss", "save_weights_only": True},
    {"filepath": "keras3/w-{epoch:02d}.weights.h5", "monitor": "val_loss",
     "save_weights_only": True},
]
SHALLOWNET_LAYERS = ["conv2d", "activation", "flatten", "dense", "activation_1"]


@pytest.fixture(scope="module")
def job(module_traind):
    c = module_traind.client
    j = c.submit(tiny_spec(name="downloads", epochs=3, checkpoints=POLICIES))
    final = c.wait_state(j["id"], "succeeded", daemon=module_traind)
    final["dir"] = os.path.join(module_traind.job_dir(j["id"]), "checkpoints")
    _, final["events"] = c.events(j["id"], "?after=0", ndjson=True)
    return final


def curl(d, path, *args):
    """curl the URL; returns (status, headers dict lower-case, body bytes)."""
    cmd = ["curl", "-sS", "--max-time", "60"]
    if "-I" not in args:  # -I prints the head on stdout by itself
        cmd += ["-D", "-", "-o", "/dev/stdout"]
    if d.token:
        cmd += ["-H", f"Authorization: Bearer {d.token}"]
    cmd += list(args) + [f"{d.client.base}{path}"]
    out = subprocess.run(cmd, capture_output=True, timeout=70)
    assert out.returncode == 0, (out.returncode, out.stderr)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def etag_of(sha):
    return f'"{sha}"'


def check_file_headers(hdrs, path_on_disk, name):
    size = os.path.getsize(path_on_disk)
    assert hdrs["content-type"] == "application/x-hdf5"
    assert int(hdrs["content-length"]) == size
    assert hdrs["etag"] == etag_of(sha256_file(path_on_disk)), hdrs
    disp = hdrs["content-disposition"]
    assert disp.startswith("attachment"), disp
    assert f'filename="{os.path.basename(name)}"' in disp, disp
    assert hdrs.get("accept-ranges") == "bytes"


def files_by_policy(job, policy):
    return [f for f in job["checkpoints"] if f["policy"] == policy]


def test_every_listed_file_downloads_with_its_sha256(module_traind, job):
    assert len(files_by_policy(job, 2)) == 1 and len(files_by_policy(job, 3)) == 3
    for f in job["checkpoints"]:
        disk = os.path.join(job["dir"], f["name"])
        status, hdrs, body = curl(module_traind, f"/v1/jobs/{job['id']}/checkpoints/{f['name']}")
        assert status == 200, (f, body[:200])
        check_file_headers(hdrs, disk, f["name"])
        with open(disk, "rb") as fh:
            assert body == fh.read()
        assert sha256_bytes(body) == f["sha256"] == sha256_file(disk)


def test_head_has_headers_and_no_body(module_traind, job):
    name = files_by_policy(job, 0)[0]["name"]
    status, hdrs, body = curl(module_traind, f"/v1/jobs/{job['id']}/checkpoints/{name}", "-I")
    assert status == 200
    assert body == b""
    check_file_headers(hdrs, os.path.join(job["dir"], name), name)


def test_if_none_match_gives_304(module_traind, job):
    name = "acc/best.h5"
    disk = os.path.join(job["dir"], name)
    sha = sha256_file(disk)
    path = f"/v1/jobs/{job['id']}/checkpoints/{name}"
    for inm in (etag_of(sha), f'"0000", {etag_of(sha)}', "*", f"W/{etag_of(sha)}"):
        status, hdrs, body = curl(module_traind, path, "-H", f"If-None-Match: {inm}")
        assert status == 304, (inm, status)
        assert body == b""
        assert hdrs["etag"] == etag_of(sha)
    status, _, body = curl(module_traind, path, "-H", f'If-None-Match: "{"0" * 64}"')
    assert status == 200 and sha256_bytes(body) == sha


def test_range_requests(module_traind, job):
    name = files_by_policy(job, 0)[-1]["name"]
    disk = os.path.join(job["dir"], name)
    with open(disk, "rb") as fh:
        data = fh.read()
    size = len(data)
    assert size > 1000
    path = f"/v1/jobs/{job['id']}/checkpoints/{name}"
    cases = [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-64", size - 64, size - 1),
        (f"bytes={size - 10}-{size + 500}", size - 10, size - 1),
        (f"bytes={size - 1}-{size - 1}", size - 1, size - 1),
        ("bytes=0-0", 0, 0),
    ]
    for spec, first, last in cases:
        status, hdrs, body = curl(module_traind, path, "-H", f"Range: {spec}")
        assert status == 206, (spec, status)
        assert hdrs["content-range"] == f"bytes {first}-{last}/{size}", (spec, hdrs)
        assert int(hdrs["content-length"]) == last - first + 1
        assert body == data[first:last + 1], spec
        assert hdrs["etag"] == etag_of(sha256_file(disk))
    for spec in (f"bytes={size}-", f"bytes={size + 100}-{size + 200}", "bytes=-0"):
        status, hdrs, body = curl(module_traind, path, "-H", f"Range: {spec}")
        assert status == 416, (spec, status)
        assert hdrs["content-range"] == f"bytes */{size}", (spec, hdrs)
        assert not body.startswith(data[:16])
    # malformed or unsupported units: ignored (200 with the whole file) or 416
    for spec in ("bytes=abc", "items=0-5", "bytes=5-2"):
        status, hdrs, body = curl(module_traind, path, "-H", f"Range: {spec}")
        assert status in (200, 416), (spec, status)
        if status == 200:
            assert body == data
    # curl's own range option on a HEAD-less GET and on the best route
    status, hdrs, body = curl(module_traind, f"/v1/jobs/{job['id']}/best", "-r", "10-19")
    best = job["best"][0]["file"]
    with open(os.path.join(job["dir"], best), "rb") as fh:
        assert status == 206 and body == fh.read()[10:20]


def best_entry(job, policy):
    entries = job["best"]
    e = entries[policy] if isinstance(entries, list) else entries[str(policy)]
    return e


def test_best_and_policy_parameter(module_traind, job):
    jid = job["id"]
    hist = job["history"]
    vl = [h.get("logs", h)["val_loss"] for h in hist]
    va = [h.get("logs", h)["val_accuracy"] for h in hist]
    b0 = best_entry(job, 0)
    assert b0["value"] == pytest.approx(min(vl), rel=1e-12)
    assert b0["file"] == f"weights-{vl.index(min(vl)) + 1:03d}-{min(vl):.4f}.hdf5"
    b1 = best_entry(job, 1)
    assert b1["value"] == pytest.approx(max(va), rel=1e-12)
    assert b1["file"] == "acc/best.h5"
    for query, entry in (("", b0), ("?policy=0", b0), ("?policy=1", b1)):
        status, hdrs, body = curl(module_traind, f"/v1/jobs/{jid}/best{query}")
        assert status == 200, (query, body[:200])
        disk = os.path.join(job["dir"], entry["file"])
        check_file_headers(hdrs, disk, entry["file"])
        assert sha256_bytes(body) == sha256_file(disk)
        status, hdrs, body = curl(module_traind, f"/v1/jobs/{jid}/best{query}", "-I")
        assert status == 200 and body == b""
        check_file_headers(hdrs, disk, entry["file"])
    c = module_traind.client
    assert_error(c.get(f"/v1/jobs/{jid}/best?policy=9"), 404)
    assert_error(c.get(f"/v1/jobs/{jid}/best?policy=x"), 400)
    assert_error(c.get(f"/v1/jobs/{jid}/best?policy=-1"), 400)


def test_latest_is_the_newest_file(module_traind, job):
    saved = [event_fields(e) for e in job["events"]
             if e.get("type") == "checkpoint" and event_fields(e)["decision"] in ("improved",
                                                                                 "saved")]
    newest = saved[-1]["file"]
    assert newest == "keras3/w-03.weights.h5"
    status, hdrs, body = curl(module_traind, f"/v1/jobs/{job['id']}/latest")
    assert status == 200
    disk = os.path.join(job["dir"], newest)
    check_file_headers(hdrs, disk, newest)
    assert sha256_bytes(body) == sha256_file(disk)
    status, hdrs, body = curl(module_traind, f"/v1/jobs/{job['id']}/latest", "-I")
    assert status == 200 and body == b"" and int(hdrs["content-length"]) == os.path.getsize(disk)


def test_no_file_yet_is_404(traind):
    c = traind.client
    j = c.submit(tiny_spec(checkpoints=[]))
    c.wait_state(j["id"], "succeeded", daemon=traind)
    assert_error(c.get(f"/v1/jobs/{j['id']}/best"), 404)
    assert_error(c.get(f"/v1/jobs/{j['id']}/latest"), 404)
    assert c.request("HEAD", f"/v1/jobs/{j['id']}/latest").status == 404


def attr_str(v):
    if isinstance(v, bytes):
        return v.decode()
    return str(v)


def attr_list(v):
    return [attr_str(x) for x in v]


def check_weights_group(g, kernel_in_channels=1):
    """The tf.keras weights layout inside g (the root or model_weights)."""
    assert attr_list(g.attrs["layer_names"]) == SHALLOWNET_LAYERS
    assert attr_str(g.attrs["backend"]) == "tensorflow"
    assert attr_str(g.attrs["keras_version"]).startswith("2.")
    shapes = {}
    for layer in SHALLOWNET_LAYERS:
        names = attr_list(g[layer].attrs["weight_names"])
        if layer in ("conv2d", "dense"):
            assert names == [f"{layer}/kernel:0", f"{layer}/bias:0"], names
        else:
            assert names == [], names
        for n in names:
            ds = g[layer][n]
            assert ds.dtype == np.float32
            shapes[n] = ds.shape
    assert shapes["conv2d/kernel:0"] == (3, 3, kernel_in_channels, 32)
    assert shapes["conv2d/bias:0"] == (32,)
    assert shapes["dense/kernel:0"] == (28 * 28 * 32, 10)
    assert shapes["dense/bias:0"] == (10,)


def tf_weights(g):
    out = {}
    for layer in attr_list(g.attrs["layer_names"]):
        for n in attr_list(g[layer].attrs["weight_names"]):
            out[n] = g[layer][n][()]
    return out


def test_full_model_file_layout(job):
    name = files_by_policy(job, 0)[0]["name"]
    with h5py.File(os.path.join(job["dir"], name), "r") as f:
        assert attr_str(f.attrs["backend"]) == "tensorflow"
        cfg = json.loads(attr_str(f.attrs["model_config"]))
        assert cfg["class_name"] == "Sequential"
        assert [l["class_name"] for l in cfg["config"]["layers"]
                if l["class_name"] != "InputLayer"] == \
            ["Conv2D", "Activation", "Flatten", "Dense", "Activation"]
        tc = json.loads(attr_str(f.attrs["training_config"]))
        assert tc["loss"] == "categorical_crossentropy"
        assert tc["optimizer_config"]["class_name"] == "SGD"
        assert tc["optimizer_config"]["config"]["nesterov"] is True
        check_weights_group(f["model_weights"])
        assert "optimizer_weights" in f


def test_weights_only_and_keras3_files_agree(job):
    with h5py.File(os.path.join(job["dir"], "last.h5"), "r") as f:
        assert "model_weights" not in f and "model_config" not in f.attrs
        check_weights_group(f)
        last = tf_weights(f)
    with h5py.File(os.path.join(job["dir"], "keras3/w-03.weights.h5"), "r") as f:
        assert "layers" in f
        conv = f["layers/conv2d/vars"]
        dense = f["layers/dense/vars"]
        assert np.array_equal(conv["0"][()], last["conv2d/kernel:0"])
        assert np.array_equal(conv["1"][()], last["conv2d/bias:0"])
        assert np.array_equal(dense["0"][()], last["dense/kernel:0"])
        assert np.array_equal(dense["1"][()], last["dense/bias:0"])
    # the last epoch's full-model file, if epoch 3 improved, holds the same weights
    final = [f for f in files_by_policy(job, 0) if f["name"].startswith("weights-003-")]
    if final:
        with h5py.File(os.path.join(job["dir"], final[0]["name"]), "r") as f:
            full = tf_weights(f["model_weights"])
        assert all(np.array_equal(full[k], last[k]) for k in last)


def test_download_in_progress_keeps_its_bytes_when_the_file_is_replaced(traind):
    """A fixed file name rewritten every epoch: a slow download that started
    before a rewrite still gets the old file whole, matching its ETag."""
    import socket
    import time
    c = traind.client
    spec = tiny_spec(name="rewrite", epochs=10000, steps_per_epoch=2,
                     checkpoints=[{"filepath": "current.h5", "monitor": "val_loss",
                                   "save_best_only": False}])
    j = c.submit(spec)
    jid = j["id"]

    def current_sha():
        for f in c.job(jid)["checkpoints"]:
            if f["name"] == "current.h5":
                return f["sha256"]
        return None

    deadline = time.monotonic() + 60
    while current_sha() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)  # poll interval
    def start_download():
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(("127.0.0.1", traind.port))
        s.sendall(f"GET /v1/jobs/{jid}/checkpoints/current.h5 HTTP/1.1\r\nHost: x\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            part = s.recv(1024)
            assert part, data
            data += part
        head, _, body = data.partition(b"\r\n\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in
                (l.partition(":") for l in head.decode("latin-1").split("\r\n")[1:])}
        return s, hdrs, body

    # a request that opened the file in the instant of a rewrite is served
    # without an ETag (the server cannot vouch for it): ask again
    for _ in range(20):
        s, hdrs, body = start_download()
        if "etag" in hdrs:
            break
        s.close()
    try:
        etag = hdrs["etag"].strip('"')
        size = int(hdrs["content-length"])
        # let the job replace the file at least once while we hold the download
        deadline = time.monotonic() + 60
        while current_sha() == etag:
            assert time.monotonic() < deadline, "the file was not rewritten"
            time.sleep(0.05)  # poll interval
        while len(body) < size:
            part = s.recv(65536)
            assert part, "connection closed before the whole file"
            body += part
    finally:
        s.close()
        c.post(f"/v1/jobs/{jid}/cancel")
    assert len(body) == size
    assert sha256_bytes(body) == etag
    assert body[:8] == b"\x89HDF\r\n\x1a\n"


def test_save_last_file_is_listed_and_downloads(module_traind):
    """save_last keeps 'last' + the template's extension, updated on every
    save: a file of the job like any other, listed and served."""
    c = module_traind.client
    j = c.submit(tiny_spec(name="save-last", epochs=2, checkpoints=[
        {"filepath": "top-{epoch:02d}-{val_loss:.4f}.h5", "monitor": "val_loss",
         "mode": "min", "save_best_only": True, "save_top_k": 1, "save_last": True}]))
    final = c.wait_state(j["id"], "succeeded", daemon=module_traind)
    ckdir = os.path.join(module_traind.job_dir(j["id"]), "checkpoints")
    assert sorted(os.listdir(ckdir)) == sorted(f["name"] for f in final["checkpoints"])
    saved = [e for e in c.events(j["id"], "?after=0", ndjson=True)[1]
             if e["type"] == "checkpoint" and e["decision"] in ("improved", "saved")]
    status, hdrs, body = curl(module_traind, f"/v1/jobs/{j['id']}/checkpoints/last.h5")
    assert status == 200, body[:300]
    assert sha256_bytes(body) == saved[-1]["sha256"] == sha256_file(os.path.join(ckdir,
                                                                                "last.h5"))
    check_file_headers(hdrs, os.path.join(ckdir, "last.h5"), "last.h5")


def test_if_range(module_traind, job):
    name = files_by_policy(job, 0)[0]["name"]
    disk = os.path.join(job["dir"], name)
    path = f"/v1/jobs/{job['id']}/checkpoints/{name}"
    tag = etag_of(sha256_file(disk))
    status, hdrs, body = curl(module_traind, path, "-H", "Range: bytes=0-9",
                              "-H", f"If-Range: {tag}")
    assert status == 206 and len(body) == 10
    # the client's copy is stale: the whole current file instead of a piece of it
    status, hdrs, body = curl(module_traind, path, "-H", "Range: bytes=0-9",
                              "-H", f'If-Range: "{"0" * 64}"')
    assert status == 200 and sha256_bytes(body) == sha256_file(disk)


def test_delete_during_download_keeps_the_download_whole(traind):
    import socket
    c = traind.client
    j = c.submit(tiny_spec(epochs=1))
    final = c.wait_state(j["id"], "succeeded", daemon=traind)
    f = final["checkpoints"][0]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect(("127.0.0.1", traind.port))
    try:
        s.sendall(f"GET /v1/jobs/{j['id']}/checkpoints/{f['name']} HTTP/1.1\r\nHost: x\r\n"
                  "Connection: close\r\n\r\n".encode())
        data = s.recv(1024)
        while b"\r\n\r\n" not in data:
            data += s.recv(1024)
        r = c.delete(f"/v1/jobs/{j['id']}")
        assert r.status == 204, r
        assert not os.path.exists(traind.job_dir(j["id"]))
        while True:
            part = s.recv(65536)
            if not part:
                break
            data += part
    finally:
        s.close()
    body = data.partition(b"\r\n\r\n")[2]
    assert len(body) == f["bytes"] and sha256_bytes(body) == f["sha256"]
    assert_error(c.get(f"/v1/jobs/{j['id']}/checkpoints/{f['name']}"), 404)


def test_every_template_character_downloads(module_traind):
    """Names may use the whole template alphabet [A-Za-z0-9._+=@,-] and '/':
    each file the job wrote is served under its name, raw or percent-encoded."""
    c = module_traind.client
    j = c.submit(tiny_spec(name="chars", epochs=1, checkpoints=[
        {"filepath": "Run+1/w@{epoch:02d},v={val_loss:.2f}_x.h5", "monitor": "val_loss"}]))
    final = c.wait_state(j["id"], "succeeded", daemon=module_traind)
    [f] = final["checkpoints"]
    assert f["name"].startswith("Run+1/w@01,v=")
    disk = os.path.join(module_traind.job_dir(j["id"]), "checkpoints", f["name"])
    encoded = "".join(ch if ch in "/" else f"%{ord(ch):02X}" for ch in f["name"])
    for path in (f["name"], encoded):
        r = c.raw("GET", f"/v1/jobs/{j['id']}/checkpoints/{path}")
        assert r.status == 200, (path, r)
        assert sha256_bytes(r.body) == sha256_file(disk)
        assert r.headers["Content-Disposition"] == \
            f'attachment; filename="{os.path.basename(f["name"])}"'


# Issue 9 item 2: one rule for checkpoint names.  A template that could render
# a name the download routes refuse is refused at submit; every other name
# the daemon writes and lists downloads by its listed name, /best and /latest.
@pytest.mark.parametrize("template", [
    "w{{x}}-{epoch}.h5",          # braces
    "w-{epoch}}}.h5",
    "w-{epoch:3d}.h5",            # space padding
    "w-{epoch:5}.h5",
    "w-{val_loss:>12.3f}.h5",
    "w-{loss: .3f}.h5",           # ' ' sign
    "w-{val_accuracy:%}.h5",      # '%' type
    "w-{val_accuracy:.1%}.h5",
    "w.tmp-{epoch}.h5",           # temp names
    "w-{epoch}.tmp",
    "sub.tmpdir/w-{epoch}.h5",
])
def test_template_that_renders_undownloadable_names_is_refused(module_traind, template):
    spec = tiny_spec(checkpoints=[{"filepath": template, "save_best_only": False}])
    r = module_traind.client.post("/v1/jobs", spec)
    assert_error(r, 400, field="/checkpoints/0/filepath")


def test_every_accepted_name_downloads(traind):
    c = traind.client
    template = "w_{epoch:x>4}+{val_loss:_<9.2e}=@,-{epoch:03d}/{val_accuracy:+.2f}.h5"
    spec = tiny_spec(checkpoints=[{"filepath": template, "save_best_only": False}])
    jid = c.submit(spec)["id"]
    c.wait_state(jid, "succeeded", daemon=traind)
    r = c.get(f"/v1/jobs/{jid}/checkpoints")
    assert r.status == 200, r
    body = r.json()
    files = body["checkpoints"] if isinstance(body, dict) else body
    assert len(files) == 2, files
    for f in files:
        path = "/".join(urllib.parse.quote(p, safe="") for p in f["name"].split("/"))
        got = c.get(f"/v1/jobs/{jid}/checkpoints/{path}")
        assert got.status == 200, (f["name"], got)
        assert sha256_bytes(got.body) == f["sha256"]
    for route in ("best", "latest"):
        assert c.get(f"/v1/jobs/{jid}/{route}").status == 200, route
