# test_baseline_cpu.py - the build runs on a baseline x86-64 CPU: traind and
# unit tests of the engine under qemu-x86_64 emulating "qemu64" (SSE2, no
# AVX): the generic kernel path is picked, TRAIND_KERNELS=avx2 is refused,
# and the GEMM and layer gradient tests pass there (no SIGILL from code built
# for wider CPUs).  OpenBLAS misreads qemu64 as Haswell, so its kernel is
# fixed with OPENBLAS_CORETYPE=Prescott (that is OpenBLAS' choice, not ours).
# Skipped off x86-64 or without qemu-user (scripts/install-deps.sh has it).

import os
import shutil
import subprocess

import pytest

from conftest import traind_bin

QEMU = shutil.which("qemu-x86_64")
UNIT_DIR = os.environ.get("TRAIND_UNIT_DIR", "")

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64" or QEMU is None,
                                reason="needs x86-64 and qemu-user")


def run_baseline(argv, kernels=None, timeout=600):
    env = dict(os.environ, OPENBLAS_CORETYPE="Prescott")
    env.pop("TRAIND_KERNELS", None)
    if kernels is not None:
        env["TRAIND_KERNELS"] = kernels
    return subprocess.run([QEMU, "-cpu", "qemu64"] + argv, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_traind_picks_generic():
    r = run_baseline([traind_bin(), "--version"])
    assert r.returncode == 0, r
    assert r.stdout.endswith("(kernels: generic)\n"), r.stdout


@pytest.mark.parametrize("path", ["avx2", "avx512"])
def test_wider_paths_are_refused(path):
    r = run_baseline([traind_bin(), "--version"], kernels=path)
    assert r.returncode == 2, r
    assert "TRAIND_KERNELS" in r.stderr and f"the {path} kernels" in r.stderr, r.stderr


@pytest.mark.parametrize("test", ["test_gemm", "test_layers_grad"])
def test_engine_unit_tests_pass(test):
    exe = os.path.join(UNIT_DIR, test)
    assert os.access(exe, os.X_OK), f"{exe} (set TRAIND_UNIT_DIR)"
    r = run_baseline([exe])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "0 failed" in r.stderr
