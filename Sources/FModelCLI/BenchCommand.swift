import ArgumentParser
import FModelCompress
import FModelCore
import FModelRuntime
import Foundation

/// `fmodel bench MODEL --batch N`: inference latency on seeded inputs, for the benchmarks.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Time inference on seeded random inputs (median, min, max).")

    @Argument(help: "The model (.fmodel or any importable file).")
    var model: String?

    @Flag(help: "Measure the GEMM the runtime calls (2048³ float32) and the machine's float32 multiply-add peak instead of a model, in GFLOP/s.")
    var gemm = false

    @Option(help: "Batch size.")
    var batch = 1

    @Option(help: "Timed runs, after the first run and one warm-up run.")
    var iterations = 10

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Flag(help: "Also print the time per layer (fused groups under their first layer), slowest first.")
    var profile = false

    @OptionGroup var options: ModelOptions

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard batch > 0, batch <= 4096 else { throw ValidationError("--batch must be 1...4096") }
        guard iterations > 0 else { throw ValidationError("--iterations must be positive") }
        guard gemm != (model != nil) else { throw ValidationError("give a model or --gemm") }
    }

    func run() throws {
        guard let model else {
            let rate = GEMMRate.measure(), peak = GEMMRate.multiplyAddPeak()
            if json {
                show(try jsonText(GEMMReport(gemm_gflops: rate, fma_peak_gflops: peak), pretty: false))
            } else {
                show(String(format: "sgemm 2048³: %.1f GFLOP/s", rate)
                     + (peak.map { String(format: "; multiply-add peak %.1f GFLOP/s (sgemm at %.0f%%)", $0, rate / $0 * 100) } ?? ""))
            }
            return
        }
        // The process before the model: code and libraries. Sampling it is the benchmark's own
        // work, between process start and the first output: its time is reported apart.
        let sampleStart = MonotonicClock.seconds
        let baseline = json ? ResidentSet.sample(modelPath: model) : [:]
        let baselineSampleMs = (MonotonicClock.seconds - sampleStart) * 1000
        let baselineMB = ResidentSet.status()["VmRSS"] ?? 0
        // Times from the monotonic clock, not `Date`, whose code (Foundation's) would be paged in
        // after the baseline.
        let loadStart = MonotonicClock.seconds
        let executor = try runtime.executor(model, options)
        let loadSeconds = MonotonicClock.seconds - loadStart
        let feeds = try executor.graph.syntheticInputs(batch: batch)
        let firstStart = MonotonicClock.seconds
        _ = try executor.run(feeds)
        let firstOutputAt = MonotonicClock.seconds
        let firstRunMs = (firstOutputAt - firstStart) * 1000
        let firstOutputRSS = ResidentSet.status()["VmRSS"] ?? 0
        let firstOutput = json ? ResidentSet.sample(modelPath: model) : [:]
        // The inputs are activations too: the runtime reads them where they are.
        let inputMB = Double(feeds.values.reduce(0) { $0 + $1.values.count } * MemoryLayout<Float>.stride) / 1e6
        let firstActivationMB = Double(executor.workspaceBytes) / 1e6 + inputMB
        // A tiered executor makes its oneDNN primitives on the second run: make them now, and
        // run once with them, so that the timed runs are the steady state.
        try executor.prepare(batch: batch)
        _ = try executor.run(feeds)
        executor.profiling = profile
        var times: [Double] = []
        for _ in 0..<iterations {
            let t = MonotonicClock.seconds
            _ = try executor.run(feeds)
            times.append((MonotonicClock.seconds - t) * 1000)
        }
        times.sort()
        let median = times[times.count / 2]
        if profile && !json { printProfile(executor) }
        let summary = ModelSummary(executor.graph)
        let gflops = Double(summary.flops) * Double(batch) / (median / 1000) / 1e9
        if json {
            let layers = profile ? executor.profile.sorted { $0.value.seconds > $1.value.seconds }.map { name, v in
                BenchReport.Layer(layer: name, ops: v.ops, ms: v.seconds * 1000 / Double(iterations), chain: executor.profiledChains[name])
            } : nil
            let end = ResidentSet.status()
            let report = BenchReport(
                batch: batch, threads: runtimeThreads, precision: runtime.precision.effective.rawValue, median_ms: median, min_ms: times.first!, max_ms: times.last!, load_s: loadSeconds,
                gflop_per_image: Double(summary.flops) / 1e9, gflops: gflops, first_output_at: firstOutputAt,
                baseline_sample_ms: baselineSampleMs, first_run_ms: firstRunMs, max_rss_mb: end["VmHWM"] ?? 0, rss_before_load_mb: baselineMB, rss_first_output_mb: firstOutputRSS,
                rss_file_mb: end["RssFile"] ?? 0, rss_anon_mb: end["RssAnon"] ?? 0,
                weight_mb: Double(summary.bytes) / 1e6, activation_mb: Double(executor.workspaceBytes) / 1e6 + inputMB,
                activation_first_output_mb: firstActivationMB,
                rss_added_by_first_output_mb: firstOutput.merging(baseline.mapValues { -$0 }, uniquingKeysWith: +),
                layers: layers)
            show(try jsonText(report, pretty: false))
        } else {
            show(String(format: "batch %d: median %.2f ms (min %.2f, max %.2f) over %d runs; %.2f ms per image; %.1f GFLOP/s; load %.2f s; %@",
                         batch, median, times.first!, times.last!, iterations, median / Double(batch), gflops, loadSeconds, runtimeThreads == 1 ? "1 thread" : "\(runtimeThreads) threads"))
        }
    }
}

/// What `fmodel bench --gemm --json` prints.
private struct GEMMReport: Encodable {
    // swiftlint:disable identifier_name
    var gemm_gflops: Double
    /// The multiply-add peak (`GEMMRate.multiplyAddPeak`); left out without AVX2 + FMA.
    var fma_peak_gflops: Double?
    // swiftlint:enable identifier_name
}

/// What `fmodel bench --json` prints (the benchmarks read these names).
private struct BenchReport: Encodable {
    struct Layer: Encodable {
        var layer: String
        var ops: String
        var ms: Double
        /// A oneDNN chain's layers (it is listed under the first).
        var chain: [String]?
    }

    // swiftlint:disable identifier_name
    var batch: Int
    /// The threads the runtime computed on: OMP_NUM_THREADS held to the CPUs and the cgroups' quota.
    var threads: Int
    /// What the float32 convolutions multiplied in: `bf16` when asked for and this CPU has it.
    var precision: String
    var median_ms, min_ms, max_ms, load_s: Double
    var gflop_per_image, gflops: Double
    /// CLOCK_MONOTONIC seconds at the first output: the clock Python's `time.monotonic()` reads,
    /// so a benchmark can time this process from before it started.
    var first_output_at: Double
    /// Of the time to the first output, the benchmark's own sampling of `/proc/self/smaps`
    /// before loading (for `rss_added_by_first_output_mb`), which `fmodel run` does not do.
    var baseline_sample_ms: Double
    var first_run_ms: Double
    /// Peak resident set (`VmHWM`), the resident set before loading (code and libraries) and
    /// right after the first output (before the primitives of later runs are made), MB.
    var max_rss_mb, rss_before_load_mb, rss_first_output_mb: Double
    /// The resident set after the timed runs: file pages (mapped weights, libraries' code) and
    /// anonymous memory (copied kernels, activations, oneDNN's JIT code and scratchpads), MB.
    var rss_file_mb, rss_anon_mb: Double
    /// The weights; the inputs with the activation buffers and scratch the executor holds.
    var weight_mb, activation_mb: Double
    /// The same activations after the first run (a tiered executor's GEMM path).
    var activation_first_output_mb: Double
    /// What loading and the first run added to the resident set, MB by kind of mapping (the
    /// model file, heap and anonymous memory, fmodel's code, Foundation's, libdnnl's, other
    /// libraries', JIT code, stacks), from `/proc/self/smaps`.
    var rss_added_by_first_output_mb: [String: Double]
    /// Milliseconds per run of each layer (fused groups under their first layer), with --profile.
    var layers: [Layer]?
    // swiftlint:enable identifier_name
}

/// The layers' share of the timed runs, slowest first, to standard error.
private func printProfile(_ executor: Executor) {
    let rows = executor.profile.sorted { $0.value.seconds > $1.value.seconds }
    let total = rows.reduce(0) { $0 + $1.value.seconds }
    var byOp: [String: Double] = [:]
    for (_, v) in rows { byOp[v.ops, default: 0] += v.seconds }
    var text = "time by op (all runs):\n"
    for (ops, t) in byOp.sorted(by: { $0.value > $1.value }) { text += String(format: "  %6.1f%%  %@\n", t / total * 100, ops) }
    text += "slowest layers:\n"
    for (name, v) in rows.prefix(25) { text += String(format: "  %6.1f%%  %@ (%@)\n", v.seconds / total * 100, name, v.ops) }
    printError(String(text.dropLast()))
}

