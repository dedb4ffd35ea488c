# test_api_limits.py - the configured limits and the process around the API:
# SSE heartbeat comments on an idle stream, 503 when the queue is full, the
# body limit from the config, oversized headers, the per-IP connection
# limit, SIGTERM ending open streams with exit 0, and start-up refusing a bad
# config or an unusable state dir with a message naming the key or path.

import signal
import socket
import subprocess
import time

import pytest

from conftest import Daemon, assert_error, long_spec, start_expect_failure, tiny_spec, traind_bin


def read_until(sock, needle, timeout):
    """Read from sock until needle appears or timeout; returns what was read."""
    deadline = time.monotonic() + timeout
    data = b""
    while needle not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            part = sock.recv(65536)
        except socket.timeout:
            break
        if not part:
            break
        data += part
    return data


def open_stream(port, path, accept="text/event-stream"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\n\r\n".encode())
    return s


def test_idle_stream_gets_heartbeat_comments(traind_factory):
    d = traind_factory("hb", extra_config="heartbeat_interval = 1\n")
    c = d.client
    running = c.submit(long_spec())
    waiting = c.submit(tiny_spec(name="waiting"))
    c.wait_state(running["id"], "running", daemon=d)
    s = open_stream(d.port, f"/v1/jobs/{waiting['id']}/events")
    try:
        first = read_until(s, b"event: state", 10)
        assert b"event: state" in first  # the queued state, replayed
        # nothing happens to a queued job: within a few intervals a comment arrives
        rest = read_until(s, b"\n:", 6)
        assert b"\n:" in rest or rest.startswith(b":"), rest
        assert c.job(waiting["id"])["state"] == "queued"
    finally:
        s.close()
        c.post(f"/v1/jobs/{running['id']}/cancel")


def test_full_queue_is_503_and_recovers(traind_factory):
    d = traind_factory("queue", extra_config="max_queued_jobs = 2\n")
    c = d.client
    a = c.submit(long_spec())
    c.wait_state(a["id"], "running", daemon=d)
    b = c.submit(tiny_spec(name="b"))
    q = c.submit(tiny_spec(name="q"))
    before = sorted((j["id"], j["state"]) for j in c.list_jobs())
    r = c.post("/v1/jobs", tiny_spec(name="one-too-many"))
    assert_error(r, 503)
    assert sorted((j["id"], j["state"]) for j in c.list_jobs()) == before
    assert c.post(f"/v1/jobs/{b['id']}/cancel").status == 200
    r = c.post("/v1/jobs", tiny_spec(name="fits-again"))
    assert r.status == 201, r
    c.post(f"/v1/jobs/{a['id']}/cancel")
    c.wait_state(q["id"], "succeeded", daemon=d)
    c.wait_state(r.json()["id"], "succeeded", daemon=d)


def test_configured_body_limit(traind_factory):
    d = traind_factory("body", extra_config="max_body_bytes = 4096\n")
    c = d.client
    import json
    spec = json.dumps(tiny_spec(epochs=1)).encode()
    ok = spec + b" " * (4000 - len(spec))
    r = c.post("/v1/jobs", ok, headers={"Content-Type": "application/json"})
    assert r.status == 201, r
    big = spec + b" " * (5000 - len(spec))
    r = c.post("/v1/jobs", big, headers={"Content-Type": "application/json"})
    assert_error(r, 413)
    assert len(c.list_jobs()) == 1


def test_oversized_header_is_refused_and_daemon_serves(traind):
    s = socket.create_connection(("127.0.0.1", traind.port), timeout=10)
    try:
        s.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 200000 +
                  b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        reply = read_until(s, b"\r\n\r\n", 10)
    except ConnectionResetError:
        reply = b""
    s.close()
    if reply:
        status = int(reply.split(b" ")[1])
        assert status in (400, 413, 431), reply[:200]
    assert traind.client.get("/v1/health").status == 200


def test_per_ip_connection_limit(traind_factory):
    d = traind_factory("perip", extra_config="max_connections_per_ip = 4\n")
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=10) for _ in range(4)]
    try:
        extra = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        try:
            extra.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = read_until(extra, b"\r\n\r\n", 5)
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
        extra.close()
        assert b" 200 " not in reply.split(b"\r\n")[0], "a 5th connection from one IP was served"
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if d.client.get("/v1/health", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)  # poll interval: the server notices the closed sockets
    raise AssertionError("the daemon did not serve again after the connections closed")


def test_sigterm_ends_open_streams_and_exits_0(traind):
    c = traind.client
    job = c.submit(long_spec())
    c.wait_state(job["id"], "running", daemon=traind)
    streams = [open_stream(traind.port, f"/v1/jobs/{job['id']}/events", accept=a)
               for a in ("text/event-stream", "application/x-ndjson")]
    for s in streams:
        assert b"200" in read_until(s, b"\r\n\r\n", 10)
    assert traind.stop(signal.SIGTERM, timeout=60) == 0
    for s in streams:
        s.settimeout(10)
        while True:  # the server closed it: recv returns b"" (or the peer reset it)
            try:
                if not s.recv(65536):
                    break
            except ConnectionResetError:
                break
        s.close()


@pytest.mark.parametrize("line,word", [
    ("workers = 0", "workers"),
    ("threads = many", "threads"),
    ("no_such_key = 1", "no_such_key"),
    ("max_body_bytes = -5", "max_body_bytes"),
    ("listen = 127.0.0.1:99999", "listen"),
])
def test_bad_config_stops_startup_naming_the_key(tmp_path, line, word):
    d = Daemon(tmp_path / "bad", extra_config=line + "\n")
    msg = start_expect_failure(d, "--state-dir", d.state_dir)
    assert word in msg, msg


def test_unusable_state_dir_stops_startup_naming_it(tmp_path):
    d = Daemon(tmp_path / "badstate")
    not_a_dir = str(tmp_path / "file")
    with open(not_a_dir, "w") as f:
        f.write("x")
    msg = start_expect_failure(d, "--state-dir", not_a_dir)
    assert not_a_dir in msg, msg


def test_version_and_help(tmp_path):
    out = subprocess.run([traind_bin(), "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "0." in out.stdout + out.stderr
    out = subprocess.run([traind_bin(), "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for flag in ("--config", "--listen", "--state-dir", "--version", "--help"):
        assert flag in out.stdout + out.stderr, flag


def test_replay_longer_than_backlog_limit_is_not_dropped(traind_factory):
    """stream_max_backlog is how far a subscriber that does not read may lag;
    a new subscriber asking for a history longer than that is reading, and
    gets the whole replay."""
    d = traind_factory("backlog", extra_config="stream_max_backlog = 16\n")
    c = d.client
    job = c.submit(tiny_spec(epochs=12, steps_per_epoch=2))
    final = c.wait_state(job["id"], "succeeded", daemon=d)
    assert final["last_event"] > 16
    r, events = c.events(job["id"], "?after=0", ndjson=True)
    assert events[-1]["type"] == "state" and events[-1]["state"] == "succeeded"
    assert events[-1]["seq"] == final["last_event"]


def test_idle_and_slow_connections_time_out(traind_factory):
    """connection_timeout closes a connection that sends nothing, or only part
    of its request head, so idle clients cannot hold connection slots."""
    d = traind_factory("timeout", extra_config="connection_timeout = 2\nheartbeat_interval = 1\n")
    idle = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    slow = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    slow.sendall(b"GET /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        for s in (idle, slow):
            t0 = time.monotonic()
            closed = False
            try:
                while not closed:  # the server may send an error reply first
                    closed = s.recv(65536) == b""
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                pass
            assert closed and time.monotonic() - t0 < 8, "connection not closed by the timeout"
    finally:
        idle.close()
        slow.close()
    assert d.client.get("/v1/health").status == 200
