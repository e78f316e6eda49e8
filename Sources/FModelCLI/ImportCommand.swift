import ArgumentParser
import FModelCompress
import FModelCore
import FModelFormat
import FModelImport

/// `fmodel import SRC -o OUT.fmodel`: convert any supported model to the native format.
struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Convert a Keras .h5 or .keras, a TensorFlow .pb or an .fmodel to .fmodel.")

    @Argument(help: "The model to import.")
    var source: String

    @Option(name: .shortAndLong, help: "Where to write the .fmodel file.")
    var output: String

    @Flag(help: "Apply the lossless graph passes: drop dead nodes, dropout and identity; fold batch norm; fuse activations.")
    var optimize = false

    @OptionGroup var model: ModelOptions

    func run() throws {
        let options = try model.importOptions()
        let graph: Graph
        if let worker = options.isolation, try ModelLoader.usesWorker(path: source) {
            // The worker writes the file itself; it is checked here and renamed into place.
            graph = try worker.importFile(path: source, options: options, optimize: optimize, to: output)
        } else {
            var g = try ModelLoader.load(path: source, options: options)
            if optimize {
                for report in GraphPass.runLossless(&g) { show("  " + report.description) }
            }
            try FModelWriter.write(g, to: output)
            graph = g
        }
        let summary = ModelSummary(graph)
        show("imported \(source) -> \(output)")
        show("  \(graph.nodes.count) nodes, \(summary.parameters) parameters, \(formatBytes(summary.bytes)) of weights")
        if let n = graph.metadata.sourceOptimizerTensors, n > 0 {
            show("  optimizer state not imported: \(n) tensors, \(formatBytes(graph.metadata.sourceOptimizerBytes ?? 0))")
        }
        let written = (try? MappedFile(path: output).bytes.count) ?? 0
        show("  wrote \(formatBytes(written))")
    }
}

/// Human-readable byte count.
func formatBytes(_ n: Int) -> String {
    switch n {
    case ..<1024: return "\(n) B"
    case ..<(1 << 20): return String(format: "%.1f KiB", Double(n) / 1024)
    default: return String(format: "%.2f MiB", Double(n) / 1048576)
    }
}
