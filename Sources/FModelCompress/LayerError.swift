import FModelCore
import FModelRuntime
import Foundation

/// How far a layer's output moved from float: signal-to-quantization-noise ratio and cosine.
public struct LayerError: Sendable, Hashable, Codable {
    public var node: String
    /// `10·log10(‖y‖² / ‖y − ŷ‖²)`, infinite when nothing changed.
    public var sqnrDB: Double
    public var cosine: Double

    /// Compares a float output `y` with its approximation `q`.
    public init(node: String, float y: [Float], approximate q: [Float]) {
        var signal = 0.0, noise = 0.0, dot = 0.0, qq = 0.0
        for (a, b) in zip(y, q) {
            signal += Double(a) * Double(a)
            noise += Double(a - b) * Double(a - b)
            dot += Double(a) * Double(b)
            qq += Double(b) * Double(b)
        }
        self.node = node
        sqnrDB = noise == 0 ? .infinity : 10 * log10(max(signal, 1e-30) / noise)
        cosine = signal == 0 || qq == 0 ? (signal == qq ? 1 : 0) : dot / (signal.squareRoot() * qq.squareRoot())
    }

    /// Relative noise energy `‖y − ŷ‖² / ‖y‖²`.
    public var relativeNoise: Double { sqnrDB.isInfinite ? 0 : pow(10, -sqnrDB / 10) }
}

extension Graph {
    /// Output errors of `nodes` in `candidate` against this (float) graph on `inputs`: each
    /// layer's output in the candidate, upstream changes included, against the float output.
    public func layerErrors(candidate: Graph, nodes: [String], inputs: [String: FloatTensor]) throws -> [LayerError] {
        let reference = try Executor(graph: self).run(inputs, outputs: nodes)
        let approximate = try Executor(graph: candidate).run(inputs, outputs: nodes)
        return nodes.map { LayerError(node: $0, float: reference[$0]!.values, approximate: approximate[$0]!.values) }
    }

    /// Largest absolute difference of any output value between this graph and `candidate`.
    public func maxOutputChange(candidate: Graph, inputs: [String: FloatTensor]) throws -> Float {
        try candidate.maxOutputChange(from: Executor(graph: self).run(inputs), inputs: inputs)
    }

    /// Largest absolute difference of any output value of this graph from `reference` outputs.
    public func maxOutputChange(from reference: [String: FloatTensor], inputs: [String: FloatTensor]) throws -> Float {
        let b = try Executor(graph: self).run(inputs)
        return outputs.reduce(0) { m, o in max(m, Difference(b[o]!.values, reference[o]!.values, tolerance: .tensorFlow).maxAbsolute) }
    }

    /// Seeded uniform inputs in [-1, 1] for every graph input, when no data is given.
    /// - Throws: `RuntimeError.activationMemory` when they would take more than the machine's
    ///   memory (a model may state inputs of 2^31 floats an image), `.unsizedInput` when an input's
    ///   sizes besides the batch are unknown.
    public func syntheticInputs(batch: Int, seed: UInt64 = 42) throws(RuntimeError) -> [String: FloatTensor] {
        var floats = 0
        for input in inputs {
            guard let n = input.shape.withBatch(1).elementCount else { throw .unsizedInput(name: input.name, shape: input.shape) }
            floats += n
        }
        let (bytes, overflow) = floats.multipliedReportingOverflow(by: batch * MemoryLayout<Float>.stride)
        guard !overflow, bytes <= Executor.memoryAvailable else {
            throw .activationMemory(batch: batch, bytes: overflow ? .max : bytes, limit: Executor.memoryAvailable)
        }
        var state = seed
        var out: [String: FloatTensor] = [:]
        for input in inputs {
            let shape = input.shape.withBatch(batch)
            let values = (0..<shape.elementCount!).map { _ -> Float in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(state >> 40) / Float(1 << 24) * 2 - 1
            }
            out[input.name] = FloatTensor(shape: shape, values: values)
        }
        return out
    }
}
