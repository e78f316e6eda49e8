import FModelCore
@testable import FModelRuntime
import FModelTestSupport
import Testing

/// A stem like FaceNet's (conv → Winograd-sized 3×3 → max pool → 1×1 → 3×3 stride 2) runs as
/// one oneDNN chain in blocked layout, and gives what the layers give one by one.
@Suite struct NativeChainTests {
    static func stem() -> Graph {
        var g = SplitMix64(seed: 31)
        func randoms(_ n: Int, scale: Float) -> [Float] { (0..<n).map { _ in (Float(g.next() % 2001) / 1000 - 1) * scale } }
        let layers: [(String, Op, [Int])] = [
            ("a", .conv2D(ConvAttributes(strides: [2, 2], padding: .valid, activation: .relu)), [3, 3, 3, 32]),
            ("b", .conv2D(ConvAttributes(padding: .same, activation: .relu)), [3, 3, 32, 64]),
            ("p", .maxPool(PoolAttributes(size: [3, 3], strides: [2, 2], padding: .valid)), []),
            ("c", .conv2D(ConvAttributes(activation: .relu)), [1, 1, 64, 48]),
            ("d", .conv2D(ConvAttributes(strides: [2, 2], padding: .same, activation: .relu)), [3, 3, 48, 40]),
        ]
        var nodes: [Node] = [], tensors: [String: Tensor] = [:], previous = "x"
        for (name, op, kernel) in layers {
            var params: [String: String] = [:]
            if !kernel.isEmpty {
                tensors["\(name)/k"] = Tensor(randoms(kernel.reduce(1, *), scale: 1 / Float(kernel[0] * kernel[1] * kernel[2]).squareRoot()),
                                              shape: Shape(kernel))
                tensors["\(name)/b"] = Tensor(randoms(kernel[3], scale: 0.1), shape: [kernel[3]])
                params = ["kernel": "\(name)/k", "bias": "\(name)/b"]
            }
            nodes.append(Node(name: name, op: op, inputs: [previous], params: params))
            previous = name
        }
        return Graph(inputs: [ValueInfo(name: "x", shape: [-1, 33, 33, 3])], outputs: ["d"], nodes: nodes, tensors: tensors)
    }

    @Test(arguments: [1, 8]) func chainMatchesLayerByLayer(batch: Int) throws {
        let g = Self.stem()
        var r = SplitMix64(seed: 32)
        let x = ["x": FloatTensor(shape: [batch, 33, 33, 3], values: (0..<(batch * 33 * 33 * 3)).map { _ in Float(r.next() % 2001) / 1000 - 1 })]
        let native = try Executor(graph: g, engine: .native), gemm = try Executor(graph: g, engine: .gemm)
        #expect(native.program.linearRuns == [Array(0..<5)])
        let a = try native.run(x)["d"]!.values, b = try gemm.run(x)["d"]!.values
        #expect(native.chainCount(batch: batch) == (oneDNNIsAVX512 ? 1 : 0), "oneDNN has Winograd on AVX-512 CPUs")
        #expect(a.count == b.count && a.contains { $0 > 0 })
        #expect(Difference(a, b, tolerance: .tensorFlow).maxAbsolute < 1e-4)
        // A value inside the chain, when asked for, runs the layers one by one (and exists).
        let inner = try native.run(x, outputs: ["p", "d"])
        #expect(inner["p"]?.shape == [batch, 7, 7, 64])
        #expect(Difference(inner["d"]!.values, a, tolerance: .tensorFlow).maxAbsolute < 1e-5)
        // Its inner activations live in the executor's free buffers, which other values have
        // used in between: another input still gives what the layers give.
        let x2 = ["x": FloatTensor(shape: x["x"]!.shape, values: x["x"]!.values.map { 0.5 - $0 })]
        let a2 = try native.run(x2)["d"]!.values, b2 = try gemm.run(x2)["d"]!.values
        #expect(Difference(a2, b2, tolerance: .tensorFlow).maxAbsolute < 1e-4 && a2 != a)
    }

    /// The chain's last layer writes the caller's NHWC and reads the layout its convolution
    /// prefers, the chain reordering into it: for a stride-2 3×3 (FaceNet's Conv2d_4b) that is
    /// brgconv on NHWC, faster than the direct kernel on the blocked layout the inner layers
    /// share (the stem 0.91× at batch 32).
    @Test(.enabled(if: oneDNNIsAVX512, "chains are AVX-512's"), arguments: [1, 8])
    func lastLayerReadsTheLayoutItPrefers(batch: Int) throws {
        let native = try Executor(graph: Self.stem(), engine: .native)
        _ = try native.run(["x": FloatTensor(shape: [batch, 33, 33, 3], values: [Float](repeating: 0.5, count: batch * 33 * 33 * 3))])
        let layers = try #require(native.chainImplementations(batch: batch).first).components(separatedBy: " > ")
        // Each layer's name is followed by "reorder" where the chain reorders into it.
        #expect(layers.suffix(2) == ["brgconv:avx512_core", "reorder"], "\(layers)")
    }

    /// A narrow 3×3 (32 → 32, FaceNet's Conv2d_2a) inside a chain takes Winograd at every batch
    /// size, 1 included (the stem 5% faster at batch 1 on the Zen 5; it took it from batch 8 on),
    /// and gives what the layers give. The wide 3×3 after it (32 → 64, Conv2d_2b) makes the
    /// chain.
    @Test(arguments: [1, 8]) func narrowThreeByThreeInAChainTakesWinogradAtEveryBatch(batch: Int) throws {
        var g = SplitMix64(seed: 34)
        func randoms(_ n: Int, scale: Float) -> [Float] { (0..<n).map { _ in (Float(g.next() % 2001) / 1000 - 1) * scale } }
        let kernels: [(String, [Int])] = [("a", [1, 1, 16, 32]), ("b", [3, 3, 32, 32]), ("c", [3, 3, 32, 64])]
        var nodes: [Node] = [], tensors: [String: Tensor] = [:], previous = "x"
        for (name, kernel) in kernels {
            tensors["\(name)/k"] = Tensor(randoms(kernel.reduce(1, *), scale: 1 / Float(kernel[0] * kernel[1] * kernel[2]).squareRoot()),
                                          shape: Shape(kernel))
            nodes.append(Node(name: name, op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: [previous],
                              params: ["kernel": "\(name)/k"]))
            previous = name
        }
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 20, 20, 16])], outputs: ["c"], nodes: nodes, tensors: tensors)
        let x = ["x": FloatTensor(shape: [batch, 20, 20, 16], values: randoms(batch * 400 * 16, scale: 1))]
        let native = try Executor(graph: graph, engine: .native), gemm = try Executor(graph: graph, engine: .gemm)
        let a = try native.run(x)["c"]!.values, b = try gemm.run(x)["c"]!.values
        #expect(a.contains { $0 > 0 } && Difference(a, b, tolerance: .tensorFlow).maxAbsolute < 1e-4)
        guard oneDNNIsAVX512 else { return }  // oneDNN's Winograd is AVX-512's (the outputs are checked above)
        let layers = try #require(native.chainImplementations(batch: batch).first).components(separatedBy: " > ").filter { $0 != "reorder" }
        #expect(layers.count == 3 && layers[1].contains("wino"), "\(layers)")
    }

    /// Without a Winograd-sized layer a run stays layer by layer (nothing to gain).
    @Test func runWithoutWinogradIsNotChained() throws {
        var g = SplitMix64(seed: 33)
        let k1 = (0..<(16 * 16)).map { _ in Float(g.next() % 201) / 1000 - 0.1 }, k2 = (0..<(9 * 16 * 16)).map { _ in Float(g.next() % 201) / 1000 - 0.1 }
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 12, 12, 16])], outputs: ["b"],
                          nodes: [Node(name: "a", op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "k1"]),
                                  Node(name: "b", op: .conv2D(ConvAttributes(padding: .same)), inputs: ["a"], params: ["kernel": "k2"])],
                          tensors: ["k1": Tensor(k1, shape: [1, 1, 16, 16]), "k2": Tensor(k2, shape: [3, 3, 16, 16])])
        let e = try Executor(graph: graph, engine: .native)
        _ = try e.run(["x": FloatTensor(shape: [2, 12, 12, 16], values: [Float](repeating: 0.25, count: 2 * 144 * 16))])
        #expect(e.program.linearRuns == [[0, 1]])
        #expect(e.chainCount(batch: 2) == 0)
    }
}
