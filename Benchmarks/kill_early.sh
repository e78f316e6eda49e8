#!/bin/bash
# What `kill -9` of fmodel early in a Keras import leaves in TMPDIR: for each of 1, 2 … 20 ms
# (ROUNDS times each), a weights-only `.h5` import with `--config` and an `inspect` of an `.h5`
# are started in a fresh TMPDIR and killed that long after their start; prints how many of the
# kills left anything there. (7eeaa91 left the scratch directory, with the config in it, 3
# times in 40 for each; the worker now makes it.)
#
#     Benchmarks/kill_early.sh [FMODEL (.build/release/fmodel)] [ROUNDS (2)]
set -u
cd "$(dirname "$0")/.."
fmodel=${1:-.build/release/fmodel} rounds=${2:-2} fixtures=Tests/Fixtures
out=$(mktemp -d) scratch=$(mktemp -d)  # the output's folder outside fmodel's TMPDIR
export TMPDIR=$scratch
trap 'rm -rf "$scratch" "$out"' EXIT
for command in "import $fixtures/multitask_nested_weights.h5 --config $fixtures/multitask_nested.json -o $out/m.fmodel" \
               "inspect $fixtures/multitask_flat.h5"; do
    left=0 kills=0
    for ((ms = 1; ms <= 20; ms++)); do
        for ((r = 0; r < rounds; r++)); do
            $fmodel $command > /dev/null 2>&1 &
            pid=$!
            sleep "$(printf '0.%03d' "$ms")"
            kill -9 $pid 2> /dev/null
            wait $pid 2> /dev/null
            sleep 0.2  # the worker, told by SIGTERM, removes what it made
            if [ -n "$(ls -A "$TMPDIR")" ]; then left=$((left + 1)); [ -n "${VERBOSE:-}" ] && echo "  at $ms ms: $(cd "$TMPDIR" && find . | tr "\n" " ")"; fi
            rm -rf "${TMPDIR:?}"/* "$out"/*
            kills=$((kills + 1))
        done
    done
    echo "${command%% *}: $left of $kills kills left something in TMPDIR"
done
