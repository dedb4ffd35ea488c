#!/usr/bin/python3
"""daemon_vs_bench - the daemon's training speed against bench/train_bench.

Starts the real traind (temp state dir, free loopback port, `threads` per
job), submits the reference job (examples/fashion-minivggnet.json: MiniVGGNet,
SGD lr 0.01 decay 0.01/40 momentum 0.9 nesterov, batch 64) for one epoch of
--steps batches without checkpoints, waits for it and reads its "progress"
events; then runs train_bench with the same threads, batch and steps.
Alternates the two --repeats times (the machine may be shared: only runs side
by side count) and prints, per run and as medians in a final JSON line:

  daemon_images_per_s   the last progress event's images_per_s (what clients
                        see: the epoch's images over its training-step time)
  daemon_wall_images_per_s  images between the progress event at or after
                        batch --warmup and the last one, over the difference
                        of their "seconds" (epoch wall clock: includes event
                        emission, callbacks and everything else the job does)
  bench_images_per_s    train_bench's train_images_per_s (--warmup batches
                        not timed)
  ratio / wall_ratio    daemon / bench (the issue's bar: within 5 %)

    bench/daemon_vs_bench.py [--build build] [--repeats 3] [--steps 250]
                             [--warmup 20] [--threads 2]
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def run_daemon(traind, threads, steps, warmup, root):
    state = os.path.join(root, "state")
    conf = os.path.join(root, "traind.conf")
    with open(conf, "w") as f:
        f.write(f"[traind]\nstate_dir = {state}\nworkers = 1\nthreads = {threads}\n\n"
                f"[dataset.fashion-mnist]\nformat = idx\npath = {FASHION}\n")
    port = free_port()
    log = open(os.path.join(root, "traind.log"), "ab")
    proc = subprocess.Popen([traind, "--config", conf, "--listen", f"127.0.0.1:{port}",
                             "--state-dir", state], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"traind exited with {proc.returncode}")
            try:
                if request(port, "GET", "/v1/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("traind did not answer /v1/health")
            time.sleep(0.05)  # poll interval while the daemon starts
        with open(os.path.join(ROOT, "examples", "fashion-minivggnet.json")) as f:
            spec = json.load(f)
        spec.update({"name": "daemon-vs-bench", "epochs": 1, "steps_per_epoch": steps,
                     "validation_steps": 1, "threads": threads, "checkpoints": []})
        status, data = request(port, "POST", "/v1/jobs", spec)
        if status not in (200, 201, 202):
            raise RuntimeError(f"submit: HTTP {status} {data[:300]!r}")
        job = json.loads(data)["id"]
        # the progress events are live only (not in events.ndjson): follow the
        # job's event stream, one JSON per line, until its terminal state
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
        c.request("GET", f"/v1/jobs/{job}/events", headers={"Accept": "application/x-ndjson"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"events: HTTP {r.status}")
        progress, state_name = [], None
        for line in r:
            if not line.strip():
                continue
            ev = json.loads(line)
            if ev.get("type") == "progress":
                progress.append(ev)
            elif ev.get("type") == "state":
                state_name = ev.get("state")
        c.close()
        if state_name != "succeeded":
            raise RuntimeError(f"job {job} ended {state_name}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if not progress:
        raise RuntimeError("no progress events")
    last = progress[-1]
    first = next((p for p in progress if p["batch"] >= warmup), progress[0])
    wall = ((last["batch"] - first["batch"]) * spec["batch_size"] /
            (last["seconds"] - first["seconds"])) if last["seconds"] > first["seconds"] else 0.0
    return {"daemon_images_per_s": last["images_per_s"], "daemon_wall_images_per_s": round(wall, 1),
            "last_batch": last["batch"], "progress_events": len(progress)}


def run_bench(exe, threads, steps, warmup):
    p = subprocess.run([exe, "--data", "fashion", "--threads", str(threads), "--batch", "64",
                        "--steps", str(steps - warmup), "--warmup", str(warmup),
                        "--eval-batches", "0"], stdout=subprocess.PIPE, text=True, check=True)
    d = json.loads(p.stdout.strip().splitlines()[-1])
    return {"bench_images_per_s": d["train_images_per_s"], "kernels": d["kernels"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    traind = os.path.join(args.build, "daemon", "traind")
    bench = os.path.join(args.build, "bench", "train_bench")
    for exe in (traind, bench):
        if not os.path.exists(exe):
            print(f"{exe} missing: ninja -C {args.build} daemon/traind bench/train_bench",
                  file=sys.stderr)
            return 2
    runs = []
    for rep in range(args.repeats):
        res = {}
        order = ["daemon", "bench"] if rep % 2 == 0 else ["bench", "daemon"]
        for what in order:
            if what == "daemon":
                with tempfile.TemporaryDirectory(prefix="daemon-vs-bench-") as root:
                    res.update(run_daemon(traind, args.threads, args.steps, args.warmup, root))
            else:
                res.update(run_bench(bench, args.threads, args.steps, args.warmup))
        res["ratio"] = round(res["daemon_images_per_s"] / res["bench_images_per_s"], 3)
        res["wall_ratio"] = round(res["daemon_wall_images_per_s"] / res["bench_images_per_s"], 3)
        runs.append(res)
        print(f"run {rep + 1}: daemon {res['daemon_images_per_s']:.0f} images/s "
              f"(wall {res['daemon_wall_images_per_s']:.0f}), train_bench "
              f"{res['bench_images_per_s']:.0f}: ratio {res['ratio']:.3f} "
              f"(wall {res['wall_ratio']:.3f}) [{res['kernels']}]", flush=True)
    out = {"threads": args.threads, "batch": 64, "steps": args.steps, "repeats": args.repeats,
           "median_ratio": statistics.median(r["ratio"] for r in runs),
           "median_wall_ratio": statistics.median(r["wall_ratio"] for r in runs),
           "runs": runs}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
