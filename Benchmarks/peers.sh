#!/usr/bin/env bash
# fmodel against TensorFlow, ONNX Runtime and TFLite on the full-size models: sets up the venv
# (Tools/.venv, pinned versions), builds fmodel in release, then runs Benchmarks/peers.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/Tools/fixtures/setup.sh"
"$root/Tools/.venv/bin/pip" install -q -r "$root/Benchmarks/requirements-peers.txt"
"$root/Tools/.venv/bin/pip" install -q --no-deps tf2onnx==1.17.0
(cd "$root" && swift build -c release --static-swift-stdlib)
exec "$root/Tools/.venv/bin/python" "$root/Benchmarks/peers.py" "$@"
