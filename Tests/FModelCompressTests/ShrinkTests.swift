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
    /// A chain of `n` dense layers 8 wide, alike.
    static func chain(_ n: Int) -> Graph {
        let kernel = Tensor((0..<64).map { Float($0 % 7) / 7 - 0.4 }, shape: [8, 8])
        return Graph(inputs: [ValueInfo(name: "x", shape: [-1, 8])], outputs: ["d\(n - 1)"],
                     nodes: (0..<n).map { Node(name: "d\($0)", op: .dense(activation: .linear), inputs: [$0 == 0 ? "x" : "d\($0 - 1)"], params: ["kernel": "k\($0)"]) },
                     tensors: Dictionary(uniqueKeysWithValues: (0..<n).map { ("k\($0)", kernel) }))
    }

    /// Zero inputs: every layer sees zeros, so every move adds no noise.
    static let zeros = ["x": FloatTensor(shape: [2, 8], values: [Float](repeating: 0, count: 16))]

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

extension ShrinkOrderTests {
    /// A chain of dense layers that all see zeros, so that every move costs nothing: equal
    /// costs go to the earlier layer. (They went in the order of a dictionary's keys, which
    /// changes with each process's hash seed.)
    @Test func equalCostsGoInLayerOrder() throws {
        let n = 40, g = Self.chain(n)
        let planner = ShrinkPlanner(targetBytes: 1, maxOutputChange: 1)
        let order = try planner.greedyOrder(g, inputs: Self.zeros, bytesToSave: .max)
        let f16 = order.filter { $0.label == "f16" }.map(\.node.name)
        #expect(f16.count == n)
        #expect(f16 == (0..<n).map { "d\($0)" }, "order: \(order.prefix(12).map { "\($0.node.name) \($0.label)" })")
    }
}

extension ShrinkOrderTests {
    /// The heap's order is the order of pricing every move of every ladder for each pick, on
    /// the multi-task fixture (whose moves all differ in cost).
    @Test func heapOrderIsTheGreedyOrder() throws {
        var g = try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess)
        _ = GraphPass.runLossless(&g)
        let planner = ShrinkPlanner(targetBytes: 1, maxOutputChange: 1)
        let inputs = try g.syntheticInputs(batch: 2)
        let options = try planner.measure(g, inputs: inputs)
        let negligible = Int(Double(g.parameterBytes) * ShrinkPlanner.negligibleFraction)
        var level: [String: ShrinkPlanner.Move] = [:], expected: [String] = []
        while true {
            var pick: (key: String, move: ShrinkPlanner.Move, late: Bool, cost: Double)?
            for (key, moves) in options {
                let current = level[key]
                for m in moves where m.saved > (current?.saved ?? 0) {
                    let gain = m.saved - (current?.saved ?? 0)
                    let cost = (m.noise - (current?.noise ?? 0)) / Double(gain), late = gain < negligible
                    if pick.map({ p in p.late != late ? !late : cost < p.cost }) ?? true { pick = (key, m, late, cost) }
                }
            }
            guard let pick else { break }
            level[pick.key] = pick.move
            expected.append("\(pick.move.node.name) \(pick.move.label)")
        }
        let order = try planner.greedyOrder(g, inputs: inputs, bytesToSave: .max).map { "\($0.node.name) \($0.label)" }
        #expect(order.count > 100 && order.contains { $0.hasSuffix("units") })
        #expect(order == expected)
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

    /// Prunes of neighbouring layers, applied by the plan with one index for all, give the
    /// graph that pruning one layer after the other gives.
    @Test func neighbouringPrunesApplyAsOneAfterTheOther() throws {
        var seed = SplitMix64(seed: 62)
        var g = ShrinkOrderTests.chain(4)
        for t in g.tensors.keys { g.tensors[t] = Tensor((0..<64).map { _ in Float(seed.next() % 2001) / 1000 - 1 }, shape: [8, 8]) }
        let planner = ShrinkPlanner(targetBytes: 1, maxOutputChange: 1)
        let moves = try planner.measurePruning(g, inputs: g.syntheticInputs(batch: 2))
        let planned = try planner.apply([moves["prune:d1"]![0], moves["prune:d2"]![1]], to: g)
        let oneByOne = try DensePruner(graph: DensePruner(graph: g, layer: "d1").prune(keep: 4).0, layer: "d2").prune(keep: 2).0
        #expect(planned.tensors.mapValues { $0.floats() } == oneByOne.tensors.mapValues { $0.floats() })
        #expect(planned.tensors["k2"]?.shape == [4, 2] && planned.tensors["k3"]?.shape == [2, 8])
    }

    /// A prune's step counts the bytes of the readers it cuts as well as the layer's own: a
    /// layer of 8 units pruned to 2 saves 384 bytes of the 512 of its kernel and its reader's,
    /// which against its kernel's 256 said "256 -> -128".
    @Test func pruneStepsCountTheirReaders() throws {
        let g = ShrinkOrderTests.chain(3)
        let r = try ShrinkPlanner(targetBytes: 1, maxOutputChange: 1).shrink(g, inputs: ShrinkOrderTests.zeros, sizeOf: FModelWriter.fileSize(of:))
        let prunes = r.steps.filter { $0.action.hasPrefix("prune") }
        #expect(!prunes.isEmpty)
        #expect(r.steps.allSatisfy { $0.bytesAfter >= 0 && $0.bytesAfter <= $0.bytesBefore }, "\(r.steps)")
        #expect(prunes.allSatisfy { $0.bytesBefore == 512 }, "\(prunes)")
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
