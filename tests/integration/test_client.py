# test_client.py - traind as its own client: the real binary's sub-commands
# (submit, jobs, show, logs, cancel, rm, get, upload, health) against the real
# daemon.  Following without a terminal must print byte for byte what
# `traind run` prints for the same job; under a pseudo-terminal (Python's
# pty) the Keras verbose=1 bar and final lines; a follower survives a
# daemon restart without losing or repeating a line; downloads resume with
# Range and never keep a file whose SHA-256 differs from the ETag; exit
# codes say what happened.

import json
import os
import pty
import re
import select
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import TOKEN, long_spec, sha256_file, tiny_spec, traind_bin

# Numbers that depend on the machine's speed: epoch seconds and per-step times.
SECONDS = re.compile(r" - \d+s( \d+(?:s|ms|us)/step)? - ")
BAR = r"\[[=>.]{30}\]"
LOGS = r"( - \w+: -?\d+\.\d{4})+"


def normalise(text):
    return SECONDS.sub(lambda m: " - Ns" + (" N/step" if m.group(1) else "") + " - ", text)


def client_env(daemon, **extra):
    env = dict(os.environ)
    env.pop("TRAIND_TOKEN_FILE", None)
    env["TRAIND_URL"] = f"http://127.0.0.1:{daemon.port}"
    env.update(extra)
    return env


def cli(daemon, *args, env=None, timeout=300, cwd=None):
    """Run `traind ARGS` to the end without a terminal."""
    return subprocess.run([traind_bin(), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env or client_env(daemon), stdin=subprocess.DEVNULL)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return str(path)


def run_foreground(daemon, tmp_path, spec):
    """`traind run` of spec with the daemon's configuration (same threads):
    the lines a follower must print."""
    job = write_json(tmp_path / "run-job.json", spec)
    p = subprocess.run([traind_bin(), "run", "--config", daemon.config_path,
                        "--dir", str(tmp_path / "run-dir"), job],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return p.stdout


def under_pty(argv, env, timeout=300, cwd=None):
    """Run argv with stdout and stderr on a pseudo-terminal; returns (exit
    status, everything it wrote)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        try:
            if cwd:
                os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"{argv} still running: {out[-2000:]!r}"
        r, _, _ = select.select([fd], [], [], 1.0)
        if not r:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace").replace("\r\n", "\n")


def rich_spec(**kw):
    """Every kind of line: batch-level saves, a silent policy, early stopping
    with restored weights."""
    spec = tiny_spec(epochs=4, **kw)
    spec["checkpoints"] += [
        {"filepath": "acc-{epoch}.h5", "monitor": "val_accuracy", "mode": "max",
         "save_best_only": True, "verbose": 0},
        {"filepath": "b-{epoch}-{batch}.h5", "save_freq": 3, "verbose": 1},
    ]
    spec["callbacks"] = {"early_stopping": {"monitor": "loss", "patience": 1, "min_delta": 5,
                                            "restore_best_weights": True}}
    return spec


def test_follow_without_terminal_prints_what_traind_run_prints(traind, tmp_path):
    spec = rich_spec()
    expected = run_foreground(traind, tmp_path, spec)
    assert "Epoch 2: early stopping" in expected and "saving model to b-1-3.h5" in expected
    job = write_json(tmp_path / "job.json", spec)
    p = cli(traind, "submit", job, "--follow")
    assert p.returncode == 0, p.stderr
    m = re.search(r"submitted job ([0-9a-f]{16})", p.stderr)
    assert m, p.stderr
    assert normalise(p.stdout) == normalise(expected)

    # logs replays the same lines; --after N only those of the events after N
    job_id = m.group(1)
    logs = cli(traind, "logs", job_id)
    assert logs.returncode == 0, logs.stderr
    assert normalise(logs.stdout) == normalise(expected)
    _, events = traind.client.events(job_id, "?after=0", ndjson=True)
    # after the last event of epoch 1: the lines from "Epoch 2/4" on
    first_of_2 = next(e["seq"] for e in events if e.get("epoch") == 2)
    after = cli(traind, "logs", job_id, "--after", str(first_of_2 - 1))
    assert after.returncode == 0, after.stderr
    assert normalise(after.stdout) == normalise(expected[expected.index("Epoch 2/4\n"):])

    # --json: the stored events unchanged, one per line
    js = cli(traind, "--json", "logs", job_id)
    assert js.returncode == 0, js.stderr
    got = [json.loads(line) for line in js.stdout.splitlines()]
    assert [e for e in got if e["type"] != "progress"] == \
        [e for e in events if e["type"] != "progress"]


def test_follow_on_a_terminal_draws_the_keras_bar(traind, tmp_path):
    # enough batches per epoch that progress events (4 a second) arrive mid-epoch
    spec = tiny_spec(epochs=2, steps_per_epoch=None,
                     dataset={"name": "fashion-mnist", "limit": 16384, "validation_limit": 256})
    job = write_json(tmp_path / "job.json", spec)
    code, out = under_pty([traind_bin(), "submit", "--follow", job], client_env(traind))
    assert code == 0, out
    job_id = re.search(r"submitted job ([0-9a-f]{16})", out).group(1)
    history = traind.client.job(job_id)["history"]
    batches = 16384 // 32
    frames = [f for line in out.split("\n") for f in line.split("\r")]
    visible = [line.split("\r")[-1].rstrip() for line in out.split("\n")]
    live = re.compile(rf"^ *(\d+)/{batches} {BAR} - ETA: (\d+:)*\d+s?" + r"( - \w+: -?\d+\.\d{4})*")
    final = re.compile(rf"^{batches}/{batches} \[={{30}}\] - \d+s \d+(s|ms|us)/step" + LOGS + "$")
    for epoch in (1, 2):
        i = visible.index(f"Epoch {epoch}/2")
        # the live bar of this epoch: frames until the checkpoint line
        ck = next(k for k in range(i + 1, len(visible)) if visible[k].startswith(f"Epoch {epoch}:"))
        epoch_frames = [f.rstrip() for line in out.split("\n")[i + 1:ck] for f in line.split("\r")
                        if f.strip()]
        assert epoch_frames, out
        counts = []
        for f in epoch_frames:
            m = live.match(f)
            assert m, f
            counts.append(int(m.group(1)))
            assert " - loss: " in f and " - accuracy: " in f and "val_" not in f, f
        assert counts == sorted(counts) and counts[-1] == batches, counts
        assert any(c < batches for c in counts), f"no mid-epoch bar in epoch {epoch}: {epoch_frames}"
        for f, c in zip(epoch_frames, counts):  # Keras' bar: int(30 * done) cells
            w = 30 * c // batches
            cells = "=" * (w - 1) + (">" if c < batches else "=") if w else ""
            assert f"[{cells + '.' * (30 - w)}]" in f, f
        # the checkpoint line as Keras prints it, then the epoch's final line
        assert re.match(rf"^Epoch {epoch}: val_loss improved from (inf|\d\.\d{{5}}) to \d\.\d{{5}}, "
                        rf"saving model to weights-00{epoch}-\d\.\d{{4}}\.hdf5$", visible[ck])
        m = final.match(visible[ck + 1])
        assert m, visible[ck + 1]
        h = history[epoch - 1]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert f" - {key}: {h[key]:.4f}" in visible[ck + 1], (key, visible[ck + 1])
    assert len([f for f in frames if final.match(f.rstrip())]) == 2


def test_follow_survives_a_daemon_restart(traind, tmp_path):
    spec = tiny_spec(epochs=30)
    expected = run_foreground(traind, tmp_path, spec)
    job = write_json(tmp_path / "job.json", spec)
    out_path = tmp_path / "follow.out"
    with open(out_path, "wb") as out, open(tmp_path / "follow.err", "wb") as err:
        follower = subprocess.Popen([traind_bin(), "submit", "--follow", job], stdout=out,
                                    stderr=err, env=client_env(traind), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while b"Epoch 3/30" not in out_path.read_bytes():
            assert follower.poll() is None, (tmp_path / "follow.err").read_text()
            assert time.monotonic() < deadline, out_path.read_text()
            time.sleep(0.02)  # poll interval for the condition
        port = traind.port
        assert traind.stop() == 0
        traind.start(port=port)
        code = follower.wait(timeout=300)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert code == 0, (tmp_path / "follow.err").read_text()
    got = out_path.read_text()
    job_id = traind.client.list_jobs()[0]["id"]
    states = [e for e in traind.client.events(job_id, "?after=0", ndjson=True)[1]
              if e["type"] == "state"]
    assert [s["state"] for s in states].count("running") == 2, states  # it did restart
    assert normalise(got) == normalise(expected)


def test_get_resumes_and_refuses_a_mismatching_file(traind, tmp_path):
    env = client_env(traind)
    job = traind.client.submit(tiny_spec())
    traind.client.wait_state(job["id"], "succeeded", daemon=traind)
    info = traind.client.job(job["id"])
    best = next(c for c in info["checkpoints"] if c["best"])
    server_file = os.path.join(traind.job_dir(job["id"]), "checkpoints", best["name"])
    content = open(server_file, "rb").read()

    def get(*args):
        return cli(traind, "get", *args, cwd=tmp_path)

    # plain: the server's file name, sha256sum's format on stdout
    p = get(job["id"])
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{best['sha256']}  {best['name']}\n"
    assert sha256_file(str(tmp_path / best["name"])) == best["sha256"]

    # resume: a .part holding the first bytes is completed with a Range request
    (tmp_path / "r.h5.part").write_bytes(content[:100000])
    p = get(job["id"], "best", "-o", "r.h5")
    assert p.returncode == 0, p.stderr
    assert "resuming at byte 100000" in p.stderr
    assert (tmp_path / "r.h5").read_bytes() == content
    assert not (tmp_path / "r.h5.part").exists()

    # a .part of other bytes: the check fails, it downloads again from byte 0
    (tmp_path / "w.h5.part").write_bytes(b"x" * 5000)
    p = get(job["id"], best["name"], "-o", "w.h5")
    assert p.returncode == 0, p.stderr
    assert "does not match; downloading it again" in p.stderr
    assert (tmp_path / "w.h5").read_bytes() == content

    # the file changed on the server under its recorded SHA-256: refused, nothing kept
    (tmp_path / "bad.h5").write_bytes(b"older file")
    st = os.stat(server_file)
    with open(server_file, "r+b") as f:  # same inode, size and mtime: silent damage
        f.seek(len(content) // 2)
        f.write(bytes([content[len(content) // 2] ^ 0xFF]))
    os.utime(server_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    p = get(job["id"], "best", "-o", "bad.h5")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"does not match the server's ETag {best['sha256']}" in p.stderr
    assert (tmp_path / "bad.h5").read_bytes() == b"older file"
    assert not (tmp_path / "bad.h5.part").exists()

    # a terminal on stderr shows a download bar
    with open(server_file, "r+b") as f:
        f.write(content)
    os.utime(server_file, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, out = under_pty([traind_bin(), "get", job["id"], "-o", "tty.h5"], env, cwd=tmp_path)
    assert code == 0, out
    assert re.search(r"MiB / +\d+\.\d MiB \[={30}\] 100%", out), out
    assert (tmp_path / "tty.h5").read_bytes() == content


def test_jobs_show_cancel_rm_and_exit_codes(traind, tmp_path):
    job = write_json(tmp_path / "job.json", long_spec())
    p = cli(traind, "submit", job)
    assert p.returncode == 0, p.stderr
    job_id = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{16}", job_id), p.stdout
    traind.client.wait_state(job_id, "running", daemon=traind)

    p = cli(traind, "jobs", "--state", "running")
    assert p.returncode == 0 and job_id in p.stdout and "running" in p.stdout, p
    assert cli(traind, "jobs", "-q", "--state", "succeeded").stdout == ""
    p = cli(traind, "--json", "jobs")
    assert json.loads(p.stdout) == json.loads(traind.client.get("/v1/jobs").body)
    p = cli(traind, "show", job_id)
    assert p.returncode == 0 and f"id         {job_id}\n" in p.stdout, p
    assert json.loads(cli(traind, "show", job_id, "--json").stdout)["id"] == job_id

    # a follower of a job that gets cancelled exits 1
    follower = subprocess.Popen([traind_bin(), "logs", "-f", job_id], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=client_env(traind), text=True)
    p = cli(traind, "cancel", job_id)
    assert p.returncode == 0 and p.stdout.startswith(job_id), p
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 1, (out, err)
    assert f"job {job_id} cancelled" in err
    traind.client.wait_state(job_id, "cancelled", daemon=traind)
    # following from past the last event ends at once with the job's outcome
    last = traind.client.job(job_id)["last_event"]
    p = cli(traind, "logs", "-f", job_id, "--after", str(last + 5), timeout=60)
    assert p.returncode == 1 and p.stdout == "" and "cancelled" in p.stderr, p

    p = cli(traind, "rm", job_id)
    assert p.returncode == 0 and p.stdout == f"removed {job_id}\n", p
    p = cli(traind, "show", job_id)
    assert p.returncode == 4 and p.stderr == f"{job_id}: no such job (HTTP 404)\n", p

    # the server's message and the JSON pointer of the field
    bad = tiny_spec()
    bad["checkpoints"][0]["filepath"] = "w-{epoch:03d}-{val_los:.4f}.h5"
    p = cli(traind, "submit", write_json(tmp_path / "bad.json", bad))
    assert p.returncode == 4, p
    assert p.stderr.startswith(f"{tmp_path}/bad.json: /checkpoints/0/filepath: position ")
    assert "unknown key 'val_los'" in p.stderr and p.stderr.endswith("(HTTP 400)\n")

    assert cli(traind, "health").returncode == 0
    assert cli(traind, "show").returncode == 2                    # missing ID
    assert cli(traind, "jobs", "--bogus").returncode == 2
    assert cli(traind, "show", job_id, "-o", "x").returncode == 2  # option of another command
    assert cli(traind, "submit", str(tmp_path / "missing.json")).returncode == 2
    p = cli(traind, "jobs", "--server", "http://127.0.0.1:1")
    assert p.returncode == 3 and "127.0.0.1" in p.stderr, p


def test_upload_streams_a_data_set_and_reports_a_refusal(traind, tmp_path):
    rng = np.random.default_rng(11)
    npz = tmp_path / "digits.npz"
    pixels = rng.integers(0, 256, (60, 8, 8)).astype(np.uint8)
    np.savez(npz, x_train=pixels[:40], y_train=rng.integers(0, 10, 40), x_test=pixels[40:],
             y_test=rng.integers(0, 10, 20))
    p = cli(traind, "upload", "cli-digits", str(npz), "--seed", "4")
    assert p.returncode == 0, p.stderr
    fields = dict(line.split(None, 1) for line in p.stdout.splitlines())
    assert fields["name"] == "cli-digits" and fields["format"] == "npz", p.stdout
    assert fields["sha256"] == sha256_file(npz)
    assert fields["bytes"] == str(npz.stat().st_size)
    assert fields["shape"] == "8x8x1" and fields["images"] == "40 train, 20 test", p.stdout
    stored = traind.client.get("/v1/datasets/cli-digits")
    assert stored.status == 200 and stored.json()["sha256"] == sha256_file(npz)

    # --json prints the API's resource; on a terminal an upload bar ends at 100%
    p = cli(traind, "--json", "upload", "cli-digits2", str(npz))
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["name"] == "cli-digits2" and res["sha256"] == sha256_file(npz)
    code, out = under_pty([traind_bin(), "upload", "cli-digits3", str(npz)], client_env(traind))
    assert code == 0, out
    assert re.search(r"\[={30}\] 100%", out), out

    # refused: the server's message and status, nothing registered
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"hello world, not a data set")
    p = cli(traind, "upload", "cli-bad", str(bad))
    assert p.returncode == 4 and "(HTTP 400)" in p.stderr, p
    direct = traind.client.request("PUT", "/v1/datasets/cli-bad", body=bad.read_bytes(),
                                   headers={"Content-Type": "application/octet-stream"})
    assert direct.status == 400
    assert direct.json()["error"]["message"] in p.stderr, (p.stderr, direct.json())
    assert traind.client.get("/v1/datasets/cli-bad").status == 404
    p = cli(traind, "upload", "cli-bad", str(npz), "--image-size", "0x5")
    assert p.returncode == 4 and "image_size: " in p.stderr, p
    assert cli(traind, "upload", "cli-bad", str(tmp_path / "missing.npz")).returncode == 2
    assert cli(traind, "upload", "cli-bad").returncode == 2


def test_token_from_a_file_only(traind_factory, tmp_path):
    d = traind_factory("auth", token=TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    p = cli(d, "jobs")
    assert p.returncode == 4 and "(HTTP 401)" in p.stderr, p
    assert cli(d, "jobs", "--token-file", str(token_file)).returncode == 0
    assert cli(d, "jobs", env=client_env(d, TRAIND_TOKEN_FILE=str(token_file))).returncode == 0
    assert cli(d, "jobs", "--token", TOKEN).returncode == 2  # never on the command line


def test_token_file_in_the_servers_format(traind_factory, tmp_path):
    """--token-file takes the server's token file ("ROLE TOKEN" lines, comments)
    and uses its strongest token: rm (admin) then gets 404 for an unknown
    job, not 403."""
    read, submit = "r" * 24, "s" * 24
    d = traind_factory("roles", token=TOKEN, start=False)
    with open(os.path.join(d.root, "token"), "w") as f:
        f.write(f"# dashboard\nread {read}\nadmin {TOKEN}\nsubmit {submit}\n")
    d.start()
    unknown = "0123456789abcdef"
    server_file = os.path.join(d.root, "token")
    p = cli(d, "rm", unknown, "--token-file", server_file)
    assert p.returncode == 4 and "(HTTP 404)" in p.stderr, p
    p = cli(d, "rm", unknown, env=client_env(d, TRAIND_TOKEN_FILE=server_file))
    assert p.returncode == 4 and "(HTTP 404)" in p.stderr, p
    # without admin, submit is the strongest: cancel reaches the job lookup,
    # rm is refused for the role
    two = tmp_path / "two"
    two.write_text(f"read {read}\nsubmit {submit}\n")
    p = cli(d, "cancel", unknown, "--token-file", str(two))
    assert p.returncode == 4 and "(HTTP 404)" in p.stderr, p
    p = cli(d, "rm", unknown, "--token-file", str(two))
    assert p.returncode == 4 and "(HTTP 403)" in p.stderr, p
    bad = tmp_path / "bad"
    bad.write_text(f"owner {TOKEN}\n")
    p = cli(d, "jobs", "--token-file", str(bad))
    assert p.returncode == 2 and "--token-file" in p.stderr and "unknown role" in p.stderr, p


def complete(daemon, *words):
    """What the bash completion offers for the last (partial) word."""
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "daemon", "traind.bash-completion")
    env = client_env(daemon, PATH=os.path.dirname(traind_bin()) + ":" + os.environ["PATH"])
    words_sh = " ".join("'%s'" % w for w in ("traind",) + words)
    p = subprocess.run(["bash", "-c", f'source "{script}"; COMP_WORDS=({words_sh}); '
                        f'COMP_CWORD={len(words)}; _traind; printf "%s\\n" "${{COMPREPLY[@]}}"'],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    return sorted(w for w in p.stdout.splitlines() if w)


def test_bash_completion_and_man_page(traind):
    job = traind.client.submit(tiny_spec())
    assert complete(traind, "s") == ["show", "submit"]
    assert complete(traind, "logs", "") == [job["id"]]
    assert complete(traind, "get", job["id"], "") == ["best", "latest"]
    assert complete(traind, "upload", "my-set", "--color-mode", "") == ["grayscale", "rgb", "rgba"]
    assert "--image-size" in complete(traind, "upload", "-")
    assert complete(traind, "logs", "-") == sorted(["-f", "--after", "--server", "--token-file",
                                                    "--json", "--help"])
    page = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "daemon", "traind.1")
    if not os.path.exists("/usr/bin/man"):
        pytest.skip("man is not installed")
    p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", page],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, MANWIDTH="100", MAN_KEEP_FORMATTING="",
                                GROFF_NO_SGR="1"))
    text = re.sub(r".\x08", "", p.stdout)  # overstrike bold and underline
    assert p.returncode == 0 and p.stderr == "", p.stderr
    for cmd in ("submit", "jobs", "show", "logs", "cancel", "rm", "get", "upload", "health"):
        assert re.search(rf"^ {{7}}{cmd}\b", text, re.M), cmd


def test_traind_run_on_a_terminal_draws_the_same_bar(traind, tmp_path):
    """`traind run` renders through the same code: on a terminal the bar and
    the final lines, with the values it prints without one."""
    spec = tiny_spec(epochs=2)
    expected = run_foreground(traind, tmp_path, spec).splitlines()
    job = write_json(tmp_path / "tty-job.json", spec)
    code, out = under_pty([traind_bin(), "run", "--config", traind.config_path,
                           "--dir", str(tmp_path / "tty-dir"), job], dict(os.environ))
    assert code == 0, out
    visible = [line.split("\r")[-1].rstrip() for line in out.split("\n") if line.strip()]
    v2_final = [line for line in expected if re.match(r"^4/4 - \d+s - ", line)]
    tty_final = [line for line in visible
                 if re.match(r"^4/4 \[={30}\] - \d+s \d+(s|ms|us)/step - ", line)]
    assert len(v2_final) == len(tty_final) == 2, out
    for v2, tty in zip(v2_final, tty_final):
        assert tty[tty.index(" - loss"):] == v2[v2.index(" - loss"):], (tty, v2)
    # headers and checkpoint lines are the verbose=2 ones
    assert [x for x in visible if x.startswith("Epoch")] == \
        [x for x in expected if x.startswith("Epoch")]
