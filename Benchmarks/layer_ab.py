#!/usr/bin/env python3
"""Two fmodel arms on one model, layer group by layer group: `fmodel bench --profile --json` of
each, alternating process by process, the per-layer times summed over each group (a regular
expression on the layer names) and the medians over the rounds printed side by side with B/A.
On this noisy machine a group's time moves less than the whole model's, and an untouched group
in the same run shows how far the phase moved. How the runtime's steps were judged layer by
layer (the whole model: ab.sh).

    Benchmarks/layer_ab.py A B MODEL [--batch 32] [--iterations 4] [--rounds 5] [--group REGEX ...]

An arm is a path to a build (copy .build/release/fmodel aside before a change), optionally
followed by environment settings after a colon: `.build/release/fmodel:FMODEL_NO_LINE_CONV=1`
runs the same build with that variable set (several: comma-separated).

    Benchmarks/layer_ab.py .build/release/fmodel:FMODEL_NO_LINE_CONV=1 .build/release/fmodel \\
        Benchmarks/out/multitask.fmodel --group 1x7 --group 7x1 --group Conv2d_4b
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys


def arm(spec):
    path, _, settings = spec.partition(":")
    env = dict(os.environ)
    for setting in filter(None, settings.split(",")):
        key, _, value = setting.partition("=")
        env[key] = value
    return spec, path, env


def profile(path, env, model, batch, iterations):
    if not os.access(path, os.X_OK):
        sys.exit(f"{path}: not an executable fmodel build")
    out = subprocess.run([path, "bench", model, "--batch", str(batch), "--iterations", str(iterations), "--profile", "--json"],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"{path} bench failed ({out.returncode}): {out.stderr.strip()}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--group", action="append", default=[], help="regular expression on layer names (repeatable)")
    args = ap.parse_args()
    arms = [arm(args.a), arm(args.b)]
    groups = args.group or ["."]
    rows = {spec: [] for spec, _, _ in arms}
    for r in range(args.rounds):
        for spec, path, env in arms:
            d = profile(path, env, args.model, args.batch, args.iterations)
            sums = {g: sum(l["ms"] for l in d["layers"] if re.search(g, l["layer"])) for g in groups}
            rows[spec].append((d["median_ms"], sums))
        print(f"  round {r + 1}/{args.rounds}", file=sys.stderr)
    med = {spec: (statistics.median(m for m, _ in rs), {g: statistics.median(s[g] for _, s in rs) for g in groups})
           for spec, rs in rows.items()}
    (a, (am, ag)), (b, (bm, bg)) = med.items()
    print(f"batch {args.batch}, {args.rounds} alternating rounds, medians (ms):  A = {a}   B = {b}")
    print(f"  {'group':40s} {'A':>10s} {'B':>10s} {'B/A':>7s}")
    for g in groups:
        print(f"  {g:40s} {ag[g]:10.3f} {bg[g]:10.3f} {bg[g] / ag[g] if ag[g] else float('nan'):7.3f}")
    print(f"  {'whole model (bench median)':40s} {am:10.2f} {bm:10.2f} {bm / am:7.3f}")


if __name__ == "__main__":
    main()
