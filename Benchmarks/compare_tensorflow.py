#!/usr/bin/env python3
"""fmodel's runtime side by side with TensorFlow on the same model, batch 1 and 32.

    Tools/fixtures/setup.sh && swift build -c release --static-swift-stdlib
    Tools/.venv/bin/python Benchmarks/compare_tensorflow.py [MODEL.h5] [--rounds 3]

MODEL defaults to ../shared/models/reference_multitask.h5 when present, else the committed
fixture Tests/Fixtures/multitask_nested.h5. The contenders alternate round by round on the same
machine; each round times `fmodel bench` (in-process inference, after one warm-up) and
TensorFlow's traced `model(x, training=False)` (tf.function) on seeded inputs of the same shape. Prints medians,
min-max and the ratio fmodel/TensorFlow (below 1: fmodel is faster).
"""
import argparse
import json
import os
import statistics
import subprocess
import time

from release_build import ROOT, require_fmodel

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_MODEL = os.path.join(ROOT, "..", "shared", "models", "reference_multitask.h5")
FIXTURE_MODEL = os.path.join(ROOT, "Tests", "Fixtures", "multitask_nested.h5")


def fmodel_round(binary, model, batch, iterations):
    out = subprocess.run([binary, "bench", model, "--batch", str(batch), "--iterations", str(iterations), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["median_ms"]


def tf_round(model, x, iterations):
    model(x)
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        y = model(x)
        _ = [t_.numpy() for t_ in (y if isinstance(y, list) else [y])]
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batches", default="1,32")
    args = ap.parse_args()
    model_path = args.model or (SHARED_MODEL if os.path.exists(SHARED_MODEL) else FIXTURE_MODEL)
    binary = require_fmodel()
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras
    tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count())
    keras_model = keras.models.load_model(model_path, compile=False, safe_mode=False)
    # A traced graph, as TensorFlow serves a model: eager calls would add ~0.3 s of Python.
    model = tf.function(lambda x: keras_model(x, training=False), reduce_retracing=True)
    model.input_shape = keras_model.input_shape
    print(f"model: {model_path}")
    print(f"machine: {os.cpu_count()} cores; TensorFlow {tf.__version__}")
    print(f"{'batch':>5} {'fmodel ms':>22} {'TensorFlow ms':>22} {'ratio':>7}")
    for batch in [int(b) for b in args.batches.split(",")]:
        iterations = 20 if batch == 1 else 4
        shape = (batch,) + tuple(model.input_shape[1:])
        x = tf.constant(np.random.default_rng(42).uniform(-1, 1, shape).astype(np.float32))
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(fmodel_round(binary, model_path, batch, iterations))
            theirs.append(tf_round(model, x, iterations))
        mo, mt = statistics.median(ours), statistics.median(theirs)
        print(f"{batch:>5} {mo:>8.2f} ({min(ours):.1f}-{max(ours):.1f}) {mt:>8.2f} ({min(theirs):.1f}-{max(theirs):.1f}) {mo / mt:>7.2f}")


if __name__ == "__main__":
    main()
