import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Testing

/// The lossless passes keep every fixture within 1e-4 of TensorFlow.
@Suite struct LosslessPassTests {
    func load(_ e: Fixtures.Entry) throws -> Graph {
        let config = try e.config.map { try String(contentsOfFile: Fixtures.path($0), encoding: .utf8) }
        return try ModelLoader.load(path: Fixtures.path(e.model), options: ImportOptions(configJSON: config, hdf5: KerasFiles()))
    }

    func maxDeviation(_ g: Graph, _ e: Fixtures.Entry) throws -> Float {
        let x = try NPY.read(path: Fixtures.path(e.input))
        let out = try Executor(graph: g).run([g.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])
        var worst: Float = 0
        for (name, file) in e.outputs {
            let expected = try NPY.read(path: Fixtures.path(file))
            worst = max(worst, Difference(try #require(out[name]).values, expected.values, tolerance: .tensorFlow).maxAbsolute)
        }
        return worst
    }

    @Test(arguments: Fixtures.all)
    func allLosslessPassesKeepTensorFlowsOutputs(_ e: Fixtures.Entry) throws {
        var g = try load(e)
        let before = g.nodes.count
        let reports = GraphPass.runLossless(&g)
        try g.validate()
        #expect(try maxDeviation(g, e) <= Tolerance.tensorFlow.absolute)
        #expect(g.nodes.count == before - reports.reduce(0) { $0 + $1.nodesRemoved })
        #expect(g.metadata.passes == GraphPass.lossless.map(\.name))
    }

    /// FaceNet's conv (no bias) + BN (no gamma) + ReLU collapses to one conv with a bias.
    @Test func faceNetConvBlockBecomesOneNode() throws {
        var g = try load(Fixtures.entry("facenet_small"))
        _ = GraphPass.foldBatchNorm.run(&g)
        _ = GraphPass.fuseActivations.run(&g)
        let node = try #require(g.node(named: "Conv2d_1a_3x3_Activation"))
        guard case .conv2D(let attrs) = node.op else { Issue.record("not a conv: \(node.op)"); return }
        #expect(attrs.activation == .relu)
        #expect(node.params["bias"] != nil)
        #expect(g.node(named: "Conv2d_1a_3x3") == nil && g.node(named: "Conv2d_1a_3x3_BatchNorm") == nil)
    }

    @Test func identitiesAndDropoutGoButOutputsStay() throws {
        let w = Tensor([1, 2, 3, 4], shape: [2, 2])
        var g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 2])], outputs: ["out", "d3"], nodes: [
            Node(name: "d1", op: .dropout(rate: 0.5), inputs: ["x"]),
            Node(name: "d2", op: .identity, inputs: ["d1"]),
            Node(name: "out", op: .dense(activation: .linear), inputs: ["d2"], params: ["kernel": "w"]),
            Node(name: "d3", op: .dropout(rate: 0.1), inputs: ["out"]),
            Node(name: "dead", op: .dense(activation: .relu), inputs: ["x"], params: ["kernel": "v"]),
        ], tensors: ["w": w, "v": w])
        let dead = GraphPass.removeDeadNodes.run(&g)
        #expect(dead.nodesRemoved == 1 && dead.bytesSaved == 16)
        #expect(GraphPass.removeIdentities.run(&g).nodesRemoved == 2)
        #expect(g.nodes.map(\.name) == ["out", "d3"])
        #expect(g.node(named: "out")?.inputs == ["x"])
        try g.validate()
    }

    @Test func foldingSkipsASharedProducer() throws {
        let k = Tensor([Float](repeating: 1, count: 4), shape: [1, 1, 2, 2])
        let c = Tensor([1, 1], shape: [2])
        var g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 2, 2, 2])], outputs: ["bn", "conv"], nodes: [
            Node(name: "conv", op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "k"]),
            Node(name: "bn", op: .batchNorm(epsilon: 0.001), inputs: ["conv"], params: ["mean": "c", "variance": "c"]),
        ], tensors: ["k": k, "c": c])
        #expect(GraphPass.foldBatchNorm.run(&g).nodesRemoved == 0)
    }
}
