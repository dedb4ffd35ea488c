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

from conftest import assert_error, tiny_spec


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


def test_full_disk_at_submit_is_507_and_leaves_nothing(traind_factory, tmp_path):
    with small_tmpfs(str(tmp_path / "small")) as mnt:
        d = traind_factory("full", start=False)
        d.state_dir = os.path.join(mnt, "state")
        d.start()
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
