# conftest.py - fixtures for the HTTP integration tests: start the real
# traind on a free loopback port with a temp state dir and config, talk to it
# with Python's standard library, stop it at teardown.  Every response the
# Client sees is checked against docs/openapi.json (its status must be
# documented for the route, a JSON body must match the schema, and so must
# every streamed event), so the document cannot drift from the server.
#
# The binary is $TRAIND_BIN (set by tests/integration/meson.build), else
# build-it/daemon/traind in the source tree.  Everything waits for
# conditions with deadlines; nothing sleeps in place of a check.

import atexit
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import re

import jsonschema
import pytest

SRC_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Set by tests/meson.build (its one definition of the path).
FASHION_DIR = os.environ.get("FASHION_MNIST_DIR", "")


def fashion_dir():
    if not FASHION_DIR:
        pytest.fail("FASHION_MNIST_DIR is not set (run the tests through meson test)")
    return FASHION_DIR


TOKEN = "it-token-5f0c1b2e9a7d4c38b6e1"
TERMINAL = ("succeeded", "failed", "cancelled")


def traind_bin():
    path = os.environ.get("TRAIND_BIN") or os.path.join(SRC_ROOT, "build-it", "daemon", "traind")
    if not os.access(path, os.X_OK):
        pytest.fail(f"traind binary not found at {path} (set TRAIND_BIN)")
    return path


def free_port():
    """A loopback port nobody listens on right now (bind port 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sha256_file(path):
    """SHA-256 of a file as the real sha256sum prints it."""
    out = subprocess.run(["sha256sum", path], check=True, capture_output=True, text=True).stdout
    return out.split()[0]


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


_CIFAR_DIR = None


def cifar10_dir():
    """Generated CIFAR-10 binary files, written once per test process."""
    global _CIFAR_DIR
    if _CIFAR_DIR is None:
        folder = tempfile.mkdtemp(prefix="traind-it-cifar10-")
        atexit.register(shutil.rmtree, folder, True)
        _CIFAR_DIR = write_cifar10(folder)
    return _CIFAR_DIR


def write_cifar10(folder, per_batch=10000, n_test=10000, seed=7):
    """CIFAR-10 binary files in the exact format (10000 records per file) with
    random pixels: records of 1 label byte + 3072 pixel bytes (R, G, B planes
    of 32x32, row-major)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)

    def write(name, n):
        labels = (np.arange(n) % 10).astype(np.uint8).reshape(n, 1)
        pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        recs = np.concatenate([labels, pixels], axis=1)
        assert recs.shape[1] == 3073
        with open(os.path.join(folder, name), "wb") as f:
            f.write(recs.tobytes())

    for k in range(1, 6):
        write(f"data_batch_{k}.bin", per_batch)
    write("test_batch.bin", n_test)
    return folder


# --- the OpenAPI document as the contract of every response -----------------

OPENAPI_PATH = os.path.join(SRC_ROOT, "docs", "openapi.json")
_OPENAPI = None


def openapi_doc():
    global _OPENAPI
    if _OPENAPI is None:
        with open(OPENAPI_PATH, encoding="utf-8") as f:
            doc = json.load(f)
        routes = []
        for template in doc["paths"]:
            rx = re.escape(template)
            rx = rx.replace(re.escape("{path}"), "(?P<path>.+)")
            rx = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", rx)
            routes.append((re.compile(rx + r"\Z"), template))
        _OPENAPI = (doc, routes)
    return _OPENAPI


def openapi_validate(instance, schema, what):
    """Validate instance against a schema of the document (refs resolve in it)."""
    doc, _ = openapi_doc()
    resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
    validator = jsonschema.Draft202012Validator(schema, resolver=resolver,
                                                format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise AssertionError(f"{what}: does not match docs/openapi.json: {e.message} "
                             f"at {'/'.join(map(str, e.absolute_path))} "
                             f"(schema {'/'.join(map(str, e.absolute_schema_path))})")


def _deref(doc, obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = doc
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


def openapi_check_response(method, path, status, headers, body):
    """Assert that the document describes this response."""
    doc, routes = openapi_doc()
    path = path.split("?", 1)[0].split("#", 1)[0]
    what = f"{method} {path} -> {status}"
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip()
    is_json = ctype == "application/json" and body
    template = next((t for rx, t in routes if rx.match(path)), None)
    item = doc["paths"].get(template, {}) if template else {}
    op = item.get(method.lower()) or (item.get("get") if method == "HEAD" else None)
    if op is None:
        # no such route or method: the server's plain errors, and the answers
        # given before any route is looked at (414, 431, 505)
        assert status in (400, 404, 405, 414, 431, 505), f"{what}: not a documented route or method"
        if is_json:
            openapi_validate(json.loads(body), {"$ref": "#/components/schemas/Error"}, what)
        return
    spec = op["responses"].get(str(status)) or op["responses"].get("default")
    assert spec is not None, f"{what}: status {status} is not documented for {method} {template}"
    spec = _deref(doc, spec)
    if not is_json or method == "HEAD":
        return
    content = spec.get("content", {}).get("application/json")
    assert content is not None, f"{what}: JSON body, but the document gives none for {status}"
    openapi_validate(json.loads(body), content["schema"], what)


def openapi_check_events(what, events):
    for ev in events:
        openapi_validate(ev, {"$ref": "#/components/schemas/Event"}, f"{what} event {ev.get('seq')}")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive get()
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


class Client:
    """A small HTTP client on urllib.request: request() never raises on 4xx/5xx."""

    def __init__(self, host, port, token=None):
        self.host = host
        self.port = port
        self.base = f"http://{host}:{port}"
        self.token = token
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method, path, body=None, headers=None, timeout=30, auth=True):
        hdrs = {}
        if self.token and auth:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if body is not None and not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        hdrs = {k: v for k, v in hdrs.items() if v is not None}
        req = urllib.request.Request(self.base + path, data=body, headers=hdrs, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                resp = Response(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            with e:
                resp = Response(e.code, e.headers, e.read())
        openapi_check_response(method, path, resp.status, resp.headers, resp.body)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def raw(self, method, path, headers=None, body=None, timeout=30):
        """Send path byte for byte (no normalisation, no quoting)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if self.token and "Authorization" not in hdrs:
                hdrs["Authorization"] = f"Bearer {self.token}"
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in hdrs.items():
                conn.putheader(k, v)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            resp = Response(r.status, r.headers, r.read())
            openapi_check_response(method, path.decode("latin-1") if isinstance(path, bytes) else path,
                                   resp.status, resp.headers, resp.body)
            return resp
        finally:
            conn.close()

    # --- job helpers ---------------------------------------------------------

    def submit(self, spec, expect=201):
        r = self.post("/v1/jobs", spec)
        assert r.status == expect, r
        return r.json() if expect == 201 else r

    def list_jobs(self, query=""):
        r = self.get(f"/v1/jobs{query}")
        assert r.status == 200, r
        body = r.json()
        return body["jobs"] if isinstance(body, dict) else body

    def job(self, job_id):
        r = self.get(f"/v1/jobs/{job_id}")
        assert r.status == 200, r
        return r.json()

    def wait_state(self, job_id, states, timeout=120, daemon=None):
        """Poll GET /v1/jobs/{id} until its state is one of states."""
        if isinstance(states, str):
            states = (states,)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = self.get(f"/v1/jobs/{job_id}")
            if r.status == 200:
                last = r.json()
                if last["state"] in states:
                    return last
                if last["state"] in TERMINAL and not set(states) & set(TERMINAL):
                    break
            if daemon is not None:
                daemon.check_alive()
            time.sleep(0.05)  # poll interval; the loop waits for the condition
        tail = daemon.log_tail() if daemon is not None else ""
        raise AssertionError(f"job {job_id} not in {states} (last: {last and last.get('state')}, "
                             f"error: {last and last.get('error')})\n{tail}")

    def events(self, job_id, query="", ndjson=False, headers=None, timeout=120):
        """Read the whole event stream (SSE or NDJSON) until the server ends it."""
        hdrs = dict(headers or {})
        if ndjson:
            hdrs["Accept"] = "application/x-ndjson"
        r = self.get(f"/v1/jobs/{job_id}/events{query}", headers=hdrs, timeout=timeout)
        assert r.status == 200, r
        if ndjson:
            parsed = parse_ndjson(r.body)
            openapi_check_events(f"/v1/jobs/{job_id}/events", parsed)
            return r, parsed
        parsed = parse_sse(r.body)
        openapi_check_events(f"/v1/jobs/{job_id}/events", [f["data"] for f in parsed])
        return r, parsed


def parse_sse(body):
    """SSE frames -> list of {"id", "event", "data"(parsed JSON), "raw"}.
    Comment lines (heartbeats) are skipped; a frame ends at a blank line."""
    frames = []
    cur = {}
    data_lines = []
    for line in body.decode("utf-8").split("\n"):
        line = line.rstrip("\r")
        if line == "":
            if "event" in cur or data_lines:
                cur["data"] = json.loads("\n".join(data_lines)) if data_lines else None
                frames.append(cur)
            cur, data_lines = {}, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "data":
            data_lines.append(value)
        elif field in ("id", "event", "retry"):
            cur[field] = value
        else:
            raise AssertionError(f"unexpected SSE line {line!r}")
    assert "event" not in cur and not data_lines, "stream ended inside a frame"
    return frames


def parse_raw(data):
    """A raw HTTP/1.1 answer -> (status, {lower-case header: value}, body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def start_expect_failure(d, *extra, listen="127.0.0.1:0"):
    """Run traind on d's config; it must exit non-zero.  Returns its output."""
    state = [] if "--state-dir" in extra else ["--state-dir", d.state_dir]
    out = subprocess.run([traind_bin(), "--config", d.config_path, "--listen", listen,
                          *state, *extra], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0, out
    return out.stdout + out.stderr


def parse_ndjson(body):
    text = body.decode("utf-8")
    assert text == "" or text.endswith("\n"), "NDJSON stream must end with a newline"
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def event_fields(ev):
    """The event's own fields, whether the server nests them under "data" or not."""
    if isinstance(ev.get("data"), dict):
        return ev["data"]
    return ev


def tiny_spec(**kw):
    """A job that trains in about a second."""
    spec = {
        "name": "tiny",
        "dataset": {"name": "fashion-mnist", "limit": 512, "validation_limit": 256},
        "model": "shallownet",
        "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
        "batch_size": 32,
        "epochs": 2,
        "seed": 1,
        "steps_per_epoch": 4,
        "checkpoints": [{"filepath": "weights-{epoch:03d}-{val_loss:.4f}.hdf5",
                         "monitor": "val_loss", "mode": "min", "save_best_only": True,
                         "verbose": 1}],
    }
    spec.update(kw)
    return spec


def long_spec(**kw):
    """A job that runs until it is cancelled (many short epochs)."""
    return tiny_spec(name="long", epochs=10000, steps_per_epoch=4, **kw)


class Daemon:
    """One traind process with its own config, state dir and port."""

    def __init__(self, root, *, workers=1, threads=1, token=None, extra_config="", env=None,
                 launcher=()):
        self.root = str(root)
        self.launcher = list(launcher)  # e.g. mpirun and its options: traind runs under it
        os.makedirs(self.root, exist_ok=True)
        self.state_dir = os.path.join(self.root, "state")
        self.port = None
        self.token = token
        self.proc = None
        self.env = env  # extra environment variables for the process
        self.log_path = os.path.join(self.root, "traind.log")
        cifar = cifar10_dir()
        token_line = ""
        if token:
            token_file = os.path.join(self.root, "token")
            with open(token_file, "w") as f:
                f.write(token + "\n")
            os.chmod(token_file, 0o600)
            token_line = f"token_file = {token_file}\n"
        self.config_path = os.path.join(self.root, "traind.conf")
        with open(self.config_path, "w") as f:
            f.write(
                "[traind]\n"
                "listen = 127.0.0.1:8470\n"
                f"state_dir = {self.state_dir}\n"
                f"workers = {workers}\n"
                f"threads = {threads}\n"
                f"{token_line}"
                f"{extra_config}\n"
                "[dataset.fashion-mnist]\n"
                "format = idx\n"
                f"path = {fashion_dir()}\n"
                "\n"
                "[dataset.cifar10]\n"
                "format = cifar10\n"
                f"path = {cifar}\n")
        self.client = None

    def job_dir(self, job_id):
        return os.path.join(self.state_dir, "jobs", job_id)

    def start(self, timeout=30, port=None):
        """Start on port (a restart keeps its clients' URL), else a free one."""
        assert self.proc is None
        self.port = port or free_port()
        self.client = Client("127.0.0.1", self.port, self.token)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*self.launcher, traind_bin(), "--config", self.config_path,
             "--listen", f"127.0.0.1:{self.port}", "--state-dir", self.state_dir],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=True,
            env={**os.environ, **self.env} if self.env else None)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError, http.client.HTTPException):
                r = self.client.get("/v1/health", timeout=2, auth=False)
                if r.status == 200:
                    return self
            time.sleep(0.02)  # poll interval
        raise AssertionError(f"traind did not answer /v1/health within {timeout}s\n{self.log_tail()}")

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"traind exited with {self.proc.returncode}\n{self.log_tail()}")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Send sig, wait for exit (kill after timeout); return the exit code."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"traind did not exit {timeout}s after {sig!r}\n"
                                     f"{self.log_tail()}")
        return proc.returncode

    def kill9(self):
        proc, self.proc = self.proc, None
        proc.kill()
        proc.wait()
        return proc.returncode

    def log_tail(self, n=40):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "traind log:\n" + "\n".join(lines[-n:])


@pytest.fixture
def traind_factory(tmp_path):
    """Make more daemons: traind_factory(name, workers=..., token=...)."""
    made = []

    def make(name="d", start=True, **kw):
        d = Daemon(tmp_path / name, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in made:
        with contextlib.suppress(Exception):
            d.stop(timeout=20)


@pytest.fixture
def traind(traind_factory):
    """A started daemon (workers=1, threads=1, no token)."""
    return traind_factory("traind")


@pytest.fixture
def client(traind):
    return traind.client


@pytest.fixture(scope="module")
def module_traind(tmp_path_factory):
    """One daemon shared by the tests of a module (for read-only checks)."""
    d = Daemon(tmp_path_factory.mktemp("traind"))
    d.start()
    yield d
    with contextlib.suppress(Exception):
        d.stop(timeout=20)


def assert_model_refused(client, model, field):
    """POST /v1/jobs of tiny_spec(model=model) must be refused with 400 and
    the error naming field; returns the error object."""
    return assert_error(client.post("/v1/jobs", tiny_spec(model=model)), 400, field=field)


def assert_error(resp, status, field=None, code=None):
    """The JSON error shape {"error": {"code", "message", "field"}}."""
    assert resp.status == status, resp
    ctype = resp.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip() == "application/json", (ctype, resp)
    body = resp.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err.get("code"), str) and err["code"], body
    assert isinstance(err.get("message"), str) and err["message"], body
    # a JSON pointer, or null when the error concerns no field
    assert "field" in err and (err["field"] is None or isinstance(err["field"], str)), body
    if field is not None:
        fields = set(field) if isinstance(field, (tuple, list, set)) else {field}
        got = "" if err["field"] is None else err["field"]
        assert got in fields, body
    if code is not None:
        assert err["code"] == code, body
    return err
