import FModelCore
@testable import FModelRuntime
import FModelTestSupport
import Testing

/// A batch larger than a pass runs pass by pass (`BatchPasses`): the passes share the images
/// evenly, and the joined outputs (and intermediate values) are the one-pass run's.
@Suite struct BatchPassesTests {
    @Test func passesShareTheImagesEvenly() {
        #expect(BatchPasses.passes(batch: 32, limit: 8) == [0..<8, 8..<16, 16..<24, 24..<32])
        #expect(BatchPasses.passes(batch: 17, limit: 8) == [0..<5, 5..<11, 11..<17])
        #expect(BatchPasses.passes(batch: 8, limit: 8) == [0..<8])
        // FaceNet's largest activation, Conv2d_2b's 77 × 77 × 64 floats (1.5 MB an image): 32
        // images as four passes of eight.
        let facenet = BatchPasses.limit(largestImageBytes: 77 * 77 * 64 * 4)
        #expect(facenet == 10 && BatchPasses.passes(batch: 32, limit: facenet!).map(\.count) == [8, 8, 8, 8])
        // Small activations: large passes; large ones: at least eight images a pass.
        #expect(BatchPasses.limit(largestImageBytes: 1000)! > 10000)
        #expect(BatchPasses.limit(largestImageBytes: 50 << 20) == 8)
    }

    /// A conv stack with a dense head on 17 images as passes of 5, 6 and 6 (the budget set
    /// so that a pass takes the minimum of eight) against one pass, on each engine: asked for
    /// the output alone, the two convolutions run pass by pass and the pool and dense layer on
    /// all 17 at once (the cut after the second conv, whose output alone crosses it); asked for
    /// the first conv's output too, made before that cut, the whole program runs pass by pass.
    /// The outputs, the intermediate value, and the images in their order; and `prepare`
    /// makes the convolutions' primitives at the passes' sizes only.
    @Test(arguments: [ConvolutionEngine.gemm, .tiered]) func passesGiveTheOnePassAnswer(engine: ConvolutionEngine) throws {
        var g = SplitMix64(seed: 21)
        func randoms(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in (Float(g.next() % 2001) / 1000 - 1) * scale } }
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [-1, 12, 12, 3])], outputs: ["fc"],
            nodes: [Node(name: "a", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: ["x"], params: ["kernel": "ka", "bias": "ba"]),
                    Node(name: "b", op: .conv2D(ConvAttributes(strides: [2, 2], padding: .valid)), inputs: ["a"], params: ["kernel": "kb"]),
                    Node(name: "p", op: .globalAvgPool(keepDims: false), inputs: ["b"]),
                    Node(name: "fc", op: .dense(activation: .linear), inputs: ["p"], params: ["kernel": "kf"])],
            tensors: ["ka": Tensor(randoms(3 * 3 * 3 * 16, 0.3), shape: [3, 3, 3, 16]), "ba": Tensor(randoms(16), shape: [16]),
                      "kb": Tensor(randoms(3 * 3 * 16 * 24, 0.2), shape: [3, 3, 16, 24]),
                      "kf": Tensor(randoms(24 * 7, 0.3), shape: [24, 7])])
        let x = ["x": FloatTensor(shape: [17, 12, 12, 3], values: randoms(17 * 12 * 12 * 3))]
        let whole = try Executor(graph: graph, engine: engine)
        #expect(try whole.passLimit()! > 17, "a small graph's 17 images in one pass")
        let passes = try Executor(graph: graph, engine: engine)
        passes.passActivationBytes = 12 * 12 * 16 * 4  // one image of the largest value: the minimum, 8
        #expect(try passes.passLimit() == 8)
        // `prepare` makes the convolutions' primitives at the passes' sizes, not at 17.
        let prepared = try Executor(graph: graph, engine: .tiered)
        prepared.passActivationBytes = passes.passActivationBytes
        try prepared.prepare(batch: 17)
        let convs = prepared.program.instructions.compactMap { i -> ConvKernel? in if case .conv(let k) = i.step { k } else { nil } }
        #expect(convs.count == 2 && convs.allSatisfy { $0.native!.tried(batch: 5) && $0.native!.tried(batch: 6) && !$0.native!.tried(batch: 17) })
        #expect(try passes.passCutForTests(batch: 17, outputs: ["fc"])?.end == 2)
        #expect(try passes.passCutForTests(batch: 17, outputs: ["fc", "a"]) == nil)
        for names in [["fc"], ["fc", "a"], ["fc"]] {  // a tiered executor's first run, its trials, and its steady state
            let expected = try whole.run(x, outputs: names), got = try passes.run(x, outputs: names)
            for name in names {
                #expect(got[name]!.shape == expected[name]!.shape)
                let largest = expected[name]!.values.map(abs).max()!
                #expect(largest > 0.1 && Difference(got[name]!.values, expected[name]!.values, tolerance: .tensorFlow).maxAbsolute < 1e-5 * largest,
                        "\(name)")
            }
        }
    }
}
