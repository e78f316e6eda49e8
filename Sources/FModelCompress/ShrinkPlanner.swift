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
        var node: Node
        var scheme: QuantizationScheme
        var saved: Int
        var noise: Double
        var sqnr: Double
    }

    /// Shrinks `graph`; `sizeOf` tells the file size of a graph.
    public func shrink(_ original: Graph, inputs: [String: FloatTensor], sizeOf: (Graph) throws -> Int) throws -> ShrinkResult {
        var graph = original
        var steps: [ShrinkStep] = []
        for pass in GraphPass.lossless {
            let before = graph.parameterBytes
            let r = pass.run(&graph)
            if r.nodesRemoved > 0 || r.bytesSaved > 0 {
                steps.append(ShrinkStep(layer: "*", action: "\(r.pass) (\(r.nodesRemoved) nodes)", bytesBefore: before, bytesAfter: graph.parameterBytes))
            }
        }
        let float = graph
        var size = try sizeOf(graph)
        log("lossless steps: \(size) bytes")
        guard size > targetBytes else {
            return ShrinkResult(graph: graph, steps: steps, outputChange: try float.maxOutputChange(candidate: graph, inputs: inputs), sizeBytes: size, reachedTarget: true)
        }
        let order = try greedyOrder(float, inputs: inputs, bytesToSave: .max)
        var accepted: [Move] = []
        var candidate = float
        var i = 0, chunk = max(1, order.count / 16)
        let fullChunk = chunk
        // Take the moves in order, a chunk at a time, while the output change stays in bound;
        // a chunk that breaks it is halved down to the move that does, which is skipped.
        while i < order.count, size > targetBytes {
            let trialMoves = accepted + order[i..<min(i + chunk, order.count)]
            let trial = apply(trialMoves, to: float)
            if try float.maxOutputChange(candidate: trial, inputs: inputs) <= maxOutputChange {
                (accepted, candidate) = (trialMoves, trial)
                size = try sizeOf(candidate)
                i += chunk
                chunk = min(chunk * 2, fullChunk)
            } else if chunk == 1 {
                log("skipped \(order[i].node.name) → \(order[i].scheme): it breaks the output bound")
                i += 1
            } else {
                chunk /= 2
            }
        }
        let change = try float.maxOutputChange(candidate: candidate, inputs: inputs)
        for m in accepted {
            let t = float.param("kernel", of: m.node)!
            steps.append(ShrinkStep(layer: m.node.name, action: "\(m.scheme)", bytesBefore: t.byteCount, bytesAfter: t.quantized(m.scheme).byteCount, sqnrDB: m.sqnr))
        }
        return ShrinkResult(graph: candidate, steps: steps, outputChange: change, sizeBytes: size, reachedTarget: size <= targetBytes)
    }

    /// The graph with each node's last scheme in `moves` applied to its float kernel.
    func apply(_ moves: [Move], to float: Graph) -> Graph {
        var g = float
        var last: [String: QuantizationScheme] = [:]
        for m in moves { last[m.node.name] = m.scheme }
        for (name, scheme) in last { g = g.quantizing(g.node(named: name)!, scheme) }
        if !last.isEmpty { g.metadata.passes.append("shrink_quantize") }
        return g
    }

    /// Moves in the order they should be taken, enough to save `bytesToSave` if possible.
    func greedyOrder(_ float: Graph, inputs: [String: FloatTensor], bytesToSave: Int) throws -> [Move] {
        let options = try measure(float, inputs: inputs)
        var level: [String: Move] = [:]
        var order: [Move] = []
        var saved = 0
        while saved < bytesToSave {
            var pick: (Move, Double)?
            for (name, moves) in options {
                let current = level[name]
                for m in moves where m.saved > (current?.saved ?? 0) {
                    let cost = (m.noise - (current?.noise ?? 0)) / Double(m.saved - (current?.saved ?? 0))
                    if pick == nil || cost < pick!.1 { pick = (m, cost) }
                }
            }
            guard let (m, _) = pick else { break }
            saved += m.saved - (level[m.node.name]?.saved ?? 0)
            level[m.node.name] = m
            order.append(m)
        }
        return order
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
                return Move(node: node, scheme: scheme, saved: bytes - q.param("kernel", of: q.nodes[0])!.byteCount, noise: e.relativeNoise, sqnr: e.sqnrDB)
            }
            if (i + 1) % 20 == 0 { log("measured \(i + 1)/\(nodes.count) layers") }
        }
        return out
    }

    private func singleNode(_ node: Node, in g: Graph, input: Shape) -> Graph {
        var n = node
        n.inputs = ["x"]
        let tensors = Dictionary(uniqueKeysWithValues: node.params.values.map { ($0, g.tensors[$0]!) })
        return Graph(inputs: [ValueInfo(name: "x", shape: input.withBatch(-1))], outputs: [node.name], nodes: [n], tensors: tensors)
    }
}
