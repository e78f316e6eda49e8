import ArgumentParser
import FModelCompress
import FModelCore
import FModelFormat
import Foundation

/// `fmodel quantize MODEL --dtype f16|int8|int4 -o OUT`: store kernels in fewer bits.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize", abstract: "Store conv and dense kernels as f16, int8 (per channel) or int4 (per group).")

    enum DType: String, ExpressibleByArgument, CaseIterable { case f16, int8, int4 }

    @Argument(help: "The model.") var model: String
    @Option(name: .shortAndLong, help: "Where to write the .fmodel file.") var output: String
    @Option(help: "f16, int8 or int4.") var dtype: DType
    @Option(help: "Values per scale for int4.") var group = 32
    @Option(help: "Only layers whose name matches this glob (repeatable).") var include: [String] = []
    @Option(help: "Leave layers whose name matches this glob (repeatable).") var exclude: [String] = []
    @Flag(help: "Report per layer the output SQNR and cosine to float (on --data images or synthetic inputs).") var report = false
    @OptionGroup var calibration: CalibrationOptions
    @OptionGroup var options: ModelOptions

    func validate() throws {
        guard group > 0, group % 2 == 0 else { throw ValidationError("--group must be a positive even number") }
    }

    var scheme: QuantizationScheme {
        switch dtype {
        case .f16: .f16
        case .int8: .int8PerChannel
        case .int4: .int4PerGroup(groupSize: group)
        }
    }

    func run() throws {
        let staged = try AtomicFileWriter(path: output)  // before the work: an output that cannot be written wastes none of it
        let graph = try options.load(model)
        let selection = LayerSelection(include: include, exclude: exclude)
        let selected = selection.nodes(in: graph)
        guard !selected.isEmpty else { throw CLIError(description: "no conv or dense layer matches --include/--exclude") }
        let nodes = graph.shrinkable(selection, to: scheme)
        let quantized = graph.quantizing(nodes, scheme)
        try FModelWriter.write(quantized, into: staged)
        let kept = selected.count == nodes.count ? "" : " (\(selected.count - nodes.count) already as compact, left as they are)"
        show("quantized \(nodes.count) layers to \(scheme)\(kept): weights \(formatBytes(graph.parameterBytes)) -> \(formatBytes(quantized.parameterBytes)); wrote \(output)")
        if report || calibration.data != nil {
            let errors = try graph.layerErrors(candidate: quantized, nodes: nodes.map(\.name), inputs: calibration.inputs(for: graph))
            for e in errors { show("  " + e.node.padding(toLength: max(48, e.node.count + 1), withPad: " ", startingAt: 0) + String(format: "SQNR %7.2f dB  cosine %.6f", e.sqnrDB, e.cosine)) }
        }
    }
}
