"""The contenders of the benchmarks: the full-size models, built into Benchmarks/out/ when
missing (the fixture script's `.h5` and `.pb`, their `.fmodel` in float32 and int8, the ONNX and
TFLite conversions), and one runner per runtime, each set up with the settings of the timed runs
(2 threads, the same seeded inputs). `peers.py`, `contention.py` and `peer_first_output.py`
measure with them, so every script loads and runs a peer the same way."""
import json
import os
import statistics
import subprocess
import sys
import time

from release_build import FMODEL, OUT, ROOT

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FIXTURES = os.path.join(ROOT, "Tools", "fixtures", "make_fixtures.py")
H5 = os.path.join(OUT, "full.h5")
PB = os.path.join(OUT, "facenet.pb")
THREADS = os.cpu_count()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def configured_tensorflow():
    """TensorFlow, its intra-op threads set to THREADS. Every use here takes it from this, as
    the threads cannot change once anything has started TensorFlow's context (on a machine
    without the conversions, converting them did, and the TensorFlow runner's setting failed)."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    return tf


# MARK: - Building the models for each contender

def build_sources():
    if not os.path.exists(H5):
        log("building the full-size multi-task .h5 (fixture script)…")
        subprocess.run([sys.executable, FIXTURES, "--full-size", H5], check=True)
    if not os.path.exists(PB):
        log("building the full-size FaceNet .pb (fixture script)…")
        subprocess.run([sys.executable, FIXTURES, "--full-facenet-pb", PB], check=True)


def build_fmodels():
    paths = {}
    for name, src, extra in [("multitask", H5, []), ("facenet", PB, ["--inputs", "input:?x160x160x3"])]:
        f32 = os.path.join(OUT, f"{name}.fmodel")
        i8 = os.path.join(OUT, f"{name}-int8.fmodel")
        if not os.path.exists(f32):
            subprocess.run([FMODEL, "import", src, "--optimize", "-o", f32] + extra, check=True, capture_output=True)
        if not os.path.exists(i8):
            subprocess.run([FMODEL, "quantize", f32, "--dtype", "int8", "-o", i8], check=True, capture_output=True)
        paths[name] = (f32, i8)
    return paths


def small_fmodel():
    """The fixture FaceNet (64×64 inputs, 40 KB of weights) as a .fmodel: what its first output
    holds above the weights and activations is the runtime's own cost, whatever the model."""
    path = os.path.join(OUT, "small.fmodel")
    if not os.path.exists(path):
        subprocess.run([FMODEL, "import", os.path.join(ROOT, "Tests", "Fixtures", "tf1_facenet_small.pb"), "--optimize",
                        "-o", path, "--inputs", "input:?x64x64x3"], check=True, capture_output=True)
    return path


def facenet_inference_graph():
    """The FaceNet GraphDef with `phase_train` fixed to false and a fresh `x` placeholder in place
    of the queue-fed `input`, cut to what `embeddings` needs: what converters accept."""
    tf = configured_tensorflow()
    gd = tf.compat.v1.GraphDef()
    with open(PB, "rb") as f:
        gd.ParseFromString(f.read())
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 160, 160, 3], name="x")
        emb, = tf.compat.v1.import_graph_def(gd, input_map={"input:0": x, "phase_train:0": tf.constant(False)},
                                             return_elements=["embeddings:0"], name="net")
        tf.identity(emb, name="emb")
    return tf.compat.v1.graph_util.extract_sub_graph(g.as_graph_def(), ["emb"])


def keras_function(path=H5):
    tf = configured_tensorflow()
    import tf_keras as keras
    model = keras.models.load_model(path, compile=False, safe_mode=False)
    fn = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec([None, 160, 160, 3], tf.float32)])
    return model, fn


def build_peers():
    """ONNX (tf2onnx) and TFLite (fp32 and dynamic-range int8) conversions of both models."""
    tf = configured_tensorflow()
    peers = os.path.join(OUT, "peers")
    os.makedirs(peers, exist_ok=True)
    paths = {m: {k: os.path.join(peers, f"{m}.{k}") for k in ["onnx", "int8.onnx", "tflite", "int8.tflite"]}
             for m in ["multitask", "facenet"]}
    if all(os.path.exists(p) for d in paths.values() for p in d.values()):
        return paths
    import tf2onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    log("converting for ONNX Runtime and TFLite…")
    gd = facenet_inference_graph()
    model, fn = keras_function()
    for m in ["multitask", "facenet"]:
        p = paths[m]
        if not os.path.exists(p["onnx"]):
            if m == "facenet":
                tf2onnx.convert.from_graph_def(gd, input_names=["x:0"], output_names=["emb:0"], opset=17, output_path=p["onnx"])
            else:
                tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=17, output_path=p["onnx"])
        if not os.path.exists(p["int8.onnx"]):
            quantize_dynamic(p["onnx"], p["int8.onnx"], weight_type=QuantType.QInt8)
        for key, quantize in [("tflite", False), ("int8.tflite", True)]:
            if os.path.exists(p[key]):
                continue
            if m == "facenet":
                frozen = os.path.join(peers, "facenet_inference.pb")
                with open(frozen, "wb") as f:
                    f.write(gd.SerializeToString())
                conv = tf.compat.v1.lite.TFLiteConverter.from_frozen_graph(frozen, ["x"], ["emb"], {"x": [1, 160, 160, 3]})
            else:
                conv = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], model)
            if quantize:
                conv.optimizations = [tf.lite.Optimize.DEFAULT]
            with open(p[key], "wb") as f:
                f.write(conv.convert())
    return paths


# MARK: - Contenders: each a callable that times `iterations` calls on a batch, after a warm-up

def fmodel_runner(path, precision="f32"):
    def run(batch, iterations):
        out = subprocess.run([FMODEL, "bench", path, "--batch", str(batch), "--iterations", str(iterations), "--json",
                              "--precision", precision], check=True, capture_output=True, text=True).stdout
        return json.loads(out)
    return run


def timed(call, iterations):
    """One run untimed, then `iterations` timed ones (none: only the first output, which is
    what `peer_first_output.py` measures)."""
    call()
    times = []
    for _ in range(iterations):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": statistics.median(times)} if times else {}


def tensorflow_runner(model_name, gd=None, h5=H5):
    import numpy as np
    tf = configured_tensorflow()
    if model_name == "multitask":
        _, fn = keras_function(h5)
        def run(batch, iterations):
            x = tf.constant(np.random.default_rng(42).uniform(-1, 1, (batch, 160, 160, 3)).astype(np.float32))
            return timed(lambda: [t.numpy() for t in fn(x)], iterations)
    else:
        graph = tf.Graph()
        with graph.as_default():
            tf.compat.v1.import_graph_def(gd, name="")
        sess = tf.compat.v1.Session(graph=graph, config=tf.compat.v1.ConfigProto(intra_op_parallelism_threads=THREADS))
        def run(batch, iterations):
            x = np.random.default_rng(42).uniform(-1, 1, (batch, 160, 160, 3)).astype(np.float32)
            return timed(lambda: sess.run("emb:0", {"x:0": x}), iterations)
    return run


def ort_runner(path):
    import numpy as np
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = THREADS
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    def run(batch, iterations):
        x = np.random.default_rng(42).uniform(-1, 1, (batch, 160, 160, 3)).astype(np.float32)
        return timed(lambda: sess.run(None, {name: x}), iterations)
    return run


def tflite_runner(path):
    import numpy as np
    tf = configured_tensorflow()
    interp = tf.lite.Interpreter(model_path=path, num_threads=THREADS)
    index = interp.get_input_details()[0]["index"]
    state = {"batch": None}
    def run(batch, iterations):
        if state["batch"] != batch:
            interp.resize_tensor_input(index, [batch, 160, 160, 3])
            interp.allocate_tensors()
            state["batch"] = batch
        x = np.random.default_rng(42).uniform(-1, 1, (batch, 160, 160, 3)).astype(np.float32)
        def call():
            interp.set_tensor(index, x)
            interp.invoke()
        return timed(call, iterations)
    return run
