# test_api_tls.py - HTTPS (issue 9): a certificate made at test time by
# openssl, the daemon with tls_cert_file / tls_key_file, curl --cacert for
# the requests; TLS 1.2 and 1.3 only; beyond loopback TLS is required unless
# allow_insecure_http = true, which is logged loudly.

import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import TOKEN, Daemon, free_port, start_expect_failure, tiny_spec, traind_bin


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    key, crt = str(folder / "key.pem"), str(folder / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return crt, key


def start_https(tmp_path, cert, token=TOKEN):
    crt, key = cert
    d = Daemon(tmp_path, token=token,
               extra_config=f"tls_cert_file = {crt}\ntls_key_file = {key}\n")
    d.port = free_port()
    log = open(d.log_path, "ab")
    d.proc = subprocess.Popen(
        [traind_bin(), "--config", d.config_path, "--listen", f"127.0.0.1:{d.port}",
         "--state-dir", d.state_dir], stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        d.check_alive()
        if curl(d, crt, "/v1/health", auth=False)[0] == 200:
            return d
        time.sleep(0.05)  # poll interval: wait for the daemon to listen
    raise AssertionError(d.log_tail())


def curl(d, crt, path, *args, auth=True):
    cmd = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "--cacert", crt, "-m", "20"]
    if auth:
        cmd += ["-H", f"Authorization: Bearer {TOKEN}"]
    out = subprocess.run(cmd + list(args) + [f"https://127.0.0.1:{d.port}{path}"],
                         capture_output=True)
    body, _, code = out.stdout.rpartition(b"\n")
    return (int(code) if out.returncode == 0 else 0), body


@pytest.fixture
def https(tmp_path, cert):
    d = start_https(tmp_path / "https", cert)
    yield d
    d.stop()


def test_https_serves_the_api(https, cert):
    crt = cert[0]
    code, body = curl(https, crt, "/v1/jobs")
    assert code == 200, body
    code, body = curl(https, crt, "/v1/jobs", "-H", "Content-Type: application/json",
                      "--data-binary", b'{"dataset": "fashion-mnist"', auth=True)
    assert code == 400, body
    code, _ = curl(https, crt, "/v1/jobs", auth=False)
    assert code == 401


def test_tls_below_1_2_is_refused(https, cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert[0])
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    # let the client offer TLS 1.0/1.1 at all (OpenSSL 3 refuses them at its
    # default security level), so that the refusal seen is the server's
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", https.port), timeout=20) as s:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                pass
    # 1.2 and 1.3 both work
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cert[0])
        ctx.minimum_version = ctx.maximum_version = v
        with socket.create_connection(("127.0.0.1", https.port), timeout=20) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                assert t.version() in ("TLSv1.2", "TLSv1.3")


def test_plain_http_to_the_https_port_gets_no_answer(https):
    with socket.create_connection(("127.0.0.1", https.port), timeout=20) as s:
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
    assert b"200 OK" not in data


def test_beyond_loopback_needs_tls_unless_allowed(tmp_path):
    d = Daemon(tmp_path / "exposed", token=TOKEN)
    assert "allow_insecure_http" in start_expect_failure(d, listen="0.0.0.0:0")
    with open(d.config_path) as f:
        text = f.read().replace("[traind]\n", "[traind]\nallow_insecure_http = true\n", 1)
    with open(d.config_path, "w") as f:
        f.write(text)
    port = free_port()
    log = open(d.log_path, "ab")
    proc = subprocess.Popen([traind_bin(), "--config", d.config_path, "--listen",
                             f"0.0.0.0:{port}", "--state-dir", d.state_dir],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(d.log_path) as f:
                text = f.read()
            if "listening on" in text:
                break
            assert proc.poll() is None, text
            time.sleep(0.05)  # poll interval: wait for the start-up lines
        assert "INSECURE" in text and "allow_insecure_http" in text, text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_half_configured_tls_refuses_to_start(tmp_path, cert):
    d = Daemon(tmp_path / "half", extra_config=f"tls_cert_file = {cert[0]}\n")
    assert "tls_key_file" in start_expect_failure(d)


def test_https_job_runs_and_downloads(https, cert):
    import json
    crt = cert[0]
    code, body = curl(https, crt, "/v1/jobs", "-H", "Content-Type: application/json",
                      "--data-binary", json.dumps(tiny_spec(epochs=1)).encode())
    assert code == 201, body
    jid = json.loads(body)["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        code, body = curl(https, crt, f"/v1/jobs/{jid}")
        if json.loads(body)["state"] == "succeeded":
            break
        time.sleep(0.1)  # poll interval: wait for the job to finish
    code, body = curl(https, crt, f"/v1/jobs/{jid}/best")
    assert code == 200 and body[:4] == b"\x89HDF"
