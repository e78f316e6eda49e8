import FModelCompress
import FModelCore
import FModelImport
import FModelKeras
@testable import FModelRuntime
import FModelTestSupport
import Testing

/// The `tiered` engine: a batch size's first run takes im2col + GEMM for float32 convolutions,
/// and its second makes and runs the oneDNN primitives.
@Suite struct TieredEngineTests {
    func model() throws -> Graph { try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess) }

    /// The convolutions of `e`'s fused program: whether each has tried to make its
    /// primitive for `batch`.
    func tried(_ e: Executor, batch: Int) -> [Bool] {
        e.program.instructions.compactMap {
            guard case .conv(let k) = $0.step else { return nil }
            return k.native?.tried(batch: batch) ?? false
        }
    }

    @Test func firstRunCompilesNothingAndTheSecondAgrees() throws {
        let g = try model()
        let x = try g.syntheticInputs(batch: 2)
        let e = try Executor(graph: g)
        #expect(e.engine == .tiered)
        let first = try e.run(x)
        let firstWorkspace = e.workspaceBytes
        #expect(!tried(e, batch: 2).isEmpty && !tried(e, batch: 2).contains(true))
        let second = try e.run(x)
        #expect(!tried(e, batch: 2).contains(false))
        // The GEMM path's im2col scratch goes with it: the native run holds only its own.
        #expect(e.workspaceBytes < firstWorkspace, "\(e.workspaceBytes) of \(firstWorkspace) bytes")
        #expect(!tried(e, batch: 1).contains(true), "only the batch size that ran twice")
        for name in g.outputs {
            let a = try #require(first[name]).values, b = try #require(second[name]).values
            #expect(!a.isEmpty && Difference(a, b, tolerance: .tensorFlow).maxAbsolute < 1e-5, "\(name)")
        }
        #expect(try e.run(x) == second)
    }

    /// The second run times each float32 conv without a residual every way it has and keeps
    /// the fastest (forced here): the losers' primitives are gone, the residual convs keep
    /// theirs, the outputs stay the GEMM engine's, and the third run gives the second's answer.
    @Test(arguments: [ConvPath.gemm, .native, .winograd]) func trialKeepsTheFasterPath(verdict: ConvPath) throws {
        let g = try model()
        let x = try g.syntheticInputs(batch: 2)
        let e = try Executor(graph: g)
        e.forceTrialVerdict(verdict)
        _ = try e.run(x)
        let second = try e.run(x)
        let convs = e.program.instructions.compactMap { i -> ConvKernel? in if case .conv(let k) = i.step { k } else { nil } }
        let plain = convs.filter { !$0.epilogue.addsResidual }, residual = convs.filter(\.epilogue.addsResidual)
        #expect(!plain.isEmpty && !residual.isEmpty)
        let winograd = plain.filter { $0.native!.winograd(batch: 2) != nil }
        #expect(plain.allSatisfy { $0.native!.decided(batch: 2) })
        #expect(plain.allSatisfy { $0.native!.made(batch: 2) == (verdict == .native || verdict == .winograd && $0.native!.winograd(batch: 2) == nil) })
        #expect(winograd.isEmpty == (verdict != .winograd || !WinogradKernel.available), "\(winograd.count) of \(plain.count) layers as Winograd")
        #expect(residual.allSatisfy { !$0.native!.decided(batch: 2) && $0.native!.made(batch: 2) })
        let reference = try Executor(graph: g, engine: .gemm).run(x)
        for name in g.outputs {
            let a = try #require(reference[name]).values, b = try #require(second[name]).values
            #expect(!a.isEmpty && Difference(a, b, tolerance: .tensorFlow).maxAbsolute < 1e-5, "\(name)")
        }
        #expect(try e.run(x) == second)
    }

    /// Runs `graph`'s one output three times on a tiered executor whose trials choose
    /// Winograd where a layer has the form, and once on the `gemm` engine: the executor's
    /// convolutions (to ask which run as Winograd), its second and third outputs, the reference.
    func runWithWinogradForced(_ graph: Graph, _ x: [String: FloatTensor]) throws
        -> (convs: [ConvKernel], second: [Float], third: [Float], reference: [Float]) {
        let output = graph.outputs[0]
        let e = try Executor(graph: graph)
        e.forceTrialVerdict(.winograd)
        _ = try e.run(x)
        let second = try e.run(x)[output]!.values, third = try e.run(x)[output]!.values
        let reference = try Executor(graph: graph, engine: .gemm).run(x)[output]!.values
        let convs = e.program.instructions.compactMap { i -> ConvKernel? in if case .conv(let k) = i.step { k } else { nil } }
        return (convs, second, third, reference)
    }

    /// Winograd F(4×4, 3×3) against the GEMM path on layers whose output is no multiple of
    /// the 4×4 tile nor their channels of the 8-float vector (SAME and VALID padding, three
    /// images, a bias and each fused activation);
    /// the strided 3×3 and the 1×1 have no Winograd form and stay native. Small images (one
    /// block of tiles a thread; there layer d, on 12 tiles, fewer than
    /// `WinogradKernel.fewestTiles`, stays off Winograd, and on AVX-512, where that is 64, so do
    /// all) and large ones (several: layer b has 960 tiles, each thread takes 480 in blocks of
    /// 202).
    @Test(arguments: [(3, 13, 11), (4, 61, 63)]) func winogradMatchesTheGEMMEngine(batch: Int, height: Int, width: Int) throws {
        var g = SplitMix64(seed: 47)
        func randoms(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in (Float(g.next() % 2001) / 1000 - 1) * scale } }
        func conv(_ name: String, _ input: String, _ a: ConvAttributes, bias: Bool = true) -> Node {
            Node(name: name, op: .conv2D(a), inputs: [input], params: bias ? ["kernel": "k" + name, "bias": "b" + name] : ["kernel": "k" + name])
        }
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [-1, height, width, 5])], outputs: ["e"],
            nodes: [conv("a", "x", ConvAttributes(padding: .same, activation: .relu)),
                    conv("b", "a", ConvAttributes(padding: .valid, activation: .leakyRelu(alpha: 0.2))),
                    conv("c", "b", ConvAttributes(strides: [2, 2], padding: .same, activation: .relu6)),
                    conv("d", "c", ConvAttributes(padding: .same), bias: false),
                    conv("e", "d", ConvAttributes(padding: .valid))],
            tensors: ["ka": Tensor(randoms(3 * 3 * 5 * 12, 0.3), shape: [3, 3, 5, 12]), "ba": Tensor(randoms(12), shape: [12]),
                      "kb": Tensor(randoms(3 * 3 * 12 * 24, 0.3), shape: [3, 3, 12, 24]), "bb": Tensor(randoms(24), shape: [24]),
                      "kc": Tensor(randoms(3 * 3 * 24 * 16, 0.3), shape: [3, 3, 24, 16]), "bc": Tensor(randoms(16), shape: [16]),
                      "kd": Tensor(randoms(3 * 3 * 16 * 6, 0.3), shape: [3, 3, 16, 6]),
                      "ke": Tensor(randoms(6 * 6, 0.3), shape: [1, 1, 6, 6]), "be": Tensor(randoms(6), shape: [6])])
        let x = ["x": FloatTensor(shape: [batch, height, width, 5], values: randoms(batch * height * width * 5))]
        let (convs, second, third, reference) = try runWithWinogradForced(graph, x)
        let available = WinogradKernel.available
        // Layer d runs on the strided layer's output, (height − 1) / 2 × (width − 1) / 2.
        let dTiles = batch * (((height - 1) / 2 + 3) / 4) * (((width - 1) / 2 + 3) / 4)
        // Layers a and b: their tiles, SAME and VALID (both ways as many as a's at these sizes).
        let abTiles = batch * ((height + 3) / 4) * ((width + 3) / 4), bTiles = batch * ((height - 2 + 3) / 4) * ((width - 2 + 3) / 4)
        let fewest = WinogradKernel.fewestTiles(line: false)
        #expect(convs.map { $0.native!.winograd(batch: batch) != nil }
                == [available && abTiles >= fewest, available && bTiles >= fewest, false, available && dTiles >= fewest, false])
        let off = Difference(second, reference, tolerance: .tensorFlow).maxAbsolute, largest = reference.map(abs).max() ?? 0
        // SAME keeps the size, VALID takes 2, the strided layer halves it (rounding up).
        let out = batch * ((height - 1) / 2) * ((width - 1) / 2) * 6
        #expect(reference.count == out && largest > 1 && off < 1e-5 * largest, "max |Δ| \(off) of \(largest)")
        #expect(third == second, "the third run differs from the second")
    }

    /// Winograd F(4, 7) against the GEMM path on 1×7 and 7×1 layers whose lines are no
    /// multiple of the 4-output tile nor their channels of the 8-float vector (SAME and VALID
    /// padding, a bias and each fused activation, three images); the 1×3 and the strided 7×1
    /// have no such form. A small image (layer c runs on 8 × 2 tiles, the fewest it takes with
    /// AVX2 products; d, on 8 × 1, stays off Winograd; with AVX-512's, 64 at least, all do) and
    /// three large ones (where b and c, 200 channels wide, take several blocks of tiles a
    /// thread: b 207 tiles in blocks of 123 on two threads).
    @Test(arguments: [(1, 8, 14), (3, 21, 23)]) func lineWinogradMatchesTheGEMMEngine(batch: Int, height: Int, width: Int) throws {
        var g = SplitMix64(seed: 53)
        func randoms(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in (Float(g.next() % 2001) / 1000 - 1) * scale } }
        func conv(_ name: String, _ input: String, _ a: ConvAttributes, _ shape: [Int], bias: Bool = true) -> (Node, [String: Tensor]) {
            let kernel = Tensor(randoms(shape.reduce(1, *), 0.3), shape: Shape(shape))
            return (Node(name: name, op: .conv2D(a), inputs: [input], params: bias ? ["kernel": "k" + name, "bias": "b" + name] : ["kernel": "k" + name]),
                    bias ? ["k" + name: kernel, "b" + name: Tensor(randoms(shape[3]), shape: [shape[3]])] : ["k" + name: kernel])
        }
        let layers = [conv("a", "x", ConvAttributes(padding: .same, activation: .relu), [1, 7, 5, 12]),
                      conv("b", "a", ConvAttributes(padding: .same, activation: .leakyRelu(alpha: 0.2)), [7, 1, 12, 200]),
                      conv("c", "b", ConvAttributes(padding: .valid, activation: .relu6), [1, 7, 200, 9], bias: false),
                      conv("d", "c", ConvAttributes(padding: .valid), [7, 1, 9, 11]),
                      conv("e", "d", ConvAttributes(strides: [2, 2], padding: .same, activation: .relu), [7, 1, 11, 6]),
                      conv("f", "e", ConvAttributes(padding: .same), [1, 3, 6, 6])]
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, height, width, 5])], outputs: ["f"], nodes: layers.map(\.0),
                          tensors: layers.reduce(into: [:]) { $0.merge($1.1) { a, _ in a } })
        let x = ["x": FloatTensor(shape: [batch, height, width, 5], values: randoms(batch * height * width * 5))]
        let (convs, second, third, reference) = try runWithWinogradForced(graph, x)
        // Tiles: four outputs along each line, lines across the map, all images.
        func tiles(along: Int, across: Int) -> Int { batch * across * ((along + 3) / 4) }
        let expected = [tiles(along: width, across: height), tiles(along: height, across: width),
                        tiles(along: width - 6, across: height), tiles(along: height - 6, across: width - 6)]
            .map { $0 >= WinogradKernel.fewestTiles(line: true) } + [false, false]
        let available = WinogradKernel.available
        #expect(convs.map { $0.native!.winograd(batch: batch) != nil } == expected.map { $0 && available })
        let off = Difference(second, reference, tolerance: .tensorFlow).maxAbsolute, largest = reference.map(abs).max() ?? 0
        let out = batch * ((height - 6 + 1) / 2) * ((width - 6 + 1) / 2) * 6
        #expect(reference.count == out && largest > 1 && off < 1e-5 * largest, "max |Δ| \(off) of \(largest)")
        #expect(third == second, "the third run differs from the second")
    }

    /// Where the GEMM path wins the trial on products of `libraryRows` rows or more (here a 3×3
    /// and a 1×1 on 512 output pixels, two 16×16 images, and on 64, one 8×8 image: below
    /// `columnSplitRows`, where only the library's product runs them), the runs after the first
    /// take oneDNN's sgemm: the outputs stay the `gemm` engine's (its own product) to float
    /// rounding.
    @Test(arguments: [(2, 16), (1, 8)]) func trialWinnersOnTallProductsMatchTheGEMMEngine(batch: Int, side: Int) throws {
        var g = SplitMix64(seed: 31)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [-1, side, side, 8])], outputs: ["b"],
            nodes: [Node(name: "a", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: ["x"], params: ["kernel": "ka"]),
                    Node(name: "b", op: .conv2D(ConvAttributes()), inputs: ["a"], params: ["kernel": "kb"])],
            tensors: ["ka": Tensor(randoms(3 * 3 * 8 * 16).map { $0 * 0.2 }, shape: [3, 3, 8, 16]),
                      "kb": Tensor(randoms(16 * 8).map { $0 * 0.2 }, shape: [1, 1, 16, 8])])
        let x = ["x": FloatTensor(shape: [batch, side, side, 8], values: randoms(batch * side * side * 8))]
        let e = try Executor(graph: graph)
        e.forceTrialVerdict(.gemm)
        _ = try e.run(x)
        let second = try e.run(x)["b"]!.values, third = try e.run(x)["b"]!.values
        let reference = try Executor(graph: graph, engine: .gemm).run(x)["b"]!.values
        let off = Difference(second, reference, tolerance: .tensorFlow).maxAbsolute, repeats = third == second
        #expect(reference.count == batch * side * side * 8 && off < 1e-5, "max |Δ| \(off)")
        #expect(repeats, "the third run differs from the second")
    }

    @Test func prepareMakesThePrimitivesBeforeAnyRun() throws {
        let e = try Executor(graph: try model())
        try e.prepare(batch: 3)
        #expect(!tried(e, batch: 3).contains(false))
        let gemm = try Executor(graph: try model(), engine: .gemm)
        try gemm.prepare(batch: 3)
        #expect(!tried(gemm, batch: 3).contains(true))
    }

    /// int8 convolutions are native from the first run: their GEMM path quantizes activations
    /// differently, and a model gives one answer twice.
    @Test func int8RunsTheSameFromTheFirstRun() throws {
        let g = try model().quantizing(LayerSelection(), .int8PerChannel)
        let x = try g.syntheticInputs(batch: 1)
        let e = try Executor(graph: g)
        let first = try e.run(x)
        #expect(!tried(e, batch: 1).contains(false))
        #expect(try e.run(x) == first)
    }

    /// With oneDNN's AVX2 kernels a trial's near-tie goes to fmodel's own path where the input
    /// fits in L2, to oneDNN's primitive elsewhere; with its AVX-512 kernels to the primitive
    /// everywhere (on the Zen 5 the L2 rule's near-ties made batch 1 5–9% slower). A clear
    /// winner wins either way.
    @Test(arguments: [false, true]) func nearTiesGoByWhereTheInputLies(avx512: Bool) {
        for inL2 in [false, true] {
            func verdict(_ native: Double, _ other: ConvPath, _ otherTime: Double) -> ConvPath {
                ConvPath.verdict(native: native, other: other, otherTime: otherTime, inputInL2: inL2, avx512: avx512)
            }
            let ownPathOnNearTies = inL2 && !avx512
            #expect(verdict(1.0, .gemm, 0.5) == .gemm)
            #expect(verdict(0.5, .winograd, 1.0) == .native)
            #expect(verdict(1.0, .winograd, 1.05) == (ownPathOnNearTies ? .winograd : .native))
            #expect(verdict(1.0, .gemm, 0.95) == (ownPathOnNearTies ? .gemm : .native))
        }
    }

    /// bf16 products exist only in oneDNN's code: a tiered bf16 executor is native.
    @Test func bf16IsNative() throws {
        #expect(try Executor(graph: try model(), precision: .bf16).engine == .native)
    }

    /// Each batch size keeps its own verdict: a layer whose trial chose Winograd at batch 4 and
    /// the GEMM path at batch 1 (forced) runs Winograd only at 4, and both give the `gemm`
    /// engine's outputs, before and after the other batch size's trial.
    @Test func batchSizesKeepTheirOwnVerdicts() throws {
        var g = SplitMix64(seed: 48)
        func randoms(_ n: Int, _ scale: Float = 1) -> [Float] { (0..<n).map { _ in (Float(g.next() % 2001) / 1000 - 1) * scale } }
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 33, 35, 8])], outputs: ["y"],
                          nodes: [Node(name: "y", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: ["x"],
                                       params: ["kernel": "k", "bias": "b"])],
                          tensors: ["k": Tensor(randoms(9 * 8 * 16, 0.3), shape: [3, 3, 8, 16]), "b": Tensor(randoms(16), shape: [16])])
        let four = ["x": FloatTensor(shape: [4, 33, 35, 8], values: randoms(4 * 33 * 35 * 8))]
        let one = ["x": FloatTensor(shape: [1, 33, 35, 8], values: randoms(33 * 35 * 8))]
        let e = try Executor(graph: graph), reference = try Executor(graph: graph, engine: .gemm)
        e.forceTrialVerdict(.winograd)
        for _ in 0..<2 { _ = try e.run(four) }
        e.forceTrialVerdict(.gemm)
        for _ in 0..<2 { _ = try e.run(one) }
        guard case .conv(let k) = e.program.instructions[0].step, let native = k.native else { Issue.record("not a native conv"); return }
        #expect((native.winograd(batch: 4) != nil) == WinogradKernel.available && native.winograd(batch: 1) == nil)
        for x in [four, one] {
            let expected = try reference.run(x)["y"]!.values, got = try e.run(x)["y"]!.values
            let largest = expected.map(abs).max()!
            #expect(largest > 1 && Difference(got, expected, tolerance: .tensorFlow).maxAbsolute < 1e-5 * largest)
        }
    }
}
