#!/usr/bin/env bash
# Regenerates Sources/FModelImport/TensorFlow/Generated/*.pb.swift from Formats/tensorflow/*.proto with
# protoc (Debian protobuf-compiler) and protoc-gen-swift from swift-protobuf 1.39.0 (built here
# once: the plugin takes minutes to build, so CI never does; the output is committed).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
plugin="${PROTOC_GEN_SWIFT:-}"
if [ -z "$plugin" ]; then
  work="$root/Tools/.protoc-gen-swift"
  [ -d "$work/src" ] || git clone -q --branch 1.39.0 https://github.com/apple/swift-protobuf "$work/src"
  (cd "$work/src" && swift build -c release --product protoc-gen-swift >/dev/null)
  plugin="$work/src/.build/release/protoc-gen-swift"
fi
command -v protoc >/dev/null || { echo "needs protoc: apt-get install protobuf-compiler"; exit 2; }
out="$root/Sources/FModelImport/TensorFlow/Generated"
mkdir -p "$out"
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Package --swift_out="$out" \
  -I "$root/Formats/tensorflow" "$root"/Formats/tensorflow/*.proto
echo "generated $(ls "$out")"
