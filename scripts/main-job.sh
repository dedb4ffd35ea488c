#!/usr/bin/env bash
# The main job: install dependencies, build, start traind with the built-in
# default configuration and a temporary state dir, submit the reference job
# (MiniVGGNet on Fashion-MNIST, SGD 0.01 decay 0.01/40 momentum 0.9 Nesterov,
# batch 64, 40 epochs, best-only checkpoints by val_loss) with traind's own
# client, follow it with Keras' progress output until it ends, and download
# the best weights (SHA-256 checked against the server's ETag).
# Usage: bash scripts/main-job.sh [JOB.json]   (default examples/fashion-minivggnet.json)
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-examples/fashion-minivggnet.json}
bash scripts/install-deps.sh
[ -d build ] || meson setup build
ninja -C build

state=$(mktemp -d /tmp/traind-state.XXXXXX)
port=${TRAIND_PORT:-8470}
base="http://127.0.0.1:${port}"
traind=./build/daemon/traind
"$traind" --listen "127.0.0.1:${port}" --state-dir "$state" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
export TRAIND_URL=$base
for _ in $(seq 1 100); do
    "$traind" health >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { echo "traind exited" >&2; exit 1; }
    sleep 0.1
done
echo "traind is listening on $base, state in $state"

id=$("$traind" submit "$job")
echo "submitted job $id; following it (Ctrl-C stops following; the job keeps its files in $state/jobs/$id)"
"$traind" logs -f "$id"
# The best weights over HTTP as a client would get them: the SHA-256 of the
# file is checked against the ETag before it is kept.
"$traind" get "$id" best -o "$state/best.hdf5"
echo "best weights downloaded to $state/best.hdf5"
