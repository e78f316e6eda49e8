#!/usr/bin/env python3
"""fmodel side by side with TensorFlow, ONNX Runtime and TFLite on the full-size models.

    swift build -c release --static-swift-stdlib && Benchmarks/peers.sh [--rounds 5] [--quick]

Builds what is missing into the git-ignored Benchmarks/out/ (the ≈478 MB multi-task `.h5` and
the ≈95 MB FaceNet `.pb` with the fixture script; their `.fmodel`, ONNX and TFLite conversions),
then, in one run on the same seeded inputs:

* the machine's GEMM rates: fmodel's (oneDNN) and `cblas_sgemm` of numpy's OpenBLAS and of
  Debian's libopenblas (each with the environment as it is); and its float32 multiply-add peak
  (`fmodel bench --gemm`: FMA chains in registers on both cores), the ceiling in nominal FLOPs
  for any convolution without Winograd;
* inference latency, batch 1 and 32, the contenders alternating round by round, each round a
  median of several calls after a warm-up; medians of the rounds with min-max, fmodel's achieved
  GFLOP/s, and the ratio fmodel/peer (below 1: fmodel is faster); beside it the ratio within
  each round (the two measured a moment apart, so a slow phase of the machine weighs on both):
  its median, min-max, and in how many rounds fmodel was faster;
* int8: fmodel's int8 `.fmodel` against TFLite's dynamic-range int8 and ONNX Runtime's dynamic int8;
* bf16, where the CPU has AVX512-BF16: the multi-task model with `--precision bf16` (bfloat16
  products, float32 sums: not TensorFlow's numbers; its accuracy cost is `verify`'s, README)
  against fmodel's float32, TensorFlow and ONNX Runtime, batch 1 and 32;
* loading: `fmodel bench` reports time from process start to first output and peak RSS, and
  the resident memory at the first output above the weights and activations; the fixture
  FaceNet of 40 KB of weights beside the full models shows what of that is the runtime's own;
  the peers' resident memory at their first output by the same measure
  (`peer_first_output.py`);
* importing: `fmodel import` of the `.h5` and the `.pb` against TensorFlow's `load_model` and
  `ParseFromString` + `import_graph_def` of the same files, with each process's peak RSS.
* last, issue #6's bounds on the multi-task model, each from this run's figures and marked met
  or not (a skipped section's bounds are left out): the ratios of the medians, with the
  within-round ratio's median beside them.

Everything runs with 2 threads (the machine's cores). Never a timed unit test. The models and
the runners that load and time each contender are `contenders.py`'s.
"""
import argparse
import ctypes
import ctypes.util
import json
import os
import statistics
import subprocess
import sys
import time

from contenders import (H5, PB, THREADS, build_fmodels, build_peers, build_sources, configured_tensorflow,
                         facenet_inference_graph, fmodel_runner, log, ort_runner, small_fmodel, tensorflow_runner,
                         tflite_runner)
from release_build import FMODEL, OUT, ROOT, require_fmodel


def gemm_rates():
    import numpy as np
    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    def best(call):
        call()
        return 2 * n ** 3 / min(timeit(call) for _ in range(5)) / 1e9
    def timeit(call):
        t = time.perf_counter()
        call()
        return time.perf_counter() - t
    ours = json.loads(subprocess.run([FMODEL, "bench", "--gemm", "--json"], check=True, capture_output=True, text=True).stdout)
    rates = {"fmodel (oneDNN sgemm)": ours["gemm_gflops"]}
    rates["numpy's OpenBLAS cblas_sgemm"] = best(lambda: a @ b)
    lib = ctypes.util.find_library("openblas")
    if lib:
        ob = ctypes.CDLL(lib)
        c = np.empty((n, n), dtype=np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        ob.cblas_sgemm.argtypes = [ctypes.c_int] * 6 + [ctypes.c_float, fp, ctypes.c_int, fp, ctypes.c_int, ctypes.c_float, fp, ctypes.c_int]
        args = (101, 111, 111, n, n, n, 1.0, a.ctypes.data_as(fp), n, b.ctypes.data_as(fp), n, 0.0, c.ctypes.data_as(fp), n)
        rates[f"Debian libopenblas cblas_sgemm (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})"] = best(lambda: ob.cblas_sgemm(*args))
    return rates, ours.get("fma_peak_gflops")


def latency_table(title, contenders, batches, rounds, reference="fmodel"):
    """contenders: name → runner. Alternates them round by round; prints medians and ratios."""
    results = {}
    for batch in batches:
        iterations = 20 if batch == 1 else 3
        samples = {name: [] for name in contenders}
        gflops = []
        for r in range(rounds):
            for name, runner in contenders.items():
                res = runner(batch, iterations)
                samples[name].append(res["median_ms"])
                if "gflops" in res and name == reference:
                    gflops.append(res["gflops"])
            log(f"  {title} batch {batch} round {r + 1}/{rounds}")
        ours = statistics.median(samples[reference])
        print(f"\n{title}, batch {batch} ({rounds} alternating rounds; medians in ms, min-max; ratio = {reference}/peer; "
              f"then the ratio within each round, where the two ran a moment apart: median, min-max, and the rounds "
              f"{reference} was faster in)")
        for name, s in samples.items():
            m = statistics.median(s)
            ratio = "" if name == reference else f"{ours / m:8.2f}"
            if name != reference:
                paired = [a / b for a, b in zip(samples[reference], s)]
                ratio += (f"   per round {statistics.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f}), "
                          f"faster in {sum(p < 1 for p in paired)}/{len(paired)}")
            extra = f"  {statistics.median(gflops):.0f} GFLOP/s" if name == reference and gflops else ""
            print(f"  {name:<34}{m:9.2f} ({min(s):7.2f}-{max(s):7.2f}){ratio}{extra}")
        results[batch] = {name: statistics.median(s) for name, s in samples.items()}
        # The within-round ratio's median by peer, which the bounds print beside the medians'.
        results[batch]["per round"] = {name: statistics.median(a / b for a, b in zip(samples[reference], s))
                                       for name, s in samples.items() if name != reference}
        if gflops:
            results[batch]["GFLOP/s"] = statistics.median(gflops)
    return results


def bf16_latency(model, onnx, gd, batches, rounds):
    """The multi-task model with `--precision bf16` against float32 fmodel and the peers, where
    this CPU multiplies in bf16 (`bench --json` says what it ran); {} elsewhere."""
    probe = json.loads(subprocess.run([FMODEL, "bench", small_fmodel(), "--iterations", "1", "--json", "--precision", "bf16"],
                                      check=True, capture_output=True, text=True).stdout)
    if probe["precision"] != "bf16":
        print("\nbf16: this CPU has no AVX512-BF16 (fmodel runs float32 there): left out")
        return {}
    return latency_table("Multi-task model (.h5), fmodel --precision bf16 (bfloat16 products: not TensorFlow's numbers)",
                         {"fmodel bf16": fmodel_runner(model, "bf16"), "fmodel": fmodel_runner(model),
                          "TensorFlow": tensorflow_runner("multitask", gd), "ONNX Runtime": ort_runner(onnx)},
                         batches, rounds, reference="fmodel bf16")


def loading(paths, rounds):
    print(f"\nLoading a .fmodel: process start to first output (fmodel bench; medians of {rounds} processes, "
          "the models alternating)")
    runs = {name: [] for name, _ in paths}
    summary = {}
    for _ in range(rounds):
        for name, path in paths:
            start = time.monotonic()  # CLOCK_MONOTONIC, the clock fmodel reports first_output_at on
            out = json.loads(subprocess.run([FMODEL, "bench", path, "--iterations", "3", "--json"], check=True,
                                            capture_output=True, text=True).stdout)
            out["first_ms"] = (out["first_output_at"] - start) * 1000
            runs[name].append(out)
    for name, outs in runs.items():
        def med(key):
            return statistics.median(o[key] for o in outs)
        first, steady, sampling = med("first_ms"), med("median_ms"), med("baseline_sample_ms")
        first_rss = statistics.median(o["rss_first_output_mb"] - o["rss_before_load_mb"] for o in outs)
        weights, activations = outs[0]["weight_mb"], outs[0]["activation_first_output_mb"]
        over = first_rss - weights - activations
        print(f"  {name:<26} first output {first:7.1f} ms after start ({min(o['first_ms'] for o in outs):.1f}-"
              f"{max(o['first_ms'] for o in outs):.1f}; {first - steady:6.1f} without one steady inference, "
              f"{first - steady - sampling:6.1f} without the benchmark's own /proc sampling, {sampling:.1f} ms), of which the "
              f"first run {med('first_run_ms'):6.1f} ms (steady {steady:.1f}); peak RSS {med('max_rss_mb'):.0f} MB, "
              f"{statistics.median(o['max_rss_mb'] - o['rss_before_load_mb'] for o in outs):.0f} MB above the process "
              f"before loading, for {weights:.1f} MB of weights + {outs[0]['activation_mb']:.1f} MB of activations; "
              f"at the first output {first_rss:.1f} MB above, for the weights + {activations:.1f} MB "
              f"of activations ({over:.2f} MB over); "
              f"at the end {med('rss_file_mb'):.0f} MB of file pages + {med('rss_anon_mb'):.0f} MB anonymous "
              f"(before loading {med('rss_before_load_mb'):.0f} MB in all)")
        # What loading and the first run added, by kind of mapping (medians over the processes).
        kinds = {k for o in outs for k in o["rss_added_by_first_output_mb"]}
        added = {k: statistics.median(o["rss_added_by_first_output_mb"].get(k, 0) for o in outs) for k in kinds}
        print(f"  {'':<26} added by the first output, MB: "
              + ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in sorted(added.items(), key=lambda kv: -kv[1])
                          if abs(v) >= 0.005))
        summary[name] = {"ms": first - steady, "weights": weights, "activations": activations, "over": over}
    return summary


def peers_first_output(fmodel, peer_paths, rounds):
    """The peers' resident memory at their first output on the multi-task model, by fmodel's
    measure (`peer_first_output.py`, a fresh process per sample), against the same weights and
    activations as fmodel's: MB over them, by peer."""
    weights, activations = fmodel["weights"], fmodel["activations"]
    print(f"  the peers by the same measure on the multi-task model, above the process once the library is "
          f"imported (medians of {rounds} processes), for {weights:.1f} + {activations:.1f} MB:")
    script = os.path.join(ROOT, "Benchmarks", "peer_first_output.py")
    over = {}
    for name, source, peer, path in peer_paths:
        label = f"{name} ({source})"
        outs = [json.loads(subprocess.run([sys.executable, script, peer, path], check=True, capture_output=True,
                                          text=True).stdout.splitlines()[-1]) for _ in range(rounds)]
        added = [o["rss_first_output_mb"] - o["rss_before_load_mb"] for o in outs]
        mid = statistics.median(added)
        over[name] = mid - weights - activations
        print(f"    {label:<48} {mid:6.1f} MB ({min(added):.1f}-{max(added):.1f}): {over[name]:+.1f} MB over "
              f"(file pages {statistics.median(o['file_added_mb'] for o in outs):.1f}, "
              f"anonymous {statistics.median(o['anonymous_added_mb'] for o in outs):.1f})")
    return over


# Peak RSS in MB (10^6 bytes, as the file sizes) from /proc/self/status (ru_maxrss survives
# exec: a child of this big process would report this process's size).
HWM = "[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0]*1024/1e6"


def importing():
    print("\nImporting (each in its own process; time and peak RSS of that process)")
    tf_h5 = ("import os,time;os.environ['TF_USE_LEGACY_KERAS']='1';os.environ['TF_CPP_MIN_LOG_LEVEL']='3';"
             "import tf_keras as k;t=time.perf_counter();k.models.load_model(%r,compile=False,safe_mode=False);"
             "print(time.perf_counter()-t, " + HWM + ")")
    tf_pb = ("import os,time;os.environ['TF_CPP_MIN_LOG_LEVEL']='3';import tensorflow as tf;"
             "t=time.perf_counter();g=tf.compat.v1.GraphDef();g.ParseFromString(open(%r,'rb').read());"
             "tf.compat.v1.import_graph_def(g,name='');"
             "print(time.perf_counter()-t, " + HWM + ")")
    tf_base = ("import os;os.environ['TF_USE_LEGACY_KERAS']='1';os.environ['TF_CPP_MIN_LOG_LEVEL']='3';"
               "import tf_keras;print(" + HWM + ")")
    base = float(subprocess.run([sys.executable, "-c", tf_base], check=True, capture_output=True, text=True).stdout)
    ratios = {}
    for label, src, code, extra in [("multi-task .h5", H5, tf_h5, []), ("FaceNet .pb", PB, tf_pb, ["--inputs", "input:?x160x160x3"])]:
        out_path = os.path.join(OUT, "import-timing.fmodel")
        cmd = ["/usr/bin/time", "-f", "%e %M", FMODEL, "import", src, "-o", out_path] + extra
        p = subprocess.run(cmd, check=True, capture_output=True, text=True)
        secs, kb = p.stderr.strip().splitlines()[-1].split()
        secs, peak = float(secs), int(kb) * 1024 / 1e6
        size = os.path.getsize(out_path) / 1e6
        os.remove(out_path)
        t_secs, t_mb = map(float, subprocess.run([sys.executable, "-c", code % src], check=True, capture_output=True, text=True).stdout.split())
        ratios[label] = (secs / t_secs, peak / size)
        print(f"  {label:<16} {os.path.getsize(src) / 1e6:6.1f} MB → {size:6.1f} MB .fmodel: fmodel {secs:6.2f} s, "
              f"peak {peak:5.0f} MB ({peak / size:.2f}× output) | TensorFlow {t_secs:6.2f} s, peak {t_mb:5.0f} MB "
              f"(Python + TF alone {base:.0f} MB) | time ratio {secs / t_secs:.2f}")
    return ratios


def bounds(rates, peak, latency, int8, bf16, first, peers_over, imports):
    """Issue #6's bounds on the multi-task model, each from this run's figures: met or not.
    The latency bounds are judged on float32, TensorFlow's numbers; bf16's rows beside them are
    for what it buys, at the accuracy cost `verify` measures."""
    rows = []
    def check(text, value, ok):
        rows.append(f"  {'met    ' if ok else 'NOT met'}  {text}: {value}")
    for batch, row in sorted(latency.items()):
        ort, tf = row["fmodel"] / row["ONNX Runtime"], row["fmodel"] / row["TensorFlow"]
        paired = row["per round"]
        needed = ""
        if peak and "GFLOP/s" in row and tf > 0.7:
            # What 0.7× TensorFlow asks in nominal FLOPs: this run's rate scaled by the ratio.
            rate = row["GFLOP/s"] * tf / 0.7
            needed = f" (0.7× TensorFlow needs {rate:.0f} GFLOP/s, {rate / peak:.0%} of the multiply-add peak)"
        check(f"batch {batch} ≤ 1.0× ONNX Runtime and ≤ 0.7× TensorFlow",
              f"{ort:.2f}×, {tf:.2f}× (per round {paired['ONNX Runtime']:.2f}, {paired['TensorFlow']:.2f}){needed}",
              ort <= 1.0 and tf <= 0.7)
    for batch, row in sorted(bf16.items()):
        ort, tf = row["fmodel bf16"] / row["ONNX Runtime"], row["fmodel bf16"] / row["TensorFlow"]
        check(f"(bf16, not float32) batch {batch} with --precision bf16 ≤ 1.0× ONNX Runtime and ≤ 0.7× TensorFlow",
              f"{ort:.2f}×, {tf:.2f}× ({row['fmodel bf16'] / row['fmodel']:.2f}× fmodel's float32)", ort <= 1.0 and tf <= 0.7)
    if rates and 32 in latency and "GFLOP/s" in latency[32]:
        best = max(rates.values())
        conv = latency[32]["GFLOP/s"]
        beside = f"; the multiply-add peak {peak:.1f}, {conv / peak:.0%} of it" if peak else ""
        check("conv throughput at batch 32 ≥ 70% of the best sgemm", f"{conv:.0f} of {best:.1f} GFLOP/s ({conv / best:.0%}{beside})",
              conv >= 0.7 * best)
    if int8:
        lite, own = int8["fmodel"] / int8["TFLite dynamic-range int8"], int8["fmodel"] / int8["fmodel fp32"]
        paired = int8["per round"]
        check("int8 batch 1 ≤ 1.0× TFLite dynamic-range int8 and ≤ its fp32",
              f"{lite:.2f}×, {own:.2f}× (per round {paired['TFLite dynamic-range int8']:.2f}, {paired['fmodel fp32']:.2f})",
              lite <= 1.0 and own <= 1.0)
    if first:
        check("first output ≤ 100 ms after start, inference excluded", f"{first['ms']:.1f} ms", first["ms"] <= 100)
        peers = ", ".join(f"{name} {mb:+.1f}" for name, mb in peers_over.items())
        check("resident memory at the first output ≤ weights + activations",
              f"{first['over']:+.2f} MB (by the same measure: {peers} MB)", first["over"] <= 0)
    if imports:
        t, peak = imports
        check(".h5 import ≤ load_model's time, peak < 1.5× the output", f"{t:.2f}×, {peak:.2f}×", t <= 1.0 and peak < 1.5)
    if rows:
        print("\nIssue #6's bounds on the multi-task model, from this run:")
        print("\n".join(rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="batch 1 only, 3 rounds")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: gemm,latency,int8,bf16,loading,import")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    require_fmodel()
    rounds, batches = (3, [1]) if args.quick else (args.rounds, [1, 32])
    build_sources()
    fm = build_fmodels()
    peers = build_peers()
    tf = configured_tensorflow()
    print(f"machine: {THREADS} cores; TensorFlow {tf.__version__}; threads {THREADS} everywhere")
    rates, peak, latency, int8, bf16, first, peers_over, imports = {}, None, {}, {}, {}, None, {}, None
    if "gemm" not in skip:
        print("\nGEMM 2048³ float32 (best of 5):")
        rates, peak = gemm_rates()
        for name, rate in rates.items():
            print(f"  {name:<60}{rate:7.1f} GFLOP/s")
        if peak:
            print(f"  {'float32 multiply-add peak (FMA chains in registers)':<60}{peak:7.1f} GFLOP/s")
    gd = facenet_inference_graph()
    for m, title in [("multitask", "Multi-task model (.h5)"), ("facenet", "FaceNet (.pb)")]:
        if "latency" not in skip:
            result = latency_table(f"{title} fp32", {"fmodel": fmodel_runner(fm[m][0]), "TensorFlow": tensorflow_runner(m, gd),
                                                     "ONNX Runtime": ort_runner(peers[m]["onnx"]),
                                                     "TFLite": tflite_runner(peers[m]["tflite"])}, batches, rounds)
            if m == "multitask":
                latency = result
        if "int8" not in skip:
            result = latency_table(f"{title} int8", {"fmodel": fmodel_runner(fm[m][1]), "fmodel fp32": fmodel_runner(fm[m][0]),
                                                     "TFLite dynamic-range int8": tflite_runner(peers[m]["int8.tflite"]),
                                                     "ONNX Runtime dynamic int8": ort_runner(peers[m]["int8.onnx"])}, [1], rounds)
            if m == "multitask":
                int8 = result[1]
    if "bf16" not in skip:
        bf16 = bf16_latency(fm["multitask"][0], peers["multitask"]["onnx"], gd, batches, rounds)
    if "loading" not in skip:
        loaded = loading([("multi-task fp32", fm["multitask"][0]), ("multi-task int8", fm["multitask"][1]),
                          ("FaceNet fp32", fm["facenet"][0]), ("tiny model: the runtime", small_fmodel())], rounds)
        first = loaded["multi-task fp32"]
        peers_over = peers_first_output(first, [
            ("ONNX Runtime", ".onnx", "onnxruntime", peers["multitask"]["onnx"]),
            ("TFLite fp32", ".tflite, XNNPACK", "tflite", peers["multitask"]["tflite"]),
            ("TensorFlow", "load_model of the .h5, tf.function", "tensorflow", H5)], min(rounds, 3))
    if "import" not in skip:
        imports = importing()["multi-task .h5"]
    bounds(rates, peak, latency, int8, bf16, first, peers_over, imports)


if __name__ == "__main__":
    main()
