# test_api_auth.py - the bearer token: with a token file configured every /v1
# route and /metrics answer 401 (JSON error, WWW-Authenticate: Bearer)
# without the token or with a wrong one, /v1/health stays open, and nothing
# is done for a refused request; without a token everything is open.

import os

import pytest

from conftest import TOKEN, assert_error, long_spec, start_expect_failure, tiny_spec

ROUTES = [
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/{id}"),
    ("POST", "/v1/jobs/{id}/cancel"),
    ("DELETE", "/v1/jobs/{id}"),
    ("GET", "/v1/jobs/{id}/events"),
    ("GET", "/v1/jobs/{id}/metrics"),
    ("GET", "/v1/jobs/{id}/metrics?format=csv"),
    ("GET", "/v1/jobs/{id}/checkpoints"),
    ("GET", "/v1/jobs/{id}/checkpoints/{file}"),
    ("HEAD", "/v1/jobs/{id}/checkpoints/{file}"),
    ("GET", "/v1/jobs/{id}/best"),
    ("GET", "/v1/jobs/{id}/latest"),
    ("GET", "/v1/datasets"),
    ("GET", "/v1/weights"),
    ("GET", "/v1/weights/w"),
    ("DELETE", "/v1/weights/w"),
    ("GET", "/v1/models"),
    ("POST", "/v1/models/validate"),
    ("GET", "/metrics"),
    ("GET", "/v1/jobs/0000000000000000"),
]
WRONG = [None, "", "Bearer", "Bearer ", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}",
         f"bearer{TOKEN}", f"Basic {TOKEN}", TOKEN, f"Bearer  {TOKEN} extra",
         f"Bearer {TOKEN.upper()}"]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    from conftest import Daemon
    d = Daemon(tmp_path_factory.mktemp("auth"), token=TOKEN)
    d.start()
    job = d.client.submit(tiny_spec(name="guarded", epochs=1))
    final = d.client.wait_state(job["id"], "succeeded", daemon=d)
    yield d, final
    d.stop(timeout=20)


def jobs_snapshot(c):
    return sorted((j["id"], j["state"]) for j in c.list_jobs())


@pytest.mark.parametrize("auth", WRONG, ids=[repr(w) for w in WRONG])
@pytest.mark.parametrize("method,path", ROUTES)
def test_missing_or_wrong_token_is_401(guarded, method, path, auth):
    d, job = guarded
    c = d.client
    before = jobs_snapshot(c)
    url = path.format(id=job["id"], file=job["checkpoints"][0]["name"])
    body = b'{"dataset": "fashion-mnist", "model": "lenet"}' if method == "POST" else None
    headers = {"Authorization": auth}
    if body:
        headers["Content-Type"] = "application/json"
    r = c.request(method, url, body=body, headers=headers, auth=False)
    assert r.status == 401, r
    assert "bearer" in r.headers.get("WWW-Authenticate", "").lower()
    if method != "HEAD":
        assert_error(r, 401)
        assert b"\x89HDF" not in r.body
    assert jobs_snapshot(c) == before
    assert c.job(job["id"])["state"] == "succeeded"


def test_health_is_open_and_token_works(guarded):
    d, job = guarded
    c = d.client
    assert c.get("/v1/health", auth=False).status == 200
    assert c.get("/v1/health").status == 200
    for path in ("/v1/jobs", f"/v1/jobs/{job['id']}", "/v1/datasets", "/v1/models", "/metrics",
                 f"/v1/jobs/{job['id']}/best"):
        assert c.get(path).status == 200, path


def test_without_token_everything_is_open(module_traind):
    c = module_traind.client
    assert c.token is None
    for path in ("/v1/health", "/v1/jobs", "/v1/datasets", "/v1/models", "/metrics"):
        assert c.get(path).status == 200, path
    job = c.submit(tiny_spec(epochs=1))
    c.wait_state(job["id"], "succeeded", daemon=module_traind)
    assert c.get(f"/v1/jobs/{job['id']}/best").status == 200
    # a token sent to an open daemon is simply not needed
    r = c.get("/v1/jobs", headers={"Authorization": "Bearer whatever"})
    assert r.status == 200


def test_non_loopback_without_token_refuses_to_start(tmp_path):
    import subprocess
    from conftest import Daemon, traind_bin
    d = Daemon(tmp_path / "exposed")
    out = subprocess.run([traind_bin(), "--config", d.config_path, "--listen", "0.0.0.0:0",
                          "--state-dir", d.state_dir], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "token" in (out.stdout + out.stderr).lower()


@pytest.mark.parametrize("content", ["", "\n", "short\n", None], ids=["empty", "newline", "short",
                                                                    "missing"])
def test_unusable_token_file_refuses_to_start(tmp_path, content):
    """A configured but empty, too short or missing token file must not start
    the daemon with authentication silently off."""
    import subprocess
    from conftest import Daemon, traind_bin
    d = Daemon(tmp_path / "tok")
    token_file = str(tmp_path / "token-file")
    if content is not None:
        with open(token_file, "w") as f:
            f.write(content)
    with open(d.config_path) as f:
        text = f.read().replace("[traind]\n", f"[traind]\ntoken_file = {token_file}\n", 1)
    with open(d.config_path, "w") as f:
        f.write(text)
    out = subprocess.run([traind_bin(), "--config", d.config_path, "--listen", "127.0.0.1:0",
                          "--state-dir", d.state_dir], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode != 0
    assert "token_file" in out.stdout + out.stderr


READ_TOKEN = "read-token-0123456789abcdef"
SUBMIT_TOKEN = "submit-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture
def scoped(traind_factory):
    d = traind_factory("scoped", start=False, token=ADMIN_TOKEN)
    with open(os.path.join(d.root, "token"), "w") as f:
        f.write(f"# roles\nread {READ_TOKEN}\n\nsubmit {SUBMIT_TOKEN}\nadmin {ADMIN_TOKEN}\n")
    return d.start()


def as_(c, token):
    return {"Authorization": f"Bearer {token}"}


def test_scoped_tokens_grant_their_role_and_403_otherwise(scoped):
    c = scoped.client
    # read: every GET, nothing that changes a job
    for path in ("/v1/jobs", "/v1/datasets", "/v1/models", "/metrics"):
        assert c.get(path, headers=as_(c, READ_TOKEN)).status == 200, path
    # validating a model config changes nothing: a read token may
    r = c.post("/v1/models/validate", {"model": "lenet"}, headers=as_(c, READ_TOKEN))
    assert r.status == 200, r
    r = c.post("/v1/jobs", tiny_spec(epochs=1), headers=as_(c, READ_TOKEN))
    err = assert_error(r, 403, code="forbidden")
    assert "read" in err["message"] and "submit" in err["message"], err
    assert c.list_jobs() == []
    # submit: submit and cancel, not delete
    r = c.post("/v1/jobs", long_spec(), headers=as_(c, SUBMIT_TOKEN))
    assert r.status == 201, r
    jid = r.json()["id"]
    assert_error(c.post(f"/v1/jobs/{jid}/cancel", headers=as_(c, READ_TOKEN)), 403,
                 code="forbidden")
    assert c.post(f"/v1/jobs/{jid}/cancel", headers=as_(c, SUBMIT_TOKEN)).status in (200, 202)
    c.wait_state(jid, "cancelled", daemon=scoped)
    for tok in (READ_TOKEN, SUBMIT_TOKEN):
        assert_error(c.delete(f"/v1/jobs/{jid}", headers=as_(c, tok)), 403, code="forbidden")
    assert c.job(jid)["state"] == "cancelled"
    # admin: everything
    assert c.delete(f"/v1/jobs/{jid}", headers=as_(c, ADMIN_TOKEN)).status in (200, 204)
    assert c.get(f"/v1/jobs/{jid}").status == 404
    # uploaded weights: listing is reading, deleting is the admin's
    assert c.get("/v1/weights", headers=as_(c, READ_TOKEN)).status == 200
    for tok in (READ_TOKEN, SUBMIT_TOKEN):
        assert_error(c.delete("/v1/weights/w", headers=as_(c, tok)), 403, code="forbidden")
    assert_error(c.delete("/v1/weights/w", headers=as_(c, ADMIN_TOKEN)), 404)
    # an unknown token is still 401
    assert_error(c.get("/v1/jobs", headers=as_(c, "x" * 27)), 401)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_token_file_readable_by_others_refuses_to_start(tmp_path, mode):
    from conftest import Daemon
    d = Daemon(tmp_path / "perm", token=ADMIN_TOKEN)
    os.chmod(os.path.join(d.root, "token"), mode)
    out = start_expect_failure(d)
    assert "token_file" in out and "group or others" in out


@pytest.mark.parametrize("content", ["reader " + READ_TOKEN + "\n", "read short\n",
                                     "read a b c d e f g h i j k l m n o p q\n"],
                         ids=["unknown-role", "short", "extra-words"])
def test_bad_token_lines_refuse_to_start(tmp_path, content):
    from conftest import Daemon
    d = Daemon(tmp_path / "lines", token=ADMIN_TOKEN)
    with open(os.path.join(d.root, "token"), "w") as f:
        f.write(content)
    assert "token_file" in start_expect_failure(d)
