#!/usr/bin/env python3
"""Feeds fmodel corrupted copies of its fixtures and reports every case that ends badly: a crash
(a signal, an exit code other than 0, 1 or 2), a hang (no end within --timeout s), a process
that grew past --max-rss-mb, or one that left a file behind (in its TMPDIR, or hidden beside its
input and output). Each mutation is one of: bits flipped, a run of bytes set to
0x00/0xFF/0x7F/0x80, a cut, a 64-bit length planted, a run copied from elsewhere in the file.
An `.fmodel`'s checksums catch all of those before its header is read, so its targets marked
"resealed" take a hostile file instead: one to three structured changes to the header (a value,
a list's element, a key; a tensor's shape for another of as many elements, an op's numbers, a
node's input, the graph input's shape) or to a tensor's values (NaN, infinities, huge or zero
floats, random bytes), with the header's length and every CRC-32C made right again; `run`,
`quantize`, `predict`, `verify`, `shrink` (to targets it meets on the fixtures) and `prune` read
them. With h5py (`Tools/.venv/bin/python`), targets marked "configured" change the Keras
fixtures' model_config (a layer's numbers, a layer's input, rewired to itself or a later layer,
any value) in files that are otherwise intact HDF5; with TensorFlow's message classes (the same
Python), targets marked "regraphed" change the GraphDef fixtures' nodes (attributes, inputs,
ops) and serialise them again. The `.keras` target marked "repacked" changes its config.json (as
"configured" does) or mutates its weights file, and zips it again (the zip's CRC-32s would catch
either). The report ends with the longest standard error a case printed (a message quoting
hostile text whole would stand out).

    python3 Tools/fuzz_inputs.py [--seed 1] [--cases 2000] [--timeout 60] [--max-rss-mb 1000] [--keep DIR]

Needs a release build (`swift build -c release --static-swift-stdlib`) and nothing else (no
TensorFlow). Not part of the tests: it takes minutes. Its inputs: the Keras, TensorFlow and
.npy fixtures, an .fmodel imported from one, and images of Tests/Fixtures/images (an RGB and a
16-bit PNG, a baseline and a progressive JPEG).
The cases it found are kept as fixtures (Tests/Fixtures/bad/:
global_heap_loop.h5, vlen_length.h5, huge_element.h5) with tests of their own. Exits 1 when a
case ended badly; those are copied to --keep.
"""
import argparse
import collections
import importlib.util
import io
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import types
import zipfile

try:
    import h5py  # optional: the Keras configuration targets need it (Tools/.venv has it)
except ImportError:
    h5py = None


def tensorflow_messages():
    """TensorFlow's generated GraphDef module (Tools/.venv has it), or None, loaded without
    TensorFlow itself: its 550 MB would be every child's peak RSS too (`ru_maxrss` keeps the
    forking process's size across exec), past the bounds the cases are held to."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = types.ModuleType("tensorflow")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = package  # its subpackages import, its __init__ does not run
    try:
        from tensorflow.core.framework import graph_pb2
        return graph_pb2
    except ImportError:
        return None


graph_pb2 = tensorflow_messages()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMODEL = os.path.join(ROOT, ".build", "release", "fmodel")
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")


def targets(work):
    """(name, file to mutate, command line with {} for the mutated copy, mutator: data and a
    random generator to the mutated bytes and the mutation's kind)."""
    out = os.path.join(work, "out")

    def run_on(npy, *extra):
        return ["run", "{}", *extra, "--input", f"{FIXTURES}/{npy}", "--out", out]

    facenet_inputs = ["--inputs", "input:?x64x64x3"]
    resealed = []
    for name, source, extra, npy in [("tiny", f"{FIXTURES}/tiny_residual.h5", [], "tiny_residual.input.npy"),
                                     ("facenet_small", f"{FIXTURES}/tf1_facenet_small.pb", facenet_inputs,
                                      "tf1_facenet_small.input.npy"),
                                     ("keras3_multitask", f"{FIXTURES}/keras3_multitask.keras", [], "keras3_multitask.input.npy")]:
        f32 = os.path.join(work, f"{name}_f32.fmodel")
        subprocess.run([FMODEL, "import", source, "-o", f32] + extra, check=True, capture_output=True)
        resealed.append((f"{name}.fmodel resealed", f32, run_on(npy)))
        for dtype in ["int8", "int4"]:
            q = os.path.join(work, f"{name}_{dtype}.fmodel")
            subprocess.run([FMODEL, "quantize", f32, "--dtype", dtype, "-o", q], check=True, capture_output=True)
            resealed.append((f"{name}_{dtype}.fmodel resealed", q, run_on(npy)))
        resealed.append((f"{name}.fmodel resealed, quantized", f32,
                         ["quantize", "{}", "--dtype", "int4", "-o", os.path.join(work, "quantized.fmodel")]))
    # The face heads' reading of a model (age, gender, ethnicity) on an image, and the
    # compression commands' passes and planner.
    tiny, multitask = os.path.join(work, "tiny_f32.fmodel"), os.path.join(work, "keras3_multitask_f32.fmodel")
    written = os.path.join(work, "compressed.fmodel")
    faces = os.path.join(work, "faces")  # three labelled faces, UTKFace names, for verify
    os.makedirs(faces)
    for label in ["25_0_1_20170116", "61_1_3_20170117", "8_0_0_20170118"]:
        shutil.copy(f"{FIXTURES}/images/gradient.jpg", os.path.join(faces, label + ".jpg"))
    resealed += [("keras3_multitask.fmodel resealed, predicted", multitask, ["predict", "{}", f"{FIXTURES}/images/gradient.jpg"]),
                 ("keras3_multitask.fmodel resealed, shrunk", multitask, ["shrink", "{}", "--target-mb", "0.01", "-o", written]),
                 ("keras3_multitask.fmodel resealed, verified", multitask,
                  ["verify", "--reference", multitask, "--candidate", "{}", "--data", faces, "--batch", "2"]),
                 ("keras3_multitask.fmodel resealed, pruned", multitask,
                  ["prune", "{}", "--layer", "fc1", "--keep", "0.5", "-o", written]),
                 ("facenet_small.fmodel resealed, shrunk", os.path.join(work, "facenet_small_f32.fmodel"),
                  ["shrink", "{}", "--target-mb", "0.03", "-o", written])]
    structured = [(name, source, command, structured_mutator(reseal)) for name, source, command in resealed]
    # Keras files whose model_config is changed, the HDF5 file otherwise intact.
    structured += [(f"{name} configured", f"{FIXTURES}/{name}", ["inspect", "{}"], structured_mutator(reconfigure))
                   for name in ["tiny_residual.h5", "graft_heads.h5", "facenet_small.h5", "functional_zoo.h5",
                                "multitask_flat.h5", "dense_activations.h5", "rescaling.h5", "inference_identities.h5",
                                "smooth_activations.h5", "normalization.h5", "separable_scaled.h5",
                                "tensor_arithmetic.h5", "convnext_block.h5", "cropping.h5", "hard_sigmoid.h5"] if h5py]
    # Products and sums that broadcast, run: a changed shape reaches the runtime's broadcast.
    structured += [("attention.h5 configured", f"{FIXTURES}/attention.h5", run_on("attention.input.npy"), structured_mutator(reconfigure))
                   ] if h5py else []
    # TensorFlow graphs whose nodes are changed, the protobuf otherwise well formed.
    structured += [(f"{name} regraphed", f"{FIXTURES}/{name}", command, structured_mutator(regraph)) for name, command in [
        ("tf1_facenet_small.pb", run_on("tf1_facenet_small.input.npy", *facenet_inputs)),
        ("tf2_keras_frozen.pb", ["inspect", "{}"]),
        ("attention_frozen.pb", run_on("attention.input.npy", "--inputs", "pixels:2x6x6x3")),
        ("swish_frozen.pb", run_on("swish_frozen.input.npy")),
        ("smooth_frozen.pb", run_on("smooth_activations.input.npy")),
        ("tanh_gelu_frozen.pb", run_on("tanh_gelu_frozen.input.npy")),
        ("convnext_frozen.pb", run_on("convnext_block.input.npy")),
        ("keras3_convnext_frozen.pb", run_on("keras3_convnext_block.input.npy")),
        ("cropping_frozen.pb", run_on("cropping.input.npy"))] if graph_pb2]
    # A Keras 3 file whose config or weights are changed, zipped again.
    structured.append(("keras3_multitask.keras repacked", f"{FIXTURES}/keras3_multitask.keras",
                       run_on("keras3_multitask.input.npy"), structured_mutator(repack)))
    # Keras's own int8 quantization, bfloat16 and float16 weights, outputs given by name,
    # Rescaling, layers given as activations, products and sums that broadcast.
    structured += [(f"{name}.keras repacked", f"{FIXTURES}/{name}.keras", run_on(f"{name}.input.npy"), structured_mutator(repack))
                   for name in ["keras3_int8", "keras3_half", "keras3_named", "keras3_rescaling", "keras3_activations", "keras3_attention",
                                "keras3_smooth_activations", "keras3_normalization", "keras3_separable_scaled",
                                "keras3_hard_swish", "keras3_tensor_arithmetic", "keras3_convnext_block",
                                "keras3_cropping", "keras3_hard_sigmoid"]]
    # tf-keras's .keras: weights found by place, not by name.
    structured.append(("tiny_residual_tfkeras.keras repacked", f"{FIXTURES}/tiny_residual_tfkeras.keras",
                       run_on("tiny_residual.input.npy"), structured_mutator(repack)))
    byte_mutated = [
        ("tiny_residual.h5", f"{FIXTURES}/tiny_residual.h5", ["inspect", "{}"]),
        ("graft_heads.h5", f"{FIXTURES}/graft_heads.h5", ["inspect", "{}"]),
        ("keras3_multitask.keras", f"{FIXTURES}/keras3_multitask.keras", ["inspect", "{}"]),
        ("keras3_multitask_deflated.keras", f"{FIXTURES}/keras3_multitask_deflated.keras", ["inspect", "{}"]),
        ("tf2_keras_frozen.pb", f"{FIXTURES}/tf2_keras_frozen.pb", ["inspect", "{}"]),
        ("tf1_facenet_small.pb", f"{FIXTURES}/tf1_facenet_small.pb", run_on("tf1_facenet_small.input.npy", *facenet_inputs)),
        ("convnext_frozen.pb", f"{FIXTURES}/convnext_frozen.pb", run_on("convnext_block.input.npy")),
        ("tiny.fmodel", tiny, run_on("tiny_residual.input.npy")),
        ("input.npy", f"{FIXTURES}/tiny_residual.input.npy", ["run", tiny, "--input", "{}", "--out", out]),
    ] + [(name, f"{FIXTURES}/images/{file}", ["preprocess", "{}", "-o", os.path.join(work, "image.npy")])
         for name, file in [("gradient.png", "gradient_png.png"), ("gradient_16bit.png", "gradient_16bit_png.png"),
                            ("gradient.jpg", "gradient.jpg"), ("gradient_progressive.jpg", "gradient_progressive.jpg")]]
    return structured + [(name, source, command, mutate) for name, source, command in byte_mutated]


# An image of about a kilobyte may declare at most 2048² pixels (12 MB of RGB): a decode past
# this resident size is bloat, whatever --max-rss-mb allows the imports.
IMAGE_MAX_RSS_MB = 200


def mutate(data, rng):
    """A copy of `data` with one of the byte mutations, and its kind."""
    d = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        i, n = rng.randrange(len(d)), rng.randint(1, 64)
        d[i:i + n] = bytes([rng.choice([0, 0xFF, 0x7F, 0x80])]) * len(d[i:i + n])
    elif kind == 2:
        d = d[:rng.randrange(len(d))]
    elif kind == 3:
        i = rng.randrange(len(d) - 8)
        d[i:i + 8] = struct.pack("<Q", rng.choice([2**63 - 1, 2**32 - 1, 2**40, 2**64 - 1, 2**31]))
    else:
        i, j, n = rng.randrange(len(d)), rng.randrange(len(d)), rng.randint(1, 256)
        d[i:i + n] = d[j:j + n]
    return bytes(d), ["flip", "run", "cut", "length", "copy"][kind]


# MARK: - Structured mutations: files that pass their format's own checks (checksums, the zip's
# CRC-32s, protobuf's and HDF5's structure) and carry a hostile model inside

def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


CRC32C_TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC32C_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def aligned(n):
    return (n + 63) // 64 * 64


HOSTILE_INTS = [0, -1, 1, 2, 3, 7, 64, 2**31 - 1, 2**31, 2**32, 2**40, 2**53, 2**63 - 1, -2**63, 2**64]
HOSTILE_FLOATS = [0.0, -0.0, 1e-45, 1e-308, -1.0, 0.5, 3.4e38, 1e39, -1e308, 1e308]


def places(value, into):
    """Every (container, key) below `value`, lists and objects included."""
    items = enumerate(value) if isinstance(value, list) else value.items() if isinstance(value, dict) else []
    for key, child in items:
        into.append((value, key))
        places(child, into)
    return into


def strings(value, into):
    if isinstance(value, str):
        into.add(value)
    elif isinstance(value, (list, dict)):
        for child in (value if isinstance(value, list) else value.values()):
            strings(child, into)
    return into


def change_header(header, rng):
    """One structured change anywhere in the header (mostly its graph and tensor table, the bulk of it)."""
    container, key = rng.choice(places(header, []))
    old, pool = container[key], sorted(strings(header, set()))
    if isinstance(old, bool):
        container[key] = not old
    elif isinstance(old, int):
        container[key] = rng.choice(HOSTILE_INTS + [old + 1, old - 1, old * 2, -old])
    elif isinstance(old, float):
        container[key] = rng.choice(HOSTILE_FLOATS + [old * 1e6, -old])
    elif isinstance(old, str):
        container[key] = rng.choice(pool + ["", old + "_"])
    elif isinstance(old, list):
        i = rng.randrange(len(old)) if old else 0
        action = rng.randrange(4)
        if action == 0 and old:
            del old[i]
        elif action == 1 and old:
            old.insert(i, old[rng.randrange(len(old))])
        elif action == 2:
            old.reverse()
        else:
            container[key] = [] if old else [rng.choice(HOSTILE_INTS)]
    elif isinstance(old, dict) and old:
        victim = rng.choice(sorted(old))
        if rng.random() < 0.5:
            del old[victim]
        else:
            old[victim + "_"] = old[victim]
    if isinstance(container, dict) and rng.random() < 0.1:
        container[key] = rng.choice([None, {}, [], "x", 1])  # a value of the wrong type


SMALL_INTS = [-1, 0, 1, 2, 3, 5, 64, 1000, 2**31]


def same_count_shape(dims, rng):
    """Another shape of as many elements: dims permuted, two merged, one split, or a 1 put in."""
    dims = list(dims)
    action = rng.randrange(4)
    if action == 0:
        rng.shuffle(dims)
    elif action == 1 and len(dims) > 1:
        i = rng.randrange(len(dims) - 1)
        dims[i:i + 2] = [dims[i] * dims[i + 1]]
    elif action == 2 and dims:
        i = rng.randrange(len(dims))
        factor = next((f for f in (2, 3, 4) if dims[i] % f == 0), 1)
        dims[i:i + 1] = [factor, dims[i] // factor]
    else:
        dims.insert(rng.randrange(len(dims) + 1), 1)
    return dims


def change_meaning(header, rng):
    """A change that keeps the header well formed and every size right, so that it reaches the
    graph's checks and the runtime: a tensor's shape for another of as many elements, an op's
    numbers (strides, sizes, axes) set to small or hostile ones, a node reading another node, or
    the graph's input of another shape."""
    graph, action = header["graph"], rng.randrange(4)
    if action == 0:
        entry = rng.choice(header["tensors"])
        entry["shape"] = same_count_shape(entry["shape"], rng)
    elif action == 1:
        numbers = [(c, k) for node in graph["nodes"] for c, k in places(node["op"], [])
                   if isinstance(c[k], int) and not isinstance(c[k], bool) or isinstance(c[k], float)]
        if numbers:
            c, k = rng.choice(numbers)
            c[k] = rng.choice(SMALL_INTS) if isinstance(c[k], int) else rng.choice(HOSTILE_FLOATS)
    elif action == 2:
        node = rng.choice(graph["nodes"])
        names = [n["name"] for n in graph["nodes"]] + [i["name"] for i in graph["inputs"]]
        if node["inputs"]:
            node["inputs"][rng.randrange(len(node["inputs"]))] = rng.choice(names)
    else:
        shape = rng.choice(graph["inputs"])["shape"]
        shape[rng.randrange(len(shape))] = rng.choice(SMALL_INTS)


def change_tensor(header, body, rng):
    """Hostile values in one tensor's data, its CRC-32C made right."""
    entry = rng.choice(header["tensors"])
    region = rng.choice([entry["data"]] + ([entry["scales"]] if entry.get("scales") else []))
    start, length = region["offset"], region["length"]
    if length < 4:
        return
    i = start + rng.randrange(length // 4) * 4
    n = min(rng.choice([4, 16, 256, length]), start + length - i) // 4 * 4
    word = rng.choice([struct.pack("<f", v) for v in [float("nan"), float("inf"), -float("inf"), 0.0, 3.4e38, 1e-45]]
                      + [bytes(rng.randrange(256) for _ in range(4))])
    body[i:i + n] = word * (n // 4)
    region["crc32c"] = crc32c(body[start:start + length])


def reseal(data, rng):
    """A hostile .fmodel made from a good one (`data`): changes to its header or its tensors, then
    the header's length and CRC-32C rewritten and the data section placed at its new aligned start."""
    length = struct.unpack_from("<Q", data, 16)[0]
    header = json.loads(data[32:32 + length])
    body = bytearray(data[aligned(32 + length):])
    # In this order, as each needs the header's structure the next may break: a tensor's values
    # (by the table as written), changes that keep the structure, then any change.
    kinds = sorted(rng.choices([0, 1, 2], weights=[1, 2, 2], k=rng.randint(1, 3)))
    for kind in kinds:
        if kind == 0:
            change_tensor(header, body, rng)
        else:
            (change_meaning if kind == 1 else change_header)(header, rng)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    out = data[:16] + struct.pack("<QII", len(text), crc32c(text), 0) + text
    return out + bytes(aligned(len(out)) - len(out)) + body


def change_config(config, rng):
    """One to three changes to a Keras model config (`model_config` of an `.h5`, `config.json` of
    a `.keras`): a number in a layer's configuration (sizes, strides, rates, axes), a layer's
    input rewired to any layer (itself or a later one: a cycle), or any value, list or key."""
    layers = config["config"]["layers"]
    for kind in sorted(rng.randrange(3) for _ in range(rng.randint(1, 3))):  # structure-keeping first
        layer = rng.choice(layers)
        if kind == 0:
            numbers = [(c, k) for c, k in places(layer["config"], [])
                       if isinstance(c[k], (int, float)) and not isinstance(c[k], bool)]
            if numbers:
                c, k = rng.choice(numbers)
                c[k] = rng.choice(SMALL_INTS + HOSTILE_INTS + [0.0, -1.5, 1e308])
        elif kind == 1:
            # Keras 2's [["name", 0, 0, {}]] and Keras 3's keras_history ["name", 0, 0] alike.
            inbound = [c for c, k in places(layer.get("inbound_nodes", []), [])
                       if isinstance(c, list) and c and isinstance(c[0], str)]
            if inbound:
                rng.choice(inbound)[0] = rng.choice([other["name"] for other in layers])
        else:
            change_header(config, rng)
    return config


def reconfigure(data, rng):
    """A Keras `.h5` (`data`) with its model_config changed (`change_config`), the HDF5 file
    otherwise as it was."""
    with tempfile.NamedTemporaryFile(suffix=".h5") as t:
        t.write(data)
        t.flush()
        with h5py.File(t.name, "r+") as h:
            h.attrs["model_config"] = json.dumps(change_config(json.loads(h.attrs["model_config"]), rng))
        with open(t.name, "rb") as f:
            return f.read()


def repack(data, rng):
    """A Keras 3 `.keras` (`data`) with its config.json changed (`change_config`) or its weights
    file's bytes mutated (which the zip's checksums would otherwise catch), zipped again so that
    every CRC-32 holds; each entry stored or deflated at random."""
    source, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    target = rng.choice(["config.json", "model.weights.h5"])
    with zipfile.ZipFile(out, "w") as z:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == target == "config.json":
                body = json.dumps(change_config(json.loads(body), rng)).encode()
            elif info.filename == target:
                body = mutate(body, rng)[0]
            z.writestr(info, body, compress_type=rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    return out.getvalue()


def regraph(data, rng):
    """A TensorFlow GraphDef (`data`) with one to three changes to its nodes or its functions'
    nodes: an attribute's value (an integer, a list's entry, a shape's or a constant's
    dimension, a string such as the padding, a dtype), an input rewired to any node (a cycle, a
    missing output, a control input), an input dropped or added, or another node's op;
    serialised again, so well formed."""
    graph = graph_pb2.GraphDef()
    graph.ParseFromString(data)
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    names = [node.name for node in nodes]
    for _ in range(rng.randint(1, 3)):
        node, kind = rng.choice(nodes), rng.randrange(5)
        if kind == 0 and node.attr:
            value = node.attr[rng.choice(sorted(node.attr))]
            which = value.WhichOneof("value")
            dims = (value.shape.dim if which == "shape" else value.tensor.tensor_shape.dim if which == "tensor" else [])
            if which == "i":
                value.i = rng.choice(SMALL_INTS + HOSTILE_INTS[:-1])
            elif which == "f":
                value.f = rng.choice([0.0, -1.0, 1e30, float("nan"), float("inf")])
            elif which == "list" and len(value.list.i):
                value.list.i[rng.randrange(len(value.list.i))] = rng.choice(SMALL_INTS + HOSTILE_INTS[:-1])
            elif dims:
                dims[rng.randrange(len(dims))].size = rng.choice(SMALL_INTS + HOSTILE_INTS[:-1])
            elif which == "s":
                value.s = rng.choice([b"", b"SAME", b"VALID", b"EXPLICIT", b"NCHW", b"NHWC", b"x"])
            elif which == "type":
                value.type = rng.choice([0, 1, 2, 3, 9, 10, 19, 100])
        elif kind == 1 and node.input:
            node.input[rng.randrange(len(node.input))] = rng.choice(["", "^"]) + rng.choice(names) + rng.choice(["", ":1", ":7"])
        elif kind == 2 and node.input:
            del node.input[rng.randrange(len(node.input))]
        elif kind == 3:
            node.input.append(rng.choice(names))
        else:
            node.op = rng.choice(nodes).op
    return graph.SerializeToString()


def structured_mutator(change):
    """A target's mutator that makes one of the structured changes, its kind the change's name."""
    return lambda data, rng: (change(data, rng), change.__name__)


# MARK: - Running a case

def wait(p, timeout):
    """The exit code (negative: the signal; "timeout" when it was ended) and the peak resident MB
    of `p` and the processes it waited for (its import worker), from wait4."""
    deadline, code = time.monotonic() + timeout, None
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.killpg(p.pid, 9)
            _, status, usage = os.wait4(p.pid, 0)
            code = "timeout"
            break
        time.sleep(0.01)
    p.returncode = os.waitstatus_to_exitcode(status)
    return (code or p.returncode), usage.ru_maxrss / 1024


def left_behind(work, scratch):
    """What a case left: anything in its TMPDIR, any hidden file in the work directory."""
    return [os.path.join(scratch, f) for f in os.listdir(scratch)] + [os.path.join(work, f) for f in os.listdir(work) if f.startswith(".")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--max-rss-mb", type=float, default=1000)
    ap.add_argument("--keep", default=os.path.join(tempfile.gettempdir(), "fmodel-fuzz"))
    ap.add_argument("--only", metavar="TEXT", help="only the targets whose name contains TEXT (e.g. deflated)")
    args = ap.parse_args()
    if not os.access(FMODEL, os.X_OK):
        sys.exit(f"no release build at {FMODEL}: run swift build -c release --static-swift-stdlib")
    rng = random.Random(args.seed)
    outcomes, bad = collections.Counter(), 0
    longest = (0, "")  # the longest standard error, in bytes, and its target: an error quoting hostile input whole
    with tempfile.TemporaryDirectory() as work:
        cases = [case for case in targets(work) if args.only is None or args.only in case[0]]
        if not cases:
            sys.exit(f"no target's name contains {args.only!r}")
        # Each case's temporary directory, which it must leave empty, as it must leave no hidden
        # file (a temporary output) in `work`.
        scratch = os.path.join(work, "tmp")
        os.mkdir(scratch)
        environment = dict(os.environ, TMPDIR=scratch)
        for n in range(args.cases):
            name, source, command, mutator = cases[n % len(cases)]
            with open(source, "rb") as f:
                data, kind = mutator(f.read(), rng)
            case = os.path.join(work, "case" + os.path.splitext(source)[1])
            with open(case, "wb") as f:
                f.write(data)
            line = [FMODEL] + [case if a == "{}" else a for a in command]
            start = time.monotonic()
            with tempfile.TemporaryFile() as stderr:
                # A session of its own, so that a hang's whole process group (the import worker
                # too) can be ended.
                p = subprocess.Popen(line, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True, env=environment)
                code, rss_mb = wait(p, args.timeout)
                stderr.seek(0)
                err = stderr.read()
            seconds = time.monotonic() - start
            outcomes[(name, str(code))] += 1
            longest = max(longest, (len(err), name))
            bound = min(args.max_rss_mb, IMAGE_MAX_RSS_MB) if command[0] == "preprocess" else args.max_rss_mb
            left = left_behind(work, scratch)
            if code not in (0, 1, 2) or rss_mb > bound or left:
                bad += 1
                os.makedirs(args.keep, exist_ok=True)
                kept = os.path.join(args.keep, f"seed{args.seed}_case{n}_{name}")
                shutil.copy(case, kept)
                message = err.decode(errors="replace").strip().splitlines()[:2]
                print(f"BAD {name} ({kind}): exit {code}, {seconds:.1f} s, peak RSS {rss_mb:.0f} MB, left behind {left} -> {kept}\n"
                      f"    {message}", flush=True)
                for path in left:
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    print(f"seed {args.seed}: {args.cases} cases, {bad} ended badly; exit codes by file:")
    for (name, code), count in sorted(outcomes.items()):
        print(f"  {name:24} exit {code:>7}: {count}")
    print(f"longest standard error: {longest[0]} bytes ({longest[1]})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
