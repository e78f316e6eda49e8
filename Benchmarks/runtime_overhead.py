#!/usr/bin/env python3
"""What one inference spends outside the kernels, counted by callgrind (instruction counts
repeat on a noisy machine, wall times do not): calls to Swift's reference counting and object
allocation and to malloc/free per run, their share of the instructions executed, and the
functions that allocate.

    python3 Benchmarks/runtime_overhead.py [MODEL] [--runs 5] [--batch 1]

Runs `fmodel bench MODEL --iterations 1` and `--iterations 1+RUNS` under valgrind's callgrind
and divides the difference by RUNS, so loading, the first run and the primitives' making cancel
out. The binary is copied without its DWARF sections first: valgrind 3.19 cannot read the debug
information Swift 6 writes ("Possibly corrupted debuginfo file"), and symbols are enough here.
The instruction total includes OpenMP's threads spinning between parallel regions, which varies
from run to run (the call counts do not), so the shares are of a total a little too large.
Needs valgrind (apt). MODEL defaults to Benchmarks/out/multitask-int8.fmodel."""
import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

from release_build import FMODEL, OUT, require_fmodel, require_models
COUNTED = {
    "retain": r"swift_(unknownObject|bridgeObject)?[Rr]etain(_n)?",
    "release": r"swift_(unknownObject|bridgeObject)?[Rr]elease(_n)?",
    "Swift objects allocated": r"swift_allocObject",
    "malloc": r"malloc|calloc|realloc|posix_memalign|aligned_alloc|operator new(\[\])?\(unsigned long.*\)",
    "free": r"free|operator delete(\[\])?\(void\*.*\)",
}


def parse(path):
    """Calls per (caller, callee), the inclusive instructions of those calls, and the total."""
    names, edges, inclusive = {}, collections.Counter(), collections.Counter()
    fn = callee = None
    total = 0
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            kind, ident, name = m.groups()
            if name:
                # A function in a call cycle gets a suffix ('2) that differs from run to run.
                names[ident] = re.sub(r"'\d+$", "", name)
            if kind == "fn":
                fn = names.get(ident, ident)
            else:
                callee = names.get(ident, ident)
        elif line.startswith("calls="):
            edges[(fn, callee)] += int(line.split()[0][6:])
        elif line[:1] in "0123456789+-*" and callee is not None:
            parts = line.split()  # the line after calls=: that call's inclusive cost
            if len(parts) >= 2:
                inclusive[(fn, callee)] += int(parts[1])
            callee = None
        elif line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    return edges, inclusive, total


def callgrind(binary, model, iterations, batch, out):
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "bench", model,
                    "--iterations", str(iterations), "--batch", str(batch)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return parse(out)


def demangle(names):
    tool = shutil.which("swift-demangle")
    if not tool:
        return names
    out = subprocess.run([tool, "--simplified"], input="\n".join(names), capture_output=True, text=True).stdout
    lines = out.splitlines()
    return lines if len(lines) == len(names) else names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default=os.path.join(OUT, "multitask-int8.fmodel"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    require_fmodel()
    require_models(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        binary = os.path.join(tmp, "fmodel")
        subprocess.run(["strip", "--strip-debug", "-o", binary, FMODEL], check=True)
        print(f"{os.path.basename(args.model)}, batch {args.batch}: callgrind, 1 run and 1+{args.runs} runs", flush=True)
        a = callgrind(binary, args.model, 1, args.batch, os.path.join(tmp, "a.out"))
        b = callgrind(binary, args.model, 1 + args.runs, args.batch, os.path.join(tmp, "b.out"))
    n = args.runs
    (ea, ia, ta), (eb, ib, tb) = a, b

    def per_run(before, after, callee_test, caller_test):
        """The growth from 1 to 1+n runs over the matching (caller, callee) edges, per run."""
        return sum(v - before.get(e, 0) for e, v in after.items() if callee_test(e[1] or "") and caller_test(e[0] or "")) / n

    total = (tb - ta) / n
    print(f"instructions per run: {total / 1e6:.1f} M")
    any_counted = "|".join(f"(?:{p})" for p in COUNTED.values())

    def outside(caller):  # calls from outside the allocator and the reference counting
        return not re.fullmatch(any_counted, caller)

    for label, pattern in COUNTED.items():
        def matches(callee, pattern=pattern):
            return re.fullmatch(pattern, callee) is not None
        count, cost = per_run(ea, eb, matches, outside), per_run(ia, ib, matches, outside)
        print(f"  {label:24s} {count:7.0f} calls per run, {cost / 1e3:6.0f} k instructions ({cost / total:.3%})")
    new = per_run(ea, eb, lambda c: c.startswith("operator new"), outside)
    swift = per_run(ea, eb, lambda c: c == "malloc", lambda c: c == "swift_slowAlloc")
    print(f"  of the malloc-family calls: {new:.0f} to C++ operator new (oneDNN's state for each primitive run), "
          f"{swift:.0f} from Swift")
    print("  Swift objects allocated, by calling function (through the standard library's own), per run:")
    for name, count in demangle_top(callers(ea, eb, COUNTED["Swift objects allocated"], n)):
        print(f"    {count:6.0f}  {name[:110]}")


def callers(ea, eb, pattern, n):
    """Calls per run by caller; a standard-library caller (array growth, say) hands its calls on
    to its own callers in proportion, so the runtime's functions show."""
    per = collections.Counter()
    for (caller, callee), count in eb.items():
        if callee and re.fullmatch(pattern, callee):
            per[caller] += (count - ea.get((caller, callee), 0)) / n
    for _ in range(3):
        library = [c for c in per if c and c.startswith(("$ss", "$sS")) and per[c] > 0]
        for lib in library:
            into = {c: eb[(c, l)] - ea.get((c, l), 0) for (c, l) in eb if l == lib}
            calls = sum(v for v in into.values() if v > 0)
            if calls <= 0:
                continue
            moved = per.pop(lib)
            for c, v in into.items():
                if v > 0:
                    per[c] += moved * v / calls
    return [(c, v) for c, v in per.most_common(8) if v >= 1]


def demangle_top(rows):
    return list(zip(demangle([c or "?" for c, _ in rows]), [v for _, v in rows]))


if __name__ == "__main__":
    main()
