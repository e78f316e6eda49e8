#!/usr/bin/env python3
"""One peer's resident memory at its first output, by `fmodel bench --json`'s measure.

    Tools/.venv/bin/python Benchmarks/peer_first_output.py {onnxruntime|tflite|tensorflow} MODEL

Prints one JSON line: `rss_before_load_mb`, the process's resident set once the peer's library
is imported and the input made (its code and libraries: what fmodel's baseline holds),
`rss_first_output_mb`, after loading MODEL and running it once on a batch of 1, and what that
added in file pages (the model file if mapped, code) and anonymous memory (copies, heap). `peers.py`
runs it in a fresh process per sample and sets the difference beside fmodel's. Threads: the
machine's cores, as in `peers.py`.
"""
import json
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def resident_mb():
    """The resident set in MB (10^6 bytes): in all, in file pages and anonymous."""
    with open("/proc/self/status") as f:
        kb = {line.split(":")[0]: int(line.split()[1]) for line in f if line.startswith(("VmRSS", "RssFile", "RssAnon"))}
    return {key: kb[name] * 1024 / 1e6 for key, name in [("all", "VmRSS"), ("file", "RssFile"), ("anonymous", "RssAnon")]}


def main():
    peer, path = sys.argv[1], sys.argv[2]
    threads = os.cpu_count()
    x = np.random.default_rng(42).uniform(-1, 1, (1, 160, 160, 3)).astype(np.float32)
    if peer == "onnxruntime":
        import onnxruntime as ort
        before = resident_mb()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        sess.run(None, {sess.get_inputs()[0].name: x})
    elif peer == "tflite":
        import tensorflow as tf
        before = resident_mb()
        interp = tf.lite.Interpreter(model_path=path, num_threads=threads)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        [interp.get_tensor(d["index"]) for d in interp.get_output_details()]
    elif peer == "tensorflow":
        import tensorflow as tf
        import tf_keras as keras
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        before = resident_mb()
        model = keras.models.load_model(path, compile=False, safe_mode=False)
        [t.numpy() for t in model(x, training=False)]
    else:
        sys.exit(f"unknown peer {peer!r}: onnxruntime, tflite or tensorflow")
    after = resident_mb()
    print(json.dumps({"rss_before_load_mb": before["all"], "rss_first_output_mb": after["all"],
                      "file_added_mb": after["file"] - before["file"],
                      "anonymous_added_mb": after["anonymous"] - before["anonymous"]}))


if __name__ == "__main__":
    main()
