# test_api_auth.py - the bearer token: with a token file configured every /v1
# route and /metrics answer 401 (JSON error, WWW-Authenticate: Bearer)
# without the token or with a wrong one, /v1/health stays open, and nothing
# is done for a refused request; without a token everything is open.

import pytest

from conftest import TOKEN, assert_error, tiny_spec

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
    ("GET", "/v1/models"),
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
