#!/usr/bin/env python3
"""How small `fmodel shrink` can go before the outputs drift: shrinks a model to a series of
targets with no output bound, runs original and shrunk on the same seeded inputs, and prints the
argmax agreement of the three heads and the age RMSE (Σ p·i) between them.

    swift build -c release --static-swift-stdlib && Tools/.venv/bin/python Benchmarks/shrink_drift.py [MODEL] [--targets 120,60,40,30,20]

MODEL defaults to Benchmarks/out/full.h5 (built by Benchmarks/shrink_full.sh).
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

from release_build import FMODEL, OUT, require_fmodel


def run(model, x_path, out):
    subprocess.run([FMODEL, "run", model, "--input", x_path, "--out", out], check=True, capture_output=True)
    return {h: np.load(os.path.join(out, h + ".npy")) for h in ("age", "gender", "ethnicity")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=os.path.join(OUT, "full.h5"))
    ap.add_argument("--targets", default="120,60,40,30,20")
    ap.add_argument("--samples", type=int, default=16)
    args = ap.parse_args()
    require_fmodel()
    if not os.path.exists(args.model):
        sys.exit(f"{args.model} is missing: run Benchmarks/shrink_full.sh first")
    with tempfile.TemporaryDirectory() as tmp:
        x = np.random.default_rng(7).normal(0, 1, (args.samples, 160, 160, 3)).astype(np.float32)
        x_path = os.path.join(tmp, "x.npy")
        np.save(x_path, x)
        ref = run(args.model, x_path, os.path.join(tmp, "ref"))
        ages = np.arange(117)
        print(f"{args.model}: {args.samples} seeded inputs")
        print(f"{'target MB':>10}{'size MB':>10}{'age agree':>11}{'gender agree':>14}{'ethnicity agree':>17}{'age RMSE':>10}")
        for t in args.targets.split(","):
            out = os.path.join(tmp, f"s{t}.fmodel")
            subprocess.run([FMODEL, "shrink", args.model, "--target-mb", t, "--max-output-change", "1", "--samples", "4", "-o", out],
                           check=True, capture_output=True)
            got = run(out, x_path, os.path.join(tmp, f"o{t}"))
            agree = {h: (ref[h].argmax(1) == got[h].argmax(1)).mean() * 100 for h in ref}
            rmse = np.sqrt((((ref["age"] - got["age"]) @ ages) ** 2).mean())
            print(f"{t:>10}{os.path.getsize(out) / 1e6:>10.2f}{agree['age']:>10.1f}%{agree['gender']:>13.1f}%{agree['ethnicity']:>16.1f}%{rmse:>10.3f}")


if __name__ == "__main__":
    main()
