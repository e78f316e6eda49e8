#!/usr/bin/env python3
"""The full-size FaceNet frozen graph (≈95 MB, built on demand, never committed): import into
.fmodel against TensorFlow's own GraphDef parse + import_graph_def, and batch-1 latency of
`fmodel bench` against a TensorFlow session on the same graph. Alternating rounds, medians.

    swift build -c release --static-swift-stdlib && Tools/.venv/bin/python Benchmarks/tensorflow_graph.py [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from release_build import FMODEL, OUT, ROOT, require_fmodel

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
PB = os.path.join(OUT, "facenet.pb")


def fmodel_import(tmp):
    out = os.path.join(tmp, "facenet.fmodel")
    t = time.perf_counter()
    subprocess.run([FMODEL, "import", PB, "--inputs", "input:?x160x160x3", "-o", out], check=True, capture_output=True)
    return time.perf_counter() - t, out


def tf_import():
    import tensorflow as tf
    t = time.perf_counter()
    g = tf.compat.v1.GraphDef()
    with open(PB, "rb") as f:
        g.ParseFromString(f.read())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(g, name="")
    return time.perf_counter() - t, graph


def tf_latency(graph, iterations=20):
    import numpy as np
    import tensorflow as tf
    sess = tf.compat.v1.Session(graph=graph)
    feed = {"input:0": np.random.default_rng(1).uniform(-1, 1, (1, 160, 160, 3)).astype(np.float32), "phase_train:0": False}
    sess.run("embeddings:0", feed)
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        sess.run("embeddings:0", feed)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    require_fmodel()
    if not os.path.exists(PB):
        subprocess.run([sys.executable, os.path.join(ROOT, "Tools", "fixtures", "make_fixtures.py"), "--full-facenet-pb", PB], check=True)
    ours_import, theirs_import, ours_ms, theirs_ms = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            s, fm = fmodel_import(tmp)
            ours_import.append(s)
            s, graph = tf_import()
            theirs_import.append(s)
            bench = subprocess.run([FMODEL, "bench", fm, "--batch", "1", "--iterations", "20", "--json"], check=True, capture_output=True, text=True)
            ours_ms.append(json.loads(bench.stdout)["median_ms"])
            theirs_ms.append(tf_latency(graph))
    m = statistics.median
    print(f"FaceNet frozen graph {os.path.getsize(PB) / 1e6:.1f} MB, {args.rounds} alternating rounds (medians, min-max)")
    print(f"{'':34}{'fmodel':>20}{'TensorFlow':>20}{'ratio':>8}")
    print(f"{'import .pb (s)':34}{m(ours_import):>10.3f} ({min(ours_import):.2f}-{max(ours_import):.2f}){m(theirs_import):>10.3f} ({min(theirs_import):.2f}-{max(theirs_import):.2f}){m(ours_import) / m(theirs_import):>8.2f}")
    print(f"{'batch-1 latency (ms)':34}{m(ours_ms):>10.2f} ({min(ours_ms):.1f}-{max(ours_ms):.1f}){m(theirs_ms):>10.2f} ({min(theirs_ms):.1f}-{max(theirs_ms):.1f}){m(ours_ms) / m(theirs_ms):>8.2f}")
    print("fmodel's import includes writing the .fmodel; TensorFlow's is ParseFromString + import_graph_def.")


if __name__ == "__main__":
    main()
