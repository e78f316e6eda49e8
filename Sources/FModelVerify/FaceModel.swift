import FModelCore
import FModelRuntime

/// A loaded model ready to judge faces: its executor, heads and preprocessing.
public struct FaceModel: Sendable {
    public let executor: Executor
    public let heads: FaceHeads
    public let preprocessor: ImagePreprocessor
    public let inputName: String

    /// Prepares `graph`; `preprocess` overrides what the model's metadata says.
    public init(graph: Graph, preprocess: Preprocess? = nil, heads: FaceHeads? = nil, precision: ComputePrecision = .f32) throws {
        preprocessor = try ImagePreprocessor(for: graph, mode: preprocess)
        self.heads = try heads ?? FaceHeads.find(in: graph)
        executor = try Executor(graph: graph, precision: precision)
        inputName = graph.inputs[0].name
    }

    /// Runs a batch of preprocessed images (each HWC) and reads the heads.
    public func predict(_ images: [[Float]]) throws -> [FacePrediction] {
        guard !images.isEmpty else { return [] }
        let shape = Shape([images.count, preprocessor.height, preprocessor.width, 3])
        let out = try executor.run([inputName: FloatTensor(shape: shape, values: Array(images.joined()))])
        let (a, g, e) = (out[heads.age]!, out[heads.gender]!, out[heads.ethnicity]!)
        let (aw, gw, ew) = (a.shape.last, g.shape.last, e.shape.last)
        return (0..<images.count).map { i in
            FacePrediction(age: Array(a.values[i * aw..<(i + 1) * aw]), gender: Array(g.values[i * gw..<(i + 1) * gw]),
                           ethnicity: Array(e.values[i * ew..<(i + 1) * ew]))
        }
    }
}
