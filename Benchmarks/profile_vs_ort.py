#!/usr/bin/env python3
"""Layer by layer: fmodel's `bench --profile` beside ONNX Runtime's own profiler, on the same
model at one batch size, largest differences first. Where `peers.py` says how far apart the two
are, this says where.

    Tools/.venv/bin/python Benchmarks/profile_vs_ort.py [--batch 1] [--iterations 60] [--rounds 3] [--groups]

With --rounds R the two alternate R times (per-layer medians over the rounds), so that a phase
of the machine weighs on both; --groups sums the repeated blocks' layers (Block17's 1×7s of all
ten blocks as one row).

Reads the models `peers.sh` made: Benchmarks/out/multitask.fmodel and its tf2onnx conversion
Benchmarks/out/peers/multitask.onnx (Keras layer names survive both). ONNX Runtime's node times
come from its profiler (per node, median over the iterations after the first five); a fused ORT
node is named after the layer whose output it writes, and a Block's "ScaleSum" node holds the
1×1 convolution fmodel fuses with the scale and the residual add. Both profilers add their own
overhead, so the sums exceed the plain medians."""
import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import tempfile

import numpy as np
import onnxruntime as ort

from release_build import FMODEL, OUT, require_fmodel, require_models

THREADS = 2


def ort_layers(path, batch, iterations):
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = np.random.default_rng(0).standard_normal((batch, 160, 160, 3)).astype(np.float32)
        for _ in range(iterations):
            session.run(None, {name: x})
        events = json.load(open(session.end_profiling()))
    runs = collections.defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            runs[e["name"][: -len("_kernel_time")]].append(e["dur"] / 1000)
    layers = collections.Counter()
    for node, times in runs.items():
        layers[layer_of(node)] += statistics.median(times[5:] if len(times) > 10 else times)
    return layers


def layer_of(node):
    """The Keras layer an ORT node computes: its output tensor's first path component."""
    name = node.replace("fused ", "")
    name = re.sub(r"^[^/]*/", "", name) if "/" in name else name
    name = name.split("/")[0].split(":")[0]
    return name.replace("_ScaleSum", "_Conv2d_1x1")


def fmodel_layers(path, batch, iterations):
    out = subprocess.run([FMODEL, "bench", path, "--batch", str(batch),
                          "--iterations", str(iterations), "--profile", "--json"],
                         check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    layers = collections.Counter({re.sub(r"_leaky$", "", l["layer"]): l["ms"] for l in report["layers"]})
    chains = {l["layer"]: l["chain"] for l in report["layers"] if l.get("chain")}
    return report["median_ms"], layers, chains


def merge_chains(fm, on, chains):
    """One row per oneDNN chain: fmodel lists it under its first layer; ORT's nodes of its layers
    (named after a layer, or after its conv before the activation) are summed into that row."""
    for first, members in chains.items():
        name = f"{first} … {members[-1]} (chain of {len(members)})"
        fm[name] = fm.pop(first)
        for k in list(on):
            if k in members or k + "_Activation" in members:
                on[name] += on.pop(k)


def grouped(layers):
    """The layers of the repeated blocks summed over the blocks: `Block17_3_Branch_1_…` counts
    as `Block17 Branch_1_…`."""
    out = collections.Counter()
    for name, ms in layers.items():
        out[re.sub(r"^(Block\d+)_\d+_", r"\1 ", name)] += ms
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--groups", action="store_true")
    args = ap.parse_args()
    fm_path = os.path.join(OUT, "multitask.fmodel")
    ort_path = os.path.join(OUT, "peers", "multitask.onnx")
    require_fmodel()
    require_models(fm_path, ort_path)
    medians, fms, ons = [], [], []
    for _ in range(args.rounds):
        median, fm, chains = fmodel_layers(fm_path, args.batch, args.iterations)
        on = ort_layers(ort_path, args.batch, args.iterations)
        merge_chains(fm, on, chains)
        if args.groups:
            fm, on = grouped(fm), grouped(on)
        medians.append(median)
        fms.append(fm)
        ons.append(on)
    median = statistics.median(medians)
    fm = collections.Counter({k: statistics.median(r[k] for r in fms) for k in set().union(*fms)})
    on = collections.Counter({k: statistics.median(r[k] for r in ons) for k in set().union(*ons)})
    print(f"multi-task model, batch {args.batch}: fmodel median {median:.2f} ms; layer sums: fmodel {sum(fm.values()):.2f} ms, "
          f"ONNX Runtime {sum(on.values()):.2f} ms (profiled)")
    rows = sorted(((fm[k] - on[k], k) for k in set(fm) | set(on)), reverse=True)
    print(f"  {'fmodel − ORT':>12s} {'fmodel':>8s} {'ORT':>8s}  layer (ms)")
    shown = rows if len(rows) <= 2 * args.rows else rows[: args.rows] + [(None, "…")] + rows[-args.rows:]
    for d, k in shown:
        if d is None:
            print("  …")
        else:
            print(f"  {d:+12.3f} {fm[k]:8.3f} {on[k]:8.3f}  {k}")


if __name__ == "__main__":
    main()
