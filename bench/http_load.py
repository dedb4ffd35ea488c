#!/usr/bin/python3
# http_load.py - HTTP load benchmark: does polling the API slow training?
#
# Starts traind (temp state dir, free loopback port), submits a MiniVGGNet /
# Fashion-MNIST job with long epochs, measures the training rate (images/s,
# from the batch counter and server timestamps of the job's progress events)
# over a window without HTTP load, then runs
#   wrk -t2 -c32 -d10s --latency http://127.0.0.1:PORT/v1/jobs/ID
# and measures the rate over the load window, then once more without load.
# Prints wrk's requests/s and p99 latency, both rates and the slowdown, the
# last line as one JSON object.  Stops everything it started; every wait has
# a deadline.
#
# usage: bench/http_load.py [--traind PATH] [--duration S] [--threads N]
#                           [--token] [--model minivggnet]

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, port, token):
        self.base = f"http://127.0.0.1:{port}"
        self.token = token
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None, timeout=10):
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=headers,
                                     method=method)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


class ProgressLog(threading.Thread):
    """Reads the job's NDJSON event stream and keeps (server time, global
    batch) of every progress event: rates come from the server's own
    timestamps, so the client's request latency under load does not count."""

    def __init__(self, api, job_id):
        super().__init__(daemon=True)
        self.api, self.job_id = api, job_id
        self.points = []
        self.lock = threading.Lock()

    def run(self):
        headers = {"Accept": "application/x-ndjson"}
        if self.api.token:
            headers["Authorization"] = f"Bearer {self.api.token}"
        req = urllib.request.Request(f"{self.api.base}/v1/jobs/{self.job_id}/events",
                                     headers=headers)
        try:
            with self.api.opener.open(req, timeout=600) as r:
                for line in r:
                    e = json.loads(line)
                    if e.get("type") != "progress":
                        continue
                    t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
                    t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
                    g = (int(e["epoch"]) - 1) * int(e["batches"]) + int(e["batch"])
                    with self.lock:
                        self.points.append((t, g))
        except (OSError, ValueError):
            pass

    def rate(self, t0, t1, batch_size):
        """Images/s between the first and last progress event inside [t0, t1]."""
        with self.lock:
            inside = [p for p in self.points if t0 <= p[0] <= t1]
        if len(inside) < 2:
            raise RuntimeError(f"fewer than 2 progress events in a {t1 - t0:.1f} s window")
        (ta, ga), (tb, gb) = inside[0], inside[-1]
        return (gb - ga) * batch_size / (tb - ta)


def idle_window(seconds):
    """Let the job train undisturbed for `seconds`; returns the wall-clock window."""
    t0 = time.time()
    time.sleep(seconds)  # the measurement window itself, not a wait for a condition
    return t0, time.time()


def parse_wrk(text):
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
    m = re.search(r"^\s*99%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors:.*", text)
    return rps, float(m.group(1)) * scale, int(errors.group(1)) if errors else 0, \
        sock.group(0) if sock else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--traind", default=os.environ.get(
        "TRAIND_BIN", os.path.join(ROOT, "build-it", "daemon", "traind")))
    ap.add_argument("--duration", type=int, default=10, help="seconds per window")
    ap.add_argument("--threads", type=int, default=1, help="compute threads of the job")
    ap.add_argument("--model", default="minivggnet")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--token", action="store_true", help="run with a bearer token")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="traind-bench-")
    proc = None
    api = None
    job_id = None
    try:
        token = "bench-" + os.urandom(12).hex() if args.token else None
        conf = os.path.join(tmp, "traind.conf")
        with open(conf, "w") as f:
            f.write(f"[traind]\nstate_dir = {tmp}/state\nworkers = 1\n"
                    f"threads = {args.threads}\n")
            if token:
                with open(os.path.join(tmp, "token"), "w") as t:
                    t.write(token + "\n")
                f.write(f"token_file = {tmp}/token\n")
            f.write("[dataset.fashion-mnist]\nformat = idx\n"
                    "path = /usr/share/datasets/fashion-mnist\n")
        port = free_port()
        log = open(os.path.join(tmp, "traind.log"), "wb")
        proc = subprocess.Popen([args.traind, "--config", conf, "--listen",
                                 f"127.0.0.1:{port}", "--state-dir", f"{tmp}/state"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        api = Api(port, token)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"traind exited with {proc.returncode}")
            try:
                if api.call("GET", "/v1/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("traind did not answer /v1/health within 30 s")
            time.sleep(0.05)  # poll interval

        spec = {"name": "http-load", "dataset": {"name": "fashion-mnist",
                                                  "validation_limit": 256},
                "model": args.model, "batch_size": args.batch_size, "epochs": 2, "seed": 1,
                "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9,
                              "nesterov": True},
                "checkpoints": []}
        status, job = api.call("POST", "/v1/jobs", spec)
        if status != 201:
            raise RuntimeError(f"submit failed: {status} {job}")
        job_id = job["id"]
        # wait until training has started and reported progress
        deadline = time.monotonic() + 120
        while True:
            _, job = api.call("GET", f"/v1/jobs/{job_id}")
            if job["state"] == "running" and job.get("progress", {}).get("batch"):
                break
            if job["state"] not in ("queued", "running") or time.monotonic() > deadline:
                raise RuntimeError(f"job did not start: {job['state']} {job.get('error')}")
            time.sleep(0.1)  # poll interval

        log = ProgressLog(api, job_id)
        log.start()
        w1 = idle_window(args.duration)
        url = f"{api.base}/v1/jobs/{job_id}"
        cmd = ["wrk", "-t2", "-c32", f"-d{args.duration}s", "--latency", url]
        if token:
            cmd[1:1] = ["-H", f"Authorization: Bearer {token}"]
        t0 = time.time()
        wrk = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 30)
        t1 = time.time()
        if wrk.returncode != 0:
            raise RuntimeError(f"wrk failed: {wrk.stderr}")
        w2 = idle_window(args.duration)
        _, job = api.call("GET", f"/v1/jobs/{job_id}")
        if job["state"] != "running" or len(job["history"]) > 0:
            raise RuntimeError("the first epoch ended inside the windows (validation time "
                               "would count): use a slower model or a shorter --duration")
        idle1 = log.rate(*w1, args.batch_size)
        loaded = log.rate(t0, t1, args.batch_size)
        idle2 = log.rate(*w2, args.batch_size)
        rps, p99, non2xx, sock = parse_wrk(wrk.stdout)
        idle = (idle1 + idle2) / 2
        print(wrk.stdout.rstrip())
        print(f"training without load: {idle1:.1f} and {idle2:.1f} images/s")
        print(f"training under load:   {loaded:.1f} images/s")
        result = {"requests_per_s": round(rps, 1), "p99_ms": round(p99, 3),
                  "non_2xx": non2xx, "socket_errors": sock,
                  "images_per_s_idle": round(idle, 1), "images_per_s_load": round(loaded, 1),
                  "slowdown_pct": round(100.0 * (idle - loaded) / idle, 2),
                  "model": args.model, "threads": args.threads, "window_s": args.duration,
                  "loadavg_1m": os.getloadavg()[0], "cpus": os.cpu_count()}
        print(json.dumps(result))
        return 0
    finally:
        if api and job_id and proc and proc.poll() is None:
            try:
                api.call("POST", f"/v1/jobs/{job_id}/cancel")
            except OSError:
                pass
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
