import ArgumentParser
import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import Foundation

/// `fmodel shrink MODEL --target-mb X -o OUT`: plan and apply compression to meet a size.
struct ShrinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shrink",
        abstract: "Meet a file size: lossless steps first, then f16/int8/int4 where layers suffer least; exit 1 if the bound forbids it.")

    @Argument(help: "The model.") var model: String
    @Option(name: .shortAndLong, help: "Where to write the .fmodel file.") var output: String
    @Option(help: "Target file size in MB (1 MB = 1,000,000 bytes).") var targetMb: Double
    @Option(help: "Largest change of any output value (a probability for softmax heads) allowed on the calibration inputs.")
    var maxOutputChange: Float = 0.05
    @Option(help: "Values per scale for int4.") var group = 32
    @Flag(help: "Print the plan as JSON.") var json = false
    @OptionGroup var calibration: CalibrationOptions
    @OptionGroup var options: ModelOptions

    func validate() throws {
        // At most a petabyte: `inf` or 1e308 megabytes trapped converting to a byte count.
        guard targetMb > 0, targetMb <= 1e9, maxOutputChange >= 0, maxOutputChange.isFinite, group > 0, group % 2 == 0 else {
            throw ValidationError("--target-mb must be positive (at most 1e9), --max-output-change a non-negative number, --group a positive even number")
        }
    }

    struct Plan: Codable {
        var steps: [ShrinkStep]
        var sizeBytes: Int
        var targetBytes: Int
        var reachedTarget: Bool
        var maxOutputChange: Float
        var seconds: Double
    }

    func run() throws {
        let staged = try AtomicFileWriter(path: output)  // before the work: an output that cannot be written wastes none of it
        let start = MonotonicClock.seconds
        let graph = try options.load(model)
        let sourceSize = ModelLoader.sourceBytes(path: model)
        var planner = ShrinkPlanner(targetBytes: Int(targetMb * 1_000_000), maxOutputChange: maxOutputChange)
        planner.groupSize = group
        planner.log = { printError("shrink: " + $0) }
        let result = try planner.shrink(graph, inputs: calibration.inputs(for: graph), sizeOf: FModelWriter.fileSize(of:))
        let plan = Plan(steps: result.steps, sizeBytes: result.sizeBytes, targetBytes: planner.targetBytes, reachedTarget: result.reachedTarget,
                        maxOutputChange: result.outputChange, seconds: MonotonicClock.seconds - start)
        if result.reachedTarget { try FModelWriter.write(result.graph, into: staged) }
        if json {
            show(try jsonText(plan, pretty: true))
        } else {
            show(table(plan, sourceSize: sourceSize))
        }
        guard result.reachedTarget else {
            throw CheckFailed(message: String(format: "cannot reach %.2f MB within --max-output-change %.4f: the closest is %.2f MB (no file written)",
                                              targetMb, maxOutputChange, Double(result.sizeBytes) / 1e6))
        }
    }

    func table(_ p: Plan, sourceSize: Int) -> String {
        var lines = ["source: \(model) (\(String(format: "%.2f", Double(sourceSize) / 1e6)) MB)",
                     "layer".padding(toLength: 44, withPad: " ", startingAt: 0) + "action".padding(toLength: 34, withPad: " ", startingAt: 0) + "bytes before -> after      layer SQNR"]
        for s in p.steps {
            lines.append(s.layer.padding(toLength: 44, withPad: " ", startingAt: 0) + s.action.padding(toLength: 34, withPad: " ", startingAt: 0)
                         + "\(s.bytesBefore) -> \(s.bytesAfter)".padding(toLength: 27, withPad: " ", startingAt: 0)
                         + (s.sqnrDB.map { String(format: "%.1f dB", $0) } ?? ""))
        }
        lines.append(String(format: "size %.2f MB (target %.2f MB, optimizer state and training-only layers dropped); largest output change %.4f; %.1f s",
                            Double(p.sizeBytes) / 1e6, Double(p.targetBytes) / 1e6, p.maxOutputChange, p.seconds))
        return lines.joined(separator: "\n")
    }
}
