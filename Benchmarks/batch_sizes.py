#!/usr/bin/env python3
"""One fmodel build at several batch sizes, per the same number of images: `fmodel bench` of
each size, alternating process by process, its median scaled to 32 images, then the medians
of the rounds with min-max. How the pass size of `Sources/FModelRuntime/BatchPasses.swift` was
looked at: run with FMODEL_NO_PASSES=1 every size is one pass, so the sizes compare a layer's
activations in and out of the cache.

    Benchmarks/batch_sizes.py BUILD[:VAR=1,...] [MODEL] [--batches 32,8,11,6] [--rounds 7]

The arm is a path to a build, optionally followed by environment settings after a colon, as
for layer_ab.py."""
import argparse
import json
import os
import statistics
import subprocess
import sys

from release_build import OUT, require_models


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("arm")
    ap.add_argument("model", nargs="?", default=os.path.join(OUT, "multitask.fmodel"))
    ap.add_argument("--batches", default="32,8,11,6")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    path, _, settings = args.arm.partition(":")
    env = dict(os.environ)
    for setting in filter(None, settings.split(",")):
        key, _, value = setting.partition("=")
        env[key] = value
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} is not an executable build")
    require_models(args.model)
    sizes = [int(b) for b in args.batches.split(",")]
    per32 = {b: [] for b in sizes}
    for _ in range(args.rounds):
        for b in sizes:
            out = subprocess.run([path, "bench", args.model, "--batch", str(b), "--iterations", str(max(2, 96 // b)), "--json"],
                                 check=True, capture_output=True, text=True, env=env).stdout
            per32[b].append(json.loads(out)["median_ms"] / b * 32)
    print(f"{args.arm}, {args.rounds} alternating rounds: ms per 32 images (median of the rounds, min-max)")
    for b in sizes:
        t = per32[b]
        print(f"  batch {b:4d}: {statistics.median(t):8.1f} ({min(t):.1f}-{max(t):.1f})")


if __name__ == "__main__":
    main()
