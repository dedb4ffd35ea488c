# test_run.py - `traind run --dir DIR JOB.json` end to end: the real binary
# trains small Fashion-MNIST jobs in the foreground; the tests check the
# Keras lines it prints, the checkpoint files it leaves (names, count,
# tf.keras full-model layout read with h5py), that the daemon running the
# same job emits matching events and files, and that a run killed with
# SIGKILL and run again on the same directory ends with weights
# bit-identical to a run never interrupted.

import hashlib
import json
import os

import numpy as np
import pytest

import runjob
from runjob import EPOCH_HEADER, EPOCH_LINE, IMPROVED, NOT_IMPROVED


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_output(lines):
    """Per epoch: its summary line's values and its checkpoint lines."""
    epochs = {}
    current = None
    for line in lines:
        m = EPOCH_HEADER.match(line)
        if m:
            current = int(m.group(1))
            epochs[current] = {"total": int(m.group(2)), "ckpt": []}
            continue
        m = EPOCH_LINE.match(line)
        if m:
            assert current is not None, line
            epochs[current]["val_loss"] = m.group(6)
            epochs[current]["line"] = line
            continue
        m = IMPROVED.match(line) or NOT_IMPROVED.match(line)
        if m:
            assert int(m.group(1)) == current, line
            epochs[current]["ckpt"].append(line)
    return epochs


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    spec = runjob.load_fixture("run_reference_small.json")
    job = runjob.write_job(str(tmp), spec)
    job_dir = str(tmp / "job")
    code, lines, err = runjob.run_job(job, job_dir)
    assert code == 0, err
    return spec, job_dir, lines


def test_reference_scenario_lines_and_files(reference_run):
    spec, job_dir, lines = reference_run
    epochs = parse_output(lines)
    assert sorted(epochs) == list(range(1, spec["epochs"] + 1)), lines
    expected_files = []
    best = None
    for e, info in sorted(epochs.items()):
        assert info["total"] == spec["epochs"]
        assert "line" in info, f"no epoch summary line for epoch {e}: {lines}"
        # 1536 examples / batch 64 = 24 batches
        assert info["line"].startswith("24/24 - ")
        assert len(info["ckpt"]) == 1, info
        line = info["ckpt"][0]
        m = IMPROVED.match(line)
        if m:
            assert m.group(2) == "val_loss"
            assert m.group(3) == ("inf" if best is None else f"{best:.5f}")
            value = float(m.group(4))
            assert best is None or value < best
            name = m.group(5)
            assert name == f"weights-{e:03d}-{info['val_loss']}.hdf5", (name, info)
            best = value
            expected_files.append(name)
        else:
            m = NOT_IMPROVED.match(line)
            assert m and best is not None and m.group(3) == f"{best:.5f}", line
    assert expected_files, "no improvement at all"
    assert runjob.checkpoint_files(job_dir) == sorted(expected_files)
    assert not [n for n in os.listdir(job_dir) if n.startswith(runjob.TEMP_PREFIX)]


def test_daemon_runs_the_same_code_path(reference_run, traind, client):
    """The same job submitted to the daemon: its checkpoint events carry the
    lines `traind run` printed, the files it names exist with the events'
    size and SHA-256, and hold the same weights bit for bit."""
    spec, run_dir, lines = reference_run
    job = client.submit(spec)
    client.wait_state(job["id"], "succeeded", timeout=600, daemon=traind)
    _r, raw = client.events(job["id"], ndjson=True)
    events = runjob.flatten_events(raw)
    job_dir = traind.job_dir(job["id"])

    ends = [ev for ev in events if ev["type"] == "epoch_end"]
    assert [ev["epoch"] for ev in ends] == list(range(1, spec["epochs"] + 1))
    for ev in ends:
        assert set(ev["logs"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert ev["lr"] > 0 and ev["seconds"] >= 0
    ckpts = [ev for ev in events if ev["type"] == "checkpoint"]
    assert [ev["epoch"] for ev in ckpts] == list(range(1, spec["epochs"] + 1))
    printed = [ln for ln in lines if IMPROVED.match(ln) or NOT_IMPROVED.match(ln)]
    assert [ev["message"] for ev in ckpts] == printed
    for ev in ckpts:
        assert ev["policy"] == 0
        assert ev["monitor"] == "val_loss"
        assert ev["decision"] in ("improved", "not_improved")
        val_loss = [e for e in ends if e["epoch"] == ev["epoch"]][0]["logs"]["val_loss"]
        assert ev["value"] == val_loss
        if ev["decision"] == "improved":
            path = os.path.join(job_dir, "checkpoints", ev["file"])
            assert ev["bytes"] == os.path.getsize(path)
            assert ev["sha256"] == sha256(path)
            assert ev["file"] == f"weights-{ev['epoch']:03d}-{val_loss:.4f}.hdf5"
        else:
            assert ev["file"] is None
    assert not [ev for ev in events if ev["type"] == "checkpoint_error"]

    assert runjob.checkpoint_files(job_dir) == runjob.checkpoint_files(run_dir)
    for name in runjob.checkpoint_files(run_dir):
        a = runjob.h5_datasets(os.path.join(run_dir, "checkpoints", name))
        b = runjob.h5_datasets(os.path.join(job_dir, "checkpoints", name))
        assert sorted(a) == sorted(b)
        for k in a:
            assert np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes(), (name, k)


def test_files_have_the_tf_keras_full_model_layout(reference_run):
    import h5py

    _spec, job_dir, _lines = reference_run
    files = runjob.checkpoint_files(job_dir)
    assert files
    for name in files:
        with h5py.File(os.path.join(job_dir, "checkpoints", name), "r") as f:
            for attr in ("model_config", "training_config", "keras_version", "backend"):
                assert attr in f.attrs, (name, attr)
            config = json.loads(f.attrs["model_config"])
            assert config["class_name"] == "Sequential"
            training = json.loads(f.attrs["training_config"])
            assert training["loss"] == "categorical_crossentropy"
            assert "model_weights" in f and "optimizer_weights" in f
            mw = f["model_weights"]
            names = [n.decode() if isinstance(n, bytes) else n for n in mw.attrs["layer_names"]]
            assert names
            n_weights = 0
            for layer in names:
                g = mw[layer]
                for w in g.attrs["weight_names"]:
                    w = w.decode() if isinstance(w, bytes) else w
                    assert g[w].dtype == np.float32
                    n_weights += 1
            assert n_weights > 0
            ow = f["optimizer_weights"]
            found = []
            ow.visit(found.append)
            assert any(p.endswith("iter:0") for p in found), found
            assert any("momentum" in p for p in found), found


def test_plain_path_leaves_one_file(reference_run, tmp_path):
    """best.hdf5 instead of the template: one file, overwritten at each
    improvement, holding the weights of the last improvement (the reference
    run of the same job saved them under their templated name)."""
    spec = runjob.load_fixture("run_best_plain.json")
    ref_spec, ref_dir, ref_lines = reference_run
    assert {k: v for k, v in spec.items() if k not in ("name", "checkpoints")} == \
        {k: v for k, v in ref_spec.items() if k not in ("name", "checkpoints")}
    job = runjob.write_job(str(tmp_path), spec)
    job_dir = str(tmp_path / "job")
    code, lines, err = runjob.run_job(job, job_dir)
    assert code == 0, err
    improved = [IMPROVED.match(ln) for ln in lines if IMPROVED.match(ln)]
    assert improved, lines
    assert all(m.group(5) == "best.hdf5" for m in improved)
    assert runjob.checkpoint_files(job_dir) == ["best.hdf5"]
    ref_improved = [IMPROVED.match(ln) for ln in ref_lines if IMPROVED.match(ln)]
    assert [m.group(1) for m in improved] == [m.group(1) for m in ref_improved]
    a = runjob.h5_datasets(os.path.join(job_dir, "checkpoints", "best.hdf5"))
    b = runjob.h5_datasets(os.path.join(ref_dir, "checkpoints", ref_improved[-1].group(5)))
    assert sorted(a) == sorted(b) and a
    for k in a:
        assert np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes(), k


def test_resume_after_kill_is_bit_identical(tmp_path):
    spec = runjob.load_fixture("run_resume.json")
    job = runjob.write_job(str(tmp_path), spec)
    full_dir = str(tmp_path / "full")
    cut_dir = str(tmp_path / "cut")

    code, full_lines, err = runjob.run_job(job, full_dir)
    assert code == 0, err

    done = runjob.kill_after_epoch(job, cut_dir, 2, spec["epochs"])
    assert 2 <= done < spec["epochs"], f"the kill came after epoch {done}"
    code, cut_lines, err = runjob.run_job(job, cut_dir)
    assert code == 0, err
    assert runjob.resume_epoch(cut_dir) == runjob.resume_epoch(full_dir) == spec["epochs"]

    # The continued run printed only the epochs after the kill.
    assert [int(EPOCH_HEADER.match(ln).group(1)) for ln in cut_lines if EPOCH_HEADER.match(ln)] \
        == list(range(done + 1, spec["epochs"] + 1))

    full = runjob.h5_datasets(os.path.join(full_dir, "resume.h5"))
    cut = runjob.h5_datasets(os.path.join(cut_dir, "resume.h5"))
    assert sorted(full) == sorted(cut)
    assert any(k.startswith("model_weights/") for k in full)
    assert any(k.startswith("optimizer_weights/") for k in full)
    for k in full:
        a, b = np.asarray(full[k]), np.asarray(cut[k])
        assert a.dtype == b.dtype and a.shape == b.shape, k
        assert a.tobytes() == b.tobytes(), f"{k} differs after resume"

    # Same checkpoint decisions: the same files, with the same weights.
    assert runjob.checkpoint_files(cut_dir) == runjob.checkpoint_files(full_dir)
    for name in runjob.checkpoint_files(full_dir):
        wa = runjob.h5_datasets(os.path.join(full_dir, "checkpoints", name),
                                groups=("model_weights", "layers"))
        wb = runjob.h5_datasets(os.path.join(cut_dir, "checkpoints", name),
                                groups=("model_weights", "layers"))
        assert sorted(wa) == sorted(wb)
        for k in wa:
            assert np.asarray(wa[k]).tobytes() == np.asarray(wb[k]).tobytes(), (name, k)


def test_ctrl_c_then_continue(reference_run, tmp_path):
    """SIGINT during epoch 3: `traind run` finishes the batch, exits 130 with
    resume.h5 at epoch 2; run again, it ends bit-identical to the reference
    run of the same job."""
    import signal
    import subprocess

    spec, ref_dir, _lines = reference_run
    job = runjob.write_job(str(tmp_path), spec)
    job_dir = str(tmp_path / "job")
    p = subprocess.Popen(runjob.run_cmd(job, job_dir), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1)
    try:
        for line in p.stdout:
            if line.rstrip("\n") == f"Epoch 3/{spec['epochs']}":
                p.send_signal(signal.SIGINT)
                break
        rest, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "Epoch 3: " not in rest  # epoch 3 was not completed
    assert runjob.resume_epoch(job_dir) == 2

    code, lines, err = runjob.run_job(job, job_dir)
    assert code == 0, err
    assert [ln for ln in lines if EPOCH_HEADER.match(ln)] == \
        [f"Epoch {e}/{spec['epochs']}" for e in range(3, spec["epochs"] + 1)]
    a = runjob.h5_datasets(os.path.join(ref_dir, "resume.h5"))
    b = runjob.h5_datasets(os.path.join(job_dir, "resume.h5"))
    assert sorted(a) == sorted(b) and a
    for k in a:
        assert np.asarray(a[k]).tobytes() == np.asarray(b[k]).tobytes(), k
    assert runjob.checkpoint_files(job_dir) == runjob.checkpoint_files(ref_dir)
