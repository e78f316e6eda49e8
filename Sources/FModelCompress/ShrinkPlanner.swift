import FModelCore
import FModelRuntime
import Foundation

/// One line of a shrink plan.
public struct ShrinkStep: Sendable, Codable, Hashable {
    public var layer: String
    public var action: String
    public var bytesBefore: Int
    public var bytesAfter: Int
    /// The layer's own output SQNR after the action, measured on the calibration inputs.
    public var sqnrDB: Double?
}

/// The outcome of planning a shrink.
public struct ShrinkResult: Sendable {
    public var graph: Graph
    public var steps: [ShrinkStep]
    /// Largest change of any output value against the float model on the calibration inputs.
    public var outputChange: Float
    public var sizeBytes: Int
    public var reachedTarget: Bool
}

/// Plans and applies compression to meet a size: lossless passes first, then kernels move down
/// the ladder f32 → f16 → int8 → int4 where the added noise per byte saved is least, as measured
/// layer by layer on the calibration inputs; moves are taken in that order, checked end to end,
/// and any that would break the output bound is skipped, until the size is met.
public struct ShrinkPlanner {
    public var targetBytes: Int
    public var maxOutputChange: Float
    public var groupSize = 32
    /// Reports progress lines (measuring layers can take a while on a large model).
    public var log: (String) -> Void = { _ in }

    public init(targetBytes: Int, maxOutputChange: Float) {
        self.targetBytes = targetBytes
        self.maxOutputChange = maxOutputChange
    }

    struct Move {
        enum Action { case quantize(QuantizationScheme), prune(keep: Int) }
        var node: Node
        var action: Action
        /// Bytes of the float tensors of the layers the move changes (a prune changes its readers).
        var bytes: Int
        var saved: Int
        var noise: Double
        var sqnr: Double

        var label: String {
            switch action {
            case .quantize(let s): "\(s)"
            case .prune(let k): "prune to \(k) units"
            }
        }
    }

    /// Quantized kernels by node and scheme, shared by the trials of one shrink.
    final class Cache: @unchecked Sendable { var values: [String: Tensor] = [:] }
    private let quantizedCache = Cache()

    /// Fractions of units a dense layer may be pruned to.
    public var pruneFractions: [Double] = [0.5, 0.25]

    /// Shrinks `graph`; `sizeOf` tells the file size of a graph.
    public func shrink(_ original: Graph, inputs: [String: FloatTensor], sizeOf: (Graph) throws -> Int) throws -> ShrinkResult {
        var graph = original
        var steps: [ShrinkStep] = []
        var before = graph.parameterBytes
        for r in GraphPass.runLossless(&graph) {
            if r.nodesRemoved > 0 || r.bytesSaved > 0 {
                steps.append(ShrinkStep(layer: "*", action: "\(r.pass) (\(r.nodesRemoved) nodes)", bytesBefore: before, bytesAfter: before - r.bytesSaved))
            }
            before -= r.bytesSaved
        }
        let float = graph
        var size = try sizeOf(graph)
        log("lossless steps: \(size) bytes")
        guard size > targetBytes else {
            return ShrinkResult(graph: graph, steps: steps, outputChange: try float.maxOutputChange(candidate: graph, inputs: inputs), sizeBytes: size, reachedTarget: true)
        }
        let order = try greedyOrder(float, inputs: inputs, bytesToSave: .max)
        let floatOutputs = try Executor(graph: float).run(inputs)
        let index = DensePruner.Index(float)
        var accepted: [Move] = []
        var candidate = float
        var i = 0, chunk = max(1, order.count / 16)
        let fullChunk = chunk
        // Take the moves in order, a chunk at a time, while the output change stays in bound;
        // a chunk that breaks it is halved down to the move that does, which is skipped.
        while i < order.count, size > targetBytes {
            let trialMoves = accepted + order[i..<min(i + chunk, order.count)]
            let trial = try apply(trialMoves, to: float, index: index)
            if try trial.maxOutputChange(from: floatOutputs, inputs: inputs) <= maxOutputChange {
                (accepted, candidate) = (trialMoves, trial)
                size = try sizeOf(candidate)
                i += chunk
                chunk = min(chunk * 2, fullChunk)
            } else if chunk == 1 {
                log("skipped \(order[i].node.name) → \(order[i].label): it breaks the output bound")
                i += 1
            } else {
                chunk /= 2
            }
        }
        let change = try candidate.maxOutputChange(from: floatOutputs, inputs: inputs)
        for m in accepted {
            steps.append(ShrinkStep(layer: m.node.name, action: m.label, bytesBefore: m.bytes, bytesAfter: m.bytes - m.saved, sqnrDB: m.sqnr))
        }
        return ShrinkResult(graph: candidate, steps: steps, outputChange: change, sizeBytes: size, reachedTarget: size <= targetBytes)
    }

    /// The graph with the moves applied: prunes first (each layer's last), then each node's last
    /// scheme to its (possibly pruned) float kernel.
    func apply(_ moves: [Move], to float: Graph, index: DensePruner.Index? = nil) throws -> Graph {
        var g = float
        var schemes: [String: QuantizationScheme] = [:], keeps: [String: Int] = [:]
        for m in moves {
            switch m.action {
            case .quantize(let s): schemes[m.node.name] = s
            case .prune(let k): keeps[m.node.name] = k
            }
        }
        // One index serves every prune of every trial (a prune changes tensors, not nodes); each
        // edit is applied once its pruner has gone, so the table of tensors is changed in place,
        // not copied per prune.
        let index = index ?? DensePruner.Index(float)
        for name in g.nodes.map(\.name) where keeps[name] != nil {
            let edit = try DensePruner(graph: g, layer: name, index: index).edit(keep: keeps[name]!).0
            edit.apply(to: &g)
        }
        let pruned = Set(moves.flatMap { m -> [String] in
            guard case .prune = m.action, let p = try? DensePruner(graph: float, layer: m.node.name, index: index) else { return [] }
            return [m.node.name] + p.consumers.map(\.name)
        })
        // Nodes found by the index, not `node(named:)`, which searches the list (a model of
        // 2,000 layers spent 44% of `shrink` there).
        for (name, scheme) in schemes {
            let node = g.nodes[index.position[name]!], tensor = node.params["kernel"]!
            let key = "\(name)|\(scheme)"
            // Kernels untouched by pruning are quantized once per scheme, however many trials.
            if !pruned.contains(name), let cached = quantizedCache.values[key] {
                g.tensors[tensor] = cached
            } else {
                g.quantize(node, scheme)
                if !pruned.contains(name) { quantizedCache.values[key] = g.tensors[tensor] }
            }
        }
        if !schemes.isEmpty { g.metadata.passes.append("shrink_quantize") }
        return g
    }

    /// A move that saves less than this fraction of the model's weights comes after every
    /// other: it cannot bring a target within reach, but the noise it adds spends the output
    /// bound that later moves need. A layer's own output noise does not say how much the layers
    /// after it amplify; the first layer's f16 → int8 move (368 bytes of the reference model's
    /// 25 MB; 45.9 dB) cost that model's `--target-mb 4.65` half a megabyte (5.13 MB reached
    /// instead of 4.63).
    static let negligibleFraction = 1e-4

    /// Moves in the order they should be taken, enough to save `bytesToSave` if possible: the
    /// least added noise per byte saved first, negligible savings last.
    ///
    /// A ladder's next move depends only on where that ladder stands, so the order is a merge
    /// of the ladders: a heap holds each ladder's next move, and only the ladder a pick moved
    /// is priced again. (Pricing every move for every pick took about 4 s of a 2,000-layer
    /// chain's 24 s, by `perf`.) Equal prices go to the ladder of the earlier layer, whatever the
    /// hash seed; a price that is not a number comes last.
    func greedyOrder(_ float: Graph, inputs: [String: FloatTensor], bytesToSave: Int) throws -> [Move] {
        let options = try measure(float, inputs: inputs)
        let negligible = Int(Double(float.parameterBytes) * Self.negligibleFraction)
        // Ladders in the order of their layers (a layer's two by their keys).
        let position = Dictionary(float.nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
        let ladders = options.filter { !$0.value.isEmpty }.map { (key: $0.key, at: position[$0.value[0].node.name]!) }
            .sorted { ($0.at, $0.key) < ($1.at, $1.key) }.map(\.key)
        var level = [Move?](repeating: nil, count: ladders.count)
        /// The ladder's best next move: negligible savings after the others; within each, the
        /// least noise per byte; the first of equals.
        func next(_ l: Int) -> NextMove? {
            let current = level[l]
            var pick: NextMove?
            for m in options[ladders[l]]! where m.saved > (current?.saved ?? 0) {
                let gain = m.saved - (current?.saved ?? 0)
                let cost = (m.noise - (current?.noise ?? 0)) / Double(gain)
                let candidate = NextMove(late: gain < negligible, cost: cost.isNaN ? .infinity : cost, ladder: l, move: m)
                if pick.map({ candidate < $0 }) ?? true { pick = candidate }
            }
            return pick
        }
        var heap = MinHeap(ladders.indices.compactMap(next))
        var order: [Move] = []
        var saved = 0
        while saved < bytesToSave, let pick = heap.pop() {
            saved += pick.move.saved - (level[pick.ladder]?.saved ?? 0)
            level[pick.ladder] = pick.move
            order.append(pick.move)
            if let after = next(pick.ladder) { heap.push(after) }
        }
        return order
    }

    /// A ladder's next move, ordered as `greedyOrder` takes them.
    struct NextMove: Comparable {
        var late: Bool
        var cost: Double
        var ladder: Int
        var move: Move

        static func < (a: Self, b: Self) -> Bool { (a.late ? 1 : 0, a.cost, a.ladder) < (b.late ? 1 : 0, b.cost, b.ladder) }
        static func == (a: Self, b: Self) -> Bool { !(a < b) && !(b < a) }
    }

    /// Dense layers pruned to each fraction: the noise at their readers' outputs, measured on
    /// the sub-graph from the layer to its readers, fed with what the layer sees.
    func measurePruning(_ float: Graph, inputs: [String: FloatTensor]) throws -> [String: [Move]] {
        var candidates: [(Node, DensePruner)] = []
        let index = DensePruner.Index(float)
        for node in float.nodes {
            guard case .dense = node.op, let pruner = try? DensePruner(graph: float, layer: node.name, index: index), !pruner.consumers.isEmpty,
                  float.param("kernel", of: node)!.shape[1] >= 8 else { continue }
            candidates.append((node, pruner))
        }
        guard !candidates.isEmpty else { return [:] }
        let feeds = try Executor(graph: float).run(inputs, outputs: Array(Set(candidates.map { $0.0.inputs[0] })))
        var out: [String: [Move]] = [:]
        for (node, pruner) in candidates {
            let x = feeds[node.inputs[0]]!
            let sub = subgraph(float, from: node, through: pruner, input: x.shape)
            let readers = sub.outputs
            let before = try Executor(graph: sub).run(["x": x], outputs: readers)
            let units = float.param("kernel", of: node)!.shape[1]
            out["prune:" + node.name] = try pruneFractions.map { f in
                let keep = max(1, Int(Double(units) * f))
                let (pruned, report) = try DensePruner(graph: sub, layer: node.name).prune(keep: keep)
                let after = try Executor(graph: pruned).run(["x": x], outputs: readers)
                let worst = readers.map { LayerError(node: $0, float: before[$0]!.values, approximate: after[$0]!.values) }
                    .max { $0.relativeNoise < $1.relativeNoise }!
                return Move(node: node, action: .prune(keep: keep), bytes: sub.parameterBytes, saved: report.bytesSaved, noise: worst.relativeNoise, sqnr: worst.sqnrDB)
            }
        }
        return out
    }

    /// The layer, the unit-wise nodes after it and its dense readers, reading `x`.
    private func subgraph(_ g: Graph, from node: Node, through pruner: DensePruner, input: Shape) -> Graph {
        let names = Set([node.name] + pruner.chain.map(\.name) + pruner.consumers.map(\.name))
        var nodes = g.nodes.filter { names.contains($0.name) }
        for i in nodes.indices where nodes[i].name == node.name { nodes[i].inputs = ["x"] }
        let tensors = Self.tensors(of: nodes, in: g)
        return Graph(inputs: [ValueInfo(name: "x", shape: input.withBatch(-1))], outputs: pruner.consumers.map(\.name), nodes: nodes, tensors: tensors)
    }

    /// Each kernel layer alone, each scheme: its own output noise on the float inputs it sees.
    func measure(_ float: Graph, inputs: [String: FloatTensor]) throws -> [String: [Move]] {
        let nodes = float.nodes.filter { $0.op.hasKernel }
        let feeds = try Executor(graph: float).run(inputs, outputs: Array(Set(nodes.map { $0.inputs[0] })))
        var out: [String: [Move]] = [:]
        for (i, node) in nodes.enumerated() {
            let x = feeds[node.inputs[0]]!
            let single = singleNode(node, in: float, input: x.shape)
            let y = try Executor(graph: single).run(["x": x])[node.name]!.values
            let bytes = float.param("kernel", of: node)!.byteCount
            out[node.name] = try [QuantizationScheme.f16, .int8PerChannel, .int4PerGroup(groupSize: groupSize)].map { scheme in
                let q = single.quantizing(single.nodes[0], scheme)
                let e = LayerError(node: node.name, float: y, approximate: try Executor(graph: q).run(["x": x])[node.name]!.values)
                return Move(node: node, action: .quantize(scheme), bytes: bytes, saved: bytes - q.param("kernel", of: q.nodes[0])!.byteCount, noise: e.relativeNoise, sqnr: e.sqnrDB)
            }
            if (i + 1) % 20 == 0 { log("measured \(i + 1)/\(nodes.count) layers") }
        }
        return out.merging(try measurePruning(float, inputs: inputs)) { a, _ in a }
    }

    private func singleNode(_ node: Node, in g: Graph, input: Shape) -> Graph {
        var n = node
        n.inputs = ["x"]
        return Graph(inputs: [ValueInfo(name: "x", shape: input.withBatch(-1))], outputs: [node.name], nodes: [n],
                     tensors: Self.tensors(of: [node], in: g))
    }

    /// The tensors `nodes` read, by name: a tensor two nodes or roles share is listed once.
    private static func tensors(of nodes: [Node], in g: Graph) -> [String: Tensor] {
        Dictionary(nodes.flatMap(\.params.values).map { ($0, g.tensors[$0]!) }, uniquingKeysWith: { first, _ in first })
    }
}
