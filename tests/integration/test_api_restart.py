# test_api_restart.py - persistence and recovery of the real daemon:
# SIGTERM exits 0 and a restart on the same state dir lists every job again
# with its history, events and files, the interrupted job continues and the
# queued one runs; kill -9 in the middle of training, restart, and the job
# ends with weights bit-identical (h5py, numpy.array_equal on every dataset)
# to the same job run uninterrupted in another daemon (also a regression
# job on float targets); temp leftovers are removed at start.

import os
import signal
import time

import h5py
import numpy as np
import pytest

from conftest import TERMINAL, parse_ndjson, tiny_spec
from test_api_regression import npz_bytes, put


def snapshot(c, jid):
    job = c.job(jid)
    _, events = c.events(jid, "?after=0", ndjson=True)
    events = [e for e in events if e.get("type") != "progress"]
    metrics = c.get(f"/v1/jobs/{jid}/metrics?format=csv").body
    return job, events, metrics


def terminal_on_disk(d, jid):
    with open(os.path.join(d.job_dir(jid), "events.ndjson"), "rb") as f:
        events = parse_ndjson(f.read())
    return [e for e in events if e.get("type") == "state" and e.get("state") in TERMINAL]


def wait_epochs(c, jid, n, d, timeout=120):
    """Poll until the job's history holds at least n epochs (while it runs)."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.job(jid)
        if len(job["history"]) >= n:
            return job
        assert job["state"] not in TERMINAL, job["state"]
        d.check_alive()
        time.sleep(0.02)  # poll interval
    raise AssertionError(f"job {jid} did not reach {n} epochs\n{d.log_tail()}")


def test_sigterm_and_restart_keep_everything(traind_factory):
    d = traind_factory("sigterm", workers=1)
    c = d.client
    a = c.submit(tiny_spec(name="done-before"))
    c.wait_state(a["id"], "succeeded", daemon=d)
    job_a, events_a, csv_a = snapshot(c, a["id"])
    b = c.submit(tiny_spec(name="interrupted", epochs=4, steps_per_epoch=16))
    q = c.submit(tiny_spec(name="queued"))
    wait_epochs(c, b["id"], 1, d)
    assert c.job(q["id"])["state"] == "queued"

    last_seen = c.job(b["id"])["last_event"]
    assert d.stop(signal.SIGTERM, timeout=60) == 0
    assert os.path.exists(os.path.join(d.job_dir(b["id"]), "resume.h5"))
    assert not terminal_on_disk(d, b["id"]), "SIGTERM must not end the job"
    # a temp leftover, as a crash in the middle of an atomic write leaves it
    leftover = os.path.join(d.job_dir(b["id"]), "checkpoints", ".tmp-weights-001.hdf5-1-1")
    with open(leftover, "wb") as f:
        f.write(b"partial")

    d.start()
    c = d.client
    assert not os.path.exists(leftover), "temp leftovers are removed on start"
    listed = {j["id"]: j["state"] for j in c.list_jobs()}
    assert set(listed) >= {a["id"], b["id"], q["id"]}
    assert listed[a["id"]] == "succeeded"
    job_a2, events_a2, csv_a2 = snapshot(c, a["id"])
    assert events_a2 == events_a
    assert csv_a2 == csv_a
    for k in ("spec", "history", "best", "checkpoints", "state"):
        assert job_a2[k] == job_a[k], k
    # a client that reconnects with Last-Event-ID gets only what it has not seen
    final_b = c.wait_state(b["id"], "succeeded", timeout=180, daemon=d)
    _, tail = c.events(b["id"], ndjson=True, headers={"Last-Event-ID": str(last_seen)})
    assert tail and all(e["seq"] > last_seen for e in tail)
    ends = [e["epoch"] for e in tail if e["type"] == "epoch_end"]
    assert ends and ends == sorted(set(ends)) and ends[-1] == 4, ends
    assert tail[-1]["type"] == "state" and tail[-1]["state"] == "succeeded"
    assert [h["epoch"] for h in final_b["history"]] in ([1, 2, 3, 4], [0, 1, 2, 3])
    c.wait_state(q["id"], "succeeded", timeout=120, daemon=d)
    _, events_b = c.events(b["id"], "?after=0", ndjson=True)
    seqs = [e["seq"] for e in events_b if e.get("type") != "progress"]
    assert seqs == sorted(set(seqs)), "sequence numbers continue after a restart"
    assert len([e for e in events_b if e.get("type") == "epoch_end"]) == 4


def all_datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]
        f.visititems(visit)
    return out


RESUME_SPEC = dict(
    name="resume", epochs=4, steps_per_epoch=16, threads=1,
    # several metrics: every running sum is kept in resume.h5 (SIGTERM stops
    # mid-epoch) and continues bit for bit
    metrics=["accuracy", "mse",
             {"class_name": "TopKCategoricalAccuracy", "config": {"name": "top2", "k": 2}}],
    checkpoints=[
        {"filepath": "w-{epoch:02d}.h5", "monitor": "val_loss", "save_best_only": False},
        {"filepath": "best-{epoch:02d}-{val_loss:.4f}.h5", "monitor": "val_loss", "mode": "min",
         "save_best_only": True, "save_weights_only": True},
    ])


# A regression job on float targets: a small convolutional net (as heavy as
# shallownet, so that the interruption lands mid-job) trained with mean
# absolute error and metrics mse, mae on y = a fixed function of the images.
REGRESSION_MODEL = {
    "class_name": "Sequential",
    "config": {"name": "conv_regressor", "layers": [
        {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1],
                                                "dtype": "float32", "name": "x"}},
        {"class_name": "Conv2D", "config": {"name": "conv", "filters": 32,
                                            "kernel_size": [3, 3], "activation": "relu"}},
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "out", "units": 2}}]},
    "keras_version": "2.15.0", "backend": "tensorflow"}


def regression_npz():
    rng = np.random.default_rng(8)
    x = rng.random((640, 28, 28), dtype=np.float32)
    y = np.stack([x[:, :14].mean(axis=(1, 2)), x[:, :, 14:].std(axis=(1, 2))], axis=1)
    return npz_bytes(x_train=x[:512], y_train=y[:512], x_test=x[512:], y_test=y[512:])


REGRESSION_SPEC = dict(
    RESUME_SPEC, dataset={"name": "reg", "validation_limit": 64}, model=REGRESSION_MODEL,
    loss="mean_absolute_error", metrics=["mse", "mae"],
    checkpoints=[
        {"filepath": "w-{epoch:02d}.h5", "monitor": "val_mae", "save_best_only": False},
        {"filepath": "best-{epoch:02d}-{val_mae:.4f}.h5", "monitor": "val_mae",
         "save_best_only": True, "save_weights_only": True},
    ])


@pytest.mark.parametrize("how,data", [("kill9", "classes"), ("sigterm", "classes"),
                                      ("kill9", "regression")])
def test_interrupt_and_restart_is_bit_identical(traind_factory, how, data):
    victim = traind_factory("victim")
    reference = traind_factory("reference")
    spec = tiny_spec(**RESUME_SPEC)
    keys = {"accuracy", "mse", "top2"}
    if data == "regression":
        body = regression_npz()
        for d in (victim, reference):
            assert put(d.client, "reg", body).status == 201
        spec = tiny_spec(**REGRESSION_SPEC)
        keys = {"mse", "mae"}
    ref = reference.client.submit(spec)
    job = victim.client.submit(spec)
    wait_epochs(victim.client, job["id"], 2, victim)
    if how == "kill9":
        victim.kill9()
    else:
        assert victim.stop(signal.SIGTERM) == 0
    assert not terminal_on_disk(victim, job["id"]), \
        "the job ended before the interruption: make RESUME_SPEC longer"
    first = os.stat(os.path.join(victim.job_dir(job["id"]), "checkpoints", "w-01.h5"))
    victim.start()
    c = victim.client
    # at most the current epoch is lost: the two finished epochs are still there
    assert len(c.job(job["id"])["history"]) >= 2
    final = c.wait_state(job["id"], "succeeded", timeout=240, daemon=victim)
    final_ref = reference.client.wait_state(ref["id"], "succeeded", timeout=240,
                                            daemon=reference)

    # it continued from resume.h5: epoch 1 was neither trained nor written again
    _, events = c.events(job["id"], "?after=0", ndjson=True)
    ends = [e["epoch"] for e in events if e.get("type") == "epoch_end"]
    assert ends.count(1) == 1 and sorted(set(ends)) == [1, 2, 3, 4], ends
    again = os.stat(os.path.join(victim.job_dir(job["id"]), "checkpoints", "w-01.h5"))
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)

    def logs(hist):  # everything but the wall-clock seconds
        return [{k: v for k, v in h.items() if k != "seconds"} for h in hist]

    assert logs(final["history"]) == logs(final_ref["history"])
    for h in final["history"]:
        assert keys | {"val_" + k for k in keys} <= set(h.get("logs", h)), h
    names = sorted(f["name"] for f in final["checkpoints"])
    assert names == sorted(f["name"] for f in final_ref["checkpoints"])
    assert [n for n in names if n.startswith("w-")] == ["w-01.h5", "w-02.h5", "w-03.h5",
                                                       "w-04.h5"]
    for name in names:
        got = all_datasets(os.path.join(victim.job_dir(job["id"]), "checkpoints", name))
        want = all_datasets(os.path.join(reference.job_dir(ref["id"]), "checkpoints", name))
        assert sorted(got) == sorted(want), name
        assert any(k.endswith("kernel:0") for k in got), name
        for k in want:
            assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), (name, k)
    # the best per policy carried over the restart without a worse overwrite
    assert final["best"] == final_ref["best"]


def test_kill9_before_first_epoch_restarts_cleanly(traind_factory):
    d = traind_factory("early")
    c = d.client
    job = c.submit(tiny_spec(name="early", epochs=1, steps_per_epoch=64))
    c.wait_state(job["id"], "running", daemon=d)
    d.kill9()
    d.start()
    final = d.client.wait_state(job["id"], "succeeded", timeout=180, daemon=d)
    assert len(final["history"]) == 1


def test_failed_job_reports_its_error(traind_factory):
    d = traind_factory("broken", extra_config="[dataset.broken]\nformat = idx\n"
                                              "path = /nonexistent/traind-it\n")
    c = d.client
    job = c.submit(tiny_spec(dataset="broken"))
    final = c.wait_state(job["id"], "failed", daemon=d)
    assert "/nonexistent/traind-it" in final["error"], final["error"]
    _, events = c.events(job["id"], "?after=0", ndjson=True)
    assert events[-1]["type"] == "state" and events[-1]["state"] == "failed"
    assert events[-1]["error"] == final["error"]
    # a failed job is finished: it can be deleted, and the daemon goes on
    r = c.delete(f"/v1/jobs/{job['id']}")
    assert r.status == 204, r
    ok = c.submit(tiny_spec(epochs=1))
    c.wait_state(ok["id"], "succeeded", daemon=d)


def test_repeated_kill9_with_top_k_and_save_last(traind_factory):
    """kill -9 right after each epoch_end (while the epoch's files and resume
    state are being written), three times: the files kept by save_top_k and
    save_last, the best per policy and every weight equal an uninterrupted run."""
    spec = tiny_spec(name="top-k", epochs=5, steps_per_epoch=12, threads=1, checkpoints=[
        {"filepath": "top-{epoch:02d}-{val_loss:.4f}.h5", "monitor": "val_loss", "mode": "min",
         "save_best_only": True, "save_top_k": 2, "save_last": True},
        {"filepath": "acc-{epoch:02d}.h5", "monitor": "val_accuracy", "mode": "max",
         "save_best_only": False, "save_weights_only": True, "save_top_k": 1},
    ])
    victim = traind_factory("victim")
    reference = traind_factory("reference")
    ref = reference.client.submit(spec)
    job = victim.client.submit(spec)
    for n in (1, 2, 3):
        wait_epochs(victim.client, job["id"], n, victim)
        victim.kill9()
        assert not terminal_on_disk(victim, job["id"])
        victim.start()
    final = victim.client.wait_state(job["id"], "succeeded", timeout=240, daemon=victim)
    final_ref = reference.client.wait_state(ref["id"], "succeeded", timeout=240,
                                            daemon=reference)
    vdir = os.path.join(victim.job_dir(job["id"]), "checkpoints")
    rdir = os.path.join(reference.job_dir(ref["id"]), "checkpoints")
    names = sorted(os.listdir(rdir))
    assert sorted(os.listdir(vdir)) == names
    assert sorted(f["name"] for f in final["checkpoints"]) == \
        sorted(f["name"] for f in final_ref["checkpoints"])
    assert len([n for n in names if n.startswith("top-")]) == 2
    assert len([n for n in names if n.startswith("acc-")]) == 1
    assert "last.h5" in names
    assert final["best"] == final_ref["best"]
    for name in names:
        got = all_datasets(os.path.join(vdir, name))
        want = all_datasets(os.path.join(rdir, name))
        assert sorted(got) == sorted(want), name
        for k in want:
            assert np.array_equal(got[k], want[k]), (name, k)


def wait_mid_epoch(c, jid, d, timeout=120):
    """Poll until the job is inside an epoch after the first: progress shows a
    batch of an epoch that has not ended yet."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.job(jid)
        p = job["progress"]
        if job["history"] and p["epoch"] > len(job["history"]) and p["batch"] > 0:
            return job
        assert job["state"] not in TERMINAL, job["state"]
        d.check_alive()
        time.sleep(0.01)  # poll interval
    raise AssertionError(f"job {jid} never seen mid-epoch\n{d.log_tail()}")


def test_kill9_mid_epoch_and_during_recovery(traind_factory):
    """kill -9 in the middle of an epoch, then again as soon as the restarted
    daemon answers (while it recovers the job), then after an epoch end:
    the final files still equal an uninterrupted run's bit for bit.  Epochs
    of 160 steps last several progress intervals (0.25 s) even on a fast idle
    machine, so a batch inside an epoch is seen before the job ends."""
    spec = tiny_spec(**dict(RESUME_SPEC, steps_per_epoch=160))
    victim = traind_factory("victim")
    reference = traind_factory("reference")
    ref = reference.client.submit(spec)
    job = victim.client.submit(spec)
    wait_mid_epoch(victim.client, job["id"], victim)
    victim.kill9()
    victim.start()
    victim.kill9()
    victim.start()
    wait_epochs(victim.client, job["id"], 3, victim)
    victim.kill9()
    victim.start()
    final = victim.client.wait_state(job["id"], "succeeded", timeout=240, daemon=victim)
    reference.client.wait_state(ref["id"], "succeeded", timeout=240, daemon=reference)
    vdir = os.path.join(victim.job_dir(job["id"]), "checkpoints")
    rdir = os.path.join(reference.job_dir(ref["id"]), "checkpoints")
    names = sorted(os.listdir(rdir))
    assert sorted(os.listdir(vdir)) == names
    assert len(final["history"]) == 4
    for name in names:
        got = all_datasets(os.path.join(vdir, name))
        want = all_datasets(os.path.join(rdir, name))
        assert sorted(got) == sorted(want), name
        for k in want:
            assert np.array_equal(got[k], want[k]), (name, k)


def disk_last_seq(d, jid):
    with open(os.path.join(d.job_dir(jid), "events.ndjson"), "rb") as f:
        data = f.read()
    # only complete lines count: a torn last line is cut off at restart
    data = data[:data.rfind(b"\n") + 1]
    events = parse_ndjson(data)
    return max(e["seq"] for e in events) if events else 0


def test_kill9_never_reuses_sequence_numbers(traind_factory):
    """Issue 9 item 1: a client that saw last_event (a progress event's number,
    not yet on disk) and reconnects with ?after=last_event after a kill -9 and
    restart must get the restarted daemon's events, the "state: running" one
    first; every number is unique and increasing across the crash."""
    d = traind_factory("seq")
    c = d.client
    spec = tiny_spec(name="seq", epochs=3, steps_per_epoch=300,
                     dataset={"name": "fashion-mnist"}, checkpoints=[])
    jid = c.submit(spec)["id"]
    deadline = time.monotonic() + 120
    seen = None
    while time.monotonic() < deadline:
        job = c.job(jid)
        assert job["state"] not in TERMINAL, job
        if job["state"] == "running" and job["last_event"] > disk_last_seq(d, jid):
            seen = job["last_event"]
            break
        time.sleep(0.02)  # poll interval; the loop waits for the condition
    assert seen is not None, "no event beyond the persisted ones was ever visible"
    d.kill9()
    d.start()
    c = d.client
    c.wait_state(jid, "running", timeout=60, daemon=d)
    _, tail = c.events(jid, f"?after={seen}", ndjson=True, timeout=180)
    kept = [e for e in tail if e.get("type") != "progress"]
    assert kept and kept[0]["type"] == "state" and kept[0]["state"] == "running", kept[:3]
    assert all(e["seq"] > seen for e in tail)
    _, everything = c.events(jid, "?after=0", ndjson=True, timeout=180)
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(set(seqs)), "sequence numbers unique and increasing"


def check_files_open(d, jid):
    """Every file under a final name opens: job.json parses, every complete
    events.ndjson line parses, every checkpoint and resume.h5 opens in h5py."""
    import json
    jdir = d.job_dir(jid)
    with open(os.path.join(jdir, "job.json")) as f:
        json.load(f)
    with open(os.path.join(jdir, "events.ndjson"), "rb") as f:
        data = f.read()
    parse_ndjson(data[:data.rfind(b"\n") + 1])
    names = [os.path.join(jdir, "resume.h5")] if os.path.exists(
        os.path.join(jdir, "resume.h5")) else []
    for root, _, files in os.walk(os.path.join(jdir, "checkpoints")):
        names += [os.path.join(root, n) for n in files if ".tmp" not in n]
    for path in names:
        with h5py.File(path, "r") as f:
            f.visit(lambda _: None)


def test_kill9_loop_at_random_moments(traind_factory):
    """Issue 9: 20 kill -9 at random moments (seeded, printed on failure) of a
    small job, each restart checked for files that do not open; then the
    job's final files equal an uninterrupted run's bit for bit and its
    sequence numbers never repeat."""
    import random
    seed = int(os.environ.get("TRAIND_KILL_SEED", "0")) or random.randrange(1, 1 << 30)
    rng = random.Random(seed)
    spec = tiny_spec(name="loop", epochs=10, steps_per_epoch=12, threads=1, checkpoints=[
        {"filepath": "w-{epoch:02d}.h5", "monitor": "val_loss", "save_best_only": False,
         "save_top_k": 2, "save_last": True}])
    victim = traind_factory("victim")
    reference = traind_factory("reference")
    ref = reference.client.submit(spec)
    jid = victim.client.submit(spec)["id"]
    running_kills = 0
    for k in range(20):
        # a random moment: while recovering, mid-epoch or mid-write
        time.sleep(rng.uniform(0, 0.4))  # the random kill moment itself, not a wait
        state = victim.client.job(jid)["state"]
        running_kills += state == "running"
        victim.kill9()
        check_files_open(victim, jid)
        assert state != "succeeded" or terminal_on_disk(victim, jid), (seed, k)
        victim.start()
    final = victim.client.wait_state(jid, "succeeded", timeout=300, daemon=victim)
    reference.client.wait_state(ref["id"], "succeeded", timeout=300, daemon=reference)
    check_files_open(victim, jid)
    vdir = os.path.join(victim.job_dir(jid), "checkpoints")
    rdir = os.path.join(reference.job_dir(ref["id"]), "checkpoints")
    names = sorted(os.listdir(rdir))
    assert sorted(os.listdir(vdir)) == names, seed
    assert len(final["history"]) == 10, (seed, final["history"])
    for name in names:
        got = all_datasets(os.path.join(vdir, name))
        want = all_datasets(os.path.join(rdir, name))
        assert sorted(got) == sorted(want), (seed, name)
        for key in want:
            assert np.array_equal(got[key], want[key]), (seed, name, key)
    _, events = victim.client.events(jid, "?after=0", ndjson=True)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), seed
    print(f"kill loop seed {seed}: {running_kills} of 20 kills while the job was running")
