import FModelCore
import Foundation
import FModelRuntime
import Testing

/// Kernels against values worked out by hand, with TensorFlow's padding and pooling rules.
@Suite struct KernelTests {
    /// One node over input `x`, with float32 parameters.
    func run(_ op: Op, _ x: FloatTensor, params: [String: Tensor] = [:], extra: [FloatTensor] = []) throws -> FloatTensor {
        var tensors: [String: Tensor] = [:]
        var roles: [String: String] = [:]
        for (role, t) in params { tensors["n/\(role)"] = t; roles[role] = "n/\(role)" }
        var inputs = [ValueInfo(name: "x", shape: x.shape.withBatch(-1))]
        var feeds = ["x": x]
        for (i, e) in extra.enumerated() {
            inputs.append(ValueInfo(name: "e\(i)", shape: e.shape.withBatch(-1)))
            feeds["e\(i)"] = e
        }
        let g = Graph(inputs: inputs, outputs: ["n"], nodes: [Node(name: "n", op: op, inputs: inputs.map(\.name), params: roles)], tensors: tensors)
        return try Executor(graph: g).run(feeds)["n"]!
    }

    func ones(_ shape: Shape) -> FloatTensor { FloatTensor(shape: shape, values: [Float](repeating: 1, count: shape.elementCount!)) }

    /// A 3×3 box filter over a 3×3 image of ones with SAME padding counts the pixels inside.
    @Test func convSamePaddingCountsInsidePixels() throws {
        let y = try run(.conv2D(ConvAttributes(padding: .same)), ones([1, 3, 3, 1]), params: ["kernel": Tensor([Float](repeating: 1, count: 9), shape: [3, 3, 1, 1])])
        #expect(y.values == [4, 6, 4, 6, 9, 6, 4, 6, 4])
    }

    /// SAME with stride 2 on an even size pads only after (TensorFlow puts the extra pixel last).
    @Test func convSameStrideTwoPadsAfter() throws {
        let x = FloatTensor(shape: [1, 4, 4, 1], values: (0..<16).map(Float.init))
        let y = try run(.conv2D(ConvAttributes(strides: [2, 2], padding: .same)), x, params: ["kernel": Tensor([Float](repeating: 1, count: 9), shape: [3, 3, 1, 1])])
        // windows start at rows/cols 0 and 2: sums of x[0...2][0...2], x[0...2][2...3], ...
        #expect(y.values == [45, 39, 66, 50])
    }

    @Test func pointwiseConvIsAMatrixProduct() throws {
        let x = FloatTensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let y = try run(.conv2D(ConvAttributes(activation: .linear)), x,
                        params: ["kernel": Tensor([1, 0, 1, 0, 1, 1], shape: [1, 1, 2, 3]), "bias": Tensor([0, 0, 10], shape: [3])])
        #expect(y.values == [1, 2, 13, 3, 4, 17])
    }

    @Test func dilatedConvSkipsPixels() throws {
        let x = FloatTensor(shape: [1, 5, 5, 1], values: (0..<25).map(Float.init))
        let k = Tensor([1, 0, 0, 0, 0, 0, 0, 0, 1], shape: [3, 3, 1, 1])
        let y = try run(.conv2D(ConvAttributes(dilations: [2, 2], padding: .valid)), x, params: ["kernel": k])
        #expect(y.values == [0 + 24])
    }

    @Test func depthwiseWithMultiplier() throws {
        let x = FloatTensor(shape: [1, 1, 1, 2], values: [3, 5])
        let y = try run(.depthwiseConv2D(ConvAttributes()), x, params: ["kernel": Tensor([1, 2, 10, 20], shape: [1, 1, 2, 2])])
        #expect(y.values == [3, 6, 50, 100])
    }

    /// Average pooling with SAME padding divides by the pixels inside the image only.
    @Test func avgPoolSameExcludesPadding() throws {
        let x = FloatTensor(shape: [1, 2, 2, 1], values: [1, 2, 3, 4])
        let y = try run(.avgPool(PoolAttributes(size: [2, 2], strides: [1, 1], padding: .same)), x)
        #expect(y.values == [2.5, 3, 3.5, 4])
        let m = try run(.maxPool(PoolAttributes(size: [3, 3], strides: [2, 2], padding: .same)), FloatTensor(shape: [1, 2, 2, 1], values: [-1, -2, -3, -4]))
        #expect(m.values == [-1])
    }

    /// A max pool (3×3, stride 2, SAME: windows clipped at the edges, one pixel of padding on
    /// the left of the odd width) over 20 channels (a full vector and a partial one) takes
    /// each window's largest value, channel by channel.
    @Test func maxPoolTakesEachWindowsLargest() throws {
        let (h, w, c) = (6, 5, 20)
        let x = FloatTensor(shape: [2, h, w, c], values: (0..<(2 * h * w * c)).map { Float(($0 * 7919) % 1009) - 500 })
        let y = try run(.maxPool(PoolAttributes(size: [3, 3], strides: [2, 2], padding: .same)), x)
        #expect(y.shape == [2, 3, 3, c])
        for b in 0..<2 {
            for oy in 0..<3 {
                for ox in 0..<3 {
                    for ch in 0..<c {
                        var best = -Float.infinity
                        for iy in (2 * oy)..<min(2 * oy + 3, h) {
                            for ix in max(2 * ox - 1, 0)..<min(2 * ox + 2, w) { best = max(best, x.values[((b * h + iy) * w + ix) * c + ch]) }
                        }
                        #expect(y.values[((b * 3 + oy) * 3 + ox) * c + ch] == best)
                    }
                }
            }
        }
    }

    /// A global max pool takes each image's largest value per channel (20 channels: a full
    /// vector and a partial one).
    @Test func globalMaxPoolTakesEachImagesLargest() throws {
        let (h, w, c) = (3, 2, 20)
        let x = FloatTensor(shape: [2, h, w, c], values: (0..<(2 * h * w * c)).map { Float(($0 * 7919) % 1009) - 500 })
        let y = try run(.globalMaxPool(keepDims: false), x)
        #expect(y.shape == [2, c])
        for b in 0..<2 {
            for ch in 0..<c {
                let best = (0..<(h * w)).map { x.values[(b * h * w + $0) * c + ch] }.max()!
                #expect(y.values[b * c + ch] == best)
            }
        }
    }

    @Test func batchNormUsesEpsilon() throws {
        let y = try run(.batchNorm(epsilon: 1), FloatTensor(shape: [1, 2], values: [5, 5]),
                        params: ["mean": Tensor([1, 1], shape: [2]), "variance": Tensor([3, 15], shape: [2]), "gamma": Tensor([2, 2], shape: [2])])
        #expect(y.values == [4, 2])  // (5-1)/sqrt(3+1)*2, (5-1)/sqrt(15+1)*2, no beta
    }

    @Test func activations() throws {
        let x = FloatTensor(shape: [1, 4], values: [-2, -0.5, 0.5, 8])
        #expect(try run(.activation(.relu), x).values == [0, 0, 0.5, 8])
        #expect(try run(.activation(.relu6), x).values == [0, 0, 0.5, 6])
        #expect(try run(.activation(.leakyRelu(alpha: 0.1)), x).values == [-0.2, -0.05, 0.5, 8])
        // The smooth ones against their definitions in double precision, in the GEMM path's
        // kernel (oneDNN's post-ops are held to TensorFlow by the golden fixtures).
        let wide = FloatTensor(shape: [1, 9], values: [-9, -3, -1, -0.25, 0, 0.001, 0.5, 2, 7])
        let c = (2 / Double.pi).squareRoot()
        let definitions: [(Activation, (Double) -> Double)] = [
            (.swish, { v in v / (1 + exp(-v)) }),
            (.elu(alpha: 0.5), { v in v < 0 ? 0.5 * expm1(v) : v }),
            (.gelu(approximate: false), { v in 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }),
            (.gelu(approximate: true), { v in 0.5 * v * (1 + tanh(c * (v + 0.044715 * v * v * v))) }),
            (.hardSwish, { v in v * min(max(v + 3, 0), 6) / 6 }),
            (.hardSigmoid(slope: 0.2), { v in min(max(0.2 * v + 0.5, 0), 1) }),
        ]
        for (activation, f) in definitions {
            let y = try run(.activation(activation), wide).values
            for (v, got) in zip(wide.values, y) {
                let want = f(Double(v))
                #expect(abs(Double(got) - want) <= 2e-7 * max(1, abs(want)), "\(activation.spelling)(\(v)) = \(got), not \(want)")
            }
        }
        let s = try run(.activation(.softmax), x).values
        #expect(abs(s.reduce(0, +) - 1) < 1e-6 && s[3] > 0.99)
        // Each row on its own: mean 2.5 and variance 1.25, then gamma and beta by channel.
        let rows = FloatTensor(shape: [2, 4], values: [1, 2, 3, 4, 5, 5, 5, 5])
        let norm = try run(.layerNorm(epsilon: 0.75), rows, params: ["gamma": Tensor([1, 1, 2, 2], shape: [4]), "beta": Tensor([0, 0, 0, 1], shape: [4])])
        let root2 = Float(2).squareRoot()
        let expected: [Float] = [-1.5 / root2, -0.5 / root2, 1 / root2, 3 / root2 + 1, 0, 0, 0, 1]
        #expect(zip(norm.values, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(norm.values)")
        // Without gamma and beta, and with beta alone (gamma then 1).
        let bare = try run(.layerNorm(epsilon: 0.75), rows).values
        #expect(zip(bare, [-1.5 / root2, -0.5 / root2, 0.5 / root2, 1.5 / root2, 0, 0, 0, 0]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(bare)")
        let shifted = try run(.layerNorm(epsilon: 0.75), rows, params: ["beta": Tensor([0, 0, 0, 1], shape: [4])]).values
        #expect(abs(shifted[3] - (1.5 / root2 + 1)) < 1e-6 && shifted[7] == 1, "\(shifted)")
        let l2 = try run(.l2Normalize(epsilon: 1e-10), FloatTensor(shape: [1, 2], values: [3, 4]))
        #expect(l2.values == [0.6, 0.8])
    }

    @Test func layoutOps() throws {
        let x = FloatTensor(shape: [1, 1, 2, 1], values: [1, 2])
        #expect(try run(.zeroPad(top: 1, bottom: 0, left: 0, right: 1), x).values == [0, 0, 0, 1, 2, 0])
        let grid = FloatTensor(shape: [1, 3, 3, 1], values: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(try run(.crop(top: 1, bottom: 0, left: 0, right: 1), grid).values == [4, 5, 7, 8])
        let cat = try run(.concat(axis: -1), x, extra: [FloatTensor(shape: [1, 1, 2, 2], values: [7, 8, 9, 10])])
        #expect(cat.values == [1, 7, 8, 2, 9, 10])
        #expect(try run(.add, x, extra: [x, x]).values == [3, 6])
        #expect(try run(.mul, x, extra: [FloatTensor(shape: [1, 1], values: [3])]).values == [3, 6])
        #expect(try run(.scale(0.5), x).values == [0.5, 1])
        #expect(try run(.globalAvgPool(keepDims: false), x).values == [1.5])
    }
}

/// Sums and products whose inputs broadcast, against the same sums taken element by element.
@Suite struct BroadcastTests {
    /// Values that differ from input to input and along every axis.
    static func input(_ shape: Shape, _ k: Int) -> FloatTensor {
        FloatTensor(shape: shape, values: (0..<shape.elementCount!).map { Float(($0 * 7 + k * 3) % 11) * 0.25 - 1 + Float(k) })
    }

    /// Output element `index` of the inputs combined, each read at its expanded index with its
    /// unit axes at 0.
    static func expected(_ inputs: [FloatTensor], out: Shape, multiply: Bool) -> [Float] {
        (0..<out.elementCount!).map { flat in
            var index = [Int](repeating: 0, count: out.rank), rest = flat
            for a in (0..<out.rank).reversed() { (index[a], rest) = (rest % out[a], rest / out[a]) }
            let values = inputs.map { t in
                let e = t.shape.expanded(toRank: out.rank)
                var offset = 0
                for a in 0..<out.rank { offset = offset * e[a] + (e[a] == 1 ? 0 : index[a]) }
                return t.values[offset]
            }
            return values.dropFirst().reduce(values[0]) { multiply ? $0 * $1 : $0 + $1 }
        }
    }

    /// Squeeze-and-excitation's `[N, 1, 1, C]` either side, Keras's `[N, C]`, spatial gates
    /// `[N, H, W, 1]`, two inputs both broadcast, three inputs, and one large enough that the
    /// rows are split across the team.
    @Test(arguments: [
        ([[2, 3, 4, 5], [2, 1, 1, 5]], [2, 3, 4, 5]), ([[2, 1, 1, 5], [2, 3, 4, 5]], [2, 3, 4, 5]),
        ([[2, 3, 4, 5], [2, 5]], [2, 3, 4, 5]), ([[2, 3, 4, 5], [2, 3, 4, 1]], [2, 3, 4, 5]),
        ([[2, 3, 4, 1], [2, 1, 1, 5]], [2, 3, 4, 5]), ([[2, 3, 4, 5], [2, 1, 4, 5], [2, 3, 1, 1]], [2, 3, 4, 5]),
        ([[2, 16, 16, 64], [2, 1, 1, 64]], [2, 16, 16, 64]), ([[2, 6], [2, 6]], [2, 6]),
    ] as [([[Int]], [Int])])
    func matchesElementByElement(_ shapes: [[Int]], _ out: [Int]) throws {
        let inputs = shapes.enumerated().map { Self.input(Shape($1), $0) }
        for (op, multiply) in [(Op.add, false), (.mul, true)] {
            let names = inputs.indices.map { "x\($0)" }
            let g = Graph(inputs: zip(names, inputs).map { ValueInfo(name: $0, shape: $1.shape.withBatch(-1)) }, outputs: ["n"],
                          nodes: [Node(name: "n", op: op, inputs: names)], tensors: [:])
            let y = try #require(try Executor(graph: g).run(Dictionary(uniqueKeysWithValues: zip(names, inputs)))["n"])
            #expect(y.shape == Shape(out))
            #expect(y.values == Self.expected(inputs, out: Shape(out), multiply: multiply), "\(op.kind) of \(shapes)")
        }
    }
}

@Suite struct ExecutorTests {
    /// conv → relu → conv, whose buffers the executor reuses.
    static func chain() -> Graph {
        let k1 = Tensor((0..<18).map { Float($0 % 5) - 2 }, shape: [3, 3, 1, 2])
        let k2 = Tensor((0..<36).map { Float($0 % 7) - 3 }, shape: [3, 3, 2, 2])
        return Graph(inputs: [ValueInfo(name: "x", shape: [-1, 6, 6, 1])], outputs: ["c2"], nodes: [
            Node(name: "c1", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: ["x"], params: ["kernel": "k1"]),
            Node(name: "d", op: .dropout(rate: 0.5), inputs: ["c1"]),
            Node(name: "c2", op: .conv2D(ConvAttributes(strides: [2, 2], padding: .valid)), inputs: ["d"], params: ["kernel": "k2"]),
        ], tensors: ["k1": k1, "k2": k2])
    }

    @Test func batchOfTwoEqualsTwoBatchesOfOne() throws {
        let e = try Executor(graph: Self.chain(), engine: .native)
        let a = (0..<36).map { Float($0) / 10 }, b = (0..<36).map { Float(35 - $0) / 7 }
        let both = try e.run(["x": FloatTensor(shape: [2, 6, 6, 1], values: a + b)])["c2"]!
        let one = try e.run(["x": FloatTensor(shape: [1, 6, 6, 1], values: a)])["c2"]!
        let two = try e.run(["x": FloatTensor(shape: [1, 6, 6, 1], values: b)])["c2"]!
        #expect(both.values == one.values + two.values)
        #expect(both.shape == [2, 2, 2, 2])
        // Reused buffers leave no trace between runs.
        #expect(try e.run(["x": FloatTensor(shape: [1, 6, 6, 1], values: a)])["c2"]! == one)
    }

    @Test func inputErrors() throws {
        let e = try Executor(graph: Self.chain())
        #expect(throws: RuntimeError.missingInput("x")) { try e.run([:]) }
        #expect(throws: RuntimeError.inputShape(name: "x", expected: [-1, 6, 6, 1], got: [1, 5, 6, 1])) {
            try e.run(["x": FloatTensor(shape: [1, 5, 6, 1], values: [Float](repeating: 0, count: 30))])
        }
        #expect(throws: RuntimeError.self) { try e.run(["x": FloatTensor(shape: [1, 6, 6, 1], values: [Float](repeating: 0, count: 36)), "y": FloatTensor(shape: [1], values: [0])]) }
        // Read in place, an input whose values were cut after it was made would be read past its end.
        var short = FloatTensor(shape: [2, 6, 6, 1], values: [Float](repeating: 0, count: 72))
        short.values.removeLast(36)
        #expect(throws: RuntimeError.inputValueCount(name: "x", shape: [2, 6, 6, 1], count: 36)) { try e.run(["x": short]) }
    }
}
