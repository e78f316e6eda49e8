import ArgumentParser
import FModelCompress
import FModelCore
import FModelRuntime
import FModelVerify
import Foundation

/// `graph.syntheticInputs(batch:)`, unless they would take more than the machine's memory (a
/// model may state inputs of 2^31 floats an image).
/// - Throws: `RuntimeError.activationMemory`.
func syntheticInputs(_ graph: Graph, batch: Int) throws(RuntimeError) -> [String: FloatTensor] {
    let floats = graph.inputs.reduce(0) { $0 + $1.shape.withBatch(1).elementCount! }
    let (bytes, overflow) = floats.multipliedReportingOverflow(by: batch * MemoryLayout<Float>.stride)
    guard !overflow, bytes <= Executor.machineMemory else {
        throw .activationMemory(batch: batch, bytes: overflow ? .max : bytes, limit: Executor.machineMemory)
    }
    return graph.syntheticInputs(batch: batch)
}

/// Inputs for measuring what a compression costs: face images from `--data`, or seeded
/// synthetic inputs without it.
struct CalibrationOptions: ParsableArguments {
    @Option(help: "Folder of images (JPEG/PNG, recursive) to measure errors on; seeded synthetic inputs without it.")
    var data: String?

    @Option(help: "How many images (or synthetic samples) to measure on.")
    var samples = 8

    func validate() throws {
        guard samples > 0, samples <= 1024 else { throw ValidationError("--samples must be 1...1024") }
    }

    /// The calibration batch for `graph`'s input.
    func inputs(for graph: Graph) throws -> [String: FloatTensor] {
        guard let data else { return try syntheticInputs(graph, batch: samples) }
        let pre = try ImagePreprocessor(for: graph)
        let files = FaceDataset.imageFiles(in: data).prefix(samples)
        guard !files.isEmpty else { throw DatasetError.empty(data) }
        var values: [Float] = []
        for f in files { values += pre(try ImageDecoder.decode(path: data + "/" + f)) }
        let input = graph.inputs[0]
        return [input.name: FloatTensor(shape: input.shape.withBatch(files.count), values: values)]
    }
}
