#!/usr/bin/env python3
"""Where a running fmodel's resident memory is, by mapping: the model file's pages, the heap and
anonymous memory (copied kernels, activations), JIT code (anonymous and executable), libdnnl's
pages and the other libraries'. Samples `fmodel bench` in its steady state (its resident set
unchanged for a second, after at least two) beside the same process just before it maps the
model.

    python3 Benchmarks/resident_memory.py [MODEL] [--batch N]

MB are 10^6 bytes, as the weights are counted (`weight_mb` of `fmodel bench --json`)."""
import argparse
import collections
import json
import os
import re
import subprocess
import time

from release_build import FMODEL, OUT, require_fmodel, require_models


def kind(name, perms):
    """The part of memory a mapping belongs to."""
    base = os.path.basename(name)
    if name.endswith(".fmodel"):
        return "model file"
    if name == "" or name.startswith("["):
        if name == "[stack]" or name.startswith("[v"):
            return "stacks, vdso"
        return "JIT code (anonymous, executable)" if "x" in perms else "heap and anonymous"
    if base.startswith("libdnnl"):
        return "libdnnl"
    return "fmodel's code" if base == "fmodel" else "other libraries"


def resident(pid):
    """MB resident by kind of mapping, from /proc/PID/smaps."""
    parts = collections.Counter()
    current = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                fields = line.split(maxsplit=5)
                current = kind(fields[5].strip() if len(fields) > 5 else "", fields[1])
            elif line.startswith("Rss:"):
                parts[current] += int(line.split()[1]) * 1024 / 1e6
    return parts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default=os.path.join(OUT, "multitask.fmodel"))
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    require_fmodel()
    require_models(args.model)
    info = json.loads(subprocess.run([FMODEL, "bench", args.model, "--batch", str(args.batch), "--iterations", "2", "--json"],
                                     check=True, capture_output=True, text=True).stdout)
    before = None
    p = subprocess.Popen([FMODEL, "bench", args.model, "--batch", str(args.batch), "--iterations", "100000"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start, last, since = time.monotonic(), None, time.monotonic()
        while True:
            # The process before the model: the last sample without the model file mapped.
            sample = resident(p.pid)
            if "model file" not in sample:
                before = sample
                continue
            time.sleep(0.2)
            rss = sum(resident(p.pid).values())
            if rss != last:
                last, since = rss, time.monotonic()
            elif time.monotonic() - since > 1 and time.monotonic() - start > 2:
                break
        steady = resident(p.pid)
    finally:
        p.kill()
        p.wait()
    print(f"{os.path.basename(args.model)} at batch {args.batch}: {info['weight_mb']:.1f} MB of weights, "
          f"{info['activation_mb']:.1f} MB of activation buffers (fmodel bench --json)")
    print(f"  {'resident, MB':<36}{'steady':>8}{'at start':>10}{'added':>8}")
    for k in sorted(set(steady) | set(before), key=lambda k: -steady.get(k, 0)):
        s, b = steady.get(k, 0), before.get(k, 0)
        print(f"  {k:<36}{s:8.1f}{b:10.1f}{s - b:8.1f}")
    total, base = sum(steady.values()), sum(before.values())
    print(f"  {'all':<36}{total:8.1f}{base:10.1f}{total - base:8.1f}")


if __name__ == "__main__":
    main()
