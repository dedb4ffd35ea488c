# test_api_reliability.py - what an adversarial client or a hostile
# environment does to the daemon (issue 9): a state dir on a full file
# system, a URL with a thousand query parameters, malformed HTTP, a client
# that half-closes inside its body.  Every case gets a JSON answer or a
# closed connection at once, and the daemon keeps serving.

import contextlib
import os
import socket
import subprocess
import time

import pytest

from conftest import assert_error, parse_raw, tiny_spec


@contextlib.contextmanager
def small_tmpfs(path, size="16m"):
    """A tmpfs of the given size at path (needs root; skips otherwise)."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=False)


def fill(path):
    """Write into path until the file system refuses with ENOSPC."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\0" * 65536
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as e:
                if e.errno != 28:  # ENOSPC
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[:len(chunk) // 2]
    finally:
        os.close(fd)
    return filler


def start_on(traind_factory, name, mnt):
    """A daemon whose state dir is on the file system mounted at mnt."""
    d = traind_factory(name, start=False)
    d.state_dir = os.path.join(mnt, "state")
    return d.start()


def test_full_disk_at_submit_is_507_and_leaves_nothing(traind_factory, tmp_path):
    with small_tmpfs(str(tmp_path / "small")) as mnt:
        d = start_on(traind_factory, "full", mnt)
        try:
            c = d.client
            jobs_dir = os.path.join(d.state_dir, "jobs")
            before = set(os.listdir(jobs_dir))
            filler = fill(mnt)
            r = c.post("/v1/jobs", tiny_spec())
            err = assert_error(r, 507, code="insufficient_storage")
            assert "no space left on device" in err["message"].lower(), err
            assert set(os.listdir(jobs_dir)) == before, "a refused job leaves nothing behind"
            assert c.list_jobs() == []
            os.unlink(filler)
            j = c.submit(tiny_spec())
            c.wait_state(j["id"], "succeeded", daemon=d)
        finally:
            d.stop()


def exchange(port, data, timeout=30, shut_wr=False):
    """Send data, read until the server closes; returns the bytes read.  The
    daemons here have connection_timeout = 300, so a reply (or a close)
    within timeout means the server answered by itself, not by timing out."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


SLOW = "connection_timeout = 300\n"


@pytest.fixture
def patient(traind_factory):
    """A daemon that would wait 300 s on a stuck connection."""
    return traind_factory("patient", extra_config=SLOW)


def test_thousand_query_parameters_get_a_json_answer(patient):
    query = "&".join(f"a{i}=b" for i in range(1000))
    assert 3500 < len(query) < 8000
    req = f"GET /v1/jobs?{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    status, hdrs, body = parse_raw(exchange(patient.port, req))
    assert status == 414, (status, body[:200])
    assert hdrs["content-type"].startswith("application/json")
    import json
    assert json.loads(body)["error"]["code"] == "uri_too_long"
    assert patient.client.get("/v1/health").status == 200


def test_query_too_big_for_memory_is_closed_at_once(patient):
    query = "&".join(f"a{i}" for i in range(12000))
    req = f"GET /v1/jobs?{query} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    data = exchange(patient.port, req)  # returns when the server closes
    if data:
        status, _, _ = parse_raw(data)
        assert status in (414, 431), data[:200]
    assert patient.client.get("/v1/health").status == 200


def test_a_few_query_parameters_still_work(patient):
    assert patient.client.get("/v1/jobs?state=running&x=1").status == 200


def json_error(data, status, code):
    got, hdrs, body = parse_raw(data)
    assert got == status, data[:300]
    assert hdrs.get("content-type", "").startswith("application/json"), data[:300]
    import json
    err = json.loads(body)["error"]
    assert err["code"] == code and err["message"], err
    return err


@pytest.mark.parametrize("req,status,code", [
    (b"GET /v1/health HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n",
     505, "http_version_not_supported"),
    (b"GET /v1/jobs HTTP/1.1\r\nConnection: close\r\n\r\n", 400, "invalid_request"),
    (b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: " + b"a" * 20000 +
     b"\r\n\r\n", 431, "header_too_large"),
    (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 2\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n{}", 431, "header_too_large"),
], ids=["http-1.2", "no-host", "big-header-get", "big-header-post"])
def test_malformed_http_gets_json_error(patient, req, status, code):
    json_error(exchange(patient.port, req), status, code)
    assert patient.client.get("/v1/health").status == 200


def test_job_error_does_not_repeat_its_prefix(traind_factory, tmp_path):
    with small_tmpfs(str(tmp_path / "small")) as mnt:
        d = start_on(traind_factory, "fills", mnt)
        try:
            c = d.client
            j = c.submit(tiny_spec(name="fills", epochs=10000, steps_per_epoch=4, checkpoints=[]))
            c.wait_state(j["id"], "running", daemon=d)
            fill(mnt)
            final = c.wait_state(j["id"], "failed", timeout=120, daemon=d)
            err = final["error"]
            assert "no space left on device" in err.lower(), err
            parts = [p.strip() for p in err.split(":")]
            assert all(a != b for a, b in zip(parts, parts[1:])), f"repeated prefix: {err}"
        finally:
            d.stop()


def test_half_closed_partial_body_is_closed_at_once(traind_factory):
    """Issue 9 item 7: a client that sends part of a body and shuts down its
    side gets its connection closed (or an answer) at once; such connections
    do not count against max_connections_per_ip afterwards."""
    d = traind_factory("halfclose", extra_config=SLOW + "max_connections_per_ip = 2\n")
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    for _ in range(3):
        data = exchange(d.port, head + b'{"name": "x"', shut_wr=True)
        if data:
            status, _, _ = parse_raw(data)
            assert status == 400, data[:300]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if d.client.get("/v1/health", timeout=5).status == 200:
                break
        time.sleep(0.05)  # poll interval: wait for the server to serve again
    assert d.client.get("/v1/jobs").status == 200
