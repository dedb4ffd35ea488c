# test_api_errors.py - every rejected request gets the right 4xx with the JSON
# error shape {"error": {"code", "message", "field"}} naming the field as a
# JSON pointer, and nothing the daemon already holds changes: bad job specs
# (malformed JSON, wrong types, unknown fields, out-of-range values, unknown
# dataset or model, bad templates), bodies over the limit (413), wrong
# methods (405), unknown jobs and routes (404), wrong content types (415).

import copy
import json
import socket

import pytest

from conftest import FASHION_DIR, assert_error, parse_raw, tiny_spec


@pytest.fixture(scope="module")
def held(module_traind):
    """A finished job the daemon holds before any bad request arrives."""
    c = module_traind.client
    job = c.submit(tiny_spec(name="held", epochs=1))
    final = c.wait_state(job["id"], "succeeded", daemon=module_traind)
    return final


def with_(path, value):
    """tiny_spec() with the JSON pointer `path` set to value (None-path parents created)."""
    spec = copy.deepcopy(tiny_spec())
    parts = path.strip("/").split("/")
    node = spec
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return spec


def without(path):
    spec = copy.deepcopy(tiny_spec())
    parts = path.strip("/").split("/")
    node = spec
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node[p]
    del node[parts[-1]]
    return spec


def ckpt(**kw):
    base = {"filepath": "weights-{epoch:03d}-{val_loss:.4f}.hdf5", "monitor": "val_loss",
            "mode": "min", "save_best_only": True}
    base.update(kw)
    return tiny_spec(checkpoints=[base])


# (case id, request body (bytes or object), expected field pointer(s))
BAD_SPECS = [
    # malformed JSON
    ("truncated", b'{"dataset": "fashion-mnist", "model": ', ""),
    ("trailing-garbage", json.dumps(tiny_spec()).encode() + b" x", ""),
    ("empty-body", b"", ""),
    ("array-root", b"[]", ""),
    ("string-root", b'"job"', ""),
    # wrong types
    ("epochs-string", with_("/epochs", "3"), "/epochs"),
    ("epochs-float", with_("/epochs", 1.5), "/epochs"),
    ("batch-bool", with_("/batch_size", True), "/batch_size"),
    ("seed-negative", with_("/seed", -1), "/seed"),
    ("name-number", with_("/name", 12), "/name"),
    ("dataset-number", with_("/dataset", 3), "/dataset"),
    ("model-list", with_("/model", ["lenet"]), "/model"),
    ("optimizer-number", with_("/optimizer", 3), "/optimizer"),
    ("lr-string", with_("/optimizer/learning_rate", "fast"), "/optimizer/learning_rate"),
    ("nesterov-int", with_("/optimizer/nesterov", 1), "/optimizer/nesterov"),
    ("checkpoints-object", with_("/checkpoints", {}), "/checkpoints"),
    ("checkpoint-not-object", with_("/checkpoints", ["w.h5"]), "/checkpoints/0"),
    ("save-best-only-string", ckpt(save_best_only="yes"), "/checkpoints/0/save_best_only"),
    ("save-freq-bad", ckpt(save_freq="sometimes"), "/checkpoints/0/save_freq"),
    ("limit-string", with_("/dataset/limit", "512"), "/dataset/limit"),
    # unknown fields
    ("unknown-top", with_("/epoch", 3), "/epoch"),
    ("unknown-optimizer", with_("/optimizer/momentun", 0.9), "/optimizer/momentun"),
    ("unknown-checkpoint", ckpt(monitr="val_loss"), "/checkpoints/0/monitr"),
    ("unknown-dataset-key", with_("/dataset/shuffle", True), "/dataset/shuffle"),
    ("unknown-callback", with_("/callbacks", {"tensorboard": {}}), "/callbacks/tensorboard"),
    ("unknown-es-key", with_("/callbacks", {"early_stopping": {"patiense": 2}}),
     "/callbacks/early_stopping/patiense"),
    # out of range
    ("epochs-zero", with_("/epochs", 0), "/epochs"),
    ("epochs-negative", with_("/epochs", -3), "/epochs"),
    ("epochs-huge", with_("/epochs", 10 ** 12), "/epochs"),
    ("batch-zero", with_("/batch_size", 0), "/batch_size"),
    ("steps-negative", with_("/steps_per_epoch", -1), "/steps_per_epoch"),
    ("lr-negative", with_("/optimizer/learning_rate", -0.1), "/optimizer/learning_rate"),
    ("momentum-above-one", with_("/optimizer/momentum", 1.5), "/optimizer/momentum"),
    ("decay-negative", with_("/optimizer/decay", -1), "/optimizer/decay"),
    ("validation-split-one", with_("/dataset/validation_split", 1.0), "/dataset/validation_split"),
    ("validation-split-negative", with_("/dataset/validation_split", -0.1),
     "/dataset/validation_split"),
    ("limit-negative", with_("/dataset/limit", -5), "/dataset/limit"),
    ("top-k-negative", ckpt(save_top_k=-1), "/checkpoints/0/save_top_k"),
    ("save-freq-zero", ckpt(save_freq=0, monitor="loss"), "/checkpoints/0/save_freq"),
    ("too-many-policies", tiny_spec(checkpoints=[{"filepath": f"w{i}.h5"} for i in range(9)]),
     "/checkpoints"),
    # unknown dataset / model / optimizer / mode
    ("unknown-dataset", with_("/dataset/name", "imagenet"), ("/dataset/name", "/dataset")),
    ("unknown-dataset-string", with_("/dataset", "imagenet"), "/dataset"),
    ("dataset-server-path", with_("/dataset", FASHION_DIR), "/dataset"),
    ("missing-dataset", without("/dataset"), "/dataset"),
    ("unknown-model", with_("/model", "resnet9000"), "/model"),
    ("missing-model", without("/model"), "/model"),
    ("bad-inline-model", with_("/model", {"class_name": "Functional", "config": {}}),
     ("/model", "/model/config/layers")),
    ("unknown-optimizer-name", with_("/optimizer/name", "lion"), "/optimizer/name"),
    ("mode-bogus", ckpt(mode="largest"), "/checkpoints/0/mode"),
    ("mode-auto-unguessable", ckpt(monitor="val_auc", mode="auto"),
     ("/checkpoints/0/mode", "/checkpoints/0/monitor")),
    ("monitor-unknown", ckpt(monitor="val_los"), "/checkpoints/0/monitor"),
    ("val-monitor-with-batch-saving", ckpt(save_freq=2, save_best_only=True),
     ("/checkpoints/0/monitor", "/checkpoints/0/save_freq")),
    # bad filepath templates
    ("template-unknown-key", ckpt(filepath="weights-{epoch:03d}-{val_los:.4f}.hdf5"),
     "/checkpoints/0/filepath"),
    ("template-unclosed", ckpt(filepath="weights-{epoch:03d.hdf5"), "/checkpoints/0/filepath"),
    ("template-bad-spec", ckpt(filepath="weights-{epoch:q}.hdf5"), "/checkpoints/0/filepath"),
    ("template-float-as-d", ckpt(filepath="w-{val_loss:d}.hdf5"), "/checkpoints/0/filepath"),
    ("template-batch-without-batch-saving", ckpt(filepath="w-{batch}.h5"),
     "/checkpoints/0/filepath"),
    ("template-dotdot", ckpt(filepath="../weights.h5"), "/checkpoints/0/filepath"),
    ("template-dotdot-inside", ckpt(filepath="a/../../weights.h5"), "/checkpoints/0/filepath"),
    ("template-absolute", ckpt(filepath="/tmp/weights.h5"), "/checkpoints/0/filepath"),
    ("template-leading-dot", ckpt(filepath=".weights.h5"), "/checkpoints/0/filepath"),
    ("template-empty-component", ckpt(filepath="a//w.h5"), "/checkpoints/0/filepath"),
    ("template-five-components", ckpt(filepath="a/b/c/d/w.h5"), "/checkpoints/0/filepath"),
    ("template-bad-char", ckpt(filepath="w eights.h5"), "/checkpoints/0/filepath"),
    ("template-backslash", ckpt(filepath="..\\w.h5"), "/checkpoints/0/filepath"),
    ("template-extension", ckpt(filepath="weights.txt"), "/checkpoints/0/filepath"),
    ("template-keras3-full-model", ckpt(filepath="w.weights.h5", save_weights_only=False),
     ("/checkpoints/0/filepath", "/checkpoints/0/save_weights_only")),
    ("template-empty", ckpt(filepath=""), "/checkpoints/0/filepath"),
    ("template-too-long", ckpt(filepath="w" * 300 + ".h5"), "/checkpoints/0/filepath"),
]


def body_bytes(body):
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def snapshot(c):
    return sorted((j["id"], j["state"]) for j in c.list_jobs())


@pytest.mark.parametrize("case,body,field", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_bad_spec_is_400_with_field(module_traind, held, case, body, field):
    c = module_traind.client
    before = snapshot(c)
    r = c.post("/v1/jobs", body_bytes(body), headers={"Content-Type": "application/json"})
    assert_error(r, 400, field=field if isinstance(field, tuple) else (field,))
    assert snapshot(c) == before
    assert c.job(held["id"]) == held


def test_invalid_utf8_is_400_and_list_stays_json(traind):
    """JSON text is UTF-8 (RFC 8259): a spec with invalid bytes is malformed;
    accepting it would make every later job list invalid JSON."""
    c = traind.client
    body = json.dumps(tiny_spec(epochs=1)).encode().replace(b'"tiny"', b'"\xff\xfe"')
    r = c.post("/v1/jobs", body, headers={"Content-Type": "application/json"})
    assert_error(r, 400, field=("", "/name"), code="invalid_request")
    r = c.get("/v1/jobs")
    assert r.status == 200
    r.body.decode("utf-8")
    assert c.list_jobs() == []


def test_valid_spec_with_charset_is_accepted(module_traind):
    c = module_traind.client
    r = c.post("/v1/jobs", body_bytes(tiny_spec(epochs=1)),
               headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 201, r
    c.wait_state(r.json()["id"], "succeeded", daemon=module_traind)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/jsonx"])
def test_wrong_content_type_is_415(module_traind, held, ctype):
    c = module_traind.client
    before = snapshot(c)
    r = c.post("/v1/jobs", body_bytes(tiny_spec()), headers={"Content-Type": ctype})
    assert_error(r, 415)
    assert snapshot(c) == before


def send_raw(port, head, body_len, chunk=b"x" * 65536, tail=b""):
    """Send a request head and up to body_len bytes of body; read the reply
    even if the server answers and closes before the body is all sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s.sendall(head)
        sent = 0
        try:
            while sent < body_len:
                n = min(len(chunk), body_len - sent)
                s.sendall(chunk[:n])
                sent += n
            s.sendall(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while True:
                part = s.recv(65536)
                if not part:
                    break
                data += part
                if b"\r\n\r\n" in data:
                    head_end = data.index(b"\r\n\r\n")
                    hdrs = data[:head_end].decode("latin-1").lower()
                    for line in hdrs.split("\r\n"):
                        if line.startswith("content-length:"):
                            want = int(line.split(":")[1])
                            if len(data) >= head_end + 4 + want:
                                return data
        except (ConnectionResetError, socket.timeout):
            pass
        return data
    finally:
        s.close()


def test_body_over_limit_is_413(module_traind, held):
    c = module_traind.client
    before = snapshot(c)
    size = 64 * 1024 * 1024
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n").encode()
    data = send_raw(module_traind.port, head, size)
    assert data, "no reply to an oversized body"
    status, headers, body = parse_raw(data)
    assert status == 413, data[:500]
    assert headers["content-type"].startswith("application/json")
    err = json.loads(body[: int(headers["content-length"])])["error"]
    assert err["code"] and err["message"] and "field" in err
    assert snapshot(c) == before
    assert c.get("/v1/health").status == 200


def test_chunked_body_over_limit_is_413(module_traind, held):
    c = module_traind.client
    before = snapshot(c)
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    data = send_raw(module_traind.port, head, 64 * len(chunk), chunk=chunk, tail=b"0\r\n\r\n")
    status, headers, _ = parse_raw(data)
    assert status == 413, data[:500]
    assert snapshot(c) == before


METHOD_CASES = [
    ("PUT", "/v1/jobs"),
    ("DELETE", "/v1/jobs"),
    ("PATCH", "/v1/jobs/{id}"),
    ("POST", "/v1/jobs/{id}"),
    ("PUT", "/v1/jobs/{id}"),
    ("GET", "/v1/jobs/{id}/cancel"),
    ("DELETE", "/v1/jobs/{id}/cancel"),
    ("POST", "/v1/jobs/{id}/events"),
    ("POST", "/v1/jobs/{id}/metrics"),
    ("DELETE", "/v1/jobs/{id}/checkpoints"),
    ("POST", "/v1/jobs/{id}/best"),
    ("PUT", "/v1/jobs/{id}/latest"),
    ("POST", "/v1/datasets"),
    ("DELETE", "/v1/models"),
    ("POST", "/v1/health"),
    ("POST", "/metrics"),
]


@pytest.mark.parametrize("method,path", METHOD_CASES)
def test_wrong_method_is_405_with_allow(module_traind, held, method, path):
    c = module_traind.client
    before = snapshot(c)
    body = b"{}" if method in ("POST", "PUT", "PATCH") else None
    r = c.request(method, path.format(id=held["id"]), body=body,
                  headers={"Content-Type": "application/json"} if body else None)
    assert_error(r, 405)
    allow = r.headers.get("Allow", "")
    assert allow, "405 without an Allow header"
    assert method not in [m.strip() for m in allow.split(",")]
    assert snapshot(c) == before
    assert c.job(held["id"]) == held


NOT_FOUND = [
    ("GET", "/v1/jobs/no-such-job"),
    ("DELETE", "/v1/jobs/no-such-job"),
    ("POST", "/v1/jobs/no-such-job/cancel"),
    ("GET", "/v1/jobs/no-such-job/events"),
    ("GET", "/v1/jobs/no-such-job/metrics"),
    ("GET", "/v1/jobs/no-such-job/checkpoints"),
    ("GET", "/v1/jobs/no-such-job/checkpoints/w.h5"),
    ("GET", "/v1/jobs/no-such-job/best"),
    ("GET", "/v1/jobs/no-such-job/latest"),
    ("GET", "/v1/jobs/{id}/nothing"),
    ("GET", "/v1/jobs/{id}/checkpoints/no-such-file.h5"),
    ("GET", "/v1/nothing"),
    ("GET", "/v2/jobs"),
    ("GET", "/index.html"),  # the dashboard is / and /ui/{file}, nothing else
    ("GET", "/ui/no-such-file.js"),
]


@pytest.mark.parametrize("method,path", NOT_FOUND)
def test_unknown_is_404(module_traind, held, method, path):
    c = module_traind.client
    r = c.request(method, path.format(id=held["id"]))
    assert_error(r, 404)
    assert c.job(held["id"]) == held


def test_many_bad_requests_leave_daemon_serving(module_traind, held):
    c = module_traind.client
    for _ in range(50):
        assert c.post("/v1/jobs", b"{", headers={"Content-Type": "application/json"}).status == 400
    assert c.get("/v1/health").status == 200
    assert c.job(held["id"]) == held
