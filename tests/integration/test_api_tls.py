# test_api_tls.py - HTTPS (issue 9): a certificate made at test time by
# openssl, the daemon with tls_cert_file / tls_key_file, curl --cacert for
# the requests; TLS 1.2 and 1.3 only; beyond loopback TLS is required unless
# allow_insecure_http = true, which is logged loudly.

import os
import signal
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


def make_cert(folder, name):
    """A self-signed certificate for 127.0.0.1 and its key (cert.pem, key.pem)."""
    key, crt = os.path.join(folder, f"{name}-key.pem"), os.path.join(folder, f"{name}-cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "2", "-subj", f"/CN=127.0.0.1/O={name}",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return crt, key


def install_cert(src, dst):
    """Replace dst's (cert, key) files by src's contents, each by rename."""
    for s, t in zip(src, dst):
        with open(s, "rb") as f:
            data = f.read()
        with open(t + ".new", "wb") as f:
            f.write(data)
        os.chmod(t + ".new", 0o600)
        os.replace(t + ".new", t)


def wait_for_log(d, text, start, timeout=30):
    """Wait until the daemon's log, from byte start on, contains text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d.check_alive()
        with open(d.log_path, "rb") as f:
            f.seek(start)
            if text in f.read().decode("utf-8", "replace"):
                return
        time.sleep(0.05)  # poll interval: wait for the log line
    raise AssertionError(f"no '{text}' in the log\n{d.log_tail()}")


def test_sighup_reloads_the_certificate(tmp_path):
    import http.client
    folder = str(tmp_path)
    a, b = make_cert(folder, "a"), make_cert(folder, "b")
    live = (os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem"))
    install_cert(a, live)
    d = start_https(tmp_path / "reload", live)
    try:
        assert curl(d, a[0], "/v1/health", auth=False)[0] == 200
        assert curl(d, b[0], "/v1/health", auth=False)[0] == 0  # B is not trusted yet
        # a keep-alive connection made with A survives the reload
        ctx = ssl.create_default_context(cafile=a[0])
        old = http.client.HTTPSConnection("127.0.0.1", d.port, context=ctx, timeout=20)
        old.request("GET", "/v1/health")
        r = old.getresponse()
        r.read()
        assert r.status == 200

        install_cert(b, live)
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while curl(d, b[0], "/v1/health", auth=False)[0] != 200:
            d.check_alive()
            assert time.monotonic() < deadline, d.log_tail()
            time.sleep(0.05)  # poll interval: wait for the reload
        assert curl(d, a[0], "/v1/health", auth=False)[0] == 0  # A is no longer presented
        old.request("GET", "/v1/health")
        r = old.getresponse()
        r.read()
        assert r.status == 200
        old.close()

        # a bad new pair (a key of another certificate, then no PEM at all)
        # keeps B and says why
        for bad, why in (((b[0], a[1]), "does not belong to the certificate"),
                         (None, "not a PEM file")):
            if bad:
                install_cert(bad, live)
            else:
                with open(live[0], "w") as f:
                    f.write("garbage\n")
            start = os.path.getsize(d.log_path)
            d.proc.send_signal(signal.SIGHUP)
            wait_for_log(d, "keeping the current TLS certificate", start)
            with open(d.log_path, "rb") as f:
                f.seek(start)
                assert why in f.read().decode("utf-8", "replace"), d.log_tail()
            assert curl(d, b[0], "/v1/health", auth=False)[0] == 200
    finally:
        d.stop()


def test_oversized_chunked_body_gets_413_before_it_ends(https, cert):
    """The 413 arrives while the client is still sending (the body never
    ends here), as over plain HTTP."""
    ctx = ssl.create_default_context(cafile=cert[0])
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    with socket.create_connection(("127.0.0.1", https.port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(head)
            try:
                for _ in range(20):  # 1.25 MiB, over the 1 MiB limit; no final chunk
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            data = b""
            while b"\r\n\r\n" not in data:
                part = s.recv(65536)
                assert part, data
                data += part
            head_end = data.index(b"\r\n\r\n")
            assert data.startswith(b"HTTP/1.1 413"), data[:300]
            hdrs = data[:head_end].decode("latin-1").lower()
            assert "content-type: application/json" in hdrs
            want = int(hdrs.split("content-length:")[1].split("\r\n")[0])
            while len(data) < head_end + 4 + want:
                part = s.recv(65536)
                assert part, data
                data += part
            import json
            err = json.loads(data[head_end + 4:head_end + 4 + want])["error"]
            assert err["code"] == "too_large"
    assert curl(https, cert[0], "/v1/health", auth=False)[0] == 200


def test_a_key_of_another_certificate_refuses_to_start(tmp_path, cert):
    other = make_cert(str(tmp_path), "other")
    d = Daemon(tmp_path / "mismatch",
               extra_config=f"tls_cert_file = {cert[0]}\ntls_key_file = {other[1]}\n")
    out = start_expect_failure(d)
    assert "does not belong to the certificate" in out, out
