# test_openapi.py - docs/openapi.json: served at /v1/openapi.json byte for
# byte, valid OpenAPI 3.1 for a real validator (@apidevtools/swagger-parser,
# installed with npm into the build folder on first use and run by nodejs),
# and complete: every route of the server, every path parameter declared,
# every operation answered with its errors.  The responses themselves are
# checked against it by conftest.py in every integration test.

import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import OPENAPI_PATH, SRC_ROOT, openapi_check_response, openapi_doc

VALIDATOR_VERSION = "12.1.0"  # the newest without an engines floor above Debian 12's nodejs 18


def npm_prefix():
    build = os.path.dirname(os.path.dirname(os.environ.get("TRAIND_BIN", "")))
    base = build if build and os.path.isdir(build) else os.path.join(SRC_ROOT, "build-it")
    return os.path.join(base, "node-openapi")


@pytest.fixture(scope="module")
def swagger_parser():
    node = shutil.which("node") or shutil.which("nodejs")
    npm = shutil.which("npm")
    if not node or not npm:
        pytest.fail("nodejs and npm are needed (scripts/install-deps.sh installs them)")
    prefix = npm_prefix()
    mod = os.path.join(prefix, "node_modules", "@apidevtools", "swagger-parser", "package.json")
    if not os.path.exists(mod) or json.load(open(mod))["version"] != VALIDATOR_VERSION:
        os.makedirs(prefix, exist_ok=True)
        p = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                            "--prefix", prefix, f"@apidevtools/swagger-parser@{VALIDATOR_VERSION}"],
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
    script = os.path.join(prefix, "validate.mjs")
    with open(script, "w") as f:
        f.write('import SwaggerParser from "@apidevtools/swagger-parser";\n'
                "try {\n"
                "  const api = await SwaggerParser.validate(process.argv[2]);\n"
                '  console.log(`valid ${api.openapi} ${Object.keys(api.paths).length}`);\n'
                "} catch (e) { console.error(e.message); process.exit(1); }\n")

    def validate(path):
        return subprocess.run([node, script, path], capture_output=True, text=True, timeout=120,
                              cwd=prefix)
    return validate


def test_document_is_valid_openapi_31(swagger_parser):
    p = swagger_parser(OPENAPI_PATH)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("valid 3.1.0"), p.stdout


def test_validator_rejects_a_broken_document(swagger_parser, tmp_path):
    """The validator is real: a dangling $ref and an unknown member fail."""
    doc = json.load(open(OPENAPI_PATH))
    doc["paths"]["/v1/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] = {
        "$ref": "#/components/schemas/NoSuchSchema"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    p = swagger_parser(str(bad))
    assert p.returncode != 0 and "NoSuchSchema" in p.stderr
    doc = json.load(open(OPENAPI_PATH))
    doc["paths"]["/v1/jobs"]["get"]["responses"]["200"]["bogus"] = 1
    bad.write_text(json.dumps(doc))
    assert swagger_parser(str(bad)).returncode != 0


def test_served_document_is_the_file(module_traind):
    r = module_traind.client.get("/v1/openapi.json")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/json"
    with open(OPENAPI_PATH, "rb") as f:
        assert r.body == f.read()
    assert r.json()["openapi"] == "3.1.0"


def server_routes():
    """The routes api/route.c knows, from its own comments."""
    with open(os.path.join(SRC_ROOT, "api", "route.h")) as f:
        text = f.read()
    out = set()
    for m in re.finditer(r"API_ROUTE_\w+,\s*/\*\s*(/[^*]*?)\s*\*/", text):
        for p in m.group(1).split(" and "):
            out.add(p.split(" (")[0].strip())
    return out


def test_every_route_is_documented():
    doc, _ = openapi_doc()
    routes = server_routes()
    assert len(routes) >= 14, routes
    missing = routes - set(doc["paths"])
    assert not missing, f"routes of api/route.h not in docs/openapi.json: {sorted(missing)}"


def test_path_parameters_declared_and_errors_documented():
    doc, _ = openapi_doc()

    def deref(o):
        while "$ref" in o:
            node = doc
            for part in o["$ref"][2:].split("/"):
                node = node[part]
            o = node
        return o
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            declared = {deref(p)["name"] for p in op.get("parameters", []) if deref(p)["in"] == "path"}
            assert declared == names, (method, path, declared, names)
            if method == "options":
                continue
            codes = set(op["responses"])
            assert "405" in codes or method == "head", (method, path)
            if path.startswith("/v1/") and path != "/v1/health" and method != "head":
                assert "401" in codes, (method, path)
            if names & {"id"}:
                assert "404" in codes, (method, path)
            # answered before routing: a version other than 1.0/1.1, too many
            # query parameters, too many header bytes
            assert {"414", "431", "505"} <= codes, (method, path)
            # writes need a submit or admin token (api_route_role)
            if path.startswith("/v1/") and method not in ("get", "head"):
                assert "403" in codes, (method, path)


def test_contract_check_catches_drift():
    """The conftest hook fails on an undocumented status, a wrong body and an
    event that is not an Event: it can fail."""
    hdr = {"Content-Type": "application/json"}
    with pytest.raises(AssertionError, match="not documented"):
        openapi_check_response("GET", "/v1/jobs", 418, hdr, b"{}")
    with pytest.raises(AssertionError, match="does not match"):
        openapi_check_response("GET", "/v1/jobs", 200, hdr, b'{"jobs": [{"id": "x"}]}')
    with pytest.raises(AssertionError, match="does not match"):
        openapi_check_response("GET", "/v1/health", 200, hdr, b'{"status": "ok"}')
    with pytest.raises(AssertionError, match="does not match"):
        openapi_check_response("POST", "/v1/jobs", 400, hdr, b'{"error": {"code": "x"}}')
    openapi_check_response("POST", "/v1/jobs", 400, hdr,
                           b'{"error": {"code": "invalid_field", "message": "m", "field": "/epochs"}}')
