# test_api_traversal.py - downloads never return a byte from outside the job:
# a table of raw request paths (../, percent-encoded dots and slashes, double
# encoding, absolute paths, NUL, dot files, temp names, other jobs' files) and
# files planted in the checkpoint folder after training (a symlink to a file
# outside, a directory replaced by a symlink to a folder outside, dot and
# .tmp- files).  Every answer is 400 or 404 with a JSON error body.

import json
import os
import secrets
import shutil

import pytest

from conftest import tiny_spec

SECRET = ("OUTSIDE-SECRET-" + secrets.token_hex(8)).encode()
POLICIES = [
    {"filepath": "weights-{epoch:03d}.h5", "monitor": "val_loss", "mode": "min",
     "save_best_only": True},
    {"filepath": "acc/best.h5", "monitor": "val_accuracy", "mode": "max",
     "save_best_only": True, "save_weights_only": True},
    {"filepath": "last.h5", "monitor": "val_loss", "save_weights_only": True},
]


@pytest.fixture(scope="module")
def setup(module_traind):
    d = module_traind
    c = d.client
    jobs = []
    for name in ("victim", "other"):
        j = c.submit(tiny_spec(name=name, epochs=2, checkpoints=POLICIES))
        jobs.append(c.wait_state(j["id"], "succeeded", daemon=d))
    victim, other = jobs
    root = os.path.dirname(d.state_dir)
    outside = os.path.join(root, "outside")
    os.makedirs(os.path.join(outside, "acc"), exist_ok=True)
    for p in ("secret.h5", "acc/best.h5", "last.h5"):
        with open(os.path.join(outside, p), "wb") as f:
            f.write(SECRET)
    ck = os.path.join(d.job_dir(victim["id"]), "checkpoints")
    with open(os.path.join(ck, ".secret"), "wb") as f:
        f.write(SECRET)
    with open(os.path.join(ck, ".tmp-weights-001.h5"), "wb") as f:
        f.write(SECRET)
    os.symlink(os.path.join(outside, "secret.h5"), os.path.join(ck, "link.h5"))
    os.symlink(outside, os.path.join(ck, "linkdir"))
    # a listed file and a listed folder replaced by symlinks to the outside
    os.unlink(os.path.join(ck, "last.h5"))
    os.symlink(os.path.join(outside, "last.h5"), os.path.join(ck, "last.h5"))
    shutil.rmtree(os.path.join(ck, "acc"))
    os.symlink(os.path.join(outside, "acc"), os.path.join(ck, "acc"))
    with open(os.path.join(d.job_dir(victim["id"]), "job.json"), "rb") as f:
        job_json = f.read()
    other_file = other["checkpoints"][0]["name"]
    with open(os.path.join(d.job_dir(other["id"]), "checkpoints", other_file), "rb") as f:
        other_bytes = f.read()
    return {"victim": victim["id"], "other": other["id"], "other_file": other_file,
            "job_json": job_json, "other_bytes": other_bytes}


RAW = [
    "../job.json",
    "../events.ndjson",
    "../resume.h5",
    "..%2fjob.json",
    "%2e%2e/job.json",
    "%2E%2E%2Fjob.json",
    ".%2e/job.json",
    "%2e./job.json",
    "sub/../../job.json",
    "acc/%2e%2e/%2e%2e/job.json",
    "..%5cjob.json",
    "%252e%252e%252fjob.json",
    "..%c0%afjob.json",
    "../../{other}/checkpoints/{other_file}",
    "..%2f..%2f{other}%2fcheckpoints%2f{other_file}",
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "//etc/passwd",
    "%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "../../../../../../../../etc/passwd",
    "weights-001.h5%00",
    "weights-001.h5%00.txt",
    "%00",
    "last.h5%00/../job.json",
    ".secret",
    "%2esecret",
    ".tmp-weights-001.h5",
    "%2etmp-weights-001.h5",
    "link.h5",
    "linkdir/secret.h5",
    "linkdir/acc/best.h5",
    "last.h5",
    "acc/best.h5",
    "acc",
    ".",
    "..",
    "x" * 300 + ".h5",
    "a/b/c/d/e/f.h5",
    "%",
    "%zz",
    "weights-001.h5/",
]


def check_refused(r, setup, what):
    assert r.status in (400, 404), (what, r)
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("application/json"), (what, ctype)
    err = json.loads(r.body)["error"]
    assert err["code"] and err["message"], (what, err)
    assert SECRET not in r.body, what
    assert b"root:" not in r.body, what
    assert setup["job_json"] not in r.body, what
    assert setup["other_bytes"][:64] not in r.body, what


@pytest.mark.parametrize("tail", RAW)
def test_checkpoint_path_is_confined(module_traind, setup, tail):
    tail = tail.format(other=setup["other"], other_file=setup["other_file"])
    path = f"/v1/jobs/{setup['victim']}/checkpoints/{tail}"
    c = module_traind.client
    check_refused(c.raw("GET", path), setup, path)
    r = c.raw("HEAD", path)
    assert r.status in (400, 404), (path, r)
    assert r.body == b""


@pytest.mark.parametrize("job_part", [
    "..", "%2e%2e", "..%2f..%2f..%2fetc", "{victim}%2f..%2f{other}", "{victim}%00",
    "{victim}/../{other}", ".{victim}", "{victim}x", "{VICTIM}", "%41%41",
])
def test_job_id_is_confined(module_traind, setup, job_part):
    part = job_part.format(victim=setup["victim"], other=setup["other"],
                           VICTIM=setup["victim"].upper())
    c = module_traind.client
    for route in ("checkpoints/weights-001.h5", "best", "latest", "", "events"):
        path = f"/v1/jobs/{part}/{route}".rstrip("/")
        check_refused(c.raw("GET", path), setup, path)


def test_best_and_latest_do_not_follow_planted_symlinks(module_traind, setup):
    c = module_traind.client
    jid = setup["victim"]
    # policy 1's best (acc/best.h5) now sits behind a symlinked folder, policy 2's
    # file (last.h5) is a symlink: neither may serve the outside bytes
    for path in (f"/v1/jobs/{jid}/best?policy=1", f"/v1/jobs/{jid}/best?policy=2",
                 f"/v1/jobs/{jid}/latest"):
        r = c.raw("GET", path)
        assert SECRET not in r.body, path
        if r.status != 200:
            check_refused(r, setup, path)


def test_real_files_still_download(module_traind, setup):
    c = module_traind.client
    r = c.raw("GET", f"/v1/jobs/{setup['other']}/checkpoints/{setup['other_file']}")
    assert r.status == 200
    assert r.body == setup["other_bytes"]
    r = c.raw("GET", f"/v1/jobs/{setup['victim']}/checkpoints/weights-001.h5")
    assert r.status == 200 and r.body[:8] == b"\x89HDF\r\n\x1a\n"
