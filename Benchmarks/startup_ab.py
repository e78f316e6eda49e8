#!/usr/bin/env python3
"""Two fmodel builds from process start to the first output, alternating processes: medians
(min-max) of `bench --json`'s loading time, the time from start to the first output with and
without the first run and the benchmark's own /proc sampling, and the resident memory the first
output holds above the process. How the loading steps were judged (`ab.sh` times the steady
runs instead); copy `.build/release/fmodel` aside before a change.

    Benchmarks/startup_ab.py A_FMODEL B_FMODEL [MODEL] [--rounds 11]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from release_build import OUT, require_models


def sample(fmodel, model):
    start = time.monotonic()  # CLOCK_MONOTONIC, the clock `first_output_at` is on
    out = subprocess.run([fmodel, "bench", model, "--iterations", "3", "--json"],
                         capture_output=True, text=True, check=True).stdout
    o = json.loads(out)
    first = (o["first_output_at"] - start) * 1000
    return {
        "load ms": o["load_s"] * 1000,
        "first output ms": first,
        "without first run and sampling": first - o["first_run_ms"] - o["baseline_sample_ms"],
        "RSS at first output MB": o["rss_first_output_mb"] - o["rss_before_load_mb"],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("model", nargs="?", default=os.path.join(OUT, "multitask.fmodel"))
    p.add_argument("--rounds", type=int, default=11)
    args = p.parse_args()
    require_models(args.model)
    runs = {"A": [], "B": []}
    for r in range(args.rounds):
        print(f"  round {r + 1}/{args.rounds}", file=sys.stderr)
        for arm, build in (("A", args.a), ("B", args.b)):
            runs[arm].append(sample(build, args.model))
    print(f"{args.rounds} alternating processes each, medians (min-max):  A = {args.a}   B = {args.b}")
    for key in runs["A"][0]:
        a = [r[key] for r in runs["A"]]
        b = [r[key] for r in runs["B"]]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"  {key:32} A {ma:8.2f} ({min(a):.2f}-{max(a):.2f})   B {mb:8.2f} ({min(b):.2f}-{max(b):.2f})   B/A {mb / ma:.3f}")


if __name__ == "__main__":
    main()
