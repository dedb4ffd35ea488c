#!/usr/bin/env python3
"""scaling_model.py - modelled step time of one data-parallel job vs the
number of machines N (docs/scaling.md), from constants measured here.

    scaling_model.py --compute-s T1 --gradient-bytes G --small-collectives K
                     [--latency-s A] [--batch B]

step(N) = T1 / N                                  (the global batch split N ways)
        + 2 (N - 1) / N * G / bandwidth            (ring allreduce of the gradient)
        + 2 (N - 1) * A                            (its 2 (N - 1) message latencies)
        + K * (N - 1) * A                          (K small allgathers: BN sums, loss)
for 10, 25 and 100 Gbit/s.  Prints a Markdown table and, per network, the N
with the best step time and the last N whose parallel efficiency
T1 / (N step(N)) is still >= 50 %."""
import argparse

p = argparse.ArgumentParser()
p.add_argument("--compute-s", type=float, required=True, help="one machine's step time")
p.add_argument("--gradient-bytes", type=float, required=True)
p.add_argument("--small-collectives", type=int, required=True)
p.add_argument("--latency-s", type=float, default=30e-6)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--ns", default="1,2,4,8,16,32,64")
a = p.parse_args()
nets = {"10 Gbit/s": 10e9 / 8, "25 Gbit/s": 25e9 / 8, "100 Gbit/s": 100e9 / 8}


def step(n, bw):
    if n == 1:
        return a.compute_s
    return (a.compute_s / n + 2 * (n - 1) / n * a.gradient_bytes / bw
            + 2 * (n - 1) * a.latency_s + a.small_collectives * (n - 1) * a.latency_s)


ns = [int(x) for x in a.ns.split(",")]
print("| N | " + " | ".join(f"{k}: step ms (images/s)" for k in nets) + " |")
print("|---|" + "---|" * len(nets))
for n in ns:
    cells = []
    for bw in nets.values():
        s = step(n, bw)
        cells.append(f"{s * 1e3:.1f} ({a.batch / s:.0f})")
    print(f"| {n} | " + " | ".join(cells) + " |")
for name, bw in nets.items():
    best = min(range(1, 257), key=lambda n: step(n, bw))
    half = max(n for n in range(1, 257) if a.compute_s / (n * step(n, bw)) >= 0.5)
    print(f"{name}: fastest at N = {best} ({step(best, bw) * 1e3:.1f} ms), "
          f"efficiency >= 50 % up to N = {half}")
