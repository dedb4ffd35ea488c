#!/usr/bin/env bash
# Install everything traind needs to build, run and test on Debian 12.
# Run as root (or through sudo).  Set TRAIND_WITH_TORCH=1 to also install
# the benchmark peer (python3-torch).  With --if-missing it asks dpkg first
# and runs apt-get only when a package is not installed yet.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
    gcc meson ninja-build pkg-config git ca-certificates
    libmicrohttpd-dev libgnutls28-dev libcjson-dev libopenblas-dev libhdf5-dev zlib1g-dev nettle-dev
    libinih-dev libsystemd-dev systemd libcurl4-openssl-dev
    python3 python3-pytest python3-h5py python3-numpy
    libarchive-dev libpng-dev libjpeg62-turbo-dev python3-pil
    curl wrk dataset-fashion-mnist man-db openssl
    openmpi-bin libopenmpi-dev
    libjs-chart.js
    python3-jsonschema nodejs
    chromium chromium-driver python3-selenium
)
# qemu-user: tests run the binary on an emulated baseline x86-64 CPU (no AVX)
if [ "$(uname -m)" = x86_64 ]; then
    pkgs+=(qemu-user)
fi
if [ "${TRAIND_WITH_TORCH:-0}" = 1 ]; then
    pkgs+=(python3-torch)
fi
# npm (for the OpenAPI validator the tests install): Debian's package, unless
# the nodejs already installed brings its own npm.
if ! command -v npm >/dev/null 2>&1; then
    pkgs+=(npm)
fi
if [ "${1:-}" = --if-missing ]; then
    missing=()
    for p in "${pkgs[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "install-deps: all ${#pkgs[@]} packages are installed"
        exit 0
    fi
    echo "install-deps: missing: ${missing[*]}"
fi
if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E bash "$0" "$@"
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${pkgs[@]}"
