"""systemd/traind.service: `systemd-analyze verify` accepts it and
`systemd-analyze security --offline` scores it at most 2.0.

The unit names its installed paths; the test points ExecStart at the binary
under test and the config at the source tree, in a temp copy, so verify can
check that the executable exists."""

import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "traind.service"


def unit_copy(tmp_path):
    traind = os.environ.get("TRAIND_BIN")
    assert traind and os.access(traind, os.X_OK), "TRAIND_BIN must name the built traind"
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/traind " in text
    text = text.replace("/usr/local/bin/traind", traind)
    text = text.replace("/usr/local/etc/traind/traind.conf", str(ROOT / "config" / "traind.conf"))
    out = tmp_path / "traind.service"
    out.write_text(text)
    return out


@pytest.fixture
def analyze():
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return exe


def test_verify(analyze, tmp_path):
    unit = unit_copy(tmp_path)
    p = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "traind.service" not in p.stderr, p.stderr


def test_security_score(analyze, tmp_path):
    unit = unit_copy(tmp_path)
    p = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for traind\.service: ([0-9.]+)", p.stdout)
    assert m, p.stdout + p.stderr
    score = float(m.group(1))
    print("systemd-analyze security exposure:", score)
    assert score <= 2.0


def test_unit_keys():
    text = UNIT.read_text()
    for key in ("Type=notify", "WatchdogSec=", "DynamicUser=yes", "StateDirectory=traind",
                "UMask=0077", "ProtectSystem=strict", "NoNewPrivileges=yes"):
        assert key in text, key


def test_mpi_unit_verifies(analyze, tmp_path):
    """systemd/traind-mpi.service (mpirun as the main process): verify accepts
    it with the binaries pointed at this machine's (and the user at root, as
    its traind user need not exist here); it restarts on failure, as a dead
    rank ends the MPI world."""
    traind = os.environ.get("TRAIND_BIN")
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        pytest.skip("mpirun is not installed (Debian package openmpi-bin)")
    text = (ROOT / "systemd" / "traind-mpi.service").read_text()
    for key in ("ExecStart=/usr/bin/mpirun ", "Restart=on-failure", "NotifyAccess=all",
                "KillMode=control-group", "Type=notify"):
        assert key in text, key
    text = (text.replace("/usr/bin/mpirun", mpirun).replace("/usr/local/bin/traind", traind)
            .replace("User=traind", "User=root").replace("Group=traind", "Group=root"))
    unit = tmp_path / "traind-mpi.service"
    unit.write_text(text)
    p = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "traind-mpi.service" not in p.stderr, p.stderr
