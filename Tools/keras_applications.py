#!/usr/bin/env python3
"""Which of Keras's own application models fmodel imports, and how close it runs to Keras.

Builds each model of `keras.applications` with random weights (`weights=None`: nothing is
downloaded) in tf-keras and in Keras 3, saves it in the forms each writes (tf-keras `.h5`; Keras 3
`.keras` and `.h5`) and, from each, its TensorFlow graph frozen (`.pb`), runs it in Keras on
seeded pixels, imports each with `fmodel import` and runs
it with `fmodel run`, and prints one row a model and form: the largest difference from Keras's
output (the logits: `classifier_activation=None`, as a softmax over random weights is near
uniform), or fmodel's error. The pixels are uniform in [-1, 1], what most of these models are
fed after their preprocessing. Random weights and batch-norm statistics left at 0 and 1 shrink
some models' logits to 1e-11, so the difference is also given relative to the largest logit.

Run with the venv's Python (Tools/.venv/bin/python, made by Tools/fixtures/setup.sh) after a
release build; nothing is written to the repository (a temporary folder, or --keep DIR).

    Tools/.venv/bin/python Tools/keras_applications.py [--only NAME] [--keep DIR] [--json]
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FMODEL = os.path.join(ROOT, ".build", "release", "fmodel")

# Each model and the input side it is built for (the smallest each accepts, near 64).
APPLICATIONS = [("VGG16", 64), ("ResNet50", 64), ("ResNet50V2", 64), ("InceptionV3", 75), ("InceptionResNetV2", 75),
                ("Xception", 71), ("MobileNet", 64), ("MobileNetV2", 64), ("MobileNetV3Small", 64), ("DenseNet121", 64),
                ("NASNetMobile", 64), ("EfficientNetB0", 64), ("EfficientNetV2B0", 64), ("ConvNeXtTiny", 64)]

BUILD = r"""
import json, os, sys
import numpy as np
legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
if legacy:
    import tf_keras as keras
else:
    import keras
name, side, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
keras.utils.set_random_seed(1)
model = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3), classes=10, classifier_activation=None)
x = np.random.default_rng(0).uniform(-1, 1, (2, side, side, 3)).astype(np.float32)
np.save(os.path.join(out, "input.npy"), x)
np.save(os.path.join(out, "keras.npy"), model.predict(x, verbose=0))
forms = ["h5"] if legacy else ["keras", "h5"]
for form in forms:
    model.save(os.path.join(out, f"model.{form}"))
# The TensorFlow graph of the model's call, its variables frozen to constants, as a frozen .pb.
sys.path.insert(0, sys.argv[4])
import both_kerases
both_kerases.freeze(model, os.path.join(out, "model.pb"))
forms.append("pb")
print(json.dumps(forms))
"""


def survey(name, side, work, python):
    """Rows for one application in each Keras: (model, form, status, max |Δ|, Keras's max |y|)."""
    rows = []
    for writer, env in (("tf-keras", {"TF_USE_LEGACY_KERAS": "1"}), ("Keras 3", {"TF_USE_LEGACY_KERAS": ""})):
        out = os.path.join(work, f"{name}-{writer.replace(' ', '')}")
        os.makedirs(out, exist_ok=True)
        made = subprocess.run([python, "-c", BUILD, name, str(side), out, os.path.join(ROOT, "Tools", "fixtures")], capture_output=True, text=True,
                              env={**os.environ, **env, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if made.returncode != 0:
            rows.append((name, writer, "Keras could not build it: " + made.stderr.strip().splitlines()[-1][:120], None, None))
            continue
        expected = np.load(os.path.join(out, "keras.npy"))
        for form in json.loads(made.stdout.strip().splitlines()[-1]):
            source, converted = os.path.join(out, f"model.{form}"), os.path.join(out, f"{form}.fmodel")
            label = f"{writer} .{form}"
            imported = subprocess.run([FMODEL, "import", source, "-o", converted], capture_output=True, text=True)
            if imported.returncode != 0:
                rows.append((name, label, imported.stderr.strip().replace(source + ": ", "")[:160], None, None))
                continue
            ran_to = os.path.join(out, f"{form}-out")
            run = subprocess.run([FMODEL, "run", converted, "--input", os.path.join(out, "input.npy"), "--out", ran_to],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                rows.append((name, label, "run: " + run.stderr.strip()[:160], None, None))
                continue
            got = np.load(glob.glob(os.path.join(ran_to, "*.npy"))[0])
            rows.append((name, label, "ok", float(np.abs(got - expected).max()), float(np.abs(expected).max())))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", metavar="NAME", help="only the applications whose name contains NAME")
    ap.add_argument("--keep", metavar="DIR", help="keep the models and outputs in DIR")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    if not os.path.exists(FMODEL):
        sys.exit(f"{FMODEL} is missing: swift build -c release --static-swift-stdlib")
    work = args.keep or tempfile.mkdtemp(prefix="fmodel-applications-")
    rows = []
    for name, side in APPLICATIONS:
        if args.only and args.only not in name:
            continue
        for row in survey(name, side, work, sys.executable):
            rows.append(row)
            if not args.json:
                model, form, status, diff, spread = row
                measured = f"max |Δ| {diff:.1e} of max |y| {spread:.1e}: {diff / spread if spread else 0:.1e}" if diff is not None else status
                print(f"{model:18} {form:16} {measured}", flush=True)
    ok = sum(1 for r in rows if r[2] == "ok")
    if args.json:
        print(json.dumps([dict(zip(("model", "form", "status", "max_abs_diff", "keras_max_abs"), r)) for r in rows], indent=1))
    else:
        print(f"{ok} of {len(rows)} imported and ran; the largest difference of those, relative to the output's largest value: "
              f"{max((r[3] / r[4] if r[4] else 0 for r in rows if r[3] is not None), default=0):.1e}")
    if not args.keep:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
