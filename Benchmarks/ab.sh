#!/usr/bin/env bash
# A/B of two fmodel builds on one model: `fmodel bench` of each, alternating for ROUNDS rounds;
# prints the medians of the rounds (min-max), the ratio B/A of the medians, and the median of
# the ratios within each round (where the two ran a moment apart). How the runtime's steps were
# judged on this noisy machine (copy .build/release/fmodel aside before a change).
#
#   Benchmarks/ab.sh A_FMODEL B_FMODEL MODEL [BATCH=1] [ITERATIONS=100] [ROUNDS=5]
set -euo pipefail
a=$1; b=$2; model=$3; batch=${4:-1}; iterations=${5:-100}; rounds=${6:-5}
median() { "$1" bench "$model" --batch "$batch" --iterations "$iterations" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['median_ms'])"; }
for _ in $(seq "$rounds"); do echo "$(median "$a") $(median "$b")"; done | python3 -c "
import statistics, sys
rows = [list(map(float, line.split())) for line in sys.stdin]
a, b = [r[0] for r in rows], [r[1] for r in rows]
ma, mb = statistics.median(a), statistics.median(b)
per = [y / x for x, y in zip(a, b)]
print(f'A {ma:.2f} ms ({min(a):.2f}-{max(a):.2f})  B {mb:.2f} ms ({min(b):.2f}-{max(b):.2f})  B/A {mb / ma:.3f}  '
      f'per round {statistics.median(per):.3f} ({min(per):.3f}-{max(per):.3f})')"
