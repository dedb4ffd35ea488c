# runjob.py - helpers for the `traind run` tests (test_run.py): write a job
# spec, run the real binary in the foreground on a job directory, parse its
# Keras-style output and events, and read weight files with h5py.
#
# The binary is $TRAIND_BIN (set by tests/integration/meson.build), else
# build-runner/daemon/traind in the source tree.  `traind run` uses its
# built-in configuration (fashion-mnist from the Debian package).  Waiting is
# always for a condition with a deadline.

import json
import os
import re
import signal
import subprocess
import time

import pytest

SRC_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(SRC_ROOT, "tests", "fixtures", "jobs")
TEMP_PREFIX = ".tmp-"

# "12/24 - 3s - loss: 2.1234 - accuracy: 0.2345 - val_loss: 1.9876 - val_accuracy: 0.3456"
EPOCH_LINE = re.compile(
    r"^(\d+)/(\d+) - (\d+)s - loss: (-?\d+\.\d{4}) - accuracy: (\d\.\d{4})"
    r" - val_loss: (-?\d+\.\d{4}|nan|inf) - val_accuracy: (\d\.\d{4})$")
EPOCH_HEADER = re.compile(r"^Epoch (\d+)/(\d+)$")
IMPROVED = re.compile(
    r"^Epoch (\d+): (\w+) improved from (inf|-inf|-?\d+\.\d{5}) to (-?\d+\.\d{5}),"
    r" saving model to (\S+)$")
NOT_IMPROVED = re.compile(r"^Epoch (\d+): (\w+) did not improve from (-?\d+\.\d{5}|inf|-inf)$")


def traind_bin():
    path = os.environ.get("TRAIND_BIN") or os.path.join(SRC_ROOT, "build-runner", "daemon",
                                                        "traind")
    if not os.access(path, os.X_OK):
        pytest.fail(f"traind binary not found at {path} (set TRAIND_BIN)")
    return path


def load_fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def write_job(folder, spec, name="job.json"):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    return path


def run_cmd(job_path, job_dir):
    return [traind_bin(), "run", "--dir", job_dir, job_path]


def run_job(job_path, job_dir, timeout=600):
    """Run `traind run` to the end; returns (exit code, stdout lines, stderr)."""
    p = subprocess.run(run_cmd(job_path, job_dir), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout.splitlines(), p.stderr


def flatten_events(events):
    """Events as the API streams them, each flattened to one dict holding
    type and the event's own fields (nested under "data" or not)."""
    out = []
    for ev in events:
        data = ev.get("data")
        flat = dict(data) if isinstance(data, dict) else dict(ev)
        flat.setdefault("type", ev.get("type") or ev.get("event"))
        out.append(flat)
    return out


def resume_epoch(job_dir):
    """Epochs completed according to <job_dir>/resume.h5, or 0."""
    import h5py

    path = os.path.join(job_dir, "resume.h5")
    if not os.path.exists(path):
        return 0
    with h5py.File(path, "r") as f:
        return int(f.attrs["epoch"])


def kill_after_epoch(job_path, job_dir, epoch, total, timeout=600):
    """Start `traind run`, read its output until it announces epoch + 1 (it
    prints "Epoch k/N" once the resume file of epoch k - 1 is written), then
    kill -9 it.  Returns the epochs done according to the resume file (to be
    checked < total by the caller)."""
    p = subprocess.Popen(run_cmd(job_path, job_dir), stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, bufsize=1)
    try:
        seen = []
        deadline = time.monotonic() + timeout
        for line in p.stdout:
            seen.append(line.rstrip("\n"))
            m = EPOCH_HEADER.match(seen[-1])
            if m and int(m.group(1)) == epoch + 1:
                break
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for epoch %d" % (epoch + 1))
        else:
            pytest.fail(f"traind run ended before epoch {epoch + 1}: {seen}")
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    return resume_epoch(job_dir)


def checkpoint_files(job_dir):
    """Relative paths of every file under <job_dir>/checkpoints."""
    root = os.path.join(job_dir, "checkpoints")
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def h5_datasets(path, groups=("model_weights", "optimizer_weights")):
    """{dataset path: numpy array} for every dataset under the given groups."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for g in groups:
            if g not in f:
                continue

            def visit(name, obj, g=g):
                if isinstance(obj, h5py.Dataset):
                    out[g + "/" + name] = obj[()]

            f[g].visititems(visit)
    return out
