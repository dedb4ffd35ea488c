#!/usr/bin/python3
"""dataset_rss.py - memory of traind with uploaded data sets (a benchmark, not a test).

  bench/dataset_rss.py train N [float32]
                                    N-image synthetic 28x28 npz (uint8, or float32 = the uint8
                                    values * float32(1/255)); `traind run` on it (import + 300
                                    training steps, then again from the cached tensor file);
                                    peak VmHWM / RssAnon / RssFile of the process
  bench/dataset_rss.py upload GIB   an npz of about GIB GiB; a daemon receives it with
                                    PUT /v1/datasets/big (curl -T); its peak RSS while the body
                                    streams in and is imported

Memory is sampled from /proc/PID/status every 50 ms.  RssFile counts the tensor file's pages
that the mapping touched: page cache, shared and reclaimable; RssAnon is the process's own.
Set TRAIND (default build/daemon/traind) and WORK (default a temp folder)."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIND = os.environ.get("TRAIND", os.path.join(ROOT, "build", "daemon", "traind"))
KEYS = ("VmHWM", "VmRSS", "RssAnon", "RssFile")


def synthetic_npz(path, n, m, dtype="uint8"):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, n + m).astype(np.uint8)
    x = np.empty((n + m, 28, 28), dtype)
    for s in range(0, n + m, 50000):
        e = min(n + m, s + 50000)
        v = (rng.integers(0, 60, (e - s, 28, 28)) + y[s:e, None, None] * 20).astype(np.uint8)
        x[s:e] = v if dtype == "uint8" else v.astype(np.float32) * np.float32(1.0 / 255.0)
    np.savez(path, x_train=x[:n], y_train=y[:n], x_test=x[n:], y_test=y[n:])


def status(pid):
    v = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k = line.split(":")[0]
            if k in KEYS:
                v[k] = int(line.split()[1])
    return v


def watch(proc, pid=None, until=None):
    """Peak of each key while proc (or until()) runs."""
    pid = pid or proc.pid
    peak = {k: 0 for k in KEYS}
    while (until() if until else proc.poll() is None):
        try:
            for k, v in status(pid).items():
                peak[k] = max(peak[k], v)
        except FileNotFoundError:
            break
        time.sleep(0.05)
    return peak


def mib(d):
    return ", ".join(f"{k} {v / 1024:.1f} MiB" for k, v in d.items())


def train(n, work, dtype):
    src = os.path.join(work, f"syn{n}-{dtype}.npz")
    synthetic_npz(src, n, n // 6, dtype)
    job = os.path.join(work, "job.json")
    with open(job, "w") as f:
        json.dump({"dataset": {"file": src}, "model": "mlp", "optimizer": "adam",
                   "batch_size": 128, "epochs": 1, "seed": 1, "threads": 2,
                   "steps_per_epoch": 300, "validation_steps": 20}, f)
    for label in ("import + train", "train (cached tensor file)"):
        run_dir = os.path.join(work, f"run-{n}-{dtype}-{label[0]}")
        t0 = time.time()
        p = subprocess.Popen([TRAIND, "run", "--dir", run_dir, job], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        peak = watch(p)
        print(f"{n} {dtype} images, {label}: {mib(peak)}; {time.time() - t0:.1f} s, exit {p.returncode}")


def upload(gib, work):
    n = int(gib * (1 << 30) / 784) + 1
    src = os.path.join(work, "big.npz")
    synthetic_npz(src, n - n // 13, n // 13)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    d = subprocess.Popen([TRAIND, "--listen", f"127.0.0.1:{port}", "--state-dir",
                          os.path.join(work, "state")], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        while subprocess.run(["curl", "-sf", f"http://127.0.0.1:{port}/v1/health"],
                             capture_output=True).returncode != 0:
            time.sleep(0.05)
        before = status(d.pid)
        t0 = time.time()
        c = subprocess.Popen(["curl", "-sS", "-T", src, "-H",
                              "Content-Type: application/octet-stream",
                              f"http://127.0.0.1:{port}/v1/datasets/big"],
                             stdout=subprocess.PIPE)
        peak = watch(c, pid=d.pid, until=lambda: c.poll() is None)
        body = json.loads(c.stdout.read())
        print(f"upload of {os.path.getsize(src) / (1 << 30):.2f} GiB ({body.get('train')} + "
              f"{body.get('test')} images): before {mib(before)}; peak {mib(peak)}; "
              f"{time.time() - t0:.1f} s")
    finally:
        d.terminate()
        d.wait()


def main():
    if (len(sys.argv) not in (3, 4) or sys.argv[1] not in ("train", "upload") or
            (len(sys.argv) == 4 and (sys.argv[1] != "train" or
                                     sys.argv[3] not in ("uint8", "float32")))):
        sys.exit(__doc__)
    work = os.environ.get("WORK") or tempfile.mkdtemp(prefix="traind-rss-")
    if sys.argv[1] == "train":
        train(int(sys.argv[2]), work, sys.argv[3] if len(sys.argv) == 4 else "uint8")
    else:
        upload(float(sys.argv[2]), work)


if __name__ == "__main__":
    main()
