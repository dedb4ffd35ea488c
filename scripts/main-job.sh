#!/usr/bin/env bash
# The main job: install dependencies, build, start traind with the built-in
# default configuration and a temporary state dir, submit the reference job
# (MiniVGGNet on Fashion-MNIST, SGD 0.01 decay 0.01/40 momentum 0.9 Nesterov,
# batch 64, 40 epochs, best-only checkpoints by val_loss) with curl, and
# follow its events until it ends.
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
./build/daemon/traind --listen "127.0.0.1:${port}" --state-dir "$state" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do
    curl -fsS "$base/v1/health" >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null || { echo "traind exited" >&2; exit 1; }
    sleep 0.1
done
echo "traind is listening on $base, state in $state"

id=$(curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @"$job" \
        "$base/v1/jobs" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "submitted job $id; following its events (Ctrl-C stops following; the job keeps its files in $state/jobs/$id)"
curl -fsS -N -H 'Accept: application/x-ndjson' "$base/v1/jobs/$id/events" |
    /usr/bin/python3 -u -c '
import json, sys
for line in sys.stdin:
    ev = json.loads(line)
    t = ev.get("type")
    if t == "epoch_end":
        logs = " - ".join("%s: %.4f" % kv for kv in ev["logs"].items())
        print("epoch %d: %s - lr: %.6f (%.0fs)" % (ev["epoch"], logs, ev["lr"], ev["seconds"]))
    elif t in ("checkpoint", "early_stopping"):
        print(ev["message"])
    elif t == "state":
        print("job %s%s" % (ev["state"], (": " + ev["error"]) if ev.get("error") else ""))
    elif t != "progress":
        print(line.strip())
'
# Fetch the best weights over HTTP as a client would (ETag = SHA-256 of the file).
curl -fsS -D "$state/best.headers" -o "$state/best.hdf5" "$base/v1/jobs/$id/best"
grep -i -E '^(content-disposition|etag):' "$state/best.headers"
echo "best weights downloaded to $state/best.hdf5 (sha256 $(sha256sum "$state/best.hdf5" | cut -d' ' -f1))"
