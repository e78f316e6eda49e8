import FModelCompress
import FModelCore
import FModelImport
import FModelKeras
@testable import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// The executor's epilogue fusion: a conv absorbs the `scale`, residual `add` and activation of
/// an Inception-ResNet block, and the result is the unfused one.
@Suite struct FusionTests {
    func model() throws -> Graph { try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess) }

    func program(_ g: Graph, fuse: Bool) throws -> Program {
        let shapes = try g.inferShapes()
        var index: [String: Int] = [:]
        for (i, input) in g.inputs.enumerated() { index[input.name] = i }
        for (i, node) in g.nodes.enumerated() { index[node.name] = g.inputs.count + i }
        let steps = g.nodes.map { Step($0, graph: g, inputRank: shapes[$0.inputs.first ?? ""]?.rank ?? 0) }
        return Program(graph: g, steps: steps, valueIndex: index, shapes: shapes, fuse: fuse)
    }

    @Test func residualTailIsAbsorbed() throws {
        let g = try model()
        let fused = try program(g, fuse: true), plain = try program(g, fuse: false)
        #expect(plain.instructions.count == g.nodes.count && plain.missing.isEmpty)
        let up = try #require(fused.instructions.first { $0.node.name == "Block35_1_Conv2d_1x1" })
        #expect(up.outputName == "Block35_1_Activation")
        #expect(up.residual != nil)
        guard case .conv(let k) = up.step else { Issue.record("not a conv"); return }
        #expect(k.epilogue.scale == 0.17 && k.epilogue.activation == .relu && k.epilogue.addsResidual)
        #expect(fused.instructions.count < plain.instructions.count)
    }

    /// A model input is read where the caller holds it, never copied — and never written, even
    /// as the residual of a convolution whose oneDNN primitive would write over its residual's
    /// buffer at that value's last use (here on 64 rows, so that it does not stream).
    @Test func inputsAreReadInPlaceAndNeverWritten() throws {
        var rng = SplitMix64(seed: 7)
        func values(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.next() % 2001) / 1000 - 1 } }
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 8, 8, 16])], outputs: ["relu"], nodes: [
            Node(name: "first", op: .conv2D(ConvAttributes(padding: .same)), inputs: ["x"], params: ["kernel": "k"]),
            Node(name: "conv", op: .conv2D(ConvAttributes(padding: .same)), inputs: ["first"], params: ["kernel": "k", "bias": "b"]),
            Node(name: "add", op: .add, inputs: ["conv", "x"]),
            Node(name: "relu", op: .activation(.relu), inputs: ["add"]),
        ], tensors: ["k": Tensor(values(256), shape: [1, 1, 16, 16]), "b": Tensor(values(16), shape: [16])])
        let x = FloatTensor(shape: [2, 8, 8, 16], values: values(2 * 8 * 8 * 16))
        let copy = x.values.map { $0 }
        let expected = try Executor(graph: g, engine: .gemm).run(["x": x])["relu"]!.values
        let e = try Executor(graph: g, engine: .native)
        try e.prepare(batch: 2)
        let instruction = try #require(e.program.instructions.first { $0.node.name == "conv" })
        #expect(instruction.residual == 0 && instruction.step.addsResidualInPlace(batch: 2))
        for _ in 0..<2 {
            let y = try e.run(["x": x])["relu"]!.values
            #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-5)
            let unchanged = x.values == copy
            #expect(unchanged, "the caller's input was written")
        }
    }

    /// Asking for a value inside a fused group runs the unfused program; both give the outputs.
    @Test func fusedAndUnfusedAgree() throws {
        let g = try model()
        let x = try g.syntheticInputs(batch: 2)
        let e = try Executor(graph: g, engine: .native)
        let fused = try e.run(x)
        let plain = try e.run(x, outputs: g.outputs + ["Block35_1_Add"])
        #expect(plain["Block35_1_Add"] != nil)
        for name in g.outputs {
            let a = try #require(fused[name]).values, b = try #require(plain[name]).values
            #expect(!a.isEmpty && Difference(a, b, tolerance: .tensorFlow).maxAbsolute < 1e-5, "\(name)")
        }
    }

    /// bfloat16 products keep 8 bits of mantissa: the model's outputs stay within a few
    /// hundredths of float32 (probabilities here), and move by more than float32's rounding. On
    /// a CPU without AVX-512 oneDNN has no bf16 convolutions: every layer falls back to float32
    /// (on the GEMM path), and the outputs stay within float32's rounding.
    @Test func bf16StaysCloseToFloat() throws {
        let g = try model()
        let x = try g.syntheticInputs(batch: 2)
        let f = try Executor(graph: g).run(x)
        let b = try Executor(graph: g, precision: .bf16).run(x)
        var largest: Float = 0
        for name in g.outputs {
            let a = try #require(f[name]).values, c = try #require(b[name]).values
            let d = Difference(a, c, tolerance: .tensorFlow).maxAbsolute
            #expect(!a.isEmpty && d < 0.05, "\(name): max |Δ| \(d)")
            largest = max(largest, d)
        }
        #expect((largest > 1e-5) == ComputePrecision.bf16Available, "max |Δ| \(largest)")
    }

    /// A wide 3×3 stride-1 float32 convolution (32+ inputs, 64+ outputs, as FaceNet's
    /// Conv2d_2b and Conv2d_4a) may run as Winograd F(4×4, 3×3) in oneDNN (fewer
    /// multiplications, different rounding); it still gives the im2col + GEMM result.
    @Test(arguments: [(32, 64), (64, 96)]) func wideThreeByThreeConvMatchesGEMM(cin: Int, cout: Int) throws {
        var g = SplitMix64(seed: 21)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 12, 12, cin])], outputs: ["n"],
                          nodes: [Node(name: "n", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: ["x"],
                                       params: ["kernel": "k", "bias": "b"])],
                          tensors: ["k": Tensor(randoms(9 * cin * cout).map { $0 * 0.1 }, shape: [3, 3, cin, cout]),
                                    "b": Tensor(randoms(cout), shape: [cout])])
        let x = ["x": FloatTensor(shape: [2, 12, 12, cin], values: randoms(2 * 12 * 12 * cin))]
        let native = try Executor(graph: graph, engine: .native), gemm = try Executor(graph: graph, engine: .gemm)
        let a = try native.run(x)["n"]!.values, b = try gemm.run(x)["n"]!.values
        #expect(a.count == b.count && a.contains { $0 > 0 })
        #expect(Difference(a, b, tolerance: .tensorFlow).maxAbsolute < 1e-4)
        guard case .conv(let k) = native.program.instructions[0].step else { Issue.record("not a conv"); return }
        // oneDNN 2.6 has Winograd for AVX-512 CPUs (this test compares it only where it runs).
        let implementation = try #require(k.native?.implementation(batch: 2))
        #expect(implementation.contains("wino") || !oneDNNIsAVX512, "\(implementation)")
    }

    /// At batch 1 oneDNN's F(4×4) kernel, whose buffers are sized for large batches, takes a
    /// map of 64 of its 4×4 tiles or more (FaceNet's Conv2d_4a, 36×36: the stem 12% faster on
    /// the Zen 5) and not a smaller one (Mixed_6a's 17×17, 15% slower with it), where oneDNN's
    /// F(2×2) kernel may run instead.
    @Test(arguments: [(32, true), (12, false)]) func batchOneWinogradByTheMapsTiles(side: Int, large: Bool) throws {
        var g = SplitMix64(seed: 22)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (cin, cout) = (80, 192)
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, side, side, cin])], outputs: ["n"],
                          nodes: [Node(name: "n", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: ["x"],
                                       params: ["kernel": "k", "bias": "b"])],
                          tensors: ["k": Tensor(randoms(9 * cin * cout).map { $0 * 0.1 }, shape: [3, 3, cin, cout]),
                                    "b": Tensor(randoms(cout), shape: [cout])])
        let x = ["x": FloatTensor(shape: [1, side, side, cin], values: randoms(side * side * cin))]
        let native = try Executor(graph: graph, engine: .native), gemm = try Executor(graph: graph, engine: .gemm)
        #expect(Difference(try native.run(x)["n"]!.values, try gemm.run(x)["n"]!.values, tolerance: .tensorFlow).maxAbsolute < 1e-4)
        guard case .conv(let k) = native.program.instructions[0].step else { Issue.record("not a conv"); return }
        let implementation = try #require(k.native?.implementation(batch: 1))
        #expect(implementation.contains("wino_4x3") == (large && oneDNNIsAVX512), "\(implementation)")
    }

    /// Executors made and run on several threads at once (their oneDNN primitives are made one
    /// at a time in the process) give what one executor gives.
    @Test func executorsOnSeveralThreadsAgree() throws {
        let g = try model()
        let x = try g.syntheticInputs(batch: 3)
        let expected = try Executor(graph: g).run(x)
        let results = ResultSlots(count: 4)
        DispatchQueue.concurrentPerform(iterations: 4) { i in
            results.set(i, (try? Executor(graph: g, engine: .native).run(x)) ?? [:])
        }
        for i in 0..<4 {
            for name in g.outputs {
                let got = try #require(results.get(i)[name], "thread \(i) gave no \(name)")
                #expect(Difference(got.values, expected[name]!.values, tolerance: .tensorFlow).maxAbsolute < 1e-6)
            }
        }
    }
}

/// Outputs written by concurrent test workers, each at its own index.
final class ResultSlots: @unchecked Sendable {
    private var values: [[String: FloatTensor]]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: [:], count: count) }
    func set(_ i: Int, _ v: [String: FloatTensor]) { lock.lock(); values[i] = v; lock.unlock() }
    func get(_ i: Int) -> [String: FloatTensor] { lock.lock(); defer { lock.unlock() }; return values[i] }
}
