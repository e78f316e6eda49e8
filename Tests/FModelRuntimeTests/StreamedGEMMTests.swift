import CKernels
import FModelCore
@testable import FModelRuntime
import FModelTestSupport
import Testing

/// Layers with few output rows and a large kernel read the kernel once (`streamedGEMM`), in
/// place, without a oneDNN primitive; they give the convolution a direct sum in Double gives.
@Suite struct StreamedGEMMTests {
    /// Pointwise and strided 3×3 convs with 1 to 16 output rows: one and two register blocks
    /// of rows, column counts that are not a multiple of 16, an odd kernel depth (uneven
    /// shares between the threads; for one row, the four kernel rows at a time of AVX2's
    /// `fm_avx2_gemv_f32` with a remainder).
    @Test(arguments: [
        ([1, 3, 3, 384], 1, 1, 200),  // Block8's 1×1 shape: nine rows
        ([1, 1, 13, 257], 1, 1, 300),  // thirteen rows: a block of twelve and one
        ([2, 2, 4, 256], 1, 1, 260),  // two images, sixteen rows
        ([1, 1, 1, 600], 1, 1, 130),  // one row
        ([1, 1, 1, 601], 1, 1, 256),  // one row: depth shares not a multiple of four, 1 KB kernel rows (prefetched)
        ([1, 6, 6, 130], 3, 2, 70),  // 3×3 stride 2 (Mixed_7a's shape): im2col, nine rows
    ])
    func convMatchesDirectSum(inShape: [Int], kernelSize: Int, stride: Int, cout: Int) throws {
        var g = SplitMix64(seed: 5)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let cin = inShape[3], k = kernelSize
        let kernel = randoms(k * k * cin * cout).map { $0 * 0.1 }, bias = randoms(cout)
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: Shape([-1] + inShape.dropFirst()))], outputs: ["n"],
                          nodes: [Node(name: "n", op: .conv2D(ConvAttributes(strides: [stride, stride], padding: .same)),
                                       inputs: ["x"], params: ["kernel": "k", "bias": "b"])],
                          tensors: ["k": Tensor(kernel, shape: [k, k, cin, cout]), "b": Tensor(bias, shape: [cout])])
        let x = randoms(inShape.reduce(1, *))
        let expected = directConv(x, inShape, kernel, kH: k, kW: k, cout: cout, stride: stride, bias: bias)
        // Streamed on the GEMM path always, and past it where oneDNN's kernels are AVX-512 ones
        // (on AVX2 oneDNN reads such kernels faster: `ConvKernel.streams`).
        for engine in [ConvolutionEngine.gemm, .native] {
            let e = try Executor(graph: graph, engine: engine)
            let y = try e.run(["x": FloatTensor(shape: Shape(inShape), values: x)])["n"]!.values
            #expect(y.count == expected.count)
            #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4, "\(engine)")
            guard case .conv(let kernelStep) = e.program.instructions[0].step else { Issue.record("not a conv"); return }
            let streamed = engine == .gemm || oneDNNIsAVX512
            #expect(kernelStep.streams(rows: y.count / cout) == streamed, "\(engine): streamed \(streamed) for \(inShape)")
            #expect(kernelStep.native?.tried(batch: inShape[0]) ?? false == !streamed,
                    "\(engine): a oneDNN primitive (and its kernel copy) only for a layer that does not stream")
        }
    }

    /// The int8 matrix-vector product of a one-row dense layer (`fm_gemv_s8`: on AVX2 passes of
    /// 96, 64, 32, 16 and 8 columns over pieces of the rows, the partial sums kept in `y`
    /// between pieces) against a sum in Double: column counts that leave each pass and a scalar
    /// tail, depths of one piece, several, and none (a thread's empty share, which must write 0).
    @Test(arguments: [(0, 40), (1, 8), (37, 256), (200, 256), (333, 251), (70, 1100), (129, 117)])
    func int8RowProductMatchesDoubleSum(depth: Int, columns: Int) {
        var g = SplitMix64(seed: UInt64(depth * 10_000 + columns))
        let a = (0..<depth).map { _ in Float(g.next() % 2001) / 1000 - 1 }
        let w = (0..<depth * columns).map { _ in Int8(truncatingIfNeeded: Int(g.next() % 255) - 127) }
        let scales = (0..<columns).map { _ in Float(g.next() % 1000 + 1) / 100_000 }
        var y = [Float](repeating: .nan, count: columns)
        fm_gemv_s8(a, depth, columns, w, scales, &y)
        for c in 0..<columns {
            let sum = (0..<depth).reduce(0.0) { $0 + Double(a[$1]) * Double(w[$1 * columns + c]) } * Double(scales[c])
            #expect(abs(Double(y[c]) - sum) <= 1e-5 * max(1, abs(sum)), "column \(c) of \(columns), depth \(depth): \(y[c]) against \(sum)")
        }
    }

    /// On a tiered executor a streamed-size layer streams on the first run; past it, where
    /// oneDNN's kernels are AVX2 ones, its trial weighs streaming against oneDNN (forced here):
    /// the loser's primitive goes, and both give the direct sum.
    @Test(arguments: [ConvPath.gemm, .native]) func trialWeighsStreamingAgainstOneDNN(verdict: ConvPath) throws {
        var g = SplitMix64(seed: 9)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (cin, cout) = (384, 200)
        let kernel = randoms(cin * cout).map { $0 * 0.1 }, bias = randoms(cout), x = randoms(9 * cin)
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 3, 3, cin])], outputs: ["n"],
                          nodes: [Node(name: "n", op: .conv2D(ConvAttributes(padding: .same)), inputs: ["x"], params: ["kernel": "k", "bias": "b"])],
                          tensors: ["k": Tensor(kernel, shape: [1, 1, cin, cout]), "b": Tensor(bias, shape: [cout])])
        let e = try Executor(graph: graph)
        e.forceTrialVerdict(verdict)
        let input = ["x": FloatTensor(shape: [1, 3, 3, cin], values: x)]
        let first = try e.run(input)["n"]!.values, second = try e.run(input)["n"]!.values, third = try e.run(input)["n"]!.values
        let expected = directConv(x, [1, 3, 3, cin], kernel, kH: 1, kW: 1, cout: cout, stride: 1, bias: bias)
        for y in [first, second] { #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4) }
        #expect(third == second)
        guard case .conv(let k) = e.program.instructions[0].step, let native = k.native else { Issue.record("not a native conv"); return }
        if oneDNNIsAVX512 {
            #expect(!native.decided(batch: 1) && !native.tried(batch: 1), "streamed on every run, no primitive")
        } else {
            #expect(native.decided(batch: 1) && native.made(batch: 1) == (verdict == .native))
        }
    }

    /// A streamed-size layer with a residual (Block8's 384→1792 at batch 1), which no trial
    /// weighs, streams on every run on any CPU: no primitive, no kernel copy, and the direct
    /// sum plus the residual on the first, second and third run.
    @Test func residualLayerStreamsOnEveryRun() throws {
        var g = SplitMix64(seed: 11)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (cin, cout) = (200, 384)
        let kernel = randoms(cin * cout).map { $0 * 0.1 }, bias = randoms(cout), x = randoms(9 * cin), r = randoms(9 * cout)
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 3, 3, cin]), ValueInfo(name: "r", shape: [-1, 3, 3, cout])],
                          outputs: ["sum"],
                          nodes: [Node(name: "n", op: .conv2D(ConvAttributes(padding: .same)), inputs: ["x"], params: ["kernel": "k", "bias": "b"]),
                                  Node(name: "sum", op: .add, inputs: ["r", "n"])],
                          tensors: ["k": Tensor(kernel, shape: [1, 1, cin, cout]), "b": Tensor(bias, shape: [cout])])
        let e = try Executor(graph: graph)
        let input = ["x": FloatTensor(shape: [1, 3, 3, cin], values: x), "r": FloatTensor(shape: [1, 3, 3, cout], values: r)]
        let expected = zip(directConv(x, [1, 3, 3, cin], kernel, kH: 1, kW: 1, cout: cout, stride: 1, bias: bias), r).map { Float($0) + $1 }
        for run in 1...3 {
            let y = try e.run(input)["sum"]!.values
            #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4, "run \(run)")
        }
        guard case .conv(let k) = e.program.instructions.first(where: { $0.node.name == "n" })?.step else { Issue.record("not a conv"); return }
        #expect(k.epilogue.addsResidual && k.streams(rows: 9))
        #expect(!(k.native?.tried(batch: 1) ?? false), "no oneDNN primitive for it")
    }

    /// A large dense layer on few rows (fc1 at batch 1 to 16) streams too: the one-row GEMV and
    /// the register blocks of several rows give the direct sum.
    @Test(arguments: [1, 2, 13]) func largeDenseMatchesDirectSum(rows: Int) throws {
        var g = SplitMix64(seed: 7)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (inputs, units) = (1030, 1030)  // 1,060,900 weights; 1030 columns: a partial vector
        let kernel = randoms(inputs * units).map { $0 * 0.05 }, x = randoms(rows * inputs)
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, inputs])], outputs: ["n"],
                          nodes: [Node(name: "n", op: .dense(activation: .linear), inputs: ["x"], params: ["kernel": "k"])],
                          tensors: ["k": Tensor(kernel, shape: [inputs, units])])
        #expect(streamsKernel(rows: rows, weights: inputs * units))
        let y = try Executor(graph: graph).run(["x": FloatTensor(shape: [rows, inputs], values: x)])["n"]!.values
        #expect(Difference(y, directProduct(x, kernel, m: rows, k: inputs, n: units), tolerance: .tensorFlow).maxAbsolute < 1e-4)
    }

    /// 17 to 32 rows of a dense layer with a kernel of 16 MB or more read it in column panels
    /// on an AVX-512 CPU: the product gives the direct sum across a panel's edge, a column
    /// tail, a depth that is not a multiple of the panel's and the threads' shares of the columns.
    @Test(arguments: [17, 20, 32]) func columnPanelsMatchDirectSum(rows: Int) {
        var g = SplitMix64(seed: 8)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (k, n) = (70, 1100)  // three panels, the last 76 columns wide
        let error = productError(m: rows, k: k, n: n, a: randoms(rows * k), b: randoms(k * n)) {
            columnGEMM(m: rows, n: n, k: k, a: $0, b: $1, c: $2)
        }
        #expect(error < 1e-4)
        #expect(readsKernelInPanels(rows: rows, weights: 1792 * 8192) == oneDNNIsAVX512, "fc1's shape at \(rows) rows")
        #expect(!readsKernelInPanels(rows: rows, weights: 8192 * 256), "a kernel the cache keeps")
    }

    /// More rows than a streamed product's of a dense layer with a kernel of 16 MB or more
    /// multiply a packed copy of it on an AVX2 CPU: the product gives the direct sum across
    /// pieces of the depth (300: one of 256 and one of 44), a panel's edge and a column tail
    /// (600: 512 and 88), and the threads' shares of the columns.
    @Test(.enabled(if: fm_packed_available() != 0, "packed products need AVX2 + FMA"), arguments: [17, 40])
    func packedCopyMatchesDirectSum(rows: Int) throws {
        var g = SplitMix64(seed: 9)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (k, n) = (300, 600)
        let b = randoms(k * n), weights = FloatWeights(Tensor(b, shape: [k, n]))
        let packed = weights.packed(k: k, n: n)
        #expect(weights.packed(k: k, n: n) == packed, "made once")
        let error = productError(m: rows, k: k, n: n, a: randoms(rows * k), b: b) { a, _, c in
            packedColumnGEMM(m: rows, n: n, k: k, a: a, packed: packed, c: c)
        }
        #expect(error < 1e-4)
        #expect(multipliesPackedCopy(rows: rows, weights: 1792 * 8192) == !oneDNNIsAVX512, "fc1's shape at \(rows) rows")
        #expect(!multipliesPackedCopy(rows: rows, weights: 8192 * 256), "a kernel the cache keeps")
        #expect(!multipliesPackedCopy(rows: 16, weights: 1792 * 8192), "a streamed product's rows")
    }

    /// A dense layer's trial between the column panels and sgemm runs each three times, keeps
    /// its verdict for the row count, and runs the winner last (its output is the one kept);
    /// later runs take the winner alone, and another row count has a trial of its own.
    @Test(arguments: [DenseTrial.Path.panels, .library]) func denseTrialRunsTheWinnerLast(winner: DenseTrial.Path) {
        let trial = DenseTrial()
        trial.forcedVerdict = winner
        var calls: [DenseTrial.Path] = []
        trial.run("test", rows: 24, panels: { calls.append(.panels) }, library: { calls.append(.library) })
        #expect(calls.filter { $0 == .panels }.count == 3 + (winner == .panels ? 1 : 0))
        #expect(calls.filter { $0 == .library }.count == 3 && calls.last == winner && trial.verdict(rows: 24) == winner)
        calls = []
        trial.run("test", rows: 24, panels: { calls.append(.panels) }, library: { calls.append(.library) })
        #expect(calls == [winner])
        #expect(trial.verdict(rows: 32) == nil)
    }

    /// A dense layer whose kernel is 16 MB (2050 × 2048 weights) on 17 rows, in the executor,
    /// gives oneDNN's sgemm product: through the packed copy on an AVX2 CPU, the column panels
    /// or sgemm, whichever its trial picks, on an AVX-512 one; every run the same.
    @Test func largeDenseOnSeventeenRowsMatchesSGEMM() throws {
        var g = SplitMix64(seed: 10)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (rows, inputs, units) = (17, 2050, 2048)
        let kernel = randoms(inputs * units).map { $0 * 0.05 }, x = randoms(rows * inputs)
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, inputs])], outputs: ["n"],
                          nodes: [Node(name: "n", op: .dense(activation: .linear), inputs: ["x"], params: ["kernel": "k"])],
                          tensors: ["k": Tensor(kernel, shape: [inputs, units])])
        #expect(multipliesPackedCopy(rows: rows, weights: inputs * units) || readsKernelInPanels(rows: rows, weights: inputs * units))
        var reference = [Float](repeating: 0, count: rows * units)
        x.withUnsafeBufferPointer { a in
            kernel.withUnsafeBufferPointer { b in
                reference.withUnsafeMutableBufferPointer { sgemm(m: rows, n: units, k: inputs, a: a.baseAddress!, b: b.baseAddress!, c: $0.baseAddress!) }
            }
        }
        let e = try Executor(graph: graph)
        var outputs: [[Float]] = []
        for _ in 0..<2 {
            let y = try e.run(["x": FloatTensor(shape: [rows, inputs], values: x)])["n"]!.values
            #expect(Difference(y, reference, tolerance: .tensorFlow).maxAbsolute < 1e-4)
            outputs.append(y)
        }
        #expect(outputs[0] == outputs[1], "the trial's run gives the winner's output")
    }

    /// A 1×1 whose output is at most four pixels wide, on 64 rows or more (Block8's at batch 8
    /// and up), is one `sgemm` past the first run where oneDNN's convolutions are AVX-512 ones
    /// (`ConvKernel.multipliesAsGEMM`): no primitive and no kernel copy, on both engines that
    /// have oneDNN, with and without a residual (which then is not written over), giving the
    /// direct sum on every run. One image fewer (63 rows) or a map five pixels wide: oneDNN.
    @Test(arguments: [
        (8, 3, true, false), (8, 3, true, true),  // Block8 at batch 8: 72 rows
        (7, 3, false, true),  // 63 rows
        (2, 5, false, false),  // five pixels wide, 50 rows
        (4, 5, false, false),  // five pixels wide, 100 rows
    ])
    func narrowPointwiseLayerIsOneGEMM(batch: Int, side: Int, narrow: Bool, residual: Bool) throws {
        var g = SplitMix64(seed: UInt64(batch * 10 + side))
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(g.next() % 2001) / 1000 - 1 } }
        let (cin, cout) = (72, 40)
        let inShape = [batch, side, side, cin], pixels = batch * side * side
        let kernel = randoms(cin * cout).map { $0 * 0.1 }, bias = randoms(cout), x = randoms(pixels * cin), r = randoms(pixels * cout)
        let conv = Node(name: "n", op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "k", "bias": "b"])
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, side, side, cin]), ValueInfo(name: "r", shape: [-1, side, side, cout])],
                          outputs: [residual ? "sum" : "n"],
                          nodes: [conv] + (residual ? [Node(name: "sum", op: .add, inputs: ["r", "n"])] : []),
                          tensors: ["k": Tensor(kernel, shape: [1, 1, cin, cout]), "b": Tensor(bias, shape: [cout])])
        // Such a product is `dnnl_sgemm`'s (`gemm`'s library rows), not fmodel's own GEMM.
        #expect(narrowProductRows >= libraryRows)
        let product = directConv(x, inShape, kernel, kH: 1, kW: 1, cout: cout, stride: 1, bias: bias)
        let expected = residual ? zip(product, r).map { $0 + $1 } : product
        for engine in [ConvolutionEngine.tiered, .native] {
            let e = try Executor(graph: graph, engine: engine)
            let input = ["x": FloatTensor(shape: Shape(inShape), values: x), "r": FloatTensor(shape: Shape(inShape.dropLast() + [cout]), values: r)]
            for run in 1...3 {
                let y = try e.run(input)[residual ? "sum" : "n"]!.values
                #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4, "\(engine), run \(run)")
            }
            #expect(input["r"]!.values == r, "the residual input is read, not written over")
            guard case .conv(let k) = e.program.instructions.first(where: { $0.node.name == "n" })?.step else { Issue.record("not a conv"); return }
            let win = k.window(Shape(inShape), Shape(inShape.dropLast() + [cout]))
            let gemm = narrow && oneDNNIsAVX512
            #expect(k.multipliesAsGEMM(win, rows: pixels) == gemm, "\(engine), \(inShape)")
            #expect(k.native?.tried(batch: batch) == !gemm, "\(engine), \(inShape): a oneDNN primitive only where it is no GEMM")
        }
    }

    /// Seventeen rows is past the limit: oneDNN runs it.
    @Test func manyRowsGoToOneDNN() throws {
        var g = SplitMix64(seed: 6)
        let kernel = (0..<(256 * 256)).map { _ in Float(g.next() % 201) / 1000 - 0.1 }
        let graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 1, 17, 256])], outputs: ["n"],
                          nodes: [Node(name: "n", op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "k"])],
                          tensors: ["k": Tensor(kernel, shape: [1, 1, 256, 256])])
        let e = try Executor(graph: graph, engine: .native)
        _ = try e.run(["x": FloatTensor(shape: [1, 1, 17, 256], values: [Float](repeating: 0.5, count: 17 * 256))])
        guard case .conv(let k) = e.program.instructions[0].step else { Issue.record("not a conv"); return }
        #expect(!k.streams(rows: 17))
        #expect(k.native?.tried(batch: 1) == true)
    }
}
