#!/usr/bin/env python3
"""How far weights deflate, as `zip -r` (zlib level 6) would deflate them in a `.keras`: the
figure behind the importer's 64:1 bound on a deflated entry (ZipArchive.maxInflation).

    python3 Benchmarks/deflate_ratio.py [FILE ...]

Without arguments: the trained model in ../shared and the seeded full-size `.h5` that
`Benchmarks/peers.sh` builds, each skipped when absent."""
import os
import sys
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DEFAULTS = [os.path.join(ROOT, "..", "shared", "models", "reference_multitask.h5"),
            os.path.join(ROOT, "Benchmarks", "out", "full.h5")]

for path in sys.argv[1:] or DEFAULTS:
    if not os.path.exists(path):
        print(f"{path}: absent, skipped")
        continue
    with open(path, "rb") as f:
        data = f.read()
    packed = len(zlib.compress(data, 6))
    print(f"{path}: {len(data):,} -> {packed:,} bytes deflated ({len(data) / packed:.2f}:1)")
