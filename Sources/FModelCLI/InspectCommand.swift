import ArgumentParser
import FModelCore
import Foundation

/// `fmodel inspect MODEL`: inputs, outputs, a per-layer table and totals.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show a model's inputs, outputs, layers, sizes and FLOPs.")

    @Argument(help: "The model (.fmodel or any importable file).")
    var model: String

    @Flag(help: "Print the report as JSON.")
    var json = false

    @OptionGroup var options: ModelOptions

    func run() throws {
        let summary = ModelSummary(try options.load(model))
        if json {
            show(try jsonText(summary, pretty: true))
        } else {
            show(text(summary))
        }
    }

    func text(_ s: ModelSummary) -> String {
        var out = ["model: \(model)"]
        if let f = s.metadata.sourceFile { out.append("source: \(f) (\(s.metadata.sourceFormat ?? "?")) sha256 \(s.metadata.sourceSHA256 ?? "?")") }
        out.append("preprocess: \(s.metadata.preprocess?.rawValue ?? "none recorded")")
        for v in s.inputs { out.append("input  \(v.name) \(Shape(v.shape))") }
        for v in s.outputs { out.append("output \(v.name) \(Shape(v.shape))") }
        let header = [("layer", 36), ("op", 18), ("output", 16), ("params", 10), ("bytes", 11), ("dtype", 6), ("FLOPs", 12)]
        out.append(row(header.map { ($0.0, $0.1) }))
        for r in s.layers {
            out.append(row([(r.name, 36), (r.op, 18), (Shape(r.outputShape).description, 16), (String(r.parameters), 10),
                            (String(r.bytes), 11), (r.dtype, 6), (String(r.flops), 12)]))
        }
        out.append("total: \(s.layers.count) layers, \(s.parameters) parameters, \(formatBytes(s.bytes)), \(String(format: "%.3f", Double(s.flops) / 1e9)) GFLOP per sample")
        if let n = s.metadata.sourceNodeCount {
            out.append("TensorFlow graph: \(n) nodes, \(s.layers.count) after folding constants, Switch/Merge and identities")
        }
        if let n = s.metadata.sourceOptimizerTensors {
            out.append("optimizer state in source: \(n) tensors, \(formatBytes(s.metadata.sourceOptimizerBytes ?? 0)) (not imported)")
        }
        return out.joined(separator: "\n")
    }

    private func row(_ cells: [(String, Int)]) -> String {
        cells.map { text, width in text.count >= width ? String(text.prefix(width - 1)) + " " : text.padding(toLength: width, withPad: " ", startingAt: 0) }
            .joined()
    }
}
