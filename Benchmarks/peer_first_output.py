#!/usr/bin/env python3
"""One peer's resident memory at its first output, by `fmodel bench --json`'s measure.

    Tools/.venv/bin/python Benchmarks/peer_first_output.py {onnxruntime|tflite|tensorflow} MODEL

Prints one JSON line: `rss_before_load_mb`, the process's resident set once the peer's library
is imported (its code and libraries: what fmodel's baseline holds), `rss_first_output_mb`, after
loading MODEL (`.onnx`, `.tflite`, or the multi-task `.h5`) and running it once on a batch of 1,
and what that added in file pages (the model file if mapped, code) and anonymous memory (copies,
heap, the input). The peer is loaded and run by the runners of `contenders.py`, so with the
settings of the timed runs; `peers.py` runs this in a fresh process per sample and sets the difference
beside fmodel's.
"""
import importlib
import json
import sys

from contenders import ort_runner, tensorflow_runner, tflite_runner

# The library each peer imports before the baseline, and its runner (the model's path → a run).
PEERS = {"onnxruntime": ("onnxruntime", ort_runner),
         "tflite": ("tensorflow", tflite_runner),
         "tensorflow": ("tf_keras", lambda path: tensorflow_runner("multitask", h5=path))}


def resident_mb():
    """The resident set in MB (10^6 bytes): in all, in file pages and anonymous."""
    with open("/proc/self/status") as f:
        kb = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS", "RssFile", "RssAnon"))}
    return {key: kb[name] * 1024 / 1e6 for key, name in [("all", "VmRSS"), ("file", "RssFile"), ("anonymous", "RssAnon")]}


def main():
    peer, path = sys.argv[1], sys.argv[2]
    if peer not in PEERS:
        sys.exit(f"unknown peer {peer!r}: {', '.join(PEERS)}")
    library, runner = PEERS[peer]
    importlib.import_module(library)
    importlib.import_module("numpy")
    before = resident_mb()
    run = runner(path)  # loads the model; kept until the sample, which freeing it would shrink
    run(1, 0)  # one run: the first output
    after = resident_mb()
    print(json.dumps({"rss_before_load_mb": before["all"], "rss_first_output_mb": after["all"],
                      "file_added_mb": after["file"] - before["file"],
                      "anonymous_added_mb": after["anonymous"] - before["anonymous"]}))


if __name__ == "__main__":
    main()
