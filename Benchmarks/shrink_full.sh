#!/usr/bin/env bash
# The full-size case: FaceNet at full width cut after AvgPool with the seed's dense heads, saved
# by tf-keras with Adam state (≈478 MB, built on demand by the fixture script, never committed),
# shrunk to the seed's 182 MB and to a deeper 60 MB. Reports wall time and peak memory (of the
# command and its import worker) against the input's size.
#
#   Benchmarks/shrink_full.sh            # needs Tools/.venv (Tools/fixtures/setup.sh) once, to build full.h5
set -euo pipefail
cd "$(dirname "$0")/.."
full=Benchmarks/out/full.h5
mkdir -p Benchmarks/out
if [ ! -f "$full" ]; then
  [ -x Tools/.venv/bin/python ] || Tools/fixtures/setup.sh
  Tools/.venv/bin/python Tools/fixtures/make_fixtures.py --full-size "$full"
fi
swift build -c release --static-swift-stdlib >/dev/null
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)"; exit 2; }
input=$(stat -c %s "$full")
printf '%-10s %10s %10s %12s %14s\n' target size_MB seconds peak_MB peak/input
for target in 182 60; do
  out=Benchmarks/out/full_${target}.fmodel
  /usr/bin/time -f '%e %M' -o Benchmarks/out/time.txt .build/release/fmodel shrink "$full" --target-mb "$target" -o "$out" > Benchmarks/out/shrink_${target}.txt
  read -r seconds kb < Benchmarks/out/time.txt
  size=$(stat -c %s "$out")
  awk -v t="$target" -v s="$size" -v e="$seconds" -v k="$kb" -v i="$input" \
    'BEGIN { printf "%-10s %10.2f %10.2f %12.1f %14.2f\n", t, s/1e6, e, k*1024/1e6, k*1024/i }'
done
