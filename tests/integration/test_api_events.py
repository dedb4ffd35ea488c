# test_api_events.py - GET /v1/jobs/{id}/events: Server-Sent Events framing
# (id = sequence number, event = type, data = JSON), replay with
# Last-Event-ID and ?after=N, the stream ending after the terminal state,
# NDJSON with Accept: application/x-ndjson, the checkpoint events' Keras
# verbose lines, and many concurrent subscribers on a live job.

import math
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import (TERMINAL, assert_error, event_fields, parse_ndjson, parse_sse,
                      sha256_file, tiny_spec, long_spec)

KNOWN_TYPES = {"state", "progress", "epoch_end", "checkpoint", "checkpoint_error",
               "early_stopping", "lr_changed", "terminate_on_nan"}


@pytest.fixture(scope="module")
def done(module_traind):
    c = module_traind.client
    job = c.submit(tiny_spec(name="events", epochs=3))
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    return job["id"]


def curl_events(d, job_id, query="", headers=(), timeout=60):
    """The event stream through curl -N; returns (response headers, body bytes)."""
    cmd = ["curl", "-sS", "-N", "--max-time", str(timeout), "-D", "-",
           f"{d.client.base}/v1/jobs/{job_id}/events{query}"]
    for h in headers:
        cmd += ["-H", h]
    if d.token:
        cmd += ["-H", f"Authorization: Bearer {d.token}"]
    out = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
    assert out.returncode == 0, (out.returncode, out.stderr)
    head, _, body = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    assert status == 200, out.stdout[:500]
    return hdrs, body


def persisted(frames):
    return [f for f in frames if f.get("event") != "progress"]


def test_sse_framing_and_content(module_traind, done):
    hdrs, body = curl_events(module_traind, done, "?after=0")
    assert hdrs["content-type"].startswith("text/event-stream")
    assert "no-cache" in hdrs.get("cache-control", "")
    frames = parse_sse(body)
    assert frames
    for f in frames:
        assert f.get("event") in KNOWN_TYPES, f
        assert isinstance(f["data"], dict), f
    ids = [int(f["id"]) for f in persisted(frames)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    assert ids[0] >= 1
    states = [event_fields(f)["state"] for f in frames if f["event"] == "state"]
    assert states[0] == "queued" and "running" in states and states[-1] == "succeeded", states
    assert frames[-1]["event"] == "state", "the stream ends after the terminal state"
    epochs = [event_fields(f) for f in frames if f["event"] == "epoch_end"]
    assert len(epochs) == 3
    for e in epochs:
        for k in ("epoch", "logs", "lr", "seconds"):
            assert k in e, e
        assert set(e["logs"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}


def fmt5(v):
    if v is None or (isinstance(v, float) and math.isinf(v)) or v in ("inf", "Infinity"):
        return "inf"
    return f"{v:.5f}"


def test_checkpoint_events_are_keras_lines(module_traind, done):
    _, body = curl_events(module_traind, done, "?after=0")
    frames = parse_sse(body)
    val_loss = [event_fields(f)["logs"]["val_loss"] for f in frames if f["event"] == "epoch_end"]
    cks = [event_fields(f) for f in frames if f["event"] == "checkpoint"]
    assert len(cks) == len(val_loss) == 3
    best = math.inf
    ckdir = os.path.join(module_traind.job_dir(done), "checkpoints")
    for i, (ck, v) in enumerate(zip(cks, val_loss)):
        epoch = i + 1
        assert ck["policy"] == 0 and ck["monitor"] == "val_loss", ck
        assert ck["epoch"] in (epoch, epoch - 1), ck
        assert ck["value"] == pytest.approx(v, rel=1e-12)
        if v < best:
            name = f"weights-{epoch:03d}-{v:.4f}.hdf5"
            assert ck["decision"] == "improved", ck
            assert ck["message"] == (f"Epoch {epoch}: val_loss improved from {fmt5(best)} "
                                     f"to {v:.5f}, saving model to {name}")
            assert ck["file"] == name
            path = os.path.join(ckdir, name)
            assert ck["bytes"] == os.path.getsize(path)
            assert ck["sha256"] == sha256_file(path)
            best = v
        else:
            assert ck["decision"] == "not_improved", ck
            assert ck["message"] == f"Epoch {epoch}: val_loss did not improve from {best:.5f}"


def test_replay_from_last_event_id_and_after(module_traind, done):
    _, body = curl_events(module_traind, done, "?after=0")
    full = persisted(parse_sse(body))
    k = int(full[2]["id"])
    expect = [(f["id"], f["event"], f["data"]) for f in full if int(f["id"]) > k]
    _, body = curl_events(module_traind, done, headers=[f"Last-Event-ID: {k}"])
    got = [(f["id"], f["event"], f["data"]) for f in persisted(parse_sse(body))]
    assert got == expect
    _, body = curl_events(module_traind, done, f"?after={k}")
    got = [(f["id"], f["event"], f["data"]) for f in persisted(parse_sse(body))]
    assert got == expect
    # after the last event of a finished job: nothing more, and the stream ends
    last = int(full[-1]["id"])
    _, body = curl_events(module_traind, done, f"?after={last}")
    assert persisted(parse_sse(body)) == []


@pytest.mark.parametrize("query", ["?after=abc", "?after=-1", "?after=1e3"])
def test_bad_after_is_400(module_traind, done, query):
    r = module_traind.client.get(f"/v1/jobs/{done}/events{query}")
    assert_error(r, 400)


def test_ndjson_matches_sse(module_traind, done):
    c = module_traind.client
    r, lines = c.events(done, "?after=0", ndjson=True)
    assert r.headers["Content-Type"].startswith("application/x-ndjson")
    _, body = curl_events(module_traind, done, "?after=0")
    sse = persisted(parse_sse(body))
    nd = [e for e in lines if e.get("type") != "progress"]
    assert [e["seq"] for e in nd] == [int(f["id"]) for f in sse]
    assert [e["type"] for e in nd] == [f["event"] for f in sse]
    for e, f in zip(nd, sse):
        for k, v in f["data"].items():
            if k in ("seq", "type"):
                continue
            assert event_fields(e).get(k, e.get(k)) == v, (e, f)
    k = nd[1]["seq"]
    _, tail = c.events(done, f"?after={k}", ndjson=True)
    assert [e["seq"] for e in tail if e.get("type") != "progress"] == \
        [e["seq"] for e in nd if e["seq"] > k]


def test_events_match_events_file_on_disk(module_traind, done):
    path = os.path.join(module_traind.job_dir(done), "events.ndjson")
    with open(path, "rb") as f:
        on_disk = parse_ndjson(f.read())
    _, lines = module_traind.client.events(done, "?after=0", ndjson=True)
    assert [e["seq"] for e in on_disk] == [e["seq"] for e in lines if e.get("type") != "progress"]


def test_live_stream_ends_after_terminal_state(traind):
    c = traind.client
    job = c.submit(tiny_spec(name="live", epochs=2, steps_per_epoch=6))
    proc = subprocess.Popen(["curl", "-sS", "-N", "--max-time", "120",
                             f"{c.base}/v1/jobs/{job['id']}/events?after=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=130)
    assert proc.returncode == 0, err
    frames = parse_sse(out)
    assert frames[-1]["event"] == "state"
    assert event_fields(frames[-1])["state"] == "succeeded"
    assert c.job(job["id"])["state"] == "succeeded"
    for f in frames:
        if f["event"] == "progress":
            p = event_fields(f)
            assert 1 <= p["batch"] <= p["batches"] == 6, p


def read_stream(port, path, results, i):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/x-ndjson\r\n"
                  f"Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            part = s.recv(65536)
            if not part:
                break
            data += part
        results[i] = data
    except OSError as e:
        results[i] = e
    finally:
        s.close()


def test_many_subscribers_and_cancel_end_streams(traind):
    c = traind.client
    job = c.submit(long_spec())
    c.wait_state(job["id"], "running", daemon=traind)
    n = 64
    results = [None] * n
    threads = [threading.Thread(target=read_stream,
                                args=(traind.port, f"/v1/jobs/{job['id']}/events?after=0",
                                      results, i)) for i in range(n)]
    for t in threads:
        t.start()
    assert c.get("/v1/health").status == 200
    r = c.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status in (200, 202), r
    for t in threads:
        t.join(timeout=150)
        assert not t.is_alive(), "a subscriber stream did not end after the terminal state"
    for data in results:
        assert isinstance(data, bytes), data
        head, _, body = data.partition(b"\r\n\r\n")
        assert b" 200 " in head.split(b"\r\n")[0]
        if b"chunked" in head.lower():
            body = dechunk(body)
        events = parse_ndjson(body)
        last = events[-1]
        assert last["type"] == "state" and event_fields(last)["state"] == "cancelled", last
    assert c.job(job["id"])["state"] in TERMINAL


def body_complete(data):
    """True when a response with a chunked body has received its last chunk."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or b"chunked" not in head.lower():
        return False
    while True:
        size_line, sep, rest = body.partition(b"\r\n")
        if not sep:
            return False
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return rest.startswith(b"\r\n")
        if len(rest) < size + 2:
            return False
        body = rest[size + 2:]


def dechunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def test_early_stopping_event_and_end(module_traind):
    """Keras EarlyStopping: with min_delta 100 only the first epoch improves;
    patience 1 stops training after epoch 2 of 10."""
    c = module_traind.client
    job = c.submit(tiny_spec(name="es", epochs=10, callbacks={
        "early_stopping": {"monitor": "val_loss", "patience": 1, "min_delta": 100}}))
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    assert len(final["history"]) == 2
    _, events = c.events(job["id"], "?after=0", ndjson=True)
    es = [e for e in events if e["type"] == "early_stopping"]
    assert len(es) == 1, [e["type"] for e in events]
    assert events[-1]["type"] == "state" and events[-1]["state"] == "succeeded"



def proc_threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def test_hundreds_of_subscribers_need_no_threads(traind):
    """Streams are suspended connections, not threads: 600 open subscribers
    (from 3 loopback addresses, under the per-IP limit) add no thread, the
    job keeps training, and every stream ends after the terminal state."""
    import selectors
    c = traind.client
    job = c.submit(long_spec())
    c.wait_state(job["id"], "running", daemon=traind)
    before = proc_threads(traind.proc.pid)
    socks = []
    try:
        for i in range(600):
            s = socket.socket()
            s.bind((f"127.0.0.{2 + i % 3}", 0))
            s.connect(("127.0.0.1", traind.port))
            s.sendall(f"GET /v1/jobs/{job['id']}/events HTTP/1.1\r\nHost: x\r\n"
                      "Accept: application/x-ndjson\r\n\r\n".encode())
            s.setblocking(False)
            socks.append(s)
        sel = selectors.DefaultSelector()
        data = {}
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
            data[s] = b""
        # every subscriber gets its response head and the replayed events
        deadline = time.monotonic() + 60
        pending = set(socks)
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                part = key.fileobj.recv(65536)
                data[key.fileobj] += part
                if b'"running"' in data[key.fileobj]:
                    pending.discard(key.fileobj)
        assert not pending, f"{len(pending)} subscribers got nothing"
        assert proc_threads(traind.proc.pid) <= before + 2
        p0 = c.job(job["id"])["progress"]
        deadline = time.monotonic() + 60
        while c.job(job["id"])["progress"] == p0:
            assert time.monotonic() < deadline, "training stalled with 600 subscribers"
            time.sleep(0.05)  # poll interval
        assert c.get("/v1/health").status == 200
        assert c.post(f"/v1/jobs/{job['id']}/cancel").status == 200
        # all streams end after the terminal state: the chunked body is
        # terminated (the connection may stay open for the next request)
        open_socks = set(socks)
        deadline = time.monotonic() + 60
        while open_socks and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                try:
                    part = key.fileobj.recv(65536)
                except ConnectionResetError:
                    part = b""
                data[key.fileobj] += part
                if not part or body_complete(data[key.fileobj]):
                    sel.unregister(key.fileobj)
                    open_socks.discard(key.fileobj)
        assert not open_socks, f"{len(open_socks)} streams still open after the job ended"
        for s in socks:
            assert b'"cancelled"' in data[s]
    finally:
        for s in socks:
            s.close()
