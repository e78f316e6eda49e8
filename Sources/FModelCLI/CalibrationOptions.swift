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
        guard let data else { return graph.syntheticInputs(batch: samples) }
        guard graph.inputs.count == 1, let input = graph.inputs.first, input.shape.rank == 4, input.shape[3] == 3 else {
            throw VerifyError.inputNotAnImage(name: graph.inputs.first?.name ?? "?", shape: graph.inputs.first?.shape ?? [])
        }
        let files = FaceDataset.imageFiles(in: data).prefix(samples)
        guard !files.isEmpty else { throw DatasetError.empty(data) }
        let pre = ImagePreprocessor(height: input.shape[1], width: input.shape[2], mode: graph.metadata.preprocess ?? .prewhiten)
        var values: [Float] = []
        for f in files { values += pre(try ImageDecoder.decode(path: data + "/" + f)) }
        return [input.name: FloatTensor(shape: input.shape.withBatch(files.count), values: values)]
    }
}
