#!/usr/bin/env python3
"""Feeds fmodel corrupted copies of its fixtures and reports every case that ends badly: a crash
(a signal, an exit code other than 0, 1 or 2), a hang (no end within --timeout s), or a process
that grew past --max-rss-mb. Each mutation is one of: bits flipped, a run of bytes set to
0x00/0xFF/0x7F/0x80, a cut, a 64-bit length planted, a run copied from elsewhere in the file.

    python3 Tools/fuzz_inputs.py [--seed 1] [--cases 2000] [--timeout 60] [--max-rss-mb 1000] [--keep DIR]

Needs a release build (`swift build -c release --static-swift-stdlib`) and nothing else (no
TensorFlow). Not part of the tests: it takes minutes. Its inputs: the Keras, TensorFlow and
.npy fixtures, an .fmodel imported from one, and images of Tests/Fixtures/images (an RGB and a
16-bit PNG, a baseline and a progressive JPEG).
The cases it found are kept as fixtures (Tests/Fixtures/bad/:
global_heap_loop.h5, vlen_length.h5, huge_element.h5) with tests of their own. Exits 1 when a
case ended badly; those are copied to --keep.
"""
import argparse
import collections
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMODEL = os.path.join(ROOT, ".build", "release", "fmodel")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")


def targets(work):
    """(name, file to mutate, command line with {} for the mutated copy)."""
    tiny = os.path.join(work, "tiny.fmodel")
    subprocess.run([FMODEL, "import", f"{FIXTURES}/tiny_residual.h5", "-o", tiny], check=True, capture_output=True)
    out = os.path.join(work, "out")
    return [
        ("tiny_residual.h5", f"{FIXTURES}/tiny_residual.h5", ["inspect", "{}"]),
        ("graft_heads.h5", f"{FIXTURES}/graft_heads.h5", ["inspect", "{}"]),
        ("keras3_multitask.keras", f"{FIXTURES}/keras3_multitask.keras", ["inspect", "{}"]),
        ("tf2_keras_frozen.pb", f"{FIXTURES}/tf2_keras_frozen.pb", ["inspect", "{}"]),
        ("tf1_facenet_small.pb", f"{FIXTURES}/tf1_facenet_small.pb",
         ["run", "{}", "--inputs", "input:?x64x64x3", "--input", f"{FIXTURES}/tf1_facenet_small.input.npy", "--out", out]),
        ("tiny.fmodel", tiny, ["run", "{}", "--input", f"{FIXTURES}/tiny_residual.input.npy", "--out", out]),
        ("input.npy", f"{FIXTURES}/tiny_residual.input.npy", ["run", tiny, "--input", "{}", "--out", out]),
    ] + [(name, f"{FIXTURES}/images/{file}", ["preprocess", "{}", "-o", os.path.join(work, "image.npy")])
         for name, file in [("gradient.png", "gradient_png.png"), ("gradient_16bit.png", "gradient_16bit_png.png"),
                            ("gradient.jpg", "gradient.jpg"), ("gradient_progressive.jpg", "gradient_progressive.jpg")]]


# An image of about a kilobyte may declare at most 2048² pixels (12 MB of RGB): a decode past
# this resident size is bloat, whatever --max-rss-mb allows the imports.
IMAGE_MAX_RSS_MB = 200


def mutate(data, rng):
    d = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        i, n = rng.randrange(len(d)), rng.randint(1, 64)
        d[i:i + n] = bytes([rng.choice([0, 0xFF, 0x7F, 0x80])]) * len(d[i:i + n])
    elif kind == 2:
        d = d[:rng.randrange(len(d))]
    elif kind == 3:
        i = rng.randrange(len(d) - 8)
        d[i:i + 8] = struct.pack("<Q", rng.choice([2**63 - 1, 2**32 - 1, 2**40, 2**64 - 1, 2**31]))
    else:
        i, j, n = rng.randrange(len(d)), rng.randrange(len(d)), rng.randint(1, 256)
        d[i:i + n] = d[j:j + n]
    return bytes(d), ["flip", "run", "cut", "length", "copy"][kind]


def wait(p, timeout):
    """The exit code (negative: the signal; "timeout" when it was ended) and the peak resident MB
    of `p` and the processes it waited for (its import worker), from wait4."""
    deadline, code = time.monotonic() + timeout, None
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(p.pid, 9)
            _, status, usage = os.wait4(p.pid, 0)
            code = "timeout"
            break
        time.sleep(0.01)
    p.returncode = os.waitstatus_to_exitcode(status)
    return (code or p.returncode), usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--max-rss-mb", type=float, default=1000)
    ap.add_argument("--keep", default=os.path.join(tempfile.gettempdir(), "fmodel-fuzz"))
    args = ap.parse_args()
    if not os.access(FMODEL, os.X_OK):
        sys.exit(f"no release build at {FMODEL}: run swift build -c release --static-swift-stdlib")
    rng = random.Random(args.seed)
    outcomes, bad = collections.Counter(), 0
    with tempfile.TemporaryDirectory() as work:
        cases = targets(work)
        for n in range(args.cases):
            name, source, command = cases[n % len(cases)]
            with open(source, "rb") as f:
                data, kind = mutate(f.read(), rng)
            case = os.path.join(work, "case" + os.path.splitext(source)[1])
            with open(case, "wb") as f:
                f.write(data)
            line = [FMODEL] + [case if a == "{}" else a for a in command]
            start = time.monotonic()
            with tempfile.TemporaryFile() as stderr:
                # A session of its own, so that a hang's whole process group (the import worker
                # too) can be ended.
                p = subprocess.Popen(line, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
                code, rss_mb = wait(p, args.timeout)
                stderr.seek(0)
                err = stderr.read()
            seconds = time.monotonic() - start
            outcomes[(name, str(code))] += 1
            bound = min(args.max_rss_mb, IMAGE_MAX_RSS_MB) if command[0] == "preprocess" else args.max_rss_mb
            if code not in (0, 1, 2) or rss_mb > bound:
                bad += 1
                os.makedirs(args.keep, exist_ok=True)
                kept = os.path.join(args.keep, f"seed{args.seed}_case{n}_{name}")
                shutil.copy(case, kept)
                message = err.decode(errors="replace").strip().splitlines()[:2]
                print(f"BAD {name} ({kind}): exit {code}, {seconds:.1f} s, peak RSS {rss_mb:.0f} MB -> {kept}\n    {message}",
                      flush=True)
    print(f"seed {args.seed}: {args.cases} cases, {bad} ended badly; exit codes by file:")
    for (name, code), count in sorted(outcomes.items()):
        print(f"  {name:24} exit {code:>7}: {count}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
