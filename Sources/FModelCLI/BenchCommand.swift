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
    var model: String

    @Option(help: "Batch size.")
    var batch = 1

    @Option(help: "Timed runs after one warm-up run.")
    var iterations = 10

    @Flag(help: "Print the result as JSON.")
    var json = false

    @OptionGroup var options: ModelOptions

    func validate() throws {
        guard batch > 0, batch <= 4096, iterations > 0 else { throw ValidationError("--batch and --iterations must be positive") }
    }

    func run() throws {
        let loadStart = Date()
        let executor = try Executor(graph: try options.load(model))
        let loadSeconds = Date().timeIntervalSince(loadStart)
        let feeds = executor.graph.syntheticInputs(batch: batch)
        _ = try executor.run(feeds)
        var times: [Double] = []
        for _ in 0..<iterations {
            let t = Date()
            _ = try executor.run(feeds)
            times.append(Date().timeIntervalSince(t) * 1000)
        }
        times.sort()
        let median = times[times.count / 2]
        if json {
            print(#"{"batch": \#(batch), "median_ms": \#(median), "min_ms": \#(times.first!), "max_ms": \#(times.last!), "load_s": \#(loadSeconds)}"#)
        } else {
            print(String(format: "batch %d: median %.2f ms (min %.2f, max %.2f) over %d runs; %.2f ms per image; load %.2f s",
                         batch, median, times.first!, times.last!, iterations, median / Double(batch), loadSeconds))
        }
    }
}
