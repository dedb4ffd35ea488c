#!/usr/bin/env bash
# Set up and run every test: install the dependencies that are missing (none
# on a machine set up already: dpkg is asked, apt-get runs only if needed),
# configure, build, run the unit tests (meson) and the integration tests
# (pytest against the real traind).  Usage: bash scripts/test-all.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bash scripts/install-deps.sh --if-missing
if [ -d "$build" ]; then
    meson setup --reconfigure "$build"
else
    meson setup "$build"
fi
ninja -C "$build"
meson test -C "$build" --print-errorlogs --num-processes 2
