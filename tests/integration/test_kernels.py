# test_kernels.py - the compute kernel path (kernels.h) as users see it: the
# best path this CPU has by default, TRAIND_KERNELS forcing each supported
# one, shown alike by `traind --version`, GET /v1/health and the Prometheus
# traind_build_info gauge; an unknown or unsupported value stops traind with
# exit 2 and a message naming TRAIND_KERNELS.

import os
import re
import subprocess

import pytest

from conftest import traind_bin


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def supported_paths():
    """The paths this machine can run, narrowest first (x86-64 only has more)."""
    flags = cpu_flags()
    paths = ["generic"]
    if os.uname().machine == "x86_64":
        if {"avx2", "fma"} <= flags:
            paths.append("avx2")
        if {"avx512f", "fma"} <= flags:
            paths.append("avx512")
    return paths


def version(kernels=None):
    env = dict(os.environ)
    env.pop("TRAIND_KERNELS", None)
    if kernels is not None:
        env["TRAIND_KERNELS"] = kernels
    return subprocess.run([traind_bin(), "--version"], env=env, capture_output=True, text=True,
                          timeout=30)


def test_default_is_the_best_path():
    r = version()
    assert r.returncode == 0, r
    m = re.fullmatch(r"traind \S+ \(kernels: (\w+)\)\n", r.stdout)
    assert m, r.stdout
    assert m.group(1) == supported_paths()[-1]


@pytest.mark.parametrize("path", ["generic", "avx2", "avx512"])
def test_forced_path_or_clear_error(path):
    r = version(path)
    if path in supported_paths():
        assert r.returncode == 0, r
        assert r.stdout.endswith(f"(kernels: {path})\n"), r.stdout
    else:
        assert r.returncode == 2, r
        assert "TRAIND_KERNELS" in r.stderr and path in r.stderr, r.stderr


def test_unknown_path_is_rejected():
    r = version("sse42")
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert "TRAIND_KERNELS" in r.stderr and '"sse42"' in r.stderr, r.stderr
    assert "generic, avx2 or avx512" in r.stderr, r.stderr


@pytest.mark.parametrize("path", supported_paths())
def test_health_and_metrics_show_the_path(traind_factory, path):
    d = traind_factory(f"k-{path}", env={"TRAIND_KERNELS": path})
    health = d.client.get("/v1/health")
    assert health.status == 200
    assert health.json()["kernels"] == path
    r = d.client.get("/metrics")
    assert r.status == 200
    lines = [l for l in r.body.decode().splitlines() if l.startswith("traind_build_info")]
    assert len(lines) == 1, lines
    assert re.fullmatch(r'traind_build_info\{version="[^"]+",kernels="%s"\} 1' % path,
                        lines[0]), lines
