import FModelCompress
import FModelCore
import FModelImport
import FModelKeras
@testable import FModelRuntime
import FModelTestSupport
import Testing

/// The int8 paths: oneDNN's u8·s8 GEMM with the activation zero point, oneDNN's int8
/// convolution (u8 from zero, or s8 symmetric), and int8 conv and dense layers against the same
/// layers run in float on the dequantized kernel.
@Suite struct IntegerGEMMTests {
    func randoms(_ n: Int, seed: UInt64, in range: ClosedRange<Float>) -> [Float] {
        var g = SplitMix64(seed: seed)
        return (0..<n).map { _ in range.lowerBound + Float(g.next() % 1_000_001) / 1_000_000 * (range.upperBound - range.lowerBound) }
    }

    /// Exact integer products, with a nonzero zero point on A (its sign is easy to get wrong),
    /// over the range the runtime quantizes activations to on this CPU (0…255 with VNNI, 0…127
    /// without, where oneDNN's int16 pair sums would saturate on larger ones).
    @Test func u8s8ProductIsExact() {
        let (m, n, k) = (5, 7, 33)
        var g = SplitMix64(seed: 3)
        let a = (0..<(m * k)).map { _ in UInt8(g.next() % (UInt64(quantizedTop) + 1)) }
        let b = (0..<(k * n)).map { _ in Int8(truncatingIfNeeded: Int(g.next() % 255) - 127) }
        var c = [Int32](repeating: 0, count: m * n)
        gemmU8S8(m: m, n: n, k: k, a: a, aZero: 37, b: b, c: &c)
        for i in 0..<m {
            for j in 0..<n {
                let expected = (0..<k).reduce(Int32(0)) { $0 + (Int32(a[i * k + $1]) - 37) * Int32(b[$1 * n + j]) }
                #expect(c[i * n + j] == expected, "C[\(i),\(j)]")
            }
        }
    }

    /// One node run twice: with the int8 kernel and with that kernel dequantized to float32.
    /// The only difference is the activations' rounding to 8 bits, at most half a step each, so
    /// every output moves by at most Σ|w|·step/2 over its receptive field. The step is the
    /// range over 255 (GEMM: asymmetric with a zero point; convolution from 0 when nothing is
    /// negative) or max|x| over 127 (convolution, signed).
    func compare(_ op: Op, input: Shape, kernel: Shape, bias: Bool, range: ClosedRange<Float> = -2...3, native: Bool) throws {
        let x = FloatTensor(shape: input, values: randoms(input.elementCount!, seed: 1, in: range))
        let w = Tensor(randoms(kernel.elementCount!, seed: 2, in: -1...1), shape: kernel).quantized(.int8PerChannel)
        var params = ["kernel": "n/kernel"]
        var tensors = ["n/kernel": w]
        if bias {
            params["bias"] = "n/bias"
            tensors["n/bias"] = Tensor(randoms(kernel.last, seed: 4, in: -1...1), shape: [kernel.last])
        }
        let g = Graph(inputs: [ValueInfo(name: "x", shape: input.withBatch(-1))], outputs: ["n"],
                      nodes: [Node(name: "n", op: op, inputs: ["x"], params: params)], tensors: tensors)
        var float = g
        float.tensors["n/kernel"] = Tensor(w.floats(), shape: kernel)
        let q = try Executor(graph: g, engine: native ? .native : .gemm).run(["x": x])["n"]!.values
        let f = try Executor(graph: float, engine: native ? .native : .gemm).run(["x": x])["n"]!.values
        let (lo, hi) = (min(x.values.min()!, 0), max(x.values.max()!, 0))
        let isConv = if case .conv2D = op { true } else { false }
        // Without VNNI the unsigned range is 7 bits, and signed convolutions take the GEMM path.
        let step = native && isConv && lo < 0 && cpuHasVNNI ? max(-lo, hi) / 127 : (hi - lo) / quantizedTop
        let fanIn = kernel.dims.dropLast().reduce(1, *)
        let columnL1 = (0..<kernel.last).map { c in (0..<fanIn).reduce(Float(0)) { $0 + abs(w.floats()[$1 * kernel.last + c]) } }
        #expect(q.count == f.count && !q.isEmpty)
        var moved = false
        for i in 0..<q.count {
            let bound = columnL1[i % kernel.last] * step / 2 * 1.01 + 1e-4
            #expect(abs(q[i] - f[i]) <= bound, "output \(i): \(q[i]) vs \(f[i]), bound \(bound)")
            moved = moved || q[i] != f[i]
        }
        #expect(moved, "the int8 path should not be the float path")
    }

    /// Signed input (four channels: fewer run in float32, below).
    @Test(arguments: [false, true])
    func int8ConvWithPaddingMatchesFloat(native: Bool) throws {
        try compare(.conv2D(ConvAttributes(padding: .same)), input: [2, 6, 5, 4], kernel: [3, 3, 4, 8], bias: true, native: native)
    }

    /// An int8 kernel over fewer than four input channels (an image's first layer) multiplies
    /// in float32 on its dequantized copy: the float layer's outputs to float rounding, on
    /// every engine, where the int8 path would move them by a quantization step. On the tiered
    /// engine it is not trialled (a Winograd verdict is forced here, which a trialled 3×3
    /// stride-1 layer on 36 tiles would take), so every run gives the first run's answer,
    /// as the int8 layers after it need.
    @Test(arguments: [ConvolutionEngine.gemm, .native, .tiered])
    func int8ConvOnThreeChannelsRunsInFloat(engine: ConvolutionEngine) throws {
        let kernel = Tensor(randoms(3 * 3 * 3 * 16, seed: 50, in: -1...1), shape: [3, 3, 3, 16]).quantized(.int8PerChannel)
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 24, 24, 3])], outputs: ["n"],
                      nodes: [Node(name: "n", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)),
                                   inputs: ["x"], params: ["kernel": "k"])],
                      tensors: ["k": kernel])
        var float = g
        float.tensors["k"] = Tensor(kernel.floats(), shape: kernel.shape)
        let x = ["x": FloatTensor(shape: [2, 24, 24, 3], values: randoms(2 * 24 * 24 * 3, seed: 51, in: -2...3))]
        let e = try Executor(graph: g, engine: engine)
        e.forceTrialVerdict(.winograd)
        guard case .conv(let k) = e.program.instructions[0].step else { Issue.record("not a conv"); return }
        #expect(!k.weights.isInteger && k.dequantized && k.nativeFromFirstRun)
        let first = try e.run(x)["n"]!.values
        let f = try Executor(graph: float, engine: engine == .tiered ? .native : engine).run(x)["n"]!.values
        #expect(first.count == f.count && !f.isEmpty)
        #expect(Difference(first, f, tolerance: .tensorFlow).maxAbsolute < 1e-5)
        for _ in 0..<2 { #expect(try e.run(x)["n"]!.values == first) }
        #expect(k.native?.decided(batch: 2) != true && k.native?.winograd(batch: 2) == nil)
    }

    /// Non-negative input (as after a ReLU): unsigned from zero on oneDNN's convolution.
    @Test(arguments: [false, true])
    func int8ConvOnReLUOutputMatchesFloat(native: Bool) throws {
        try compare(.conv2D(ConvAttributes(strides: [2, 2], padding: .same, activation: .relu)), input: [1, 9, 7, 24],
                    kernel: [3, 3, 24, 16], bias: true, range: 0...4, native: native)
    }

    @Test(arguments: [false, true])
    func int8PointwiseConvMatchesFloat(native: Bool) throws {
        try compare(.conv2D(ConvAttributes()), input: [1, 4, 4, 16], kernel: [1, 1, 16, 5], bias: false, native: native)
    }

    @Test func int8DenseMatchesFloat() throws {
        try compare(.dense(activation: .linear), input: [3, 40], kernel: [40, 6], bias: true, native: false)
    }

    /// One row (batch 1) reads the int8 kernel in float arithmetic: nothing is rounded but the
    /// kernel, so the result is the dequantized float layer's to float precision. 300 units
    /// split the rows between threads; 600 split the columns (256-column blocks, 16-column
    /// blocks and a tail).
    @Test(arguments: [300, 600])
    func int8DenseOnOneRowIsWeightOnly(units: Int) throws {
        let inputs = 37
        let w = Tensor(randoms(inputs * units, seed: 7, in: -1...1), shape: [inputs, units]).quantized(.int8PerChannel)
        let bias = Tensor(randoms(units, seed: 8, in: -1...1), shape: [units])
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, inputs])], outputs: ["n"],
                      nodes: [Node(name: "n", op: .dense(activation: .leakyRelu(alpha: 0.2)), inputs: ["x"], params: ["kernel": "k", "bias": "b"])],
                      tensors: ["k": w, "b": bias])
        var float = g
        float.tensors["k"] = Tensor(w.floats(), shape: [inputs, units])
        let x = FloatTensor(shape: [1, inputs], values: randoms(inputs, seed: 9, in: -3...3))
        let q = try Executor(graph: g).run(["x": x])["n"]!.values
        let f = try Executor(graph: float).run(["x": x])["n"]!.values
        #expect(q.count == units)
        #expect(Difference(q, f, tolerance: .tensorFlow).maxAbsolute < 1e-4)
    }

    /// A large float32 dense layer on one row streams its kernel by shares of rows (a GEMV);
    /// on three rows it is a GEMM. Both give the same products.
    @Test func floatDenseOnOneRowMatchesTheGEMM() throws {
        let (inputs, units) = (1037, 1030)  // past 2^20 weights; column tails of 16 and 1
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, inputs])], outputs: ["n"],
                      nodes: [Node(name: "n", op: .dense(activation: .relu), inputs: ["x"], params: ["kernel": "k", "bias": "b"])],
                      tensors: ["k": Tensor(randoms(inputs * units, seed: 12, in: -1...1), shape: [inputs, units]),
                                "b": Tensor(randoms(units, seed: 13, in: -1...1), shape: [units])])
        let row = randoms(inputs, seed: 14, in: -1...1)
        let e = try Executor(graph: g)
        let one = try e.run(["x": FloatTensor(shape: [1, inputs], values: row)])["n"]!.values
        let three = try e.run(["x": FloatTensor(shape: [3, inputs], values: row + row + row)])["n"]!.values
        #expect(one.count == units && one.contains { $0 > 0 })
        #expect(Difference(one, Array(three[0..<units]), tolerance: .tensorFlow).maxAbsolute < 1e-4)
    }

    /// NaN and infinities in the input of an int8 layer (a bad input file) give numbers, not a
    /// trap in the quantizer, on every int8 path.
    @Test(arguments: [false, true])
    func int8LayersSurviveNonFiniteInputs(native: Bool) throws {
        let conv = Tensor(randoms(9 * 4 * 6, seed: 30, in: -1...1), shape: [3, 3, 4, 6]).quantized(.int8PerChannel)
        let dense = Tensor(randoms(6 * 5, seed: 31, in: -1...1), shape: [6, 5]).quantized(.int8PerChannel)
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 5, 5, 4])], outputs: ["fc"],
                      nodes: [Node(name: "c", op: .conv2D(ConvAttributes(padding: .same)), inputs: ["x"], params: ["kernel": "ck"]),
                              Node(name: "p", op: .globalAvgPool(keepDims: false), inputs: ["c"]),
                              Node(name: "fc", op: .dense(activation: .linear), inputs: ["p"], params: ["kernel": "dk"])],
                      tensors: ["ck": conv, "dk": dense])
        var values = randoms(3 * 5 * 5 * 4, seed: 32, in: -1...1)
        values[3] = .nan
        values[40] = .infinity
        values[77] = -.infinity
        values[90] = 3e38
        let y = try Executor(graph: g, engine: native ? .native : .gemm).run(["x": FloatTensor(shape: [3, 5, 5, 4], values: values)])
        #expect(y["fc"]?.values.count == 15)
        // A range of denormals only: the scale would underflow to 0.
        let tiny = FloatTensor(shape: [1, 5, 5, 4], values: (0..<100).map { Float($0 % 3) * Float.leastNonzeroMagnitude })
        #expect(try Executor(graph: g, engine: native ? .native : .gemm).run(["x": tiny])["fc"]?.values.count == 5)
    }

    /// An int8 convolution takes its input's range from the epilogue that wrote it (or from
    /// the parts of a concat) instead of measuring it: the same numbers exactly, on a whole
    /// int8 model with Inception blocks.
    @Test func rangesFromEpiloguesChangeNothing() throws {
        let g = try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess).quantizing(LayerSelection(), .int8PerChannel)
        var seed = SplitMix64(seed: 40)
        let shape = g.inputs[0].shape.withBatch(2)
        let x = [g.inputs[0].name: FloatTensor(shape: shape, values: (0..<shape.elementCount!).map { _ in Float(seed.next() % 2001) / 1000 - 1 })]
        let tracked = try Executor(graph: g, engine: .native), measured = try Executor(graph: g, engine: .native)
        measured.trackRanges = false
        let a = try tracked.run(x), b = try measured.run(x)
        for name in g.outputs {
            #expect(a[name] == b[name] && a[name] != nil, "\(name)")
        }
        // The tracked run did take ranges from producers; the other measured every one.
        #expect(tracked.rangesReused > 0 && measured.rangesReused == 0)
    }

    /// An int8 convolution whose output only a concat reads writes it into the concat's buffer
    /// (`Program.ConcatSlot`), its accumulators beside: the same numbers exactly as when each
    /// writes a tensor of its own, which asking for those values makes them do. Mixed_6a's and
    /// Mixed_7a's max pools are still copied in. The concat's range is still its parts', so its
    /// readers quantize without a pass of their own as often as before.
    @Test(arguments: [ConvolutionEngine.native, .gemm])
    func concatInputsWrittenInPlaceChangeNothing(engine: ConvolutionEngine) throws {
        // As `import` writes it: batch norms folded and activations fused, so the convs feed
        // the concats.
        var float = try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess)
        _ = GraphPass.runLossless(&float)
        let g = float.quantizing(LayerSelection(), .int8PerChannel)
        var seed = SplitMix64(seed: 41)
        let shape = g.inputs[0].shape.withBatch(2)
        let x = [g.inputs[0].name: FloatTensor(shape: shape, values: (0..<shape.elementCount!).map { _ in Float(seed.next() % 2001) / 1000 - 1 })]
        let inPlace = try Executor(graph: g, engine: engine), separate = try Executor(graph: g, engine: engine)
        let program = inPlace.program
        let concats = g.nodes.filter { if case .concat = $0.op { true } else { false } }.map(\.name)
        let parts = program.concatSlots.indices.filter { program.concatSlots[$0] != nil }.map { program.instructions[$0].outputName }
        // Every branch's last conv at the fixture's eight concats (two or three a block); not
        // the pools.
        #expect(Set(program.concatSlots.compactMap { $0?.concat }).count == concats.count && concats.count == 8)
        #expect(parts.count == 18 && !parts.contains { $0.contains("MaxPool") })
        let a = try inPlace.run(x, outputs: g.outputs + concats)
        #expect(inPlace.inputsWrittenIntoConcats == parts.count)
        let b = try separate.run(x, outputs: g.outputs + concats + parts)
        #expect(separate.inputsWrittenIntoConcats == 0)
        // (Only oneDNN's int8 convolutions take a range from their input's producer.)
        #expect(inPlace.rangesReused == separate.rangesReused && (engine == .gemm || inPlace.rangesReused > 0))
        for name in g.outputs + concats {
            #expect(a[name] == b[name] && a[name] != nil, "\(name)")
        }
    }
}
