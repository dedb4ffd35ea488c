# test_mpi.py - data-parallel training under mpirun on loopback (built with
# -Dmpi): the real binary as rank 0 (`traind run`, or the daemon) with worker
# ranks, checked against one process:
#   - R ranks x 1 thread end bit-identical to 1 process x R threads (2 ranks,
#     and 3 for an uneven split of the batch), MiniVGGNet with BN and Dropout,
#     and a functional graph (ResNet-20) on 2 ranks;
#   - 2 ranks x 2 threads: bit-identical run to run, within 1e-5 (relative,
#     per weight array) of 1 process x 1 thread after 20 steps (of a model
#     whose training is not chaotic in rounding, see plain());
#   - ReduceLROnPlateau lowering the rate on rank 0 mid-run: every rank
#     trains at rank 0's rate, the ranks' checksums agree and the weights
#     equal one process bit for bit;
#   - a rank whose data set differs fails the job naming /dataset;
#   - a data set uploaded to the daemon (PUT /v1/datasets) reaches the worker
#     rank from rank 0, is cached there by sha256 and sent only once, and
#     the job on it ends bit-identical to one process; the same for
#     `traind run`'s dataset.file;
#   - the daemon under mpirun: health shows the world, SIGKILL of a worker
#     rank mid-epoch ends the world, and after a restart the job ends with
#     weights bit-identical to an uninterrupted run with the same ranks;
#   - a job with several metrics (accuracy, TopKCategoricalAccuracy k=3,
#     mse) and a regression job on float targets (mse + mae) on 2 ranks x 1
#     thread log every training key equal to 1 process x 2 threads (and the
#     validation keys, computed by each rank alone, within 1e-6), with the
#     same weights bit for bit.

import gzip
import io
import os
import shutil
import signal
import subprocess
import time

import h5py
import numpy as np
import pytest

import runjob
from conftest import TERMINAL, Daemon, event_fields, fashion_dir, sha256_file, tiny_spec
from test_api_datasets import put
from test_api_regression import history, linear_set, npz_bytes, reg_spec

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe",
          "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]


def spec(model="minivggnet", threads=1, steps=5, epochs=2, **kw):
    s = {"name": "mpi", "model": model,
         "dataset": {"name": "fashion-mnist", "validation_split": 0.25, "limit": 512,
                     "validation_limit": 64},
         "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9,
                       "nesterov": True},
         "batch_size": 32, "epochs": epochs, "seed": 3, "steps_per_epoch": steps,
         "threads": threads, "checkpoints": [{"filepath": "last.hdf5"}]}
    s.update(kw)
    return s


def weights(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind == "f":
                out[name] = obj[()]
        f.visititems(visit)
    assert out
    return out


def run(tmp, name, job, ranks=1, config=None, extra=None):
    """`traind run` of job in tmp/name, under mpirun with `ranks` ranks when > 1.
    Returns (exit code, stderr, weights of last.hdf5 or None)."""
    path = runjob.write_job(str(tmp), job, name + ".json")
    job_dir = str(tmp / name)
    cmd = [runjob.traind_bin(), "run"]
    if config:
        cmd += ["--config", config]
    cmd += ["--dir", job_dir, path]
    if extra:
        cmd = MPIRUN + ["-np", "1"] + cmd + [":"] + extra
    elif ranks > 1:
        cmd = MPIRUN + ["-np", str(ranks)] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    last = os.path.join(job_dir, "checkpoints", "last.hdf5")
    return p.returncode, p.stderr, weights(last) if os.path.exists(last) else None


def assert_identical(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_equal_threads_bit_for_bit(tmp_path, ranks):
    code, err, single = run(tmp_path, "single", spec(threads=ranks))
    assert code == 0, err
    code, err, multi = run(tmp_path, "mpi", spec(threads=1), ranks=ranks)
    assert code == 0, err
    assert_identical(multi, single)


def test_functional_model_ranks_equal_threads_bit_for_bit(tmp_path):
    """A functional graph (the built-in ResNet-20: Add, fan-out, BN, GAP)
    over 2 ranks x 1 thread ends bit-identical to 1 process x 2 threads."""
    job = spec(model="resnet20", steps=2, epochs=1)
    code, err, single = run(tmp_path, "single", dict(job, threads=2))
    assert code == 0, err
    code, err, multi = run(tmp_path, "mpi", dict(job, threads=1), ranks=2)
    assert code == 0, err
    assert_identical(multi, single)


def test_reduce_lr_on_plateau_reaches_every_rank(tmp_path):
    """The callback runs on rank 0 only: its new rate (after epochs 1 and 2,
    min_delta 100 never sees an improvement) must reach rank 1 before epoch 3
    and 3 train, else the weights part and the epoch-end checksums fail."""
    cbs = {"reduce_lr_on_plateau": {"monitor": "loss", "min_delta": 100, "patience": 1,
                                    "factor": 0.5, "verbose": 1}}
    job = spec(epochs=3, callbacks=cbs)
    outs = {}
    for name, threads, ranks in (("single", 2, 1), ("mpi", 1, 2)):
        j = dict(job, threads=threads)
        path = runjob.write_job(str(tmp_path), j, name + ".json")
        cmd = [runjob.traind_bin(), "run", "--dir", str(tmp_path / name), path]
        if ranks > 1:
            cmd = MPIRUN + ["-np", str(ranks)] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        reductions = [l for l in p.stdout.splitlines() if "ReduceLROnPlateau reducing" in l]
        assert [l.split(":")[0] for l in reductions] == ["Epoch 2", "Epoch 3"], p.stdout
        outs[name] = (reductions,
                      weights(str(tmp_path / name / "checkpoints" / "last.hdf5")))
    assert outs["mpi"][0] == outs["single"][0]
    assert_identical(outs["mpi"][1], outs["single"][1])


def plain(threads):
    """20 steps of a model whose training is not chaotic in rounding: one
    process with 1 or 4 threads ends about 1.5e-7 apart (relative, per array),
    far from 1e-5.  (MiniVGGNet at these settings is chaotic: 1 and 4 threads
    of one process already differ by 3e-5 after one step, by 0.2 after six;
    there R ranks x 1 thread are checked bit for bit against R threads.)"""
    return spec(model="mlp", threads=threads, steps=10, epochs=2,
                optimizer={"name": "sgd", "learning_rate": 0.01})


def test_ranks_and_threads_close_to_one_process(tmp_path):
    job = plain(2)
    code, err, a = run(tmp_path, "a", job, ranks=2)
    assert code == 0, err
    code, err, b = run(tmp_path, "b", job, ranks=2)
    assert code == 0, err
    assert_identical(a, b)  # run to run
    code, err, one = run(tmp_path, "one", plain(1))
    assert code == 0, err
    assert a.keys() == one.keys()
    for k in a:
        scale = float(np.linalg.norm(one[k].astype(np.float64)))
        diff = float(np.linalg.norm(a[k].astype(np.float64) - one[k]))
        if scale == 0:
            assert diff == 0, k
        else:
            assert diff / scale <= 1e-5, (k, diff / scale)


def write_config(path, data_dir):
    with open(path, "w") as f:
        f.write(f"[dataset.fashion-mnist]\nformat = idx\npath = {data_dir}\n")


def test_data_that_differs_between_ranks_fails_the_job(tmp_path):
    same, other = tmp_path / "same", tmp_path / "other"
    os.makedirs(same)
    os.makedirs(other)
    for name in os.listdir(fashion_dir()):
        os.symlink(os.path.join(fashion_dir(), name), same / name)
        if name != "train-labels-idx1-ubyte.gz":
            os.symlink(os.path.join(fashion_dir(), name), other / name)
    with gzip.open(os.path.join(fashion_dir(), "train-labels-idx1-ubyte.gz")) as f:
        labels = bytearray(f.read())
    labels[8] = (labels[8] + 1) % 10  # the first example's label
    with gzip.open(other / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(bytes(labels))
    write_config(tmp_path / "same.conf", same)
    write_config(tmp_path / "other.conf", other)
    job = spec(model="shallownet")
    path = runjob.write_job(str(tmp_path), job, "w.json")
    worker = ["-np", "1", runjob.traind_bin(), "run", "--config", str(tmp_path / "other.conf"),
              "--dir", str(tmp_path / "w"), path]
    code, err, w = run(tmp_path, "diff", job, config=str(tmp_path / "same.conf"), extra=worker)
    assert code != 0
    assert "/dataset" in err and "differs between ranks" in err and "rank 1" in err, err
    assert w is None
    # the same two configurations over the same files train
    write_config(tmp_path / "other.conf", same)
    code, err, w = run(tmp_path, "same", job, config=str(tmp_path / "same.conf"), extra=worker)
    assert code == 0, err


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


def rank_pid(mpirun_pid, rank):
    for p in descendants(mpirun_pid):
        try:
            with open(f"/proc/{p}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
            return p
    return None


def wait_epochs(d, jid, n, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = d.client.job(jid)
        if len(job["history"]) >= n:
            return job
        assert job["state"] not in TERMINAL, job
        d.check_alive()
        time.sleep(0.02)  # poll interval
    raise AssertionError(f"job {jid} did not reach {n} epochs\n{d.log_tail()}")


def mpi_daemon(tmp_path, name, ranks=2):
    d = Daemon(tmp_path / name, launcher=MPIRUN + ["-np", str(ranks)])
    return d.start(timeout=120)


def test_daemon_worker_killed_mid_epoch_resumes_bit_identically(tmp_path):
    job = tiny_spec(name="mpi-kill", epochs=4, steps_per_epoch=12, threads=1,
                    checkpoints=[{"filepath": "last.hdf5"}])
    ref = mpi_daemon(tmp_path, "ref")
    try:
        health = ref.client.get("/v1/health").json()
        assert health["mpi"]["world_size"] == 2, health
        jid = ref.client.submit(job)["id"]
        done = ref.client.wait_state(jid, "succeeded", timeout=600, daemon=ref)
        assert done["mpi"]["ranks"] == 2, done
        assert done["mpi"]["collective_seconds_per_step"] >= 0, done
        ref_w = weights(os.path.join(ref.job_dir(jid), "checkpoints", "last.hdf5"))
    finally:
        ref.stop(timeout=60)

    d = mpi_daemon(tmp_path, "kill")
    jid = d.client.submit(job)["id"]
    wait_epochs(d, jid, 1)
    # inside epoch 2: some of its batches are done (progress), not all
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job_now = d.client.job(jid)
        if job_now.get("progress", {}).get("epoch") == 2 or len(job_now["history"]) >= 2:
            break
        time.sleep(0.01)  # poll interval
    worker = rank_pid(d.proc.pid, 1)
    assert worker, "rank 1 not found among mpirun's processes"
    os.kill(worker, signal.SIGKILL)
    code = d.proc.wait(timeout=120)
    d.proc = None
    assert code != 0, "one rank dying ends the MPI world"
    d.start(timeout=120)
    try:
        d.client.wait_state(jid, "succeeded", timeout=600, daemon=d)
        w = weights(os.path.join(d.job_dir(jid), "checkpoints", "last.hdf5"))
    finally:
        d.stop(timeout=60)
    assert_identical(w, ref_w)


def big_npz(n=6000, m=200):
    """An npz whose tensor file spans several of the 4 MiB pieces rank 0
    sends (6000 x 28 x 28 bytes of training images alone)."""
    rng = np.random.default_rng(11)
    buf = io.BytesIO()
    np.savez(buf, x_train=rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
             y_train=rng.integers(0, 10, n),
             x_test=rng.integers(0, 256, (m, 28, 28)).astype(np.uint8),
             y_test=rng.integers(0, 10, m))
    return buf.getvalue()


def uploaded_job(threads):
    return {"name": "byod-mpi", "dataset": {"name": "upl", "limit": 256, "validation_limit": 64},
            "model": "mlp", "optimizer": {"name": "sgd", "learning_rate": 0.01,
                                          "momentum": 0.9},
            "batch_size": 32, "epochs": 2, "seed": 4, "steps_per_epoch": 4,
            "threads": threads, "checkpoints": [{"filepath": "last.hdf5"}]}


def train_uploaded(d, body, threads):
    r = put(d.client, "upl", body)
    assert r.status == 201, r
    jid = d.client.submit(uploaded_job(threads))["id"]
    final = d.client.wait_state(jid, TERMINAL, timeout=600, daemon=d)
    assert final["state"] == "succeeded", final
    return final, weights(os.path.join(d.job_dir(jid), "checkpoints", "last.hdf5"))


def test_uploaded_dataset_reaches_worker_ranks(tmp_path):
    body = big_npz()
    one = Daemon(tmp_path / "one").start()
    try:
        _, ref = train_uploaded(one, body, threads=2)
    finally:
        one.stop(timeout=60)

    d = mpi_daemon(tmp_path, "mpi")
    try:
        final, got = train_uploaded(d, body, threads=1)
        assert final["mpi"]["ranks"] == 2, final
        metrics = d.client.get("/metrics").body.decode()
        assert "\ntraind_mpi_world_size 2\n" in metrics, metrics
        _, events = d.client.events(final["id"])
        ends = [event_fields(e) for e in events if e.get("event") == "epoch_end"]
        assert len(ends) == 2 and all(e["ranks"] == 2 for e in ends), ends
        assert all(e["collective_seconds_per_step"] > 0 for e in ends), ends
        # 2 ranks x 1 thread: the arithmetic of one process with 2 threads
        assert_identical(got, ref)
        # rank 1 holds rank 0's tensor file, under its sha256
        tensor = os.path.join(d.state_dir, "datasets", "upl", "data.tensor")
        sha = sha256_file(tensor)
        cached = os.path.join(d.state_dir, "mpi-cache", sha + ".tensor")
        assert os.path.getsize(tensor) > 4 << 20  # more than one piece
        assert sha256_file(cached) == sha
        assert not [n for n in os.listdir(os.path.dirname(cached)) if n.startswith(".")]
        ino = os.stat(cached).st_ino
        # a second job on it: taken from the cache, not sent again
        jid = d.client.submit(uploaded_job(1))["id"]
        again = d.client.wait_state(jid, TERMINAL, timeout=600, daemon=d)
        assert again["state"] == "succeeded", again
        assert os.stat(cached).st_ino == ino
        assert_identical(weights(os.path.join(d.job_dir(jid), "checkpoints", "last.hdf5")), ref)
        # a damaged cached copy (same size) is received again
        with open(cached, "r+b") as f:
            f.seek(-1, os.SEEK_END)
            last = f.read(1)
            f.seek(-1, os.SEEK_END)
            f.write(bytes([last[0] ^ 0xFF]))
        assert sha256_file(cached) != sha
        jid = d.client.submit(uploaded_job(1))["id"]
        again = d.client.wait_state(jid, TERMINAL, timeout=600, daemon=d)
        assert again["state"] == "succeeded", again
        assert sha256_file(cached) == sha and os.stat(cached).st_ino != ino
    finally:
        d.stop(timeout=60)


def test_run_dataset_file_reaches_worker_rank(tmp_path):
    npz = tmp_path / "small.npz"
    npz.write_bytes(big_npz(n=300, m=50))

    def job(threads):
        return {"name": "file", "dataset": {"file": str(npz), "validation_limit": 32},
                "model": "mlp", "optimizer": {"name": "sgd", "learning_rate": 0.01},
                "batch_size": 32, "epochs": 2, "seed": 1, "steps_per_epoch": 3,
                "threads": threads, "checkpoints": [{"filepath": "last.hdf5"}]}
    code, err, single = run(tmp_path, "single", job(2))
    assert code == 0, err
    code, err, multi = run(tmp_path, "mpi", job(1), ranks=2)
    assert code == 0, err
    assert_identical(multi, single)
    cache = tmp_path / "mpi-mpi-cache"
    assert [n for n in os.listdir(cache) if n.endswith(".tensor")], os.listdir(cache)


SEVERAL_METRICS = ["accuracy", {"class_name": "TopKCategoricalAccuracy", "config": {"k": 3}},
                   "mse"]


def test_several_metrics_and_regression_ranks_equal_threads(tmp_path):
    x, y = linear_set(256, 1)
    xt, yt = linear_set(64, 2)
    body = npz_bytes(x_train=x, y_train=y, x_test=xt, y_test=yt)
    jobs = {
        "metrics": tiny_spec(name="mpi-metrics", metrics=SEVERAL_METRICS, epochs=2,
                             steps_per_epoch=4, checkpoints=[{"filepath": "last.hdf5"}]),
        "regression": reg_spec(name="mpi-regression", epochs=2,
                               checkpoints=[{"filepath": "last.hdf5"}]),
    }
    keys = {"metrics": {"loss", "accuracy", "top_k_categorical_accuracy", "mse"},
            "regression": {"loss", "mae"}}
    out = {}
    for name, threads in (("one", 2), ("mpi", 1)):
        d = mpi_daemon(tmp_path, name) if name == "mpi" else Daemon(tmp_path / name).start()
        try:
            assert put(d.client, "lin", body).status == 201
            for kind, job in jobs.items():
                jid = d.client.submit(dict(job, threads=threads))["id"]
                final = d.client.wait_state(jid, TERMINAL, timeout=600, daemon=d)
                assert final["state"] == "succeeded", final
                assert final.get("mpi", {}).get("ranks", 1) == (2 if name == "mpi" else 1)
                out[name, kind] = (history(d.client, jid),
                                   weights(os.path.join(d.job_dir(jid), "checkpoints",
                                                        "last.hdf5")))
        finally:
            d.stop(timeout=60)
    for kind in jobs:
        (h1, w1), (h2, w2) = out["one", kind], out["mpi", kind]
        want = keys[kind] | {"val_" + k for k in keys[kind]}
        assert len(h1) == len(h2) == 2 and all(want <= set(h) and want <= set(h2[0]) for h in h1)
        for a, b in zip(h1, h2):
            for k in sorted(keys[kind]):
                # the training sums are the collective's: bit for bit
                assert b[k] == a[k], (kind, k, a, b)
                # validation runs on every rank alone with its own threads (1
                # here, 2 in the reference): the same values up to the order
                # of the float sums, far inside 1e-6
                assert b["val_" + k] == pytest.approx(a["val_" + k], rel=1e-6), (kind, k, a, b)
        assert_identical(w2, w1)
