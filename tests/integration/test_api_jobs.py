# test_api_jobs.py - the job routes against the real traind: submit, list,
# get, cancel (queued, running, idempotent), delete, the FIFO queue with
# workers=1, and the read-only routes (health, datasets, models, job metrics
# as JSON and Keras CSVLogger CSV, Prometheus /metrics).

import csv
import io
import json
import math
import os
import re
import time

import pytest

from conftest import TERMINAL, assert_error, long_spec, sha256_file, tiny_spec


def job_list(body):
    return body["jobs"] if isinstance(body, dict) else body


def names_of(body, key):
    items = body[key] if isinstance(body, dict) else body
    return {(i["name"] if isinstance(i, dict) else i) for i in items}


@pytest.fixture(scope="module")
def done_job(module_traind):
    c = module_traind.client
    job = c.submit(tiny_spec(name="done"))
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    return final


def test_health_is_json_200(module_traind):
    r = module_traind.client.get("/v1/health")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert isinstance(r.json(), dict)


def test_datasets_and_models_are_listed(module_traind):
    c = module_traind.client
    r = c.get("/v1/datasets")
    assert r.status == 200, r
    assert {"fashion-mnist", "cifar10"} <= names_of(r.json(), "datasets")
    r = c.get("/v1/models")
    assert r.status == 200, r
    assert {"minivggnet", "shallownet", "lenet", "mlp"} <= names_of(r.json(), "models")


def test_submit_gives_201_location_and_resource(module_traind):
    c = module_traind.client
    r = c.post("/v1/jobs", tiny_spec(name="submit"))
    assert r.status == 201, r
    assert r.headers["Content-Type"].startswith("application/json")
    job = r.json()
    assert isinstance(job["id"], str) and job["id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", job["id"]), job["id"]
    assert job["state"] in ("queued", "running", "succeeded")
    loc = r.headers["Location"]
    assert loc.endswith(f"/v1/jobs/{job['id']}"), loc
    # the normalised spec carries every default
    spec = job["spec"]
    assert spec["epochs"] == 2 and spec["batch_size"] == 32 and spec["seed"] == 1
    assert spec["checkpoints"][0]["monitor"] == "val_loss"
    assert spec["checkpoints"][0]["save_weights_only"] is False
    got = c.job(job["id"])
    assert got["id"] == job["id"]
    c.wait_state(job["id"], "succeeded", daemon=module_traind)


def test_finished_job_resource(module_traind, done_job):
    job = done_job
    assert job["state"] == "succeeded"
    prog = job["progress"]
    assert prog["epoch"] == 2
    hist = job["history"]
    assert [h["epoch"] for h in hist] == [1, 2] or [h["epoch"] for h in hist] == [0, 1], hist
    for h in hist:
        logs = h.get("logs", h)
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert isinstance(logs[k], float) and math.isfinite(logs[k]), h
    best = job["best"]
    assert len(best) == 1
    b = best[0]
    val_losses = [h.get("logs", h)["val_loss"] for h in hist]
    assert b["value"] == pytest.approx(min(val_losses), rel=1e-9)
    files = job["checkpoints"]
    assert b["file"] in [f["name"] for f in files]
    # one file per improvement, named as the template renders val_loss
    improvements, best_so_far = [], math.inf
    for i, v in enumerate(val_losses):
        if v < best_so_far:
            best_so_far = v
            improvements.append(f"weights-{i + 1:03d}-{v:.4f}.hdf5")
    assert sorted(f["name"] for f in files) == sorted(improvements)
    ckdir = os.path.join(module_traind.job_dir(job["id"]), "checkpoints")
    for f in files:
        path = os.path.join(ckdir, f["name"])
        assert f["bytes"] == os.path.getsize(path)
        assert f["sha256"] == sha256_file(path)


def test_checkpoints_route_lists_files(module_traind, done_job):
    c = module_traind.client
    r = c.get(f"/v1/jobs/{done_job['id']}/checkpoints")
    assert r.status == 200, r
    body = r.json()
    files = body["checkpoints"] if isinstance(body, dict) else body
    assert files
    ckdir = os.path.join(module_traind.job_dir(done_job["id"]), "checkpoints")
    assert sorted(f["name"] for f in files) == sorted(os.listdir(ckdir))
    for f in files:
        for k in ("name", "policy", "epoch", "bytes", "sha256", "metrics", "best"):
            assert k in f, f
        assert f["sha256"] == sha256_file(os.path.join(ckdir, f["name"]))
        assert f["policy"] == 0
    assert sum(1 for f in files if f["best"]) == 1


def test_list_and_state_filter(module_traind, done_job):
    c = module_traind.client
    r = c.get("/v1/jobs")
    assert r.status == 200, r
    ids = [j["id"] for j in job_list(r.json())]
    assert done_job["id"] in ids
    r = c.get("/v1/jobs?state=succeeded")
    assert r.status == 200, r
    listed = job_list(r.json())
    assert done_job["id"] in [j["id"] for j in listed]
    assert all(j["state"] == "succeeded" for j in listed)
    r = c.get("/v1/jobs?state=running")
    assert r.status == 200, r
    assert done_job["id"] not in [j["id"] for j in job_list(r.json())]
    r = c.get("/v1/jobs?state=sleeping")
    assert_error(r, 400)


def test_metrics_json_and_keras_csv(module_traind, done_job):
    c = module_traind.client
    jid = done_job["id"]
    r = c.get(f"/v1/jobs/{jid}/metrics")
    assert r.status == 200, r
    body = r.json()
    hist = body["history"] if isinstance(body, dict) else body
    assert len(hist) == 2
    r = c.get(f"/v1/jobs/{jid}/metrics?format=csv")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/csv")
    text = r.body.decode()
    lines = text.splitlines()
    assert lines[0] == "epoch,accuracy,loss,val_accuracy,val_loss"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    for row, h in zip(rows, hist):
        logs = h.get("logs", h)
        for k in ("accuracy", "loss", "val_accuracy", "val_loss"):
            assert float(row[k]) == pytest.approx(logs[k], rel=1e-6, abs=1e-9)
    r = c.get(f"/v1/jobs/{jid}/metrics?format=xml")
    assert_error(r, 400)


PROM_LINE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+|[-+]?Inf|NaN$')


def prom_samples(text):
    """name{labels} -> value for every sample line; checks # TYPE lines."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            assert len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram", "summary",
                                                     "untyped"), line
            typed.add(parts[2])
            continue
        if not line or line.startswith("#"):
            continue
        assert PROM_LINE.match(line), line
        key, _, value = line.rpartition(" ")
        samples[key] = float(value)
    return samples, typed


def test_prometheus_metrics(module_traind, done_job):
    c = module_traind.client
    r = c.get("/metrics")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/plain")
    samples, typed = prom_samples(r.body.decode())
    assert "traind_http_requests_total" in typed
    assert all(n.startswith("traind_") for n in typed), typed

    def requests_total(s):
        return sum(v for k, v in s.items() if k.startswith("traind_http_requests_total"))

    before = requests_total(samples)
    for _ in range(5):
        assert c.get("/v1/jobs").status == 200
    assert c.get("/v1/jobs/no-such-job").status == 404
    # jobs by state, against the job list once every job of this daemon has
    # finished (earlier tests of the module may have left one training)
    jobs = c.list_jobs()
    for j in jobs:
        c.wait_state(j["id"], TERMINAL, daemon=module_traind)
    jobs = c.list_jobs()
    samples2, _ = prom_samples(c.get("/metrics").body.decode())
    assert requests_total(samples2) >= before + 6
    assert any(k.startswith("traind_http_requests_total") and '404' in k for k in samples2)
    for state in ("queued", "running", "succeeded", "failed", "cancelled"):
        want = sum(1 for j in jobs if j["state"] == state)
        assert samples2[f'traind_jobs{{state="{state}"}}'] == want, (state, sorted(samples2))
    assert samples2['traind_jobs{state="succeeded"}'] >= 1
    assert samples2["traind_epochs_total"] >= 2
    assert samples2["traind_checkpoints_written_total"] >= 1
    # bytes served grows by the size of a downloaded file
    served = samples2["traind_bytes_served_total"]
    r = c.get(f"/v1/jobs/{done_job['id']}/best")
    assert r.status == 200
    samples3, _ = prom_samples(c.get("/metrics").body.decode())
    assert samples3["traind_bytes_served_total"] == served + len(r.body)


def test_cifar10_job_trains(module_traind):
    c = module_traind.client
    spec = tiny_spec(name="cifar", dataset={"name": "cifar10", "limit": 400,
                                                    "validation_limit": 100},
                     steps_per_epoch=2, epochs=1,
                     checkpoints=[{"filepath": "w.h5", "save_weights_only": True,
                                   "monitor": "val_loss", "mode": "min"}])
    job = c.submit(spec)
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    assert [f["name"] for f in final["checkpoints"]] == ["w.h5"]
    import h5py
    path = os.path.join(module_traind.job_dir(job["id"]), "checkpoints", "w.h5")
    with h5py.File(path, "r") as f:
        first = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]][0]
        g = f[first]
        kernel = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]][0]
        assert g[kernel].shape[2] == 3  # RGB input: HWIO kernel with 3 input channels


def test_two_jobs_queue_with_one_worker(traind):
    c = traind.client
    a = c.submit(tiny_spec(name="first", epochs=3, steps_per_epoch=8))
    b = c.submit(tiny_spec(name="second"))
    c.wait_state(a["id"], "running", daemon=traind)
    seen_queued = 0
    while True:
        # read the second job first: if it runs while the first (read after
        # it) has not ended, two jobs ran at once
        jb = c.job(b["id"])
        ja = c.job(a["id"])
        if ja["state"] in TERMINAL:
            break
        assert jb["state"] == "queued", (ja["state"], jb["state"])
        seen_queued += 1
        traind.check_alive()
        time.sleep(0.05)  # poll interval
    assert seen_queued >= 1
    assert ja["state"] == "succeeded"
    c.wait_state(b["id"], "succeeded", daemon=traind)


def test_cancel_queued_and_running_is_idempotent(traind):
    c = traind.client
    a = c.submit(long_spec())
    b = c.submit(tiny_spec(name="queued"))
    c.wait_state(a["id"], "running", daemon=traind)
    assert c.job(b["id"])["state"] == "queued"
    assert_error(c.delete(f"/v1/jobs/{b['id']}"), 409)

    r = c.post(f"/v1/jobs/{b['id']}/cancel")
    assert r.status == 200, r
    assert r.json()["state"] == "cancelled"
    r = c.post(f"/v1/jobs/{b['id']}/cancel")
    assert r.status == 200, r
    assert r.json()["state"] == "cancelled"
    assert c.job(a["id"])["state"] == "running"

    r = c.post(f"/v1/jobs/{a['id']}/cancel")
    assert r.status in (200, 202), r
    assert r.json()["state"] in ("running", "cancelled")
    c.wait_state(a["id"], "cancelled", timeout=30, daemon=traind)
    r = c.post(f"/v1/jobs/{a['id']}/cancel")
    assert r.status == 200 and r.json()["state"] == "cancelled", r
    # the queued job never ran
    _, events = c.events(b["id"], ndjson=True)
    states = [e.get("state") for e in events if e.get("type") == "state"]
    assert "running" not in states and states[-1] == "cancelled", events


def test_cancel_finished_job_changes_nothing(traind):
    c = traind.client
    job = c.submit(tiny_spec(epochs=1))
    c.wait_state(job["id"], "succeeded", daemon=traind)
    r = c.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status in (200, 409), r
    if r.status == 409:
        assert_error(r, 409)
    assert c.job(job["id"])["state"] == "succeeded"


def test_delete_conflict_while_running_then_gone(traind):
    c = traind.client
    job = c.submit(long_spec())
    jid = job["id"]
    c.wait_state(jid, "running", daemon=traind)
    # a running job reports its progress: batch counters, images/s and an ETA
    deadline = time.monotonic() + 60
    while True:
        prog = c.job(jid)["progress"]
        if prog["images_per_s"] and prog["batch"] > 0:
            break
        assert time.monotonic() < deadline, prog
        time.sleep(0.05)  # poll interval
    assert prog["epochs"] == 10000 and prog["batches"] == 4 and 1 <= prog["batch"] <= 4
    assert prog["epoch"] >= 1 and prog["images_per_s"] > 0
    assert isinstance(prog["eta_s"], (int, float)) and prog["eta_s"] > 0
    samples, _ = prom_samples(c.get("/metrics").body.decode())
    assert samples[f'traind_images_per_second{{job="{jid}"}}'] > 0
    assert samples['traind_jobs{state="running"}'] == 1
    assert_error(c.delete(f"/v1/jobs/{jid}"), 409)
    assert c.job(jid)["state"] == "running"
    assert os.path.isdir(traind.job_dir(jid))
    c.post(f"/v1/jobs/{jid}/cancel")
    c.wait_state(jid, "cancelled", timeout=30, daemon=traind)
    r = c.delete(f"/v1/jobs/{jid}")
    assert r.status in (200, 204), r
    assert_error(c.get(f"/v1/jobs/{jid}"), 404)
    assert not os.path.exists(traind.job_dir(jid))
    assert_error(c.delete(f"/v1/jobs/{jid}"), 404)
    assert jid not in [j["id"] for j in job_list(c.get("/v1/jobs").json())]


def test_delete_finished_job_removes_files(traind):
    c = traind.client
    job = c.submit(tiny_spec(epochs=1))
    jid = job["id"]
    c.wait_state(jid, "succeeded", daemon=traind)
    assert os.listdir(os.path.join(traind.job_dir(jid), "checkpoints"))
    r = c.delete(f"/v1/jobs/{jid}")
    assert r.status in (200, 204), r
    assert not os.path.exists(traind.job_dir(jid))
    assert_error(c.get(f"/v1/jobs/{jid}/checkpoints"), 404)
    assert_error(c.get(f"/v1/jobs/{jid}/best"), 404)


INLINE_MODEL = {
    "class_name": "Sequential",
    "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1],
                                                "dtype": "float32", "sparse": False,
                                                "ragged": False, "name": "flatten_input"}},
        {"class_name": "Flatten", "config": {"name": "flatten", "trainable": True,
                                             "dtype": "float32",
                                             "data_format": "channels_last"}},
        {"class_name": "Dense", "config": {
            "name": "dense", "trainable": True, "dtype": "float32", "units": 10,
            "activation": "softmax", "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None,
            "activity_regularizer": None, "kernel_constraint": None,
            "bias_constraint": None}}]},
    "keras_version": "2.15.0", "backend": "tensorflow"}


def test_inline_keras_model_trains(module_traind):
    """model may be the JSON tf.keras model.to_json() prints."""
    import h5py
    import json as _json
    c = module_traind.client
    job = c.submit(tiny_spec(name="inline", model=INLINE_MODEL, epochs=1,
                             checkpoints=[{"filepath": "m.h5", "monitor": "val_loss"}]))
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    assert [f["name"] for f in final["checkpoints"]] == ["m.h5"]
    path = os.path.join(module_traind.job_dir(job["id"]), "checkpoints", "m.h5")
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in f["model_weights"].attrs["layer_names"]]
        assert names == ["flatten", "dense"]
        assert f["model_weights/dense/dense/kernel:0"].shape == (784, 10)
        cfg = f.attrs["model_config"]
        cfg = _json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)
        assert [l["config"]["name"] for l in cfg["config"]["layers"]
                if l["class_name"] != "InputLayer"] == ["flatten", "dense"]


def test_queue_is_fifo_and_parallel_submits_get_distinct_ids(traind):
    from concurrent.futures import ThreadPoolExecutor
    c = traind.client
    blocker = c.submit(long_spec())
    c.wait_state(blocker["id"], "running", daemon=traind)
    ordered = [c.submit(tiny_spec(name=f"fifo-{i}", epochs=1, steps_per_epoch=1))["id"]
               for i in range(4)]
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda i: c.post("/v1/jobs", tiny_spec(name=f"par-{i}", epochs=1,
                                                                  steps_per_epoch=1)),
                         range(8)))
    assert all(r.status == 201 for r in rs), [r.status for r in rs]
    par = [r.json()["id"] for r in rs]
    assert len(set(par)) == 8 and not set(par) & set(ordered)
    assert {j["id"] for j in c.list_jobs("?state=queued")} == set(ordered) | set(par)
    c.post(f"/v1/jobs/{blocker['id']}/cancel")
    finals = [c.wait_state(i, "succeeded", daemon=traind) for i in ordered + par]
    started = [f["started"] for f in finals[:4]]
    assert started == sorted(started), started
    assert max(started) <= min(f["started"] for f in finals[4:])


def test_inline_model_with_wrong_class_count_is_400_at_submit(module_traind):
    """Issue 9 item 6: a model ending in 7 classes on a 10-class data set is
    refused at submit (it used to be accepted and fail when it ran)."""
    import copy
    c = module_traind.client
    before = c.list_jobs()
    model = copy.deepcopy(INLINE_MODEL)
    model["config"]["layers"][-1]["config"]["units"] = 7
    r = c.post("/v1/jobs", tiny_spec(name="seven", model=model))
    err = assert_error(r, 400, field="/model")
    assert "7" in err["message"] and "10" in err["message"], err
    assert c.list_jobs() == before


@pytest.mark.parametrize("seed", ["9007199254740992", "9007199254740993", "1e20"])
def test_integers_beyond_2_53_are_refused(module_traind, seed):
    """Issue 9 item 6: a seed that a double cannot hold exactly is refused,
    never silently rounded."""
    body = json.dumps(tiny_spec(seed=0)).replace('"seed": 0', f'"seed": {seed}').encode()
    r = module_traind.client.post("/v1/jobs", body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, field="/seed")


def test_largest_exact_seed_is_kept(module_traind):
    body = json.dumps(tiny_spec(seed=0, epochs=1)).replace(
        '"seed": 0', '"seed": 9007199254740991').encode()
    r = module_traind.client.post("/v1/jobs", body, headers={"Content-Type": "application/json"})
    assert r.status == 201, r
    assert r.json()["spec"]["seed"] == 9007199254740991
