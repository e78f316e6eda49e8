#!/usr/bin/env python3
"""`fmodel verify --candidate` against the same evaluation done by TensorFlow, side by side in
one run: accuracy (which must agree) and throughput in images/s, decoding included.

    swift build -c release --static-swift-stdlib && Tools/fixtures/setup.sh
    Tools/.venv/bin/python Benchmarks/verify_vs_tensorflow.py [--limit N]

Reads ../shared/models/reference_multitask.h5 and ../shared/data/utkface/val; when either is
missing it says so and exits 0 (a fresh clone has neither). TensorFlow's side is the pipeline the
model card describes: tf.io.decode_jpeg (defaults), tf.image.resize bilinear without antialias,
tf.image.per_image_standardization, batches of 32 through a traced model, tf.data decoding in
parallel with inference.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

from release_build import FMODEL, ROOT, require_fmodel

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODEL = os.path.join(ROOT, "..", "shared", "models", "reference_multitask.h5")
DATA = os.path.join(ROOT, "..", "shared", "data", "utkface", "val")


def labelled_files(folder, limit):
    out = []
    for name in sorted(os.listdir(folder)):
        parts = name.split("_")
        if len(parts) == 4 and all(p.isdigit() for p in parts[:3]):
            out.append((os.path.join(folder, name), int(parts[0]), int(parts[1]), int(parts[2])))
    return out[:limit] if limit else out


def tensorflow_eval(files):
    import numpy as np
    import tensorflow as tf
    import tf_keras as keras
    model = keras.models.load_model(MODEL, compile=False, safe_mode=False)
    run = tf.function(lambda x: model(x, training=False))

    def load(path):
        img = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        img = tf.image.resize(img, (160, 160), method="bilinear", antialias=False)
        return tf.image.per_image_standardization(img)

    start = time.perf_counter()
    ds = tf.data.Dataset.from_tensor_slices([f[0] for f in files]).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(32).prefetch(2)
    ages, genders, races = [], [], []
    for x in ds:
        a, g, e = run(x)
        ages.append((a.numpy() * np.arange(117)).sum(1))
        genders.append(g.numpy().argmax(1))
        races.append(e.numpy().argmax(1))
    seconds = time.perf_counter() - start
    age, gender, race = np.concatenate(ages), np.concatenate(genders), np.concatenate(races)
    truth = np.array([f[1:] for f in files])
    return {
        "age_rmse": float(np.sqrt(((age - truth[:, 0]) ** 2).mean())),
        "age_mae": float(np.abs(age - truth[:, 0]).mean()),
        "gender_accuracy": float((gender == truth[:, 1]).mean()),
        "ethnicity_accuracy": float((race == truth[:, 2]).mean()),
        "images_per_second": len(files) / seconds,
    }


def fmodel_eval(limit):
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        args = [FMODEL, "verify", "--candidate", MODEL, "--data", DATA, "--report", report]
        if limit:
            args += ["--limit", str(limit)]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        with open(report) as f:
            r = json.load(f)
    c = r["candidate"]
    return {k: c[k] for k in ("age_rmse", "age_mae", "gender_accuracy", "ethnicity_accuracy")} | {
        "images_per_second": r["images_per_second"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    if not (os.path.exists(MODEL) and os.path.isdir(DATA)):
        print("skipped: ../shared/models/reference_multitask.h5 or ../shared/data/utkface/val is not here")
        return
    require_fmodel()
    files = labelled_files(DATA, args.limit)
    ours = fmodel_eval(args.limit)
    theirs = tensorflow_eval(files)
    print(f"{len(files)} images of {DATA}")
    print(f"{'':22}{'fmodel':>12}{'TensorFlow':>12}{'delta':>10}")
    for key in ("age_rmse", "age_mae", "gender_accuracy", "ethnicity_accuracy", "images_per_second"):
        print(f"{key:22}{ours[key]:>12.4f}{theirs[key]:>12.4f}{ours[key] - theirs[key]:>+10.4f}")
    print(f"throughput ratio fmodel/TensorFlow: {ours['images_per_second'] / theirs['images_per_second']:.2f}")


if __name__ == "__main__":
    main()
