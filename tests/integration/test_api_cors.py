# test_api_cors.py - CORS against the real traind: cors_allow_origins (exact
# origins, "*" refused at start), preflights on every route, the
# Allow-Origin / Expose-Headers pair on JSON answers, errors, event streams
# and downloads, nothing for origins not in the list, and the embedded
# files (ETag, 304, gzip, CSP).

import gzip
import subprocess

import pytest

from conftest import TOKEN, sha256_bytes, tiny_spec, traind_bin

ALLOWED = "http://127.0.0.1:18080"
OTHER = "http://127.0.0.1:18081"


@pytest.fixture(scope="module")
def cors_daemon(tmp_path_factory):
    from conftest import Daemon
    d = Daemon(tmp_path_factory.mktemp("cors"), token=TOKEN,
               extra_config=f"cors_allow_origins = {ALLOWED}, http://localhost:18080\n")
    d.start()
    yield d
    d.stop(timeout=20)


@pytest.fixture(scope="module")
def done_job(cors_daemon):
    c = cors_daemon.client
    job = c.submit(tiny_spec(name="cors"))
    return c.wait_state(job["id"], "succeeded", daemon=cors_daemon)


def test_preflight_allowed_origin_without_token(cors_daemon, done_job):
    c = cors_daemon.client
    for path in ("/v1/jobs", f"/v1/jobs/{done_job['id']}/events", f"/v1/jobs/{done_job['id']}/best",
                 f"/v1/jobs/{done_job['id']}", "/v1/health", "/metrics"):
        r = c.request("OPTIONS", path, auth=False, headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, last-event-id"})
        assert r.status == 204, (path, r)
        assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
        headers = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
        assert {"authorization", "content-type", "last-event-id"} <= headers
        methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
        assert "GET" in methods and "OPTIONS" in methods
        assert int(r.headers["Access-Control-Max-Age"]) > 0
        assert "Origin" in r.headers.get_all("Vary")
        assert r.headers.get("Access-Control-Allow-Credentials") is None
    r = c.request("OPTIONS", "/v1/jobs", auth=False, headers={"Origin": ALLOWED})
    assert {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")} >= {"GET", "POST"}


def test_preflight_other_origin_gets_no_cors_headers(cors_daemon):
    r = cors_daemon.client.request("OPTIONS", "/v1/jobs", auth=False, headers={
        "Origin": OTHER, "Access-Control-Request-Method": "GET"})
    assert r.status == 204, r
    assert "GET" in r.headers["Allow"]
    for h in ("Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
              "Access-Control-Allow-Headers"):
        assert r.headers.get(h) is None, h


def test_preflight_unknown_route_is_404(cors_daemon):
    r = cors_daemon.client.request("OPTIONS", "/v1/nothing", auth=False, headers={"Origin": ALLOWED})
    assert r.status == 404, r


def test_allow_origin_on_json_errors_streams_and_downloads(cors_daemon, done_job):
    c = cors_daemon.client
    jid = done_job["id"]
    o = {"Origin": ALLOWED}
    for path in ("/v1/jobs", f"/v1/jobs/{jid}", f"/v1/jobs/{jid}/checkpoints", "/v1/models"):
        r = c.get(path, headers=o)
        assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == ALLOWED, path
    # errors: 401 without the token, 404
    r = c.get("/v1/jobs", headers=o, auth=False)
    assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
    r = c.get("/v1/jobs/0123456789abcdef", headers=o)
    assert r.status == 404 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
    # event stream
    r, frames = c.events(jid, "?after=0", headers=o)
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert frames and frames[-1]["data"]["type"] == "state"
    # download: the exposed headers let a page read ETag and Content-Range
    r = c.get(f"/v1/jobs/{jid}/best", headers={**o, "Range": "bytes=0-99"})
    assert r.status == 206, r
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = {h.strip().lower() for h in r.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"etag", "content-range", "location"} <= exposed
    full = c.get(f"/v1/jobs/{jid}/best", headers=o)
    assert full.headers["ETag"] == f'"{sha256_bytes(full.body)}"'
    # submit: Location is exposed too
    r = c.post("/v1/jobs", tiny_spec(name="cors-submit", epochs=1), headers=o)
    assert r.status == 201 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
    c.wait_state(r.json()["id"], "succeeded", daemon=cors_daemon)


def test_other_origin_and_no_origin_get_no_allow_origin(cors_daemon):
    c = cors_daemon.client
    for hdrs in ({"Origin": OTHER}, {"Origin": "null"}, {"Origin": ALLOWED + "/"}, {}):
        r = c.get("/v1/jobs", headers=hdrs)
        assert r.status == 200
        assert r.headers.get("Access-Control-Allow-Origin") is None, hdrs
        assert "Origin" in r.headers.get_all("Vary")


def test_without_cors_config_no_cors_headers(module_traind):
    r = module_traind.client.get("/v1/jobs", headers={"Origin": ALLOWED})
    assert r.status == 200
    assert r.headers.get("Access-Control-Allow-Origin") is None
    assert r.headers.get("Vary") is None
    r = module_traind.client.request("OPTIONS", "/v1/jobs", headers={"Origin": ALLOWED})
    assert r.status == 204 and r.headers.get("Access-Control-Allow-Origin") is None


@pytest.mark.parametrize("value, words", [
    ("*", ["cors_allow_origins", "'*'"]),
    ("http://ok.example, https://bad.example/path", ["cors_allow_origins", "https://bad.example/path"]),
    ("ftp://x.example", ["cors_allow_origins", "ftp://x.example"]),
    ("http://Upper.example", ["cors_allow_origins", "Upper"]),
    ("http://x.example:99999999", ["cors_allow_origins", "port"]),
])
def test_bad_origin_list_stops_start_naming_the_key(tmp_path, value, words):
    conf = tmp_path / "traind.conf"
    conf.write_text(f"[traind]\nstate_dir = {tmp_path / 'state'}\ncors_allow_origins = {value}\n")
    p = subprocess.run([traind_bin(), "--config", str(conf), "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    for w in words:
        assert w in p.stderr + p.stdout, (w, p.stderr)


def test_dashboard_files_etag_gzip_csp(module_traind):
    c = module_traind.client
    r = c.get("/", auth=False)
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert b'<script type="module" src="/ui/app.js">' in r.body
    assert b"<script>" not in r.body and b"style=" not in r.body
    etag = r.headers["ETag"]
    r2 = c.get("/", headers={"If-None-Match": etag}, auth=False)
    assert r2.status == 304 and r2.body == b""
    # the large file comes gzip'ed when asked, with its own ETag, and unpacks
    # to the identity bytes
    ident = c.get("/ui/chart.min.js", auth=False)
    assert ident.status == 200 and ident.headers.get("Content-Encoding") is None
    assert ident.headers["Content-Type"].startswith("text/javascript")
    gz = c.get("/ui/chart.min.js", headers={"Accept-Encoding": "gzip"}, auth=False)
    assert gz.headers["Content-Encoding"] == "gzip"
    assert len(gz.body) < len(ident.body) // 2
    assert gzip.decompress(gz.body) == ident.body
    assert gz.headers["ETag"] != ident.headers["ETag"]
    assert "Accept-Encoding" in gz.headers["Vary"]
    assert ident.body.startswith(b"/*!\n * Chart.js")
    # q=0 refuses gzip
    r = c.get("/ui/chart.min.js", headers={"Accept-Encoding": "gzip;q=0, identity"}, auth=False)
    assert r.headers.get("Content-Encoding") is None
    for name in ("app.js", "api.js", "events.js", "job.js", "jobs.js", "submit.js", "style.css"):
        r = c.get(f"/ui/{name}", auth=False)
        assert r.status == 200, name
        assert r.headers["Content-Security-Policy"] == csp
    assert c.get("/ui/nothing.js", auth=False).status == 404
    assert c.get("/ui/..%2Fetc", auth=False).status in (400, 404)
    assert c.post("/ui/app.js", b"", auth=False).status == 405


def test_dashboard_is_public_api_is_not(cors_daemon):
    c = cors_daemon.client
    assert c.get("/", auth=False).status == 200
    assert c.get("/ui/app.js", auth=False).status == 200
    assert c.get("/v1/openapi.json", auth=False).status == 401
    assert c.get("/v1/openapi.json").status == 200
