#!/usr/bin/env python3
"""How `fmodel shrink` plans scale with the number of layers: a chain of N dense layers 16 wide
(ReLU, no bias, seeded uniform kernels in ±0.6), built with tf-keras when absent, imported once,
then shrunk with `--target-mb 0.1 --max-output-change 1000` (out of reach, so the planner tries
every move) by each fmodel given, the builds alternating; prints wall seconds per run.

    swift build -c release --static-swift-stdlib && Tools/.venv/bin/python Benchmarks/shrink_chain.py \\
        [--layers 500,2000] [--rounds 2] [OTHER_FMODEL ...]

Each build is given as a path to its `fmodel` (its `fmodel-keras` beside it, or FMODEL_HELPER);
the release build of the checkout is always first.
"""
import argparse
import os
import subprocess
import sys
import time

from release_build import FMODEL, OUT, require_fmodel


def chain(layers):
    """Benchmarks/out/chain_N.h5, built when absent."""
    path = os.path.join(OUT, f"chain_{layers}.h5")
    if not os.path.exists(path):
        import tf_keras as keras
        sys.setrecursionlimit(100_000)  # Keras walks a chain's layers recursively
        keras.utils.set_random_seed(5)
        model = keras.Sequential([keras.Input(shape=(16,))] + [
            keras.layers.Dense(16, activation="relu", use_bias=False,
                               kernel_initializer=keras.initializers.RandomUniform(-0.6, 0.6, seed=i))
            for i in range(layers)])
        os.makedirs(OUT, exist_ok=True)
        model.save(path)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("others", nargs="*", help="other fmodel builds to compare")
    ap.add_argument("--layers", default="500,2000")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    builds = [require_fmodel()] + args.others
    for layers in [int(n) for n in args.layers.split(",")]:
        model = chain(layers).replace(".h5", ".fmodel")
        subprocess.run([FMODEL, "import", chain(layers), "-o", model], check=True, capture_output=True)
        times = {b: [] for b in builds}
        for _ in range(args.rounds):
            for b in builds:
                start = time.monotonic()
                run = subprocess.run([b, "shrink", model, "-o", os.path.join(OUT, "chain_shrunk.fmodel"), "--target-mb", "0.1",
                                      "--max-output-change", "1000"], capture_output=True, text=True)
                times[b].append(time.monotonic() - start)
                if run.returncode not in (0, 1):
                    sys.exit(f"{b} shrink of {model}: exit {run.returncode}: {run.stderr[-500:]}")
        for b in builds:
            print(f"{layers:6d} layers  {b}: " + ", ".join(f"{t:.2f}" for t in times[b]) + " s")


if __name__ == "__main__":
    main()
