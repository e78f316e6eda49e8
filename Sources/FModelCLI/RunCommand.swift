import ArgumentParser
import FModelCore
import FModelFormat
import FModelRuntime
import Foundation

/// `fmodel run MODEL --input [NAME=]FILE.npy … --out DIR`: run a model on arrays.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a model on .npy inputs and write one .npy per output.")

    @Argument(help: "The model (.fmodel or any importable file).")
    var model: String

    @Option(name: .customLong("input"), help: "An input array: [NAME=]FILE.npy (NAME may be left out for a one-input model).")
    var inputs: [String] = []

    @Option(help: "Folder for the outputs, one float32 .npy per model output.")
    var out: String

    @OptionGroup var options: ModelOptions

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        let executor = try runtime.executor(model, options)
        let feeds = try bind(executor.inputNames)
        let outputs = try executor.run(feeds)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for name in executor.graph.outputs {
            let t = outputs[name]!
            let file = (out as NSString).appendingPathComponent(Self.fileName(for: name))
            try NPY.write(NPYArray(shape: t.shape.dims, values: t.values), to: file)
            show("\(name) \(t.shape) -> \(file)")
        }
    }

    /// Pairs each `--input` with a model input.
    func bind(_ names: [String]) throws -> [String: FloatTensor] {
        guard !inputs.isEmpty else { throw CLIError(description: "give an --input for each of: \(names.joined(separator: ", "))") }
        var feeds: [String: FloatTensor] = [:]
        for spec in inputs {
            var name: String
            var file = spec
            if let eq = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
                name = String(spec[..<eq])
                file = String(spec[spec.index(after: eq)...])
            } else {
                guard names.count == 1 else { throw CLIError(description: "the model has inputs \(names.joined(separator: ", ")): write --input NAME=FILE.npy") }
                name = names[0]
            }
            let array = try NPY.read(path: file)
            feeds[name] = FloatTensor(shape: Shape(array.shape), values: array.values)
        }
        return feeds
    }

    /// The output file name: characters outside `[A-Za-z0-9._-]` become `_`.
    static func fileName(for output: String) -> String {
        String(output.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" }) + ".npy"
    }
}
