import FModelCore
import Testing

@Suite struct ShapeTests {
    func graph(_ op: Op, input: Shape, kernel: Shape? = nil) -> Graph {
        var tensors: [String: Tensor] = [:]
        var params: [String: String] = [:]
        if let kernel {
            tensors["k"] = Tensor([Float](repeating: 0, count: kernel.elementCount!), shape: kernel)
            params["kernel"] = "k"
        }
        return Graph(inputs: [ValueInfo(name: "x", shape: input)], outputs: ["n"],
                     nodes: [Node(name: "n", op: op, inputs: ["x"], params: params)], tensors: tensors)
    }

    /// TensorFlow's output sizes: SAME is ceil(in / stride), VALID is ceil((in - k + 1) / stride).
    @Test(arguments: [
        (Padding.same, 1, 17, 17), (.same, 2, 17, 9), (.valid, 1, 17, 15), (.valid, 2, 17, 8), (.valid, 2, 160, 79),
    ])
    func convOutputSize(padding: Padding, stride: Int, input: Int, expected: Int) throws {
        let g = graph(.conv2D(ConvAttributes(strides: [stride, stride], padding: padding)), input: [-1, input, input, 3], kernel: [3, 3, 3, 8])
        #expect(try g.inferShapes()["n"] == [-1, expected, expected, 8])
    }

    @Test func dilationWidensTheWindow() throws {
        let g = graph(.conv2D(ConvAttributes(dilations: [2, 2], padding: .valid)), input: [1, 9, 9, 1], kernel: [3, 3, 1, 1])
        #expect(try g.inferShapes()["n"] == [1, 5, 5, 1])
    }

    @Test func errorsNameTheNode() {
        #expect(throws: GraphError.invalidNode(node: "n", reason: "kernel [3,3,4,8] does not fit input [?,9,9,3]")) {
            try graph(.conv2D(ConvAttributes()), input: [-1, 9, 9, 3], kernel: [3, 3, 4, 8]).inferShapes()
        }
        #expect(throws: GraphError.missingParameter(node: "n", role: "kernel")) {
            try graph(.dense(activation: .linear), input: [-1, 4]).inferShapes()
        }
        var g = graph(.identity, input: [-1, 4])
        g.nodes[0].inputs = ["y"]
        #expect(throws: GraphError.unknownValue(node: "n", value: "y")) { try g.inferShapes() }
        g = graph(.identity, input: [-1, 4])
        g.outputs = ["z"]
        #expect(throws: GraphError.unknownOutput("z")) { try g.inferShapes() }
    }

    @Test func reshapeAndFlatten() throws {
        #expect(try graph(.flatten, input: [2, 3, 4, 5]).inferShapes()["n"] == [2, 60])
        #expect(try graph(.reshape(shape: [-1, 5]), input: [2, 3, 4, 5]).inferShapes()["n"] == [2, 12, 5])
        #expect(throws: GraphError.self) { try graph(.reshape(shape: [7]), input: [2, 3, 4, 5]).inferShapes() }
    }

    /// Element-wise inputs broadcast as Keras's merge layers: a lower rank gains unit axes
    /// after the batch, then each axis is one size or 1, in any order; the batch never
    /// broadcasts, and an unknown size takes a known one.
    @Test func elementwiseInputsBroadcast() throws {
        func shape(_ op: Op, _ shapes: [Shape]) throws -> Shape? {
            let names = shapes.indices.map { "x\($0)" }
            let g = Graph(inputs: zip(names, shapes).map { ValueInfo(name: $0, shape: $1) }, outputs: ["n"],
                          nodes: [Node(name: "n", op: op, inputs: names)], tensors: [:])
            return try g.inferShapes()["n"]
        }
        #expect(try shape(.mul, [[-1, 4, 4, 8], [-1, 1, 1, 8]]) == [-1, 4, 4, 8])
        #expect(try shape(.add, [[-1, 1, 1, 8], [-1, 4, 4, 8]]) == [-1, 4, 4, 8])
        #expect(try shape(.add, [[-1, 4, 4, 8], [-1, 8]]) == [-1, 4, 4, 8])
        #expect(try shape(.mul, [[-1, 4, 4, 1], [-1, 1, 1, 8]]) == [-1, 4, 4, 8])
        #expect(try shape(.mul, [[-1, 4, -1, 8], [-1, 1, 5, 1]]) == [-1, 4, 5, 8])
        #expect(throws: GraphError.invalidNode(node: "n", reason: "inputs [?,4,4,8] and [?,1,1,4] do not broadcast")) {
            try shape(.mul, [[-1, 4, 4, 8], [-1, 1, 1, 4]])
        }
        #expect(throws: GraphError.invalidNode(node: "n", reason: "inputs [2,4] and [1,4] do not broadcast")) { try shape(.add, [[2, 4], [1, 4]]) }
        #expect(throws: GraphError.invalidNode(node: "n", reason: "inputs [?] and [?,4] need a batch and channels")) { try shape(.add, [[-1], [-1, 4]]) }
    }

    /// A crop leaves at least one row and column, and cuts nothing negative.
    @Test func cropsLeaveSomething() throws {
        #expect(try graph(.crop(top: 1, bottom: 1, left: 0, right: 2), input: [-1, 4, 3, 2]).inferShapes()["n"] == [-1, 2, 1, 2])
        #expect(throws: GraphError.invalidNode(node: "n", reason: "crop of [2, 2, 0, 0] leaves nothing of [?,4,3,2]")) {
            try graph(.crop(top: 2, bottom: 2, left: 0, right: 0), input: [-1, 4, 3, 2]).inferShapes()
        }
        #expect(throws: GraphError.self) { try graph(.crop(top: -1, bottom: 0, left: 0, right: 0), input: [-1, 4, 3, 2]).inferShapes() }
    }

    @Test func convFlopsCountMultiplyAdds() throws {
        let g = graph(.conv2D(ConvAttributes(padding: .same)), input: [-1, 10, 10, 3], kernel: [3, 3, 3, 8])
        let cost = g.cost(of: g.nodes[0], shapes: try g.inferShapes())
        #expect(cost.flops == 2 * 10 * 10 * 8 * 27)
        #expect(cost.parameters == 216 && cost.bytes == 864)
    }

    /// Attributes and shapes a hostile file can state: errors from shape inference, before any
    /// arithmetic on them overflows (a 2^40 pool window trapped the cost count) or a kernel
    /// divides by a zero size; the counts of a large but valid graph saturate.
    @Test func hostileSizesAreErrors() throws {
        let huge = 1 << 40
        let graphs: [(String, Graph)] = [
            ("pool window", graph(.maxPool(PoolAttributes(size: [huge, huge], strides: [1, 1], padding: .same)), input: [-1, 8, 8, 3])),
            ("conv stride", graph(.conv2D(ConvAttributes(strides: [1 << 62, 1 << 62], padding: .same)), input: [-1, 8, 8, 3], kernel: [1, 1, 3, 4])),
            ("conv dilation", graph(.conv2D(ConvAttributes(dilations: [huge, huge], padding: .same)), input: [-1, 8, 8, 3], kernel: [3, 3, 3, 4])),
            ("padding", graph(.zeroPad(top: huge, bottom: huge, left: 0, right: 0), input: [-1, 8, 8, 3])),
            ("reshape target", graph(.reshape(shape: [huge, huge, huge, -1]), input: [-1, 8, 8, 3])),
            ("input dimension", graph(.identity, input: [-1, huge, 8, 3])),
            ("image values", graph(.identity, input: [-1, 1 << 20, 1 << 20, 3])),
            ("no channels", graph(.depthwiseConv2D(ConvAttributes(padding: .same)), input: [-1, 8, 8, 3], kernel: [3, 3, 3, 0])),
            // Beyond the 32-bit integers the kernels take: a dilation of 2^31 (a 1×1 window, so
            // no wider than 1), and a window of 2^31 + 1 dilated.
            ("conv dilation of 2^31", graph(.conv2D(ConvAttributes(dilations: [1 << 31, 1], padding: .same)), input: [-1, 8, 8, 3], kernel: [1, 1, 3, 4])),
            ("conv window dilated", graph(.conv2D(ConvAttributes(dilations: [1 << 30, 1], padding: .same)), input: [-1, 8, 8, 3], kernel: [3, 1, 3, 4])),
        ]
        for (what, g) in graphs { #expect(throws: GraphError.self, "\(what)") { try g.inferShapes() } }
        let dilated = graph(.conv2D(ConvAttributes(dilations: [1 << 29, 1], padding: .same)), input: [-1, 8, 8, 3], kernel: [3, 1, 3, 4])
        #expect(try dilated.inferShapes()["n"] == [-1, 8, 8, 4], "a window of 2^30 + 1 with the input is within bounds")
        let wide = graph(.maxPool(PoolAttributes(size: [1 << 30, 1 << 30], strides: [1, 1], padding: .same)), input: [-1, 1 << 15, 1 << 15, 1])
        #expect(wide.cost(of: wide.nodes[0], shapes: try wide.inferShapes()).flops == .max)
    }

    /// A run's shapes are all known: a model may leave the batch unknown, but an input of
    /// unknown height imports (the batch unknown too) and is an error once the batch is set, as
    /// the runtime sets it (it trapped on a hostile file's input).
    @Test func onlyTheBatchMayBeUnknown() throws {
        let g = graph(.identity, input: [-1, -1, 8, 3])
        #expect(try g.inferShapes()["n"] == [-1, -1, 8, 3])
        #expect(throws: GraphError.self) { try g.inferShapes(batch: 1) }
        #expect(try graph(.identity, input: [-1, 4, 8, 3]).inferShapes(batch: 2)["n"] == [2, 4, 8, 3])
    }
}
