import ArgumentParser
import FModelCompress
import FModelCore
import FModelFormat

/// `fmodel prune MODEL --layer NAME --keep FRACTION|COUNT -o OUT [--data DIR]`.
struct PruneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune", abstract: "Remove whole units of a dense layer, ranked by importance; refit its readers with --data.")

    @Argument(help: "The model.") var model: String
    @Option(name: .shortAndLong, help: "Where to write the .fmodel file.") var output: String
    @Option(help: "The dense layer to prune.") var layer: String
    @Option(help: "Units to keep: a fraction (0.5) or a count (128).") var keep: Double
    @OptionGroup var calibration: CalibrationOptions
    @OptionGroup var options: ModelOptions

    func validate() throws {
        // A count is whole and fits an Int32 (`inf` or 1e300 trapped converting to an Int).
        guard keep > 0, keep <= 1 || (keep == keep.rounded() && keep <= Double(Int32.max)) else {
            throw ValidationError("--keep must be a fraction in (0, 1] or a whole count of units")
        }
    }

    func run() throws {
        let staged = try AtomicFileWriter(path: output)  // before the work: an output that cannot be written wastes none of it
        let graph = try options.load(model)
        let pruner = try DensePruner(graph: graph, layer: layer)
        let units = graph.param("kernel", of: pruner.layer)!.shape[1]
        let count = keep <= 1 ? max(1, Int((keep * Double(units)).rounded())) : Int(keep)
        let inputs = try calibration.data.map { _ in try calibration.inputs(for: graph) }
        let (pruned, report) = try pruner.prune(keep: count, inputs: inputs)
        try FModelWriter.write(pruned, into: staged)
        show("pruned \(layer): \(report.unitsKept) of \(report.unitsBefore) units kept; readers \(report.consumers.joined(separator: ", "))\(report.refitted ? " refitted by least squares" : ""); \(formatBytes(report.bytesSaved)) saved")
        let synthetic = try inputs ?? graph.syntheticInputs(batch: calibration.samples)
        show(String(format: "  largest output change on %@: %.5f", calibration.data == nil ? "synthetic inputs" : "the images",
                     try graph.maxOutputChange(candidate: pruned, inputs: synthetic)))
    }
}
