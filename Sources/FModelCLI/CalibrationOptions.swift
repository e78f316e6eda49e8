import ArgumentParser
import FModelCompress
import FModelCore
import FModelRuntime
import FModelVerify
import Foundation

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
        guard let data else { return try graph.syntheticInputs(batch: samples) }
        let pre = try ImagePreprocessor(for: graph)
        try FaceDataset.requireFolder(data)
        let files = FaceDataset.imageFiles(in: data).prefix(samples)
        guard !files.isEmpty else { throw DatasetError.empty(data) }
        var values: [Float] = []
        for f in files { values += pre(try ImageDecoder.decode(path: data + "/" + f)) }
        let input = graph.inputs[0]
        return [input.name: FloatTensor(shape: input.shape.withBatch(files.count), values: values)]
    }
}
