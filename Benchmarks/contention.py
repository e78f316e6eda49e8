#!/usr/bin/env python3
"""How much a noisy neighbour slows fmodel beside ONNX Runtime and TFLite, batch 1, the
multi-task model: each contender alone, then with `neighbour.c` on the last core for 2 ms of
every 10, busy on the CPU alone or copying through memory (which also evicts the shared L3).
Conditions and contenders alternate round by round; medians, each one's slowdown against its
own quiet figure, and fmodel/peer per condition. A virtual machine's slow phases come from such
neighbours; this asks whether either kind costs fmodel more than its peers. The machine's own
phase moves the answer: compare several runs (README, batch 1 against ONNX Runtime).

    Tools/.venv/bin/python Benchmarks/contention.py [--rounds 5] [--on 2] [--off 8]

Needs the models and conversions `peers.sh` makes."""
import argparse
import os
import statistics
import subprocess
import time

from contenders import fmodel_runner, log, ort_runner, tflite_runner
from release_build import OUT, ROOT, require_fmodel, require_models

NEIGHBOUR = os.path.join(OUT, "neighbour")


def build_neighbour():
    source = os.path.join(ROOT, "Benchmarks", "neighbour.c")
    if not os.path.exists(NEIGHBOUR) or os.path.getmtime(NEIGHBOUR) < os.path.getmtime(source):
        subprocess.run(["gcc", "-O2", source, "-o", NEIGHBOUR], check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--on", type=float, default=2, help="ms the neighbour is busy in each period")
    ap.add_argument("--off", type=float, default=8, help="ms it sleeps")
    args = ap.parse_args()
    require_fmodel()
    setups = [("fmodel", fmodel_runner, os.path.join(OUT, "multitask.fmodel")),
              ("ONNX Runtime", ort_runner, os.path.join(OUT, "peers", "multitask.onnx")),
              ("TFLite", tflite_runner, os.path.join(OUT, "peers", "multitask.tflite"))]
    require_models(*(path for _, _, path in setups))
    build_neighbour()
    contenders = {name: runner(path) for name, runner, path in setups}
    conditions = ["quiet", "cpu", "memory"]
    core = str(os.cpu_count() - 1)
    samples = {(c, n): [] for c in conditions for n in contenders}
    for r in range(args.rounds):
        for condition in conditions:
            neighbour = None if condition == "quiet" else subprocess.Popen(
                ["taskset", "-c", core, NEIGHBOUR, condition, f"{args.on:g}", f"{args.off:g}"])
            try:
                time.sleep(0.2)
                for name, run in contenders.items():
                    samples[(condition, name)].append(run(1, 20)["median_ms"])
            finally:
                if neighbour:
                    neighbour.kill()
                    neighbour.wait()
        log(f"  round {r + 1}/{args.rounds}")
    print(f"\nMulti-task model, batch 1, {args.rounds} alternating rounds; a neighbour on core {core} busy "
          f"{args.on:g} ms of every {args.on + args.off:g} (medians in ms; slowdown against the "
          f"contender's own quiet median; fmodel/peer in the same condition)")
    quiet = {n: statistics.median(samples[("quiet", n)]) for n in contenders}
    for condition in conditions:
        m = {n: statistics.median(samples[(condition, n)]) for n in contenders}
        cells = "  ".join(f"{n} {m[n]:6.2f} (×{m[n] / quiet[n]:.2f})" for n in contenders)
        ratios = ", ".join(f"/{n} {m['fmodel'] / m[n]:.2f}" for n in contenders if n != "fmodel")
        print(f"  {condition:<7} {cells}   fmodel{ratios}")


if __name__ == "__main__":
    main()
