@testable import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

@Suite struct ShrinkTests {
    func model() throws -> Graph { try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess) }

    func shrink(_ g: Graph, target: Int, bound: Float = 0.05) throws -> ShrinkResult {
        try ShrinkPlanner(targetBytes: target, maxOutputChange: bound).shrink(g, inputs: g.syntheticInputs(batch: 4), sizeOf: FModelWriter.fileSize(of:))
    }

    @Test func easyTargetTakesOnlyLosslessSteps() throws {
        let g = try model()
        let r = try shrink(g, target: try FModelWriter.fileSize(of: g))
        #expect(r.reachedTarget && !r.steps.isEmpty && r.steps.allSatisfy { $0.layer == "*" })
        #expect(r.outputChange <= 1e-4)
    }

    @Test func deeperTargetQuantizesWithinTheBound() throws {
        let g = try model()
        let target = try FModelWriter.fileSize(of: g) * 45 / 100
        let r = try shrink(g, target: target)
        #expect(r.reachedTarget)
        // The size the planner counted is the size of the file actually written.
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FModelWriter.write(r.graph, to: dir + "/s.fmodel")
        let written = try MappedFile(path: dir + "/s.fmodel").bytes.count
        #expect(r.sizeBytes <= target && r.sizeBytes == written)
        #expect(r.outputChange <= 0.05)
        // Measured against the folded float graph, so within float rounding of the original.
        #expect(abs(try g.maxOutputChange(candidate: r.graph, inputs: g.syntheticInputs(batch: 4)) - r.outputChange) <= 1e-4)
        #expect(r.steps.contains { $0.action.hasPrefix("int") || $0.action == "f16" })
    }

    @Test func impossibleTargetIsReportedWithTheClosestSize() throws {
        let g = try model()
        let r = try shrink(g, target: 1000, bound: 0.01)
        #expect(!r.reachedTarget && r.sizeBytes > 1000)
        #expect(r.outputChange <= 0.01)
    }
}

@Suite struct ShrinkOrderTests {
    /// A move that saves less than a ten-thousandth of the weights comes after every other,
    /// however little noise it adds per byte: here a 24-value conv before a 4 MB dense layer,
    /// whose f16 move would otherwise come before the dense layer's int4.
    @Test func negligibleSavingsComeLast() throws {
        var seed = SplitMix64(seed: 60)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(seed.next() % 2001) / 1000 - 1 } }
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 4, 4, 3])], outputs: ["big"],
                      nodes: [Node(name: "tiny", op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "tk"]),
                              Node(name: "flat", op: .flatten, inputs: ["tiny"]),
                              Node(name: "big", op: .dense(activation: .linear), inputs: ["flat"], params: ["kernel": "bk"])],
                      tensors: ["tk": Tensor(randoms(3 * 8), shape: [1, 1, 3, 8]), "bk": Tensor(randoms(128 * 8192), shape: [128, 8192])])
        let planner = ShrinkPlanner(targetBytes: 1, maxOutputChange: 1)
        let order = try planner.greedyOrder(g, inputs: g.syntheticInputs(batch: 2), bytesToSave: .max)
        let tiny = order.indices.filter { order[$0].node.name == "tiny" }, big = order.indices.filter { order[$0].node.name == "big" }
        #expect(!tiny.isEmpty && big.count == 3)
        #expect(tiny.min()! > big.max()!, "order: \(order.map { "\($0.node.name) \($0.label)" })")
    }
}

@Suite struct ShrinkPruningTests {
    /// Dense layers are priced for pruning too, and a prune move applies as a real prune.
    @Test func pruneMovesAreMeasuredAndApplied() throws {
        let g = try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess)
        var folded = g
        _ = GraphPass.runLossless(&folded)
        let planner = ShrinkPlanner(targetBytes: 1, maxOutputChange: 1)
        let moves = try planner.measurePruning(folded, inputs: folded.syntheticInputs(batch: 4))
        let fc1 = try #require(moves["prune:fc1_leaky"] ?? moves["prune:fc1"])
        #expect(fc1.count == 2 && fc1.allSatisfy { $0.saved > 0 && $0.noise > 0 })
        let pruned = try planner.apply([fc1[0]], to: folded)
        try pruned.validate()
        #expect(pruned.parameterBytes == folded.parameterBytes - fc1[0].saved)
    }
}

@Suite struct ShrinkSharedTensorTests {
    /// Two dense layers that read one kernel (a Keras layer called twice): the planner shrinks
    /// them without trapping on the tensor they share (its subgraphs listed it twice) and without
    /// pruning it (cut for one layer, it no longer fit the other: "kernel [4,4] does not fit
    /// input [?,8]"); `prune` refuses, naming the tensor.
    @Test func sharedKernelIsPlannedOnce() throws {
        var seed = SplitMix64(seed: 61)
        let k = Tensor((0..<64).map { _ in Float(seed.next() % 2001) / 1000 - 1 }, shape: [8, 8])
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 8])], outputs: ["d2"],
                      nodes: [Node(name: "d1", op: .dense(activation: .relu), inputs: ["x"], params: ["kernel": "k"]),
                              Node(name: "d2", op: .dense(activation: .linear), inputs: ["d1"], params: ["kernel": "k"])],
                      tensors: ["k": k])
        let result = try ShrinkPlanner(targetBytes: 1, maxOutputChange: 1).shrink(g, inputs: g.syntheticInputs(batch: 2), sizeOf: FModelWriter.fileSize(of:))
        try result.graph.validate()
        #expect(result.graph.tensors["k"]?.shape == [8, 8] && result.graph.tensors["k"]?.dtype != .f32, "quantized, not pruned")
        #expect(throws: PruneError.sharedTensor(layer: "d1", tensor: "k")) { try DensePruner(graph: g, layer: "d1") }
    }
}
